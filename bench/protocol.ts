// The messages the benchmark's processes exchange over Node's IPC channel: the orchestrator (run.ts) with the
// server processes (servers/*.ts) and with the load generator (load.ts). Types only, shared by all three.

/**
 * The servers under test. `net` is a bare `node:net` server, the reference for memory per connection. `uws` is
 * uWebSockets.js (its C++ binary, never its JavaScript fallback: the server refuses to start on the fallback).
 * `ours-cluster` and `ours-redis` are our server as two processes that share broadcasts: two workers of
 * `node:cluster` (`ClusterAdapter`, the primary relaying with `relayClusterBroadcasts`), or two independent
 * processes joined by a redis-server of the run's own (`RedisAdapter`). Each of their processes serves one port.
 */
export type ServerKind = 'ours' | 'uws' | 'ws' | 'ws-bufferutil' | 'net' | 'ours-cluster' | 'ours-redis';

/** What a load generator is asked to do in one run. Every job ends by itself (see `limitMs`). */
export type LoadJob =
  | EchoJob
  | BroadcastJob
  | PublishJob
  | BroadcastLatencyJob
  | HandshakeJob
  | LatencyJob
  | IdleJob;

interface TimedJob {
  port: number;
  /** Traffic before measuring starts, so both sides are warm (JIT, buffers). */
  warmupMs: number;
  /** The measured window. */
  measureMs: number;
}

/** N connections, each keeping `window` messages in flight, every one echoed back and checked byte for byte. */
export interface EchoJob extends TimedJob {
  kind: 'echo';
  connections: number;
  size: number;
  binary: boolean;
  window: number;
}

/**
 * One sender at path /sender and `receivers` connections; at most `window` messages not yet at every receiver.
 * With `ports` (a server of two processes), receiver i connects to `ports[i % ports.length]` and the sender to
 * `ports[0]`; without, all connect to `port`.
 */
export interface BroadcastJob extends TimedJob {
  kind: 'broadcast';
  receivers: number;
  size: number;
  window: number;
  ports?: number[];
}

/**
 * Publish to topics: `topics` × `subscribers` receivers, receiver i subscribed to topic ⌊i / subscribers⌋ by its
 * path, `/topic/<n>` (the topic's name is n); one sender at `/publish/<topics>`, each of whose messages the server
 * publishes to the next topic in turn (message k to topic k mod `topics`), so that the publishes are spread
 * evenly and every server does the same bookkeeping. At most `window` messages not yet at all their topic's
 * subscribers. With `ports` (a server of two processes), receiver i connects to `ports[i % ports.length]` and the
 * sender to `ports[0]`: every topic has subscribers on both processes (with an even number of subscribers each).
 */
export interface PublishJob extends TimedJob {
  kind: 'publish';
  topics: number;
  subscribers: number;
  size: number;
  window: number;
  ports?: number[];
}

/**
 * Broadcast at a fixed rate well below capacity: the sender sends one message every 1/rate seconds (on
 * schedule, not waiting for deliveries), and each delivery is timed from that send. Receivers and `ports` as
 * in {@link BroadcastJob}; the latency is reported for the receivers on the other process than the sender's
 * (all receivers when there is one process), and separately for those on the sender's own process.
 */
export interface BroadcastLatencyJob extends TimedJob {
  kind: 'broadcast-latency';
  receivers: number;
  size: number;
  rate: number;
  ports?: number[];
}

/** Opening handshakes, `inFlight` at a time; each connection is reset as soon as its 101 has arrived. */
export interface HandshakeJob extends TimedJob {
  kind: 'handshake';
  inFlight: number;
}

/** Echo at a fixed total rate spread over the connections; every message's round trip is timed. */
export interface LatencyJob extends TimedJob {
  kind: 'latency';
  connections: number;
  size: number;
  rate: number;
}

/**
 * Opens `connections` connections in two halves, reporting after each (and waiting for 'more' after the first),
 * and holds them idle until told to stop.
 */
export interface IdleJob {
  kind: 'idle';
  port: number;
  connections: number;
}

/** Load generator → orchestrator. */
export type LoadEvent =
  | { type: 'connected'; connections: number }
  | { type: 'measure-start' }
  | { type: 'measure-end' }
  | { type: 'result'; result: LoadResult }
  | { type: 'failed'; error: string };

/** What one load run measured, from the load generator's own clock. */
export interface LoadResult {
  /** Events counted in the measured window: messages echoed, deliveries, handshakes. */
  count: number;
  elapsedMs: number;
  /** CPU time of the load generator in the window, as a share of one core (1 = saturated). */
  cpu: number;
  latency?: LatencySummary;
  /** Broadcast latency runs across two processes: the same for the receivers on the sender's own process. */
  latencySameProcess?: LatencySummary;
  /** Messages the fixed-rate sender could not send because too many were outstanding (latency runs). */
  skipped?: number;
}

/** Percentiles of timed events, in milliseconds. */
export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  samples: number;
}

/** Orchestrator → load generator. */
export type LoadCommand = { type: 'more' } | { type: 'stop' };

/**
 * Orchestrator → server: a request, answered with a {@link ServerReply} carrying the same id. (The server's CPU
 * time is read from /proc, not asked: a server in the middle of a long broadcast answers late.)
 */
export type ServerRequest =
  | { id: number; type: 'memory' }
  | { id: number; type: 'clients' };

/** Server → orchestrator. */
export type ServerMessage =
  | { type: 'ready'; port: number; kind: ServerKind; native: NativeInfo; group?: ServerGroupInfo }
  | ServerReply;

/**
 * A server of several processes (`ours-cluster`'s primary reports its workers): the port each serves, in
 * order, and the pids of the processes other than the one reporting, whose CPU time counts as the server's.
 */
export interface ServerGroupInfo {
  ports: number[];
  pids: number[];
}

export type ServerReply =
  | { id: number; type: 'memory'; rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number }
  | { id: number; type: 'clients'; count: number; errors: number };

/**
 * How the server unmasks: ws's `bufferutil` addon or a JavaScript loop; reported so the run can check it. `uws`:
 * the file name of the uWebSockets.js binary that the `uws` server loaded (e.g. `uws_linux_x64_115.node`).
 */
export interface NativeInfo {
  bufferutil: boolean;
  uws?: string;
}
