// What the benchmark runs: the scenarios of each mode (full, --quick, --smoke), the metrics each one yields and
// the goals that apply to them: against ws (the Node standard) and against uWebSockets.js (the C++ speed bar).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ServerKind } from './protocol.ts';
import type { BroadcastJob, BroadcastLatencyJob, EchoJob, HandshakeJob, IdleJob, LatencyJob, PublishJob } from './protocol.ts';

export type Mode = 'full' | 'quick' | 'smoke';

/** A job as planned: the port is filled in per run. */
export type PlannedJob =
  | Omit<EchoJob, 'port'>
  | Omit<BroadcastJob, 'port'>
  | Omit<PublishJob, 'port'>
  | Omit<BroadcastLatencyJob, 'port'>
  | Omit<HandshakeJob, 'port'>
  | Omit<LatencyJob, 'port'>
  | Omit<IdleJob, 'port'>;

/**
 * A goal for one metric: the median of the paired ratios ours/peer must be at least `value` (a metric where
 * higher is better) or at most `value` (lower is better).
 */
export interface Goal {
  kind: 'ratio';
  label: string;
  peer: ServerKind;
  value: number;
}

export interface MetricSpec {
  key: string;
  label: string;
  unit: string;
  higherIsBetter: boolean;
  goals?: Goal[];
}

export interface Scenario {
  id: string;
  title: string;
  group: 'echo' | 'broadcast' | 'publish' | 'broadcast-latency' | 'handshakes' | 'memory' | 'latency';
  servers: ServerKind[];
  job: PlannedJob;
  metrics: MetricSpec[];
}

export interface Plan {
  mode: Mode;
  rounds: number;
  scenarios: Scenario[];
  /** Why the plan is smaller than asked for (e.g. the open-file limit), shown with the results. */
  notes: string[];
}

/**
 * Whether uWebSockets.js can run as itself on this Node: the package ships one C++ binary per Node ABI
 * (`uws_linux_x64_<ABI>.node`: Node 16, 18 and 20 for this version) and silently falls back to JavaScript
 * without one, which is not what the benchmark compares with (servers/uws.ts refuses it too).
 */
export function uwsNative(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const directory = join(dirname(dirname(require.resolve('@trufflesuite/uws-js-unofficial'))), 'dist');
    return existsSync(join(directory, `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`));
  } catch {
    return false;
  }
}

const UWS: ServerKind[] = uwsNative() ? ['uws'] : [];
const PEERS: ServerKind[] = ['ours', ...UWS, 'ws', 'ws-bufferutil'];
/**
 * The peers of the publish scenarios: uWebSockets.js with its own pub/sub (`ws.subscribe`, `app.publish`), and
 * `ws` with the room map a user writes (no pub/sub of its own). Plain `ws` only: bufferutil unmasks what the
 * server receives, here one small message per 10 to 5,000 deliveries.
 */
const PUBLISH_PEERS: ServerKind[] = ['ours', ...UWS, 'ws'];
/**
 * Our server as two processes sharing broadcasts (see protocol.ts): compared with `ours` in one process, they
 * give the cost of crossing. `ws` has no cross-process broadcast, so these have no peer.
 */
export const CROSS: readonly ServerKind[] = ['ours-cluster', 'ours-redis'];
const KiB = 1024;
const MiB = 1024 * KiB;

export function sizeLabel(bytes: number): string {
  if (bytes >= MiB) return `${bytes / MiB} MiB`;
  if (bytes >= KiB) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}

/**
 * Messages in flight per echo connection: enough that the server never waits for the client (256 to 1,024 in
 * all for small messages), at most ~512 KiB per connection (and at least 2) for large ones.
 */
function echoWindow(connections: number, size: number): number {
  const byConnections = connections === 1 ? 256 : connections <= 16 ? 32 : 4;
  return Math.min(byConnections, Math.max(2, Math.floor((512 * KiB) / size)));
}

/** The server's CPU time per message (or delivery, handshake), from its CPU time over the measured window. */
function cpuMetric(per: string): MetricSpec {
  return { key: 'cpu', label: 'server CPU', unit: `µs CPU/${per}`, higherIsBetter: false };
}

function echo(connections: number, size: number, binary: boolean, timing: Timing, servers = PEERS): Scenario {
  const small = size <= KiB;
  const goals: Goal[] = small
    ? [
      { kind: 'ratio', label: 'echo 32 B & 1 KiB ≥ 2× ws', peer: 'ws', value: 2 },
      { kind: 'ratio', label: 'echo 32 B & 1 KiB ≥ 1.0× uWS', peer: 'uws', value: 1 },
    ]
    : [
      { kind: 'ratio', label: 'echo 64 KiB & 1 MiB ≥ 1.0× ws+bufferutil', peer: 'ws-bufferutil', value: 1 },
      ...(binary ? [{ kind: 'ratio', label: 'echo 64 KiB & 1 MiB binary ≥ 0.7× uWS', peer: 'uws', value: 0.7 } as const] : []),
    ];
  const type = binary ? 'binary' : 'text';
  return {
    id: `echo-${type}-${size}B-${connections}c`,
    title: `echo ${type} ${sizeLabel(size)}, ${connections} conn`,
    group: 'echo',
    servers,
    job: { kind: 'echo', connections, size, binary, window: echoWindow(connections, size), ...timing },
    metrics: [{ key: 'rate', label: 'messages', unit: 'msg/s', higherIsBetter: true, goals }, cpuMetric('msg')],
  };
}

