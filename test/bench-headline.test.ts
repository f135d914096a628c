// The headline tables of README.md and bench/README.md are made by bench/headline.ts from a saved benchmark report
// (bench/reports/*.json): no ratio in them is typed by hand. This checks that each README has its table, and that
// the table is exactly what the script makes from the report it names (after a new run: `npm run bench -- --save`,
// commit the report, point the blocks at it and run `node build/bench/headline.js --write`).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { READMES, headline, refreshBlocks, type ReportJson } from '../bench/headline.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BLOCK_START = /<!-- headline (full|brief) (\S+) -->/g;

for (const file of READMES) {
  test(`${file}: its headline table is the one bench/headline.ts makes from the report it names`, () => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const blocks = [...text.matchAll(BLOCK_START)];
    assert.ok(blocks.length >= 1, `${file} has a headline block`);
    for (const [, , report] of blocks) {
      assert.ok(existsSync(join(ROOT, report!)), `${report} exists (committed)`);
      const json = JSON.parse(readFileSync(join(ROOT, report!), 'utf8')) as ReportJson;
      assert.equal(json.mode, 'full', `${report} is a full run`);
    }
    assert.equal(refreshBlocks(text, ROOT, file), text, `${file}'s headline blocks are stale: run node build/bench/headline.js --write`);
  });
}

test('the headline has a row per case with its ratios, and marks memory as lower-is-better', () => {
  const report: ReportJson = {
    date: '2026-01-02T03:04:05Z', mode: 'full', rounds: 3,
    machine: { cpu: 'CPU', cores: 2, node: 'v20.0.0' }, library: { commit: 'abc1234' }, peers: {},
    scenarios: [
      {
        id: 'echo-binary-32B-16c', title: 'echo binary 32 B, 16 conn', group: 'echo',
        metrics: [{ key: 'rate', unit: 'msg/s', higherIsBetter: true, servers: { ours: { median: 1_500_000 } }, ratios: { uws: { median: 1.234 }, ws: { median: 10 } } }],
      },
      {
        id: 'memory-10000', title: 'idle memory, 10,000 conn', group: 'memory',
        metrics: [{ key: 'rss', unit: 'KB RSS/conn', higherIsBetter: false, servers: { ours: { median: 6.3 } }, ratios: { uws: { median: 4.4 } } }],
      },
      {
        id: 'latency-1024B-20000', title: 'latency', group: 'latency',
        metrics: [{ key: 'p50', unit: 'µs', higherIsBetter: false, servers: {}, ratios: {} }],
      },
    ],
  };
  const table = headline(report, 'full', 'bench/reports/x.json', 'reports/x.json');
  assert.match(table, /\| echo binary 32 B, 16 conn \| 1\.50M msg\/s \| 1\.23× \| 10\.00× \|/);
  assert.match(table, /\| idle memory, 10,000 conn \(lower is better\) \| 6\.30 KB RSS\/conn \| 4\.40× \| — \|/);
  assert.doesNotMatch(table, /latency/, 'latency is not a headline row');
  assert.match(table, /\[`bench\/reports\/x\.json`\]\(reports\/x\.json\)/);
});
