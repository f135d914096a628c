// The headline tables of README.md and bench/README.md, made from a saved benchmark report (bench/reports/*.json,
// written by `npm run bench -- --save`), so that no ratio in the READMEs is typed by hand. Each README holds its
// table between `<!-- headline <kind> <report> -->` and `<!-- /headline -->`; test/bench-headline.test.ts checks
// that what is there is what this script makes from the report named.
//
// `node build/bench/headline.js` prints every block it finds as it should be; with `--write` it rewrites the
// blocks in place (README.md and bench/README.md only: the benchmark itself never writes a tracked file).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the headline reads from a report (see toJson in report.ts). */
export interface ReportJson {
  date: string;
  mode: string;
  rounds: number;
  machine: { cpu: string; cores: number; node: string };
  library: { commit: string };
  peers: Record<string, string>;
  scenarios: Array<{
    id: string;
    title: string;
    group: string;
    metrics: Array<{
      key: string;
      unit: string;
      higherIsBetter: boolean;
      servers: Record<string, { median: number } | undefined>;
      ratios: Record<string, { median: number } | undefined>;
    }>;
  }>;
}

/** `full`: every case of the run; `brief`: the ones the main README shows. */
export type HeadlineKind = 'full' | 'brief';

const BRIEF = /^(echo-binary-(32|1024|65536|1048576)B-16c|echo-binary-32B-256c|echo-text-(1024|65536)B-16c|broadcast-(32|4096)B-(1000|5000)r|publish-32B-1x5000|handshakes-32|memory-\d+)$/;
const PEERS = [['uws', 'uWebSockets.js'], ['ws', 'ws'], ['ws-bufferutil', 'ws + bufferutil']] as const;

function ratio(value: number | undefined): string {
  return value === undefined ? '—' : `${value.toFixed(2)}×`;
}

function amount(value: number | undefined, unit: string): string {
  if (value === undefined) return '—';
  if (unit.startsWith('KB')) return `${value.toFixed(2)} ${unit}`;
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M ${unit}`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k ${unit}`;
  return `${Math.round(value).toLocaleString('en-US')} ${unit}`;
}

/** The Markdown table (with the sentence that says how to read it) for `report`. */
export function headline(report: ReportJson, kind: HeadlineKind, source: string, href: string): string {
  const scenarios = report.scenarios.filter((s) => ['echo', 'broadcast', 'publish', 'handshakes', 'memory'].includes(s.group)
    && (kind === 'full' || BRIEF.test(s.id)));
  const peers = PEERS.filter(([peer]) => scenarios.some((s) => s.metrics[0]?.ratios[peer] !== undefined));
  const lines = [
    `| case | ours | ${peers.map(([, name]) => `ours ÷ ${name}`).join(' | ')} |`,
    `|---|---|${peers.map(() => '---|').join('')}`,
  ];
  for (const scenario of scenarios) {
    const metric = scenario.metrics[0]!;
    const lower = metric.higherIsBetter ? '' : ' (lower is better)';
    lines.push(`| ${scenario.title}${lower} | ${amount(metric.servers['ours']?.median, metric.unit)} | ${peers.map(([peer]) => ratio(metric.ratios[peer]?.median)).join(' | ')} |`);
  }
  const when = `${report.date.slice(0, 10)}, ${report.mode} run of ${report.rounds} rounds, Node ${report.machine.node}, ${report.machine.cpu} (${report.machine.cores} cores), library ${report.library.commit}`;
  return [
    `Ours ÷ peer: the median of the per-round ratios of throughput (above 1× = ours ahead), of memory for idle`,
    `connections (below 1× = ours lighter). From [\`${source}\`](${href}) (${when}).`,
    '',
    ...lines,
  ].join('\n');
}

const BLOCK = /<!-- headline (full|brief) (\S+) -->\n[\s\S]*?<!-- \/headline -->/g;

/** `text` with every headline block made again from the report it names (paths relative to the repository). */
export function refreshBlocks(text: string, root: string, readmePath: string): string {
  return text.replace(BLOCK, (_all, kind: HeadlineKind, report: string) => {
    const json = JSON.parse(readFileSync(join(root, report), 'utf8')) as ReportJson;
    // A link from bench/README.md is relative to bench/; from README.md, to the root.
    const href = readmePath.startsWith('bench/') ? report.replace(/^bench\//, '') : report;
    const table = headline(json, kind, report, href);
    return `<!-- headline ${kind} ${report} -->\n${table}\n<!-- /headline -->`;
  });
}

export const READMES = ['README.md', 'bench/README.md'] as const;

function main(): void {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const write = process.argv.includes('--write');
  for (const file of READMES) {
    const path = join(root, file);
    const text = readFileSync(path, 'utf8');
    const fresh = refreshBlocks(text, root, file);
    if (write && fresh !== text) {
      writeFileSync(path, fresh);
      console.log(`${file}: headline blocks rewritten`);
    } else {
      for (const block of fresh.match(BLOCK) ?? []) console.log(`${file}:\n${block}\n`);
    }
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) main();
