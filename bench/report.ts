// Turning runs into results: medians with min–max per server, the median of the paired ratios ours/peer per
// round, the goals, and the three outputs: a text table, JSON, and an SVG plot of the ratios
// (hand-written SVG, no dependency).
import type { ServerKind } from './protocol.ts';
import { CROSS, type Goal, type MetricSpec, type Plan, type Scenario } from './scenarios.ts';

/** One run: one server, one round of one scenario. */
export interface RunRecord {
  server: ServerKind;
  round: number;
  /** By metric key (see {@link MetricSpec}); empty when the run failed. */
  values: Record<string, number>;
  /** CPU time of the server process in the measured window, as a share of one core. */
  serverCpu?: number;
  /** The same for the load generator: near 1, the client may be what limits the run. */
  loadCpu?: number;
  /** CPU used meanwhile by other processes of the machine, in cores: more than a little disturbs the run. */
  otherCpu?: number;
  /** TCP sockets in TIME_WAIT on the machine after the run, when there were many (see run.ts). */
  timeWait?: number;
  /** Memory runs: the server's process.memoryUsage() after GC, idle, with half and with all connections open. */
  memory?: Record<'base' | 'half' | 'full', object>;
  error?: string;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export interface GoalResult {
  label: string;
  /** What is compared with the goal: the median paired ratio. */
  actual: number;
  target: string;
  met: boolean;
}

export interface MetricResult {
  spec: MetricSpec;
  servers: Partial<Record<ServerKind, Spread>>;
  /** Ours ÷ peer, per round where both runs succeeded, and their median. */
  ratios: Partial<Record<ServerKind, { median: number; perRound: number[] }>>;
  /**
   * The two-process servers (`ours-cluster`, `ours-redis`) ÷ `ours` in one process, per round where both runs
   * succeeded, and their median: what crossing processes costs (below 1 for a rate: fewer deliveries per second
   * on the same core; above 1 for a latency: slower).
   */
  crossing: Partial<Record<ServerKind, { median: number; perRound: number[] }>>;
  goals: GoalResult[];
}

export interface ScenarioResult {
  scenario: Scenario;
  runs: RunRecord[];
  metrics: MetricResult[];
}

export interface Environment {
  date: string;
  machine: { cpu: string; cores: number; memoryGiB: number; os: string; node: string };
  placement: { pinned: boolean; serverCore: number; loadCore: number; openFiles: number };
  library: { commit: string; dirty: boolean; distSha256: string };
  peers: Record<string, string>;
}

export const SERVER_ORDER: readonly ServerKind[] = ['ours', 'uws', 'ws', 'ws-bufferutil', 'net', 'ours-cluster', 'ours-redis'];
const PEER_NAMES: Record<ServerKind, string> = {
  ours: 'ours',
  uws: 'uWS',
  ws: 'ws',
  'ws-bufferutil': 'ws+bufferutil',
  net: 'node:net',
  'ours-cluster': 'ours ×2, cluster',
  'ours-redis': 'ours ×2, Redis',
};
const RATIO_PEERS: readonly ServerKind[] = ['uws', 'ws', 'ws-bufferutil', 'net'];
/** Other processes using more than this share of a core during a run mark it as disturbed. */
export const DISTURBED = 0.15;

// ─── statistics ───────────────────────────────────────────────────────────────────────────────────────────

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

function spread(values: readonly number[]): Spread | undefined {
  if (values.length === 0) return undefined;
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), runs: values.length };
}

function valueOf(run: RunRecord | undefined, key: string): number | undefined {
  const value = run?.values[key];
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}

