// The benchmark's smoke run: `bench/run.js --smoke` drives our server and `ws` through one short echo, one
// broadcast and one publish scenario and must produce numbers. It checks that the harness works, never how fast anything is.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

interface SmokeResults {
  mode: string;
  scenarios: Array<{
    id: string;
    runs: Array<{ server: string; values: Record<string, number>; error?: string }>;
    metrics: Array<{ key: string; ratios: Record<string, { median: number }> }>;
  }>;
}

/** Runs the smoke benchmark with its results in a temporary directory; resolves with its exit code and output. */
function runSmoke(out: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN, '--smoke', `--out=${out}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

test('the smoke benchmark runs ours and ws through echo, broadcast and publish and reports numbers and ratios', { timeout: 60_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));

  const { code, output } = await runSmoke(out);
  assert.equal(code, 0, output);
  assert.match(output, /÷ws/, 'the table has a ratio column');

  const dated = readdirSync(out).filter((name) => name.endsWith('-smoke.json'));
  assert.equal(dated.length, 1, `one dated JSON file is written (${readdirSync(out).join(', ')})`);
  const results = JSON.parse(readFileSync(join(out, dated[0]!), 'utf8')) as SmokeResults;
  assert.equal(results.mode, 'smoke');
  assert.deepEqual(results.scenarios.map((s) => s.id.split('-')[0]), ['echo', 'broadcast', 'publish']);
  for (const scenario of results.scenarios) {
    assert.deepEqual(scenario.runs.map((run) => run.server), ['ours', 'ws'], scenario.id);
    for (const run of scenario.runs) {
      assert.equal(run.error, undefined, `${scenario.id} ${run.server}`);
      assert.ok(Number.isFinite(run.values['rate']) && run.values['rate']! > 0, `${scenario.id} ${run.server} measured a rate`);
    }
    assert.ok(Number.isFinite(scenario.metrics[0]?.ratios['ws']?.median), `${scenario.id} has a ratio to ws`);
    const cpu = scenario.metrics.find((metric) => metric.key === 'cpu');
    assert.ok(Number.isFinite(cpu?.ratios['ws']?.median), `${scenario.id} has the server CPU per unit, and its ratio to ws`);
  }
  const summary = readFileSync(join(out, 'latest.md'), 'utf8');
  assert.match(summary, /÷ws/, 'the summary has the ratio column');
  assert.match(summary, /µs CPU\/msg/, 'the summary has the server CPU per message');
  const wide = summary.split('\n').filter((line) => [...line].length > 120);
  assert.deepEqual(wide, [], 'every line of the summary fits 120 columns');
  assert.doesNotMatch(summary, /issue \d/i, 'the summary names no internal issue');
  assert.equal(existsSync(join(out, 'latest.json')), false, 'no copy of the dated JSON');
  assert.match(readFileSync(join(out, 'latest.svg'), 'utf8'), /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
});

test('the benchmark writes nothing git tracks: its default output directory is ignored and holds no tracked file', () => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const git = (...args: string[]): { status: number | null; stdout: string } => {
    const result = spawnSync('git', args, { cwd: root, encoding: 'utf8' });
    return { status: result.status, stdout: result.stdout };
  };
  assert.equal(git('ls-files', '--', 'bench/results').stdout, '', 'no file under bench/results/ is tracked');
  for (const name of ['latest.md', 'latest.svg', '2026-01-01T00-00-00.json', 'profile-2026-01-01T00-00-00/profile.md']) {
    assert.equal(git('check-ignore', '-q', `bench/results/${name}`).status, 0, `bench/results/${name} is ignored`);
  }
});
