// The seeded fuzzer (fuzz/fuzz.ts) as a test: a fixed seed, a few thousand cases, no failure allowed.
// A failing case is replayed with `npm run fuzz -- --seed=<seed> --case=<index>`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runFuzz } from '../../fuzz/fuzz.ts';

const SEED = 6455;

test('3,000 fuzz cases (valid, mutated frames, junk handshakes) against one echo server fail none', { timeout: 30_000 }, async () => {
  const lines: string[] = [];
  const result = await runFuzz({ seed: SEED, cases: 3_000, concurrency: 48, log: (line) => lines.push(line) });
  assert.deepEqual(
    result.failures.map((failure) => `case ${failure.index} (${failure.kind}): ${failure.message}`),
    [],
    `replay with: npm run fuzz -- --seed=${SEED} --case=<index>\n${lines.join('\n')}`,
  );
  assert.equal(result.cases, 3_000);
  for (const kind of ['valid', 'mutated-frames', 'handshake']) {
    assert.ok((result.byKind[kind] ?? 0) > 100, `the run had few ${kind} cases: ${JSON.stringify(result.byKind)}`);
  }
});
