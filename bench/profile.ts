// `npm run bench:profile [-- options]`: where our server's time goes, case by case. Each case of the benchmark
// (bench/scenarios.ts) runs once against our server, pinned to core 0 as in `npm run bench`, under
// `node --cpu-prof`; the profile is summed by function (self time) and by kind of work (system calls, garbage
// collection, our library, Node's streams and sockets), as shares of the server's busy time (idle left out).
// Prints a Markdown report and writes it, with the .cpuprofile files (open them in Chrome DevTools), to
// bench/results/profile-<date>/ (not committed). See bench/README.md, "Where the time goes".
//
// Options: --only=REGEX (case ids, as in `npm run bench`), --top=N (functions per case, 12), --out=DIR,
// --lib=DIR (profile another checkout's built dist/, e.g. a worktree of an older commit, for before/after).
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LoadProcess, ServerProcess, detectPlacement, killChildren, stage, unstage, waitForQuietMachine } from './processes.ts';
import type { LoadJob } from './protocol.ts';
import { makePlan, type Scenario } from './scenarios.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The cases profiled when no --only is given: one per kind of cost (small, large, text, fan-out, handshake). */
const DEFAULT_CASES = /^(echo-binary-32B-(16|256)c|echo-text-1024B-16c|echo-(binary|text)-(65536|1048576)B-16c|broadcast-(32|4096)B-1000r|publish-32B-1x5000|handshakes-32)$/;

const { values: options } = parseArgs({
  options: {
    only: { type: 'string' },
    top: { type: 'string', default: '12' },
    out: { type: 'string' },
    lib: { type: 'string' },
  },
});

process.on('exit', () => {
  killChildren();
  unstage();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => process.exit(130));
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** The kind of work a profile node is, from its function name and script. */
function kindOf(frame: ProfileNode['callFrame']): string {
  const { functionName: name, url } = frame;
  if (name === '(garbage collector)') return 'garbage collection';
  if (name === '(program)') return 'V8 and native code (unattributed)';
  if (name.startsWith('wasm-function')) return 'our library (WebAssembly unmasking)';
  if (url.endsWith('websocket-server.js')) return 'our library';
  // The native ends of Node's stream and socket bindings: the time is the system call.
  if (url === '' && /^(writev|writeBuffer|write\w*String|close|shutdown|readStart|readStop|getpeername|getsockname)$/.test(name)) return 'system calls (write, close)';
  if (url.startsWith('node:') || !url.includes('/')) return 'Node (streams, sockets, buffers, timers)';
  return 'other';
}

function label(frame: ProfileNode['callFrame']): string {
  const file = frame.url === '' ? '' : ` ${frame.url.slice(frame.url.lastIndexOf('/') + 1)}:${frame.lineNumber + 1}`;
  return `${frame.functionName || '(anonymous)'}${file}`;
}

/** Self time by function and by kind, as shares of the busy (non-idle) time, and the busy time in ms. */
function summarize(profile: CpuProfile, top: number): { busyMs: number; kinds: Array<[string, number]>; functions: Array<[string, string, number]> } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const functions = new Map<string, { kind: string; us: number }>();
  const kinds = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)' || frame.functionName === '(root)') continue;
    busy += us;
    const kind = kindOf(frame);
    kinds.set(kind, (kinds.get(kind) ?? 0) + us);
    const key = label(frame);
    const entry = functions.get(key) ?? { kind, us: 0 };
    entry.us += us;
    functions.set(key, entry);
  }
  const share = (us: number): number => (busy === 0 ? 0 : us / busy);
  return {
    busyMs: busy / 1000,
    kinds: [...kinds].sort((a, b) => b[1] - a[1]).map(([kind, us]) => [kind, share(us)]),
    functions: [...functions].sort((a, b) => b[1].us - a[1].us).slice(0, top).map(([name, { kind, us }]) => [name, kind, share(us)]),
  };
}