/** Broadcast window: at most ~64 MiB on the way to all receivers, 4–32 messages. */
function broadcast(receivers: number, size: number, timing: Timing, servers = PEERS): Scenario {
  const window = Math.max(4, Math.min(32, Math.floor((64 * MiB) / (receivers * size))));
  return {
    id: `broadcast-${size}B-${receivers}r`,
    title: `broadcast ${sizeLabel(size)} to ${receivers.toLocaleString('en-US')}`,
    group: 'broadcast',
    servers,
    job: { kind: 'broadcast', receivers, size, window, ...timing },
    metrics: [{
      key: 'rate', label: 'deliveries', unit: 'deliveries/s', higherIsBetter: true,
      goals: [
        { kind: 'ratio', label: 'broadcast ≥ 2× ws', peer: 'ws', value: 2 },
        { kind: 'ratio', label: 'broadcast ≥ 1.0× uWS', peer: 'uws', value: 1 },
      ],
    }, cpuMetric('deliv.')],
  };
}

/**
 * Publish: `topics` topics of `subscribers` subscribers each, the publishes spread evenly over the topics (see
 * PublishJob). The window: at least the broadcast's 32 messages, and for small topics as many as hold ~32,768
 * deliveries (the broadcast's 32 messages to 1,000 receivers; 3,277 messages of 10 deliveries), at most 4,096
 * messages and ~64 MiB on the way.
 */
function publish(topics: number, subscribers: number, size: number, timing: Timing, servers: ServerKind[]): Scenario {
  const byDeliveries = Math.max(32, Math.min(4096, Math.ceil(32_768 / subscribers)));
  const window = Math.max(4, Math.min(byDeliveries, Math.floor((64 * MiB) / (subscribers * size))));
  const shape = topics === 1 ? `1 topic × ${subscribers.toLocaleString('en-US')}` : `${topics.toLocaleString('en-US')} topics × ${subscribers.toLocaleString('en-US')}`;
  return {
    id: `publish-${size}B-${topics}x${subscribers}`,
    title: `publish ${sizeLabel(size)}, ${shape}`,
    group: 'publish',
    servers,
    job: { kind: 'publish', topics, subscribers, size, window, ...timing },
    metrics: [{ key: 'rate', label: 'deliveries', unit: 'deliveries/s', higherIsBetter: true }, cpuMetric('deliv.')],
  };
}

/**
 * Broadcast latency at a fixed rate well below every server's capacity, timed from the send to each delivery:
 * to the receivers on the other process than the sender's for the two-process servers, to all in one process.
 */
function broadcastLatency(receivers: number, size: number, rate: number, timing: Timing): Scenario {
  return {
    id: `broadcast-latency-${size}B-${receivers}r-${rate}`,
    title: `broadcast latency ${sizeLabel(size)} to ${receivers.toLocaleString('en-US')} at ${rate.toLocaleString('en-US')} msg/s`,
    group: 'broadcast-latency',
    servers: ['ours', ...CROSS],
    job: { kind: 'broadcast-latency', receivers, size, rate, ...timing },
    metrics: [
      { key: 'p50', label: 'p50', unit: 'µs', higherIsBetter: false },
      { key: 'p99', label: 'p99', unit: 'µs', higherIsBetter: false },
    ],
  };
}

function handshakes(inFlight: number, timing: Timing): Scenario {
  return {
    id: `handshakes-${inFlight}`,
    title: `handshakes, ${inFlight} in flight`,
    group: 'handshakes',
    servers: PEERS,
    job: { kind: 'handshake', inFlight, ...timing },
    metrics: [{
      key: 'rate', label: 'handshakes', unit: 'handshakes/s', higherIsBetter: true,
      goals: [
        { kind: 'ratio', label: 'handshakes ≥ 1.3× ws', peer: 'ws', value: 1.3 },
        { kind: 'ratio', label: 'handshakes ≥ 0.8× uWS', peer: 'uws', value: 0.8 },
      ],
    }, cpuMetric('hs')],
  };
}

function memory(connections: number): Scenario {
  const title = `idle memory, ${connections.toLocaleString('en-US')} conn`;
  return {
    id: `memory-${connections}`,
    title,
    group: 'memory',
    // bufferutil plays no part in an idle connection; the bare node:net server is the floor.
    servers: ['ours', ...UWS, 'ws', 'net'],
    job: { kind: 'idle', connections },
    metrics: [
      {
        key: 'rss', label: 'RSS per conn', unit: 'KB RSS/conn', higherIsBetter: false,
        goals: [{ kind: 'ratio', label: 'idle RSS per connection ≤ a bare node:net socket', peer: 'net', value: 1 }],
      },
      {
        key: 'heap', label: 'heap per conn', unit: 'KB heap/conn', higherIsBetter: false,
        goals: [{ kind: 'ratio', label: 'heap per idle connection below ws', peer: 'ws', value: 1 }],
      },
    ],
  };
}

