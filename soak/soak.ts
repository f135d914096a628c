// Soak: one server on 127.0.0.1 under a churn of `ws` clients (opening, chatting, closing or dropping, up to N at
// once) with an echo and a periodic broadcast, sampling throughput, memory, open descriptors and the client list.
// At the end every client is closed and the growth is checked against stated bounds.
//
//   npm run soak -- --minutes 10 --connections 1000
//
// Exits 1 if a bound was broken. Runs with a forced GC before the final sample when it can (it enables
// `--expose-gc` at run time if the process was not started with it).
import { Buffer } from 'node:buffer';
import { readdirSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { WebsocketServer } from '../websocket-server.ts';
import type { Logger } from '../websocket-server.ts';

/** What a soak run is asked to do. */
export interface SoakOptions {
  /** How long the churn runs, in seconds. */
  seconds: number;
  /** Most clients connected at once. */
  connections: number;
  /** Where progress lines go (one per sample); default none. */
  log?: (line: string) => void;
  /** Time between samples; default 5 s, or less for short runs (at least 5 samples). */
  sampleEveryMs?: number;
}

/** One measurement. */
export interface SoakSample {
  /** Milliseconds since the churn started. */
  at: number;
  /** Messages per second received and sent by the server since the previous sample. */
  messagesInPerSecond: number;
  messagesOutPerSecond: number;
  rss: number;
  heapUsed: number;
  /** Open file descriptors of this process (`/proc/self/fd`), or -1 where that cannot be counted. */
  fds: number;
  clients: number;
}

/** The bounds a run must stay within. */
export const SOAK_BOUNDS = {
  /** Heap at the end (after GC, all clients gone) at most this much above the first sample after warm-up. */
  heapGrowthBytes: 10 * 1024 * 1024,
  /** Open descriptors at the end within this many of the count before any client connected. */
  fdSlack: 20,
} as const;

/** What a soak run found. */
export interface SoakResult {
  samples: SoakSample[];
  /** The sample the heap is compared with (the first after warm-up). */
  warm: SoakSample;
  /** After every client was closed and (if possible) a GC. */
  final: SoakSample;
  /** Descriptors before the first client connected. */
  baselineFds: number;
  opened: number;
  closed: number;
  echoesReceived: number;
  broadcastsReceived: number;
  serverErrors: number;
  /** Bounds that were broken, as sentences; empty when the run passed. */
  failures: string[];
  withinBounds: boolean;
}

const QUIET: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const MIB = 1024 * 1024;

function countFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

/** A garbage collection, if one can be forced. */
function forcedGc(): (() => void) | undefined {
  const global = globalThis as { gc?: () => void };
  if (typeof global.gc === 'function') return global.gc;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every 20 ms for at most `ms`; says whether it came true. */
async function eventually(condition: () => boolean, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 20) {
    if (condition()) return true;
    await sleep(20);
  }
  return condition();
}

/**
 * Runs the soak and reports samples and whether growth stayed within {@link SOAK_BOUNDS}.
 *
 * @example
 * ```ts
 * const result = await runSoak({ seconds: 8, connections: 300, log: console.log });
 * assert.ok(result.withinBounds, result.failures.join(' '));
 * ```
 */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const { seconds, connections } = options;
  const log = options.log ?? ((): void => undefined);
  const durationMs = Math.max(1, seconds) * 1000;
  const sampleEveryMs = options.sampleEveryMs ?? Math.min(5_000, Math.max(250, Math.floor(durationMs / 5)));
  const warmupMs = Math.min(30_000, durationMs * 0.3);

  const server = new WebsocketServer({ host: '127.0.0.1', port: 0, logger: QUIET, closeTimeout: 2_000 });
  let serverErrors = 0;
  server.setFnMessageReceived((client, self, message) => {
    self.sendMessage(client, message);
  });
  server.setFnError(() => {
    serverErrors++;
  });
  await server.runForever();
  const url = `ws://127.0.0.1:${server.port}/`;
  const baselineFds = countFds();

  const live = new Set<WebSocket>();
  const deadlines = new Map<WebSocket, number>();
  let connecting = 0;
  let opened = 0;
  let closed = 0;
  let echoesReceived = 0;
  let broadcastsReceived = 0;
  let sequence = 0;
  let stopping = false;

  const open = (): void => {
    connecting++;
    const ws = new WebSocket(url);
    ws.on('error', () => undefined); // a dropped or refused client is part of the churn
    ws.once('open', () => {
      connecting--;
      opened++;
      live.add(ws);
      // Lifetimes of 0.2–3 s keep the churn going throughout.
      deadlines.set(ws, Date.now() + 200 + Math.floor(Math.random() * 2_800));
    });
    ws.on('message', (data: Buffer) => {
      if (data.length > 0 && data[0] === 0x62 /* 'b' */) broadcastsReceived++;
      else echoesReceived++;
    });
    ws.once('close', () => {
      if (live.delete(ws)) closed++;
      else connecting--;
      deadlines.delete(ws);
    });
  };

  const churn = setInterval(() => {
    if (stopping) return;
    const now = Date.now();
    for (const [ws, deadline] of deadlines) {
      if (deadline > now) continue;
      deadlines.delete(ws);
      // Mostly a close handshake; one in four drops the TCP connection.
      if (Math.random() < 0.25) ws.terminate();
      else ws.close(1000, 'done');
    }
    // At most 100 opens per tick, so that the listen backlog never overflows.
    for (let i = 0; i < 100 && live.size + connecting < connections; i++) open();
  }, 50);
  const chatter = setInterval(() => {
    for (const ws of live) {
      if (ws.readyState === WebSocket.OPEN) ws.send(`m${sequence++}:${'x'.repeat(sequence % 200)}`);
    }
  }, 100);
  const broadcast = setInterval(() => server.sendMessageToAll(`b${sequence}`), 500);

  const samples: SoakSample[] = [];
  const started = Date.now();
  let last = { at: started, in: 0, out: 0 };
  const sample = (): SoakSample => {
    const now = Date.now();
    const stats = server.stats;
    const seconds = Math.max(0.001, (now - last.at) / 1000);
    const memory = process.memoryUsage();
    const taken: SoakSample = {
      at: now - started,
      messagesInPerSecond: Math.round((stats.messagesIn - last.in) / seconds),
      messagesOutPerSecond: Math.round((stats.messagesOut - last.out) / seconds),
      rss: memory.rss,
      heapUsed: memory.heapUsed,
      fds: countFds(),
      clients: server.clients.length,
    };
    last = { at: now, in: stats.messagesIn, out: stats.messagesOut };
    return taken;
  };
  const describe = (s: SoakSample): string =>
    `${(s.at / 1000).toFixed(1).padStart(7)} s  in ${String(s.messagesInPerSecond).padStart(6)}/s  ` +
    `out ${String(s.messagesOutPerSecond).padStart(6)}/s  rss ${(s.rss / MIB).toFixed(1)} MiB  ` +
    `heap ${(s.heapUsed / MIB).toFixed(1)} MiB  fds ${s.fds}  clients ${s.clients}`;

  log(`soak: ${seconds} s, up to ${connections} connections, ${url}, sampling every ${sampleEveryMs} ms`);
  try {
    while (Date.now() - started < durationMs) {
      await sleep(Math.min(sampleEveryMs, durationMs - (Date.now() - started)));
      const taken = sample();
      samples.push(taken);
      log(describe(taken));
    }
  } finally {
    stopping = true;
    clearInterval(churn);
    clearInterval(chatter);
    clearInterval(broadcast);
  }

  // Close everyone: most with a close handshake, and wait (bounded) for the last connections in progress.
  await eventually(() => connecting === 0, 5_000);
  for (const ws of [...live]) ws.close(1000, 'soak over');
  const emptied = await eventually(() => server.clients.length === 0 && live.size === 0, 10_000);
  for (const ws of [...live]) ws.terminate();
  await eventually(() => countFds() <= baselineFds + SOAK_BOUNDS.fdSlack, 2_000);
  const gc = forcedGc();
  if (gc) {
    gc();
    await sleep(50);
    gc();
  }
  const final = sample();
  log(`final (${gc ? 'after GC' : 'no GC available'}): ${describe(final)}`);

  const warm = samples.find((s) => s.at >= warmupMs) ?? samples.at(-1) ?? final;
  const failures: string[] = [];
  if (!emptied || final.clients !== 0) {
    failures.push(`server.clients has ${final.clients} entries after every client closed, not 0.`);
  }
  if (final.heapUsed > warm.heapUsed + SOAK_BOUNDS.heapGrowthBytes) {
    failures.push(
      `The heap grew from ${(warm.heapUsed / MIB).toFixed(1)} MiB after warm-up to ${(final.heapUsed / MIB).toFixed(1)} MiB, ` +
        `more than ${SOAK_BOUNDS.heapGrowthBytes / MIB} MiB.`,
    );
  }
  if (baselineFds >= 0 && Math.abs(final.fds - baselineFds) > SOAK_BOUNDS.fdSlack) {
    failures.push(`Open descriptors went from ${baselineFds} to ${final.fds}, more than ±${SOAK_BOUNDS.fdSlack}.`);
  }
  if (opened === 0 || echoesReceived === 0 || broadcastsReceived === 0) {
    failures.push(`No traffic flowed (${opened} opened, ${echoesReceived} echoes, ${broadcastsReceived} broadcasts).`);
  }
  await server.shutdownAbruptly();
  log(
    `opened ${opened}, closed ${closed}, echoes ${echoesReceived}, broadcasts ${broadcastsReceived}, ` +
      `server errors ${serverErrors}: ${failures.length === 0 ? 'within bounds' : failures.join(' ')}`,
  );
  return {
    samples,
    warm,
    final,
    baselineFds,
    opened,
    closed,
    echoesReceived,
    broadcastsReceived,
    serverErrors,
    failures,
    withinBounds: failures.length === 0,
  };
}

/** Reads `--name value` (or `--name=value`) as a positive number. */
function numberArgument(args: string[], name: string, fallback: number): number {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = arg === `--${name}` ? args[i + 1] : arg.startsWith(`--${name}=`) ? arg.slice(name.length + 3) : undefined;
    if (value === undefined) continue;
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new RangeError(`Cannot use --${name} ${value}: it must be a positive number.`);
    return parsed;
  }
  return fallback;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const minutes = numberArgument(args, 'minutes', 1);
  const seconds = numberArgument(args, 'seconds', minutes * 60);
  const connections = Math.floor(numberArgument(args, 'connections', 500));
  const result = await runSoak({ seconds, connections, log: (line) => console.log(line) });
  process.exitCode = result.withinBounds ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
