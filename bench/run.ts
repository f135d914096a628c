// `npm run bench [-- options]`: runs our server, uWebSockets.js, plain `ws` and `ws` with `bufferutil` one at a
// time, in alternating rounds (ours, uWS, ws, ws+bufferutil, ours, …), each in a fresh process pinned to core 0
// with the load generator pinned to core 1; prints medians and the median of the paired ratios; writes
// bench/results/<date>.json (every run), latest.md (the summary) and latest.svg, none of them tracked by git.
// See bench/README.md.
//
// Options: --quick (a subset, shorter runs), --smoke (a few seconds: ours and ws, three tiny scenarios; for the
// test), --only=REGEX (scenarios whose id matches), --rounds=N, --out=DIR (where the results go), --save (keep
// the run in bench/reports/ under new names, to cite it), --lib=DIR (ours from another checkout's dist/),
// --servers=LIST (the peers to run beside ours, e.g. uws,ws), --render=FILE.json (print a saved run's summary).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  LoadProcess,
  ServerProcess,
  detectPlacement,
  killChildren,
  machineBusySeconds,
  socketsInTimeWait,
  stage,
  unstage,
  waitForQuietMachine,
  type Placement,
  type ServerUnderTest,
} from './processes.ts';
import type { IdleJob, LoadJob, ServerKind } from './protocol.ts';
import { payload } from './wire.ts';
import { RedisPair, requireRedisServer } from './redis-server.ts';
import {
  DISTURBED,
  crossingTable,
  formatValue,
  goalSummary,
  median,
  memoryTable,
  textFloorTable,
  summarize,
  svg,
  table,
  toJson,
  type Environment,
  type MetricResult,
  type RunRecord,
  type ScenarioResult,
} from './report.ts';
import { CROSS, makePlan, uwsNative, type MetricSpec, type Mode, type Plan, type Scenario } from './scenarios.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** How long a run waits for other processes to leave the two cores before it goes ahead anyway. */
const QUIET_WAIT_MS = 30_000;
/**
 * More TCP sockets in TIME_WAIT than this (left by other programs: the bench resets its connections) make
 * connect() search longer for a free port, which slows the handshake scenario down: such runs say so.
 */
const TIME_WAIT_NOTE = 10_000;

const { values: options } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string' },
    out: { type: 'string' },
    save: { type: 'boolean', default: false },
    lib: { type: 'string' },
    servers: { type: 'string' },
    render: { type: 'string' },
  },
});

/**
 * Where "ours" comes from: this repository's dist/, or with `--lib=DIR` another checkout's (its built dist/,
 * e.g. a git worktree of an older commit), to compare two versions with the same benchmark.
 */
const LIBRARY = options.lib ?? ROOT;

process.on('exit', () => {
  killChildren();
  unstage();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => process.exit(130));
}

// ─── one run ──────────────────────────────────────────────────────────────────────────────────────────────

/** Runs one server through one scenario once; a failure is recorded, not thrown. Both processes end with it. */
async function runOnce(scenario: Scenario, kind: ServerKind, round: number, placement: Placement): Promise<RunRecord> {
  const record = await runMeasured(scenario, kind, round, placement);
  const timeWait = socketsInTimeWait();
  if (timeWait !== undefined && timeWait > TIME_WAIT_NOTE) record.timeWait = timeWait;
  return record;
}

/** Starts the server of `kind`, one process or several (see processes.ts and redis-server.ts). */
function startServer(kind: ServerKind, placement: Placement): Promise<ServerUnderTest> {
  return kind === 'ours-redis' ? RedisPair.start(placement) : ServerProcess.start(kind, placement);
}

async function runMeasured(scenario: Scenario, kind: ServerKind, round: number, placement: Placement): Promise<RunRecord> {
  let server: ServerUnderTest | undefined;
  try {
    server = await startServer(kind, placement);
    const job = { ...scenario.job, port: server.port } as LoadJob;
    // A server of two processes: the broadcast's receivers are split over both (see load.ts).
    if (server.ports.length > 1) {
      if (job.kind !== 'broadcast' && job.kind !== 'publish' && job.kind !== 'broadcast-latency') throw new Error(`The ${kind} server runs broadcast and publish scenarios only.`);
      job.ports = [...server.ports];
    }
    const values = job.kind === 'idle' ? await measureMemory(server, job, placement) : await measureTraffic(server, job, placement);
    return { server: kind, round, ...values };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // What the server printed (why it exited, or what its adapter warned of: a broadcast dropped, Redis gone).
    const output = server !== undefined && server.output !== '' ? ` Server output: ${server.output}` : '';
    return { server: kind, round, values: {}, error: message + output };
  } finally {
    server?.kill();
  }
}