export function summarize(scenario: Scenario, runs: RunRecord[]): ScenarioResult {
  const metrics = scenario.metrics.map((spec): MetricResult => {
    const servers: MetricResult['servers'] = {};
    const ratios: MetricResult['ratios'] = {};
    for (const server of scenario.servers) {
      const values = runs.filter((run) => run.server === server).map((run) => valueOf(run, spec.key)).filter((v) => v !== undefined);
      const summary = spread(values);
      if (summary !== undefined) servers[server] = summary;
    }
    for (const peer of RATIO_PEERS) {
      if (!scenario.servers.includes(peer)) continue;
      const perRound: number[] = [];
      for (const run of runs.filter((r) => r.server === 'ours')) {
        const ours = valueOf(run, spec.key);
        const theirs = valueOf(runs.find((r) => r.server === peer && r.round === run.round), spec.key);
        if (ours !== undefined && theirs !== undefined && theirs > 0) perRound.push(ours / theirs);
      }
      if (perRound.length > 0) ratios[peer] = { median: median(perRound), perRound };
    }
    const crossing: MetricResult['crossing'] = {};
    for (const kind of CROSS) {
      if (!scenario.servers.includes(kind)) continue;
      const perRound: number[] = [];
      for (const run of runs.filter((r) => r.server === kind)) {
        const across = valueOf(run, spec.key);
        const single = valueOf(runs.find((r) => r.server === 'ours' && r.round === run.round), spec.key);
        if (across !== undefined && single !== undefined && single > 0) perRound.push(across / single);
      }
      if (perRound.length > 0) crossing[kind] = { median: median(perRound), perRound };
    }
    const result: MetricResult = { spec, servers, ratios, crossing, goals: [] };
    for (const goal of spec.goals ?? []) {
      const evaluated = evaluate(spec, goal, result);
      if (evaluated !== undefined) result.goals.push(evaluated);
    }
    return result;
  });
  return { scenario, runs, metrics };
}

function evaluate(spec: MetricSpec, goal: Goal, result: MetricResult): GoalResult | undefined {
  const ratio = result.ratios[goal.peer]?.median;
  if (ratio === undefined) return undefined;
  const peer = PEER_NAMES[goal.peer];
  return spec.higherIsBetter
    ? { label: goal.label, actual: ratio, target: `≥ ${goal.value}× ${peer}`, met: ratio >= goal.value }
    : { label: goal.label, actual: ratio, target: `≤ ${goal.value}× ${peer}`, met: ratio <= goal.value };
}

// ─── formatting ───────────────────────────────────────────────────────────────────────────────────────────