function latency(connections: number, size: number, rate: number, timing: Timing): Scenario {
  return {
    id: `latency-${size}B-${rate}`,
    title: `latency ${sizeLabel(size)} at ${rate.toLocaleString('en-US')} msg/s, ${connections} conn`,
    group: 'latency',
    servers: PEERS,
    job: { kind: 'latency', connections, size, rate, ...timing },
    metrics: [
      {
        key: 'p50', label: 'p50', unit: 'µs', higherIsBetter: false,
        goals: [{ kind: 'ratio', label: 'latency p50 no worse than ws', peer: 'ws', value: 1 }],
      },
      { key: 'p90', label: 'p90', unit: 'µs', higherIsBetter: false },
      { key: 'p99', label: 'p99', unit: 'µs', higherIsBetter: false },
    ],
  };
}

interface Timing {
  warmupMs: number;
  measureMs: number;
}

/**
 * The plan of a mode. `openFiles` is the open-file limit each process gets: 10,000 idle connections need
 * more than 10,000 descriptors in the server and in the load generator.
 */
export function makePlan(mode: Mode, openFiles: number): Plan {
  const notes: string[] = [];
  const idleWanted = 10_000;
  const idle = Math.min(idleWanted, Math.max(100, openFiles - 256));
  if (idle < idleWanted) {
    notes.push(`The open-file limit is ${openFiles}: the memory scenario uses ${idle} connections instead of ${idleWanted}.`);
  }
  if (mode === 'smoke') {
    const timing = { warmupMs: 150, measureMs: 300 };
    return {
      mode,
      rounds: 1,
      notes,
      scenarios: [
        echo(4, KiB, true, timing, ['ours', 'ws']),
        broadcast(20, 32, timing, ['ours', 'ws']),
        publish(5, 4, 32, timing, ['ours', 'ws']),
      ],
    };
  }
  // 1,000 topics of 10 subscribers are 10,001 connections in the server and in the load generator.
  const topics = Math.max(10, Math.min(1_000, Math.floor((openFiles - 256) / 10)));
  if (topics < 1_000) notes.push(`The open-file limit is ${openFiles}: the publish scenarios have ${topics} topics of 10 instead of 1,000.`);
  if (mode === 'quick') {
    const timing = { warmupMs: 250, measureMs: 700 };
    return {
      mode,
      rounds: 2,
      notes,
      scenarios: [
        echo(16, 32, true, timing),
        echo(256, 32, true, timing),
        echo(16, KiB, false, timing),
        echo(16, 64 * KiB, true, timing),
        echo(16, 64 * KiB, false, timing),
        echo(1, MiB, true, timing),
        broadcast(1_000, 32, timing, [...PEERS, ...CROSS]),
        publish(topics, 10, 32, timing, [...PUBLISH_PEERS, ...CROSS]),
        publish(1, 5_000, 32, timing, [...PUBLISH_PEERS, ...CROSS]),
        broadcastLatency(10, 32, 500, timing),
        broadcastLatency(100, 32, 200, timing),
        handshakes(32, timing),
        latency(16, KiB, 20_000, timing),
        memory(idle),
      ],
    };
  }
  const timing = { warmupMs: 500, measureMs: 1_500 };
  const scenarios: Scenario[] = [];
  for (const connections of [1, 16, 256]) {
    for (const size of [32, KiB, 64 * KiB, MiB]) {
      if (connections === 256 && size > KiB) continue; // 256 × a window of large messages measures the kernel
      scenarios.push(echo(connections, size, true, timing));
    }
  }
  for (const size of [32, KiB, 64 * KiB, MiB]) scenarios.push(echo(16, size, false, timing));
  for (const size of [32, 4 * KiB]) {
    // Across two processes too at 100 and 1,000 receivers (5,000: in one process only).
    for (const receivers of [100, 1_000, 5_000]) scenarios.push(broadcast(receivers, size, timing, receivers <= 1_000 ? [...PEERS, ...CROSS] : PEERS));
  }
  // Many small topics and one large one; across two processes too (each topic has subscribers on both).
  for (const size of [32, KiB]) {
    scenarios.push(publish(topics, 10, size, timing, [...PUBLISH_PEERS, ...CROSS]), publish(1, 5_000, size, timing, [...PUBLISH_PEERS, ...CROSS]));
  }
  // The hop itself (a small fan-out), then with the fan-out of the broadcast scenarios' smaller size.
  scenarios.push(broadcastLatency(10, 32, 500, timing), broadcastLatency(100, 32, 200, timing));
  scenarios.push(handshakes(32, timing), latency(16, KiB, 20_000, timing), memory(idle));
  return { mode, rounds: 3, notes, scenarios };
}