type Measured = Omit<RunRecord, 'server' | 'round'>;
type MemoryReply = Extract<Awaited<ReturnType<ServerUnderTest['request']>>, { type: 'memory' }>;

/**
 * Memory per idle connection: the server's memory after GC with no connection, with half and with all of them
 * open. The half-way snapshot goes to the JSON only: the slope between the two steps looked cleaner in theory,
 * but V8 grows its heap in steps that fall in one half or the other, so it scattered more than the issue's
 * measure (all of them, minus the baseline, divided by their number).
 */
async function measureMemory(server: ServerUnderTest, job: IdleJob, placement: Placement): Promise<Measured> {
  const base = await server.request('memory');
  let connected: ((count: number) => void) | undefined;
  const nextConnected = (): Promise<number> => new Promise((resolve) => (connected = resolve));
  let reported = nextConnected();
  const load = new LoadProcess(job, placement, (event) => {
    if (event.type === 'connected') connected?.(event.connections);
  }, 180_000);
  try {
    const failed = load.done.then(() => {
      throw new Error('The load generator stopped before its connections were open.');
    });
    failed.catch(() => {});
    const measureAt = async (): Promise<MemoryReply> => {
      const count = await Promise.race([reported, failed]);
      reported = nextConnected();
      // The server may still be finishing the last handshakes that the client has seen answered.
      for (let waited = 0; (await server.request('clients')).count < count; waited += 20) {
        if (waited > 20_000) throw new Error(`The ${server.kind} server did not count ${count} clients.`);
        await delay(20);
      }
      return server.request('memory');
    };
    const half = await measureAt();
    load.send({ type: 'more' });
    const full = await measureAt();
    load.send({ type: 'stop' });
    await load.done;
    const n = job.connections;
    return {
      values: { rss: (full.rss - base.rss) / n / 1000, heap: (full.heapUsed - base.heapUsed) / n / 1000 },
      memory: { base, half, full },
    };
  } finally {
    load.kill();
  }
}

/**
 * A timed job: its count over the measured window, with the CPU the server, the load generator and everything
 * else used meanwhile (the server's and the machine's read at the load generator's start and end events).
 */
async function measureTraffic(server: ServerUnderTest, job: Exclude<LoadJob, IdleJob>, placement: Placement): Promise<Measured> {
  const samples: Array<{ server: number | undefined; machine: number | undefined; at: number }> = [];
  const load = new LoadProcess(job, placement, (event) => {
    if (event.type === 'measure-start' || event.type === 'measure-end') {
      samples.push({ server: server.cpuSeconds(), machine: machineBusySeconds(), at: performance.now() });
    }
  }, job.warmupMs + job.measureMs + 90_000);
  try {
    const result = await load.done;
    const measured: Measured = { values: {}, loadCpu: result.cpu };
    const [start, end] = samples;
    if (start?.server !== undefined && end?.server !== undefined) {
      const seconds = (end.at - start.at) / 1000;
      measured.serverCpu = (end.server - start.server) / seconds;
      if (start.machine !== undefined && end.machine !== undefined) {
        measured.otherCpu = Math.max(0, (end.machine - start.machine) / seconds - measured.serverCpu - result.cpu);
      }
    }
    if (result.latency !== undefined) {
      measured.values = { p50: result.latency.p50 * 1000, p90: result.latency.p90 * 1000, p99: result.latency.p99 * 1000 };
      if (result.latencySameProcess !== undefined) {
        // Across two processes: the deliveries on the sender's own process, for the JSON.
        const same = result.latencySameProcess;
        Object.assign(measured.values, { p50SameProcess: same.p50 * 1000, p90SameProcess: same.p90 * 1000, p99SameProcess: same.p99 * 1000 });
      }
      if (job.kind === 'broadcast-latency') {
        const rate = result.count / (result.elapsedMs / 1000);
        measured.values['rate'] = rate;
        // A server that falls behind the schedule measures its queue, not its latency: said on the run's line.
        const due = job.rate * job.receivers;
        if (rate < 0.9 * due) measured.error = `${((rate / due) * 100).toFixed(0)}% of the deliveries due arrived: the server fell behind, the latency includes its queue`;
      }
      if (result.skipped) measured.error = `${result.skipped} messages could not be sent on schedule`;
      if (result.latency.samples === 0) throw new Error('No delivery was timed in the measured window.');
    } else {
      const rate = result.count / (result.elapsedMs / 1000);
      measured.values = { rate };
      // The server's CPU time per message (delivery, handshake): what it costs, whatever limited the rate.
      if (measured.serverCpu !== undefined && rate > 0) measured.values['cpu'] = (measured.serverCpu / rate) * 1e6;
    }
    return measured;
  } finally {
    load.kill();
  }
}