export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return '—';
  if (unit.startsWith('KB')) return value.toFixed(2);
  if (unit.startsWith('µs')) return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(2)}k`;
  return value.toFixed(0);
}

export function formatRatio(ratio: number | undefined): string {
  return ratio === undefined ? '' : `${ratio.toFixed(2)}×`;
}

/** Pads the cells of `rows` into aligned columns (the first `left` columns flush left, the rest flush right). */
function columns(rows: string[][], left: number): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, [...cell].length)));
  return rows
    .map((row) => row.map((cell, i) => {
      const pad = ' '.repeat(widths[i]! - [...cell].length);
      return i < left ? cell + pad : pad + cell;
    }).join('  ').trimEnd())
    .join('\n');
}

/** The servers of the main table that appear in the results, in its order (the two-process ones have their own). */
function serversIn(results: readonly ScenarioResult[]): ServerKind[] {
  return SERVER_ORDER.filter((server) => !CROSS.includes(server) && results.some((r) => inMainTable(r.scenario) && r.scenario.servers.includes(server)));
}

/** Whether a scenario has a row in the main table: it compares ours with some other server in one process. */
function inMainTable(scenario: Scenario): boolean {
  return scenario.servers.some((server) => server !== 'ours' && !CROSS.includes(server));
}

/** ' *' when the load generator used more than 90% of its core in one of `runs`, ' !' when others took CPU. */
function markers(scenario: Scenario, runs: readonly RunRecord[]): string {
  const clientBound = scenario.group !== 'latency' && scenario.group !== 'broadcast-latency' && runs.some((run) => (run.loadCpu ?? 0) > 0.9);
  const disturbed = runs.some((run) => (run.otherCpu ?? 0) > DISTURBED);
  return `${clientBound ? ' *' : ''}${disturbed ? ' !' : ''}`;
}

/** Short column names, so that every table fits 120 columns. */
const SHORT_NAMES: Record<ServerKind, string> = { ...PEER_NAMES, 'ws-bufferutil': 'ws+bu' };

/**
 * The results table: one row per metric; our median and each peer's, then the median of the paired ratios
 * ours ÷ peer (min–max per server are in the JSON). Memory has a table of its own ({@link memoryTable}). Empty
 * when no scenario compares ours with another server (every one ran ours alone, or only with the two-process
 * ones).
 */
export function table(results: readonly ScenarioResult[]): string {
  const shown = results.filter((r) => inMainTable(r.scenario) && r.scenario.group !== 'memory');
  const servers = serversIn(shown).filter((server) => server !== 'net');
  return comparison(shown, servers, 'scenario');
}

/** Idle memory per connection: ours, the peers, and a bare node:net socket (the floor). */
export function memoryTable(results: readonly ScenarioResult[]): string {
  const shown = results.filter((r) => r.scenario.group === 'memory');
  return comparison(shown, serversIn(shown), 'idle connections');
}

/**
 * The unit column: the unit, named by the metric where a scenario has several of the same unit (latency's p50,
 * p90, p99); the CPU and memory units name themselves.
 */
function unitLabel(scenario: Scenario, metric: MetricResult): string {
  const sameUnit = scenario.metrics.filter((m) => m.unit === metric.spec.unit).length > 1;
  return sameUnit ? `${metric.spec.label} ${metric.spec.unit}` : metric.spec.unit;
}

function comparison(results: readonly ScenarioResult[], servers: readonly ServerKind[], title: string): string {
  const peers = RATIO_PEERS.filter((peer) => servers.includes(peer));
  const header = [title, 'unit', ...servers.map((s) => SHORT_NAMES[s]), ...peers.map((p) => `÷${SHORT_NAMES[p]}`)];
  const rows = [header];
  for (const { scenario, metrics, runs: allRuns } of results) {
    const runs = allRuns.filter((run) => !CROSS.includes(run.server));
    for (const metric of metrics) {
      const first = metric === metrics[0];
      rows.push([
        first ? scenario.title + markers(scenario, runs) : '',
        unitLabel(scenario, metric),
        ...servers.map((s) => (scenario.servers.includes(s) ? formatValue(metric.servers[s]?.median ?? NaN, metric.spec.unit) : '')),
        ...peers.map((p) => formatRatio(metric.ratios[p]?.median)),
      ]);
    }
  }
  return rows.length === 1 ? '' : columns(rows, 2);
}

/**
 * The table of broadcast across two processes, for the scenarios that ran the two-process servers: ours in one
 * process, then ours as two processes (cluster IPC, Redis) with their paired ratios to one process. `ws` has no
 * cross-process broadcast: its column says so instead of a number. Empty when no scenario ran them.
 */
export function crossingTable(results: readonly ScenarioResult[]): string {
  const crossing = results.filter((r) => r.scenario.servers.some((server) => CROSS.includes(server)));
  if (crossing.length === 0) return '';
  const kinds = CROSS.filter((kind) => crossing.some((r) => r.scenario.servers.includes(kind)));
  const label: Partial<Record<ServerKind, string>> = { 'ours-cluster': 'cluster', 'ours-redis': 'Redis' };
  const header = ['scenario', 'unit', '1 process', ...kinds.map((kind) => label[kind]!), ...kinds.map((kind) => `${label[kind]} ÷ 1`)];
  const rows = [header];
  for (const { scenario, metrics, runs: allRuns } of crossing) {
    const runs = allRuns.filter((run) => run.server === 'ours' || CROSS.includes(run.server));
    for (const metric of metrics) {
      const first = metric === metrics[0];
      rows.push([
        first ? scenario.title + markers(scenario, runs) : '',
        unitLabel(scenario, metric),
        formatValue(metric.servers.ours?.median ?? NaN, metric.spec.unit),
        ...kinds.map((kind) => (scenario.servers.includes(kind) ? formatValue(metric.servers[kind]?.median ?? NaN, metric.spec.unit) : '')),
        ...kinds.map((kind) => formatRatio(metric.crossing[kind]?.median)),
      ]);
    }
  }
  return columns(rows, 2);
}

/** Every goal that the plan touched, with each of its rows. */
export function goalSummary(results: readonly ScenarioResult[]): string {
  const byGoal = new Map<string, Array<{ title: string; goal: GoalResult }>>();
  for (const { scenario, metrics } of results) {
    for (const metric of metrics) {
      for (const goal of metric.goals) {
        const list = byGoal.get(goal.label) ?? [];
        list.push({ title: scenario.title, goal });
        byGoal.set(goal.label, list);
      }
    }
  }
  const lines: string[] = [];
  for (const [label, list] of byGoal) {
    const met = list.filter((item) => item.goal.met).length;
    lines.push(`${label}: ${met}/${list.length} met`);
    for (const { title, goal } of list) {
      lines.push(`  ${goal.met ? 'met    ' : 'NOT met'}  ${title}: ${formatRatio(goal.actual)} (goal ${goal.target})`);
    }
  }
  return lines.join('\n');
}

// ─── JSON ─────────────────────────────────────────────────────────────────────────────────────────────────

export function toJson(plan: Plan, environment: Environment, results: readonly ScenarioResult[]): unknown {
  return {
    version: 1,
    ...environment,
    mode: plan.mode,
    rounds: plan.rounds,
    notes: plan.notes,
    scenarios: results.map(({ scenario, runs, metrics }) => ({
      id: scenario.id,
      title: scenario.title,
      group: scenario.group,
      servers: scenario.servers,
      job: scenario.job,
      runs,
      metrics: metrics.map((metric) => ({
        key: metric.spec.key,
        label: metric.spec.label,
        unit: metric.spec.unit,
        higherIsBetter: metric.spec.higherIsBetter,
        servers: metric.servers,
        ratios: metric.ratios,
        crossing: metric.crossing,
        goals: metric.goals,
      })),
    })),
  };
}

// ─── SVG ──────────────────────────────────────────────────────────────────────────────────────────────────

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/**
 * A bar chart of how many times better ours is than each peer, per row of the table, on a log scale: the
 * paired ratio ours/peer where higher is better (throughput), its inverse where lower is better (latency,
 * memory), so a bar right of 1× is always ours ahead. Goal markers where a goal is a ratio.
 */
export function svg(environment: Environment, plan: Plan, results: readonly ScenarioResult[]): string {
  const rows: Array<{ label: string; bars: Array<{ peer: ServerKind; advantage: number }>; goals: number[] }> = [];
  for (const { scenario, metrics } of results) {
    // The CPU rows say the same as the throughput rows from the server's side: the table has them.
    for (const metric of metrics.filter((m) => m.spec.key !== 'cpu')) {
      const bars = RATIO_PEERS.flatMap((peer) => {
        const ratio = metric.ratios[peer]?.median;
        if (ratio === undefined || ratio <= 0) return [];
        return [{ peer, advantage: metric.spec.higherIsBetter ? ratio : 1 / ratio }];
      });
      if (bars.length === 0) continue;
      const label = metrics.filter((m) => m.spec.key !== 'cpu').length > 1 ? `${scenario.title} — ${metric.spec.label}` : scenario.title;
      const goals = (metric.spec.goals ?? []).map((goal) => (metric.spec.higherIsBetter ? goal.value : 1 / goal.value));
      rows.push({ label, bars, goals });
    }
  }
  const colors: Partial<Record<ServerKind, string>> = { uws: '#59a14f', ws: '#4e79a7', 'ws-bufferutil': '#f28e2b' };
  const labelWidth = 330;
  const plotWidth = 520;
  const rowHeight = 26;
  const top = 64;
  const height = top + rows.length * rowHeight + 50;
  const width = labelWidth + plotWidth + 40;
  // log2 scale from 1/4× to 8×; bars are clipped at the edges.
  const low = -2;
  const high = 3;
  const x = (advantage: number): number =>
    labelWidth + ((Math.min(high, Math.max(low, Math.log2(advantage))) - low) / (high - low)) * plotWidth;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  const title = rows.some((row) => row.bars.some((bar) => bar.peer === 'uws')) ? 'websocket-server vs ws and uWebSockets.js' : 'websocket-server vs ws';
  out.push(`<text x="10" y="20" font-size="15" font-weight="bold">${title}: how many times better ours is (median of paired ratios)</text>`);
  out.push(`<text x="10" y="38" fill="#555">${escapeXml(`${environment.date.slice(0, 10)} · ${plan.mode} run, ${plan.rounds} rounds · ${environment.machine.cpu}, ${environment.machine.cores} cores · Node ${environment.machine.node} · right of 1× = ours ahead; latency and memory inverted`)}</text>`);
  for (const tick of [0.25, 0.5, 1, 2, 4, 8]) {
    const tx = x(tick);
    out.push(`<line x1="${tx.toFixed(1)}" y1="${top - 8}" x2="${tx.toFixed(1)}" y2="${top + rows.length * rowHeight}" stroke="${tick === 1 ? '#000' : '#ddd'}" stroke-width="${tick === 1 ? 1.5 : 1}"/>`);
    out.push(`<text x="${tx.toFixed(1)}" y="${top + rows.length * rowHeight + 16}" text-anchor="middle">${tick}×</text>`);
  }
  rows.forEach((row, index) => {
    const y = top + index * rowHeight;
    out.push(`<text x="${labelWidth - 8}" y="${y + 16}" text-anchor="end">${escapeXml(row.label)}</text>`);
    const barHeight = (rowHeight - 8) / row.bars.length;
    row.bars.forEach((bar, i) => {
      const from = x(1);
      const to = x(bar.advantage);
      const by = y + 3 + i * barHeight;
      out.push(`<rect x="${Math.min(from, to).toFixed(1)}" y="${by.toFixed(1)}" width="${Math.max(1, Math.abs(to - from)).toFixed(1)}" height="${(barHeight - 1).toFixed(1)}" fill="${colors[bar.peer]}"><title>${escapeXml(`${row.label} vs ${PEER_NAMES[bar.peer]}: ${bar.advantage.toFixed(2)}×`)}</title></rect>`);
      out.push(`<text x="${(Math.max(from, to) + 4).toFixed(1)}" y="${(by + barHeight - 2).toFixed(1)}" font-size="9" fill="#333">${bar.advantage.toFixed(2)}</text>`);
    });
    for (const goal of row.goals) {
      const gx = x(goal);
      out.push(`<line x1="${gx.toFixed(1)}" y1="${y + 1}" x2="${gx.toFixed(1)}" y2="${y + rowHeight - 3}" stroke="#c00" stroke-width="2" stroke-dasharray="3,2"/>`);
    }
  });
  const legendY = height - 14;
  out.push(`<rect x="${labelWidth}" y="${legendY - 9}" width="10" height="10" fill="${colors.ws}"/><text x="${labelWidth + 14}" y="${legendY}">vs ws</text>`);
  out.push(`<rect x="${labelWidth + 80}" y="${legendY - 9}" width="10" height="10" fill="${colors['ws-bufferutil']}"/><text x="${labelWidth + 94}" y="${legendY}">vs ws+bufferutil</text>`);
  out.push(`<line x1="${labelWidth + 220}" y1="${legendY - 9}" x2="${labelWidth + 220}" y2="${legendY + 1}" stroke="#c00" stroke-width="2" stroke-dasharray="3,2"/><text x="${labelWidth + 226}" y="${legendY}">goal</text>`);
  out.push(`<rect x="${labelWidth + 340}" y="${legendY - 9}" width="10" height="10" fill="${colors.uws}"/><text x="${labelWidth + 354}" y="${legendY}">vs uWebSockets.js</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