const percent = (share: number): string => `${(share * 100).toFixed(1)}%`;

/** Runs one case against our server under --cpu-prof; returns its section of the report. */
async function profileCase(scenario: Scenario, directory: string, top: number): Promise<string> {
  const placement = detectPlacement();
  mkdirSync(directory, { recursive: true });
  const server = await ServerProcess.start('ours', placement, {}, ['--cpu-prof', `--cpu-prof-dir=${directory}`]);
  let count = 0;
  let elapsedMs = 0;
  let cpu: number | undefined;
  try {
    const job = { ...scenario.job, port: server.port } as LoadJob;
    if (job.kind === 'idle') throw new Error('Idle memory has no profile: see npm run bench:memory.');
    const marks: Array<number | undefined> = [];
    const load = new LoadProcess(job, placement, (event) => {
      if (event.type === 'measure-start' || event.type === 'measure-end') marks.push(server.cpuSeconds());
    }, job.warmupMs + job.measureMs + 90_000);
    try {
      const result = await load.done;
      count = result.count;
      elapsedMs = result.elapsedMs;
      const [start, end] = marks;
      if (start !== undefined && end !== undefined && count > 0) cpu = ((end - start) / count) * 1e6;
    } finally {
      load.kill();
    }
  } finally {
    await server.stop();
  }
  const file = readdirSync(directory).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`The server wrote no profile in ${directory}.`);
  const summary = summarize(JSON.parse(readFileSync(join(directory, file), 'utf8')) as CpuProfile, top);
  const unit = scenario.group === 'echo' ? 'message' : scenario.group === 'handshakes' ? 'handshake' : 'delivery';
  const lines = [
    `### ${scenario.title}`,
    '',
    `${Math.round(count / (elapsedMs / 1000)).toLocaleString('en-US')} per second; server CPU ${cpu === undefined ? '?' : cpu.toFixed(cpu >= 100 ? 0 : 2)} µs per ${unit}; `
      + `profile: ${file} (busy ${summary.busyMs.toFixed(0)} ms over warm-up and measure).`,
    '',
    '| kind of work | share of busy time |',
    '|---|---|',
    ...summary.kinds.map(([kind, share]) => `| ${kind} | ${percent(share)} |`),
    '',
    '| function (self time) | kind | share |',
    '|---|---|---|',
    ...summary.functions.map(([name, kind, share]) => `| \`${name}\` | ${kind} | ${percent(share)} |`),
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const placement = detectPlacement();
  const pattern = options.only === undefined ? DEFAULT_CASES : new RegExp(options.only);
  const cases = makePlan('full', placement.openFiles).scenarios
    .filter((scenario) => pattern.test(scenario.id) && scenario.group !== 'memory' && scenario.servers.includes('ours'));
  if (cases.length === 0) throw new Error(`No case id matches ${pattern}.`);
  const top = Number.parseInt(options.top, 10);
  if (!(top >= 1 && top <= 100)) throw new RangeError(`--top must be a whole number from 1 to 100, not ${options.top}.`);
  const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
  const outDir = options.out ?? join(ROOT, 'bench', 'results', `profile-${stamp}`);
  stage(ROOT, options.lib ?? ROOT);
  const library = options.lib === undefined ? '' : `, library from ${options.lib}`;
  const sections = [`# Where our server's time goes (${stamp.slice(0, 10)}, Node ${process.version}${library})`, ''];
  for (const scenario of cases) {
    await waitForQuietMachine(30_000, () => console.log('  (waiting for other processes to stop)'));
    console.log(`profiling: ${scenario.title}`);
    sections.push(await profileCase(scenario, join(outDir, scenario.id), top));
  }
  const report = sections.join('\n');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'profile.md'), report);
  console.log(`\n${report}\nWrote ${join(outDir, 'profile.md')} and the profiles beside it.`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack ?? error.message : error);
  killChildren();
  process.exit(1);
});