/**
 * `--save`: keeps this run as a report the READMEs may cite, in bench/reports/ under new names
 * (`<date>-<mode>-node<major>.json`, `.md`, `.svg`); never replaces a file (the benchmark writes nothing git
 * tracks: the reports are committed by hand). A run of some scenarios only (--only) is not a report.
 */
function saveReport(stamp: string, plan: Plan, json: string, summary: string, svgText: string): void {
  if (options.only !== undefined || plan.mode === 'smoke') throw new Error('--save keeps full and --quick runs only, not --only or --smoke.');
  const directory = join(ROOT, 'bench', 'reports');
  mkdirSync(directory, { recursive: true });
  const base = join(directory, `${stamp}-${plan.mode}-node${process.versions.node.split('.')[0]}`);
  writeFileSync(`${base}.json`, json, { flag: 'wx' });
  writeFileSync(`${base}.md`, summary, { flag: 'wx' });
  writeFileSync(`${base}.svg`, svgText, { flag: 'wx' });
  console.log(`Saved the report as ${base}.{json,md,svg}: commit them to cite them.`);
}

function waitForQuiet(): Promise<number> {
  return waitForQuietMachine(QUIET_WAIT_MS, (busy) =>
    console.log(`  (waiting up to ${QUIET_WAIT_MS / 1000} s for other processes to stop: they use ${(busy * 100).toFixed(0)}% of a core)`));
}

function describeRun(scenario: Scenario, run: RunRecord): string {
  if (Object.keys(run.values).length === 0) return `FAILED: ${run.error ?? 'no result'}`;
  const values = scenario.metrics
    .map((metric) => `${formatValue(run.values[metric.key] ?? NaN, metric.unit)} ${scenario.metrics.length > 1 ? `${metric.label} ` : ''}${metric.unit}`)
    .join(', ');
  const percent = (share: number): string => `${(share * 100).toFixed(0)}%`;
  const cpu = run.serverCpu === undefined ? '' : `   cpu: server ${percent(run.serverCpu)}, load ${percent(run.loadCpu ?? 0)}`;
  const other = (run.otherCpu ?? 0) > DISTURBED ? `, OTHER PROCESSES ${percent(run.otherCpu!)}` : '';
  const timeWait = run.timeWait === undefined ? '' : `, ${run.timeWait.toLocaleString('en-US')} sockets in TIME_WAIT`;
  return `${values}${cpu}${other}${timeWait}${run.error ? `   (${run.error})` : ''}`;
}

/**
 * For each text echo size of the plan, the CPU time of one UTF-8 decode (`Buffer#toString`) and one encode back
 * (`Buffer.from(string)`) of the load generator's text payload, in µs: the median of 5 batches of a bounded
 * number of iterations (about 64 MiB per batch), timed here in the orchestrator once the machine is quiet.
 */
function decodeEncodeCosts(plan: Plan): Map<number, number> {
  const costs = new Map<number, number>();
  for (const scenario of plan.scenarios) {
    const job = scenario.job;
    if (job.kind !== 'echo' || job.binary || costs.has(job.size)) continue;
    const bytes = payload(job.size, false);
    const iterations = Math.max(16, Math.min(100_000, Math.floor((64 * 1024 * 1024) / job.size)));
    const batches: number[] = [];
    let check = 0;
    for (let batch = 0; batch < 5; batch++) {
      const start = performance.now();
      for (let i = 0; i < iterations; i++) check += Buffer.from(bytes.toString('utf8')).length;
      batches.push(((performance.now() - start) * 1000) / iterations);
    }
    if (check !== 5 * iterations * job.size) throw new Error('The text payload did not survive a decode and encode.');
    costs.set(job.size, median(batches));
  }
  return costs;
}