// ─── the floor of text echo ───────────────────────────────────────────────────────────────────────────────

/** How far our text echo may be from its floor (see {@link textFloorTable}). */
export const TEXT_FLOOR_GOAL = 1.2;

/**
 * Text echo against its floor. The API hands the application a JavaScript string, which no server can do for
 * less than a binary echo of the same bytes plus one UTF-8 decode (`Buffer#toString`) and, to send a string back,
 * one encode (`Buffer.from(string)`): `decodeEncodeUs` maps a message size to that decode and encode, timed on the
 * bench's own text payload in this run. The floor is our binary echo's server CPU per message (same size and
 * connections, same run) plus that; the goal is our text echo within {@link TEXT_FLOOR_GOAL}× of it. Rows only
 * where the run has both the text and the binary scenario.
 */
export function textFloorTable(results: readonly ScenarioResult[], decodeEncodeUs: ReadonlyMap<number, number>): string {
  const header = ['text echo', 'ours text', 'ours binary', 'decode+encode', 'floor', 'text ÷ floor', `goal ≤ ${TEXT_FLOOR_GOAL}×`];
  const rows = [header];
  const cpuOf = (result: ScenarioResult | undefined): number | undefined =>
    result?.metrics.find((m) => m.spec.key === 'cpu')?.servers.ours?.median;
  for (const result of results) {
    const job = result.scenario.job;
    if (job.kind !== 'echo' || job.binary) continue;
    const twin = results.find((r) => r.scenario.job.kind === 'echo' && r.scenario.job.binary
      && r.scenario.job.size === job.size && r.scenario.job.connections === job.connections);
    const text = cpuOf(result);
    const binary = cpuOf(twin);
    const convert = decodeEncodeUs.get(job.size);
    if (text === undefined || binary === undefined || convert === undefined) continue;
    const floor = binary + convert;
    const ratio = text / floor;
    rows.push([
      result.scenario.title,
      `${formatValue(text, 'µs')} µs`,
      `${formatValue(binary, 'µs')} µs`,
      `${formatValue(convert, 'µs')} µs`,
      `${formatValue(floor, 'µs')} µs`,
      formatRatio(ratio),
      ratio <= TEXT_FLOOR_GOAL ? 'met' : 'NOT met',
    ]);
  }
  if (rows.length === 1) return '';
  return 'Text echo against its floor: server CPU per message; floor = our binary echo of the same size + one\n'
    + 'Buffer#toString and one Buffer.from(string) of the payload (timed on the machine of the run):\n' + columns(rows, 1);
}