/** The printed results: the tables, the goals and the notes (also the body of latest.md). */
function summaryLines(plan: Pick<Plan, 'mode' | 'rounds' | 'notes'>, env: Environment, results: ScenarioResult[], floorCosts: ReadonlyMap<number, number>, minutes: number | undefined): string[] {
  const report: string[] = [];
  const took = minutes === undefined ? '' : `, ${minutes.toFixed(1)} min`;
  report.push(`Results (${env.date.slice(0, 16).replace('T', ' ')} UTC, ${plan.mode}, ${plan.rounds} rounds${took}): the median per server,`);
  report.push('and ÷peer = ours ÷ peer, the median of the per-round ratios (min–max of every run: in the JSON).');
  report.push('uWS = uWebSockets.js; ws+bu = ws with bufferutil. Per second: higher is better; µs and KB: lower is better.');
  report.push('µs CPU = the server\'s CPU time per message, delivery or handshake. KB = 1,000 bytes.');
  report.push(`* = the load generator used > 90% of its core in some run; ! = other processes used > ${DISTURBED * 100}% of a core.\n`);
  const comparison = table(results);
  if (comparison !== '') report.push(comparison);
  const memory = memoryTable(results);
  if (memory !== '') report.push(`\nIdle memory per connection (node:net = a bare node:net server holding the sockets: the floor):\n${memory}`);
  const floor = textFloorTable(results, floorCosts);
  if (floor !== '') report.push(`\n${floor}`);
  const crossing = crossingTable(results);
  if (crossing !== '') {
    report.push('\nOurs across two processes (cluster IPC, Redis): the same receivers split evenly over two server processes (every');
    report.push('topic has subscribers on both), the sender on the first; all server processes (and redis-server) share the');
    report.push('server\'s core. ÷ 1 = two processes ÷ one, paired by round (per second: below 1 = crossing costs throughput; µs:');
    report.push('above 1 = crossing adds latency). Latency: at the receivers on the other process than the sender\'s. ws and');
    report.push('uWebSockets.js have no cross-process broadcast or publish: no peer number.\n');
    report.push(crossing);
  }
  const goals = goalSummary(results);
  if (goals !== '') report.push(`\nGoals:\n${goals}`);
  for (const note of plan.notes) report.push(wrap(`note: ${note}`, 120));
  return report;
}

/** `text` broken at spaces into lines of at most `width` characters (a longer word stays whole). */
function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  return [...lines, line].join('\n');
}

function summaryMarkdown(plan: Pick<Plan, 'mode'>, machine: string, report: readonly string[]): string {
  return `# \`npm run bench\`: a ${plan.mode} run\n\n${machine}\n\n\`\`\`\n${report.join('\n')}\n\`\`\`\n`;
}

/**
 * `--render=FILE.json`: prints the summary of a saved run (a dated JSON or a report in bench/reports/) in this
 * version's format, as latest.md would have it, to standard output. A JSON written before the decode and encode
 * costs were kept has them timed now, and says so.
 */
function render(file: string): void {
  const json = JSON.parse(readFileSync(file, 'utf8')) as SavedRun;
  const results: ScenarioResult[] = json.scenarios.map((saved) => {
    const scenario = makePlan(json.mode, json.placement.openFiles).scenarios.find((s) => s.id === saved.id)
      ?? { id: saved.id, title: saved.title, group: saved.group, servers: saved.servers, job: saved.job, metrics: [] } as Scenario;
    const metrics = saved.metrics.map((m) => ({ spec: { key: m.key, label: m.label, unit: m.unit, higherIsBetter: m.higherIsBetter }, servers: m.servers, ratios: m.ratios, crossing: m.crossing, goals: m.goals ?? [] }));
    return { scenario: { ...scenario, servers: saved.servers, metrics: metrics.map((m) => m.spec) }, runs: saved.runs, metrics };
  });
  const plan = { mode: json.mode, rounds: json.rounds, notes: [...json.notes], scenarios: results.map((r) => r.scenario) };
  let floorCosts = new Map(Object.entries(json.decodeEncodeUs ?? {}).map(([size, us]) => [Number(size), us]));
  if (json.decodeEncodeUs === undefined) {
    floorCosts = decodeEncodeCosts(plan);
    if (floorCosts.size > 0) plan.notes.push(`The decode and encode costs of the text floor were timed when this summary was rendered (${new Date().toISOString().slice(0, 10)}), not in the run.`);
  }
  const machine = `${json.machine.cpu}, ${json.machine.cores} cores, Node ${json.machine.node}; ws ${json.peers['ws']}, bufferutil ${json.peers['bufferutil']}, uWebSockets.js ${json.peers['uws']}; library ${json.library.commit}${json.library.dirty ? ' + uncommitted changes' : ''}`;
  process.stdout.write(summaryMarkdown(plan, machine, summaryLines(plan, json, results, floorCosts, json.minutes)));
}

/** A run as toJson (report.ts) and main wrote it. */
type SavedRun = Environment & {
  mode: Mode;
  rounds: number;
  notes: string[];
  minutes?: number;
  decodeEncodeUs?: Record<string, number>;
  scenarios: Array<Pick<Scenario, 'id' | 'title' | 'group' | 'servers' | 'job'> & { runs: RunRecord[]; metrics: Array<Omit<MetricResult, 'spec'> & MetricSpec> }>;
};

// ─── the whole benchmark ──────────────────────────────────────────────────────────────────────────────────

function environment(placement: Placement): Environment {
  const git = (...args: string[]): string => {
    try {
      return execFileSync('git', args, { cwd: LIBRARY, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  const version = (name: string): string => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'not installed';
    }
  };
  let distSha256 = '';
  try {
    distSha256 = createHash('sha256').update(readFileSync(join(LIBRARY, 'dist', 'websocket-server.js'))).digest('hex').slice(0, 16);
  } catch {
    distSha256 = 'missing';
  }
  const cpu = cpus();
  return {
    date: new Date().toISOString(),
    machine: {
      cpu: cpu[0]?.model.trim() ?? 'unknown',
      cores: cpu.length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      os: `${osType()} ${release()}`,
      node: process.version,
    },
    placement,
    library: { commit: git('rev-parse', '--short', 'HEAD'), dirty: git('status', '--porcelain', '--', 'websocket-server.ts') !== '', distSha256 },
    peers: { ws: version('ws'), bufferutil: version('bufferutil'), uws: version('@trufflesuite/uws-js-unofficial'), ...crossingPeers() },
  };
}

/** The versions of the peers: ws and bufferutil, and uWebSockets.js when the plan runs it. */
function peerVersions(plan: Plan, env: Environment): string {
  const uws = plan.scenarios.some((scenario) => scenario.servers.includes('uws'))
    ? `, uWebSockets.js ${env.peers['uws']} (binary for ABI ${process.versions.modules})`
    : '';
  return `ws ${env.peers['ws']}, bufferutil ${env.peers['bufferutil']}${uws}`;
}

/** The versions of what the two-process servers use, when the plan runs them (set by main's check). */
let redisServer: string | undefined;
function crossingPeers(): Record<string, string> {
  if (redisServer === undefined) return {};
  const client = ((): string => {
    try {
      return (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'redis', 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'not installed';
    }
  })();
  return { redis: client, 'redis-server': redisServer.replace(/^Redis server v=(\S+).*$/, '$1') };
}

function choosePlan(placement: Placement): Plan {
  const mode: Mode = options.smoke ? 'smoke' : options.quick ? 'quick' : 'full';
  const plan = makePlan(mode, placement.openFiles);
  if (options.only !== undefined) {
    const pattern = new RegExp(options.only);
    plan.scenarios = plan.scenarios.filter((scenario) => pattern.test(scenario.id));
    if (plan.scenarios.length === 0) throw new Error(`No scenario id matches --only=${options.only}; ids: ${makePlan(mode, placement.openFiles).scenarios.map((s) => s.id).join(', ')}.`);
  }
  if (options.servers !== undefined) {
    // Some servers only (ours always): e.g. --servers=uws to compare with uWebSockets.js alone.
    const wanted = new Set(['ours', ...options.servers.split(',')]);
    for (const scenario of plan.scenarios) scenario.servers = scenario.servers.filter((server) => wanted.has(server));
  }
  if (options.rounds !== undefined) {
    const rounds = Number.parseInt(options.rounds, 10);
    if (!(rounds >= 1 && rounds <= 20)) throw new RangeError(`--rounds must be a whole number from 1 to 20, not ${options.rounds}.`);
    plan.rounds = rounds;
  }
  if (plan.mode !== 'smoke' && !uwsNative()) {
    plan.notes.push(`uWebSockets.js has no binary for Node ${process.version} (ABI ${process.versions.modules}; its package has Node 16, 18 and 20): it is not in this run.`);
  }
  if (!placement.pinned) plan.notes.push('taskset is missing or there are fewer than 2 cores: the processes are not pinned.');
  if (plan.scenarios.some((scenario) => scenario.servers.some((server) => CROSS.includes(server)))) {
    plan.notes.push('ws has no cross-process broadcast: the two-process runs (ours ×2 over cluster IPC or Redis) are compared with ours in one process, not with ws.');
  }
  return plan;
}

async function main(): Promise<void> {
  const placement = detectPlacement();
  const plan = choosePlan(placement);
  // The Redis runs need a redis-server: without one, the benchmark fails here rather than skip them.
  if (plan.scenarios.some((scenario) => scenario.servers.includes('ours-redis'))) redisServer = requireRedisServer();
  stage(ROOT, LIBRARY);
  const env = environment(placement);
  const started = performance.now();
  console.log(`websocket-server benchmark, ${plan.mode} mode: ${plan.scenarios.length} scenarios × ${plan.rounds} rounds`);
  const redisVersions = redisServer === undefined ? '' : `; redis client ${env.peers['redis']}, redis-server ${env.peers['redis-server']}`;
  console.log(`${env.machine.cpu}, ${env.machine.cores} cores, Node ${env.machine.node}; ${peerVersions(plan, env)}${redisVersions}; library ${env.library.commit}${env.library.dirty ? ' + uncommitted changes' : ''}`);
  console.log(placement.pinned ? `server on core ${placement.serverCore}, load generator on core ${placement.loadCore}; open files ${placement.openFiles}` : 'processes not pinned (no taskset or one core)');
  for (const note of plan.notes) console.log(`note: ${note}`);

  const results: ScenarioResult[] = [];
  for (const [index, scenario] of plan.scenarios.entries()) {
    console.log(`\n[${index + 1}/${plan.scenarios.length}] ${scenario.title}`);
    if (plan.mode !== 'smoke') await waitForQuiet();
    const runs: RunRecord[] = [];
    for (let round = 1; round <= plan.rounds; round++) {
      // The order turns by one each round (A B C, B C A, C A B), so no server always follows the same one.
      const shift = (round - 1) % scenario.servers.length;
      const order = [...scenario.servers.slice(shift), ...scenario.servers.slice(0, shift)];
      for (const kind of order) {
        let run = await runOnce(scenario, kind, round, placement);
        console.log(`  round ${round}  ${kind.padEnd(13)}  ${describeRun(scenario, run)}`);
        if (plan.mode !== 'smoke' && (run.otherCpu ?? 0) > DISTURBED) {
          // Another process took CPU from the run: once it is quiet again, run it again (once).
          await waitForQuiet();
          run = await runOnce(scenario, kind, round, placement);
          console.log(`  round ${round}  ${kind.padEnd(13)}  ${describeRun(scenario, run)}   (run again)`);
        }
        runs.push(run);
      }
    }
    results.push(summarize(scenario, runs));
  }

  const minutes = (performance.now() - started) / 60_000;
  const floorCosts = decodeEncodeCosts(plan);
  const report = summaryLines(plan, env, results, floorCosts, minutes);
  console.log(`\n${report.join('\n')}`);

  // Only the summary (latest.md) and the plot (latest.svg) are committed; the dated JSON with every run stays local
  // (bench/results/ is in .gitignore but for those two).
  const outDir = options.out ?? join(ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const json = JSON.stringify({ ...(toJson(plan, env, results) as object), minutes, decodeEncodeUs: Object.fromEntries(floorCosts) }, null, 2) + '\n';
  const stamp = env.date.slice(0, 19).replace(/:/g, '-');
  // A run of some scenarios only (--only) does not replace latest.md and latest.svg.
  const partial = options.only !== undefined;
  const machine = `${env.machine.cpu}, ${env.machine.cores} cores, Node ${env.machine.node}; ${peerVersions(plan, env)}; library ${env.library.commit}${env.library.dirty ? ' + uncommitted changes' : ''}`;
  const summary = summaryMarkdown(plan, machine, report);
  const svgText = svg(env, plan, results);
  const dated = join(outDir, `${stamp}${plan.mode === 'full' ? '' : `-${plan.mode}`}${partial ? '-partial' : ''}.json`);
  writeFileSync(dated, json);
  if (!partial) {
    writeFileSync(join(outDir, 'latest.md'), summary);
    writeFileSync(join(outDir, 'latest.svg'), svgText);
  }
  console.log(`\nWrote ${dated}${partial ? '' : ', latest.md and latest.svg'}`);
  if (options.save) saveReport(stamp, plan, json, summary, svgText);
  const failed = results.flatMap((r) => r.runs).filter((run) => Object.keys(run.values).length === 0).length;
  if (failed > 0) {
    console.log(`${failed} run(s) failed; see above.`);
    process.exitCode = 1;
  }
}

(options.render === undefined ? main() : Promise.resolve(render(options.render))).catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack ?? error.message : error);
  killChildren();
  process.exit(1);
});
