// The load generator: one process per run, pinned to its own core by the orchestrator, with its job as the
// first argument (JSON). It is built to cost as little CPU as possible, so that the server is what is measured:
// raw `node:net` sockets, frames built and masked once, one write per read (as many frames as came back), and
// a received stream checked by memcmp against the bytes expected (see wire.ts), never parsed.
// It reports over IPC (see protocol.ts) and ends by itself: every job has a time limit.
import { Buffer } from 'node:buffer';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type {
  BroadcastJob,
  BroadcastLatencyJob,
  EchoJob,
  HandshakeJob,
  IdleJob,
  LatencyJob,
  LatencySummary,
  LoadCommand,
  LoadEvent,
  LoadJob,
  LoadResult,
  PublishJob,
} from './protocol.ts';
import {
  ExpectedStream,
  FrameStreamChecker,
  clientFrame,
  handshakeRequest,
  parseHandshakeResponse,
  payload,
  repeat,
  serverFrame,
} from './wire.ts';

const HOST = '127.0.0.1';
/** Handshakes opened at once while setting up a run's connections. */
const OPENING_CONCURRENCY = 64;
/** Time a connection has to open; a run whose connections do not open fails. */
const OPEN_TIMEOUT_MS = 15_000;
/**
 * Time between the last subscriber's connection and the publisher's, on a server of several processes: enough
 * for the adapters' subscriptions to reach the other processes (well under a millisecond on an idle machine).
 */
const TOPICS_SETTLE_MS = 500;
/** Time an idle job holds its connections at most, waiting for the orchestrator's stop. */
const IDLE_LIMIT_MS = 120_000;

/** Every socket the run opened, reset when it ends (an RST leaves no TIME_WAIT behind for the next run). */
const sockets = new Set<Socket>();
/** False once the measured window is over: no more traffic is started. */
let running = true;

function report(event: LoadEvent): void {
  process.send?.(event);
}

/** Ends the run: the sockets are reset, the report is flushed, the process exits. */
function finish(event: LoadEvent, code: number): void {
  running = false;
  for (const socket of sockets) socket.resetAndDestroy();
  if (process.send === undefined) {
    console.log(JSON.stringify(event));
    process.exit(code);
  }
  process.send(event, () => process.exit(code));
}

function fail(error: unknown): void {
  if (!running) return;
  finish({ type: 'failed', error: error instanceof Error ? error.message : String(error) }, 1);
}

// ─── connections ──────────────────────────────────────────────────────────────────────────────────────────

/**
 * Every socket reads into this one buffer (`onread`): no allocation per read and no stream machinery, and the
 * bytes are checked before the callback returns, so sharing it is safe.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/** What a connection does with the bytes of its frame stream: `length` bytes at the start of `buffer`. */
type StreamHandler = (buffer: Buffer, length: number) => void;

function socketFailed(error: Error): void {
  fail(new Error(`A connection failed: ${error.message}`));
}

function socketClosed(): void {
  fail(new Error('The server closed a connection during the run.'));
}

/**
 * Opens one connection: TCP, then the opening handshake, checked. Once it is open, every byte after the 101
 * response goes to the handler that `handlerFor(socket)` returns.
 */
function openWebSocket(port: number, path: string, handlerFor: (socket: Socket) => StreamHandler): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let head: Buffer = Buffer.alloc(0);
    let handler: StreamHandler | undefined;
    const socket = connect({
      port,
      host: HOST,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback(length: number, buffer: Buffer): boolean {
          if (handler !== undefined) {
            handler(buffer, length);
            return true;
          }
          head = Buffer.concat([head, buffer.subarray(0, length)]);
          let rest: Buffer | undefined;
          try {
            rest = parseHandshakeResponse(head);
          } catch (error) {
            done(error as Error);
            return false;
          }
          if (rest !== undefined) {
            done(undefined);
            handler = handlerFor(socket);
            if (rest.length > 0) handler(Buffer.from(rest), rest.length);
          }
          return true;
        },
      },
    });
    sockets.add(socket);
    socket.write(handshakeRequest(port, path));
    const timer = setTimeout(() => done(new Error(`No handshake response within ${OPEN_TIMEOUT_MS} ms.`)), OPEN_TIMEOUT_MS);
    function done(error: Error | undefined): void {
      clearTimeout(timer);
      socket.off('error', done);
      if (error !== undefined) {
        reject(error);
        return;
      }
      socket.on('error', socketFailed);
      socket.on('close', socketClosed);
      resolve(socket);
    }
    socket.on('error', done);
  });
}

/**
 * Opens `count` connections to `path` (or to `path(i)` for connection i), a few dozen handshakes at a time. `port`
 * may be a list (a server of several processes): connection i goes to `port[i % port.length]`.
 */
async function openMany(
  port: number | readonly number[],
  path: string | ((index: number) => string),
  count: number,
  handlerFor: (socket: Socket, index: number) => StreamHandler,
): Promise<Socket[]> {
  const ports = typeof port === 'number' ? [port] : port;
  const pathOf = typeof path === 'string' ? () => path : path;
  const opened: Socket[] = new Array<Socket>(count);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) {
      const index = next++;
      opened[index] = await openWebSocket(ports[index % ports.length]!, pathOf(index), (socket) => handlerFor(socket, index));
    }
  }
  await Promise.all(Array.from({ length: Math.min(OPENING_CONCURRENCY, count) }, worker));
  return opened;
}

// ─── the measured window ──────────────────────────────────────────────────────────────────────────────────

/** Warm-up, then the measured window: `count` read at both ends, with this process's CPU time in between. */
async function measure(job: { warmupMs: number; measureMs: number }, count: () => number): Promise<LoadResult> {
  await delay(job.warmupMs);
  const startCount = count();
  const startTime = performance.now();
  const startCpu = process.cpuUsage();
  report({ type: 'measure-start' });
  await delay(job.measureMs);
  const endCount = count();
  const elapsedMs = performance.now() - startTime;
  const cpu = process.cpuUsage(startCpu);
  report({ type: 'measure-end' });
  return { count: endCount - startCount, elapsedMs, cpu: (cpu.user + cpu.system) / 1000 / elapsedMs };
}

// ─── the jobs ─────────────────────────────────────────────────────────────────────────────────────────────

/** Echo: every connection keeps `window` messages in flight and sends as many as came back, in one write. */
async function echo(job: EchoJob): Promise<LoadResult> {
  const data = payload(job.size, job.binary);
  const frameLength = clientFrame(data, job.binary).length;
  const batch = repeat(clientFrame(data, job.binary), job.window);
  const expected = new ExpectedStream(serverFrame(data, job.binary));
  let received = 0;
  const connections = await openMany(job.port, '/echo', job.connections, (socket) => {
    const checker = new FrameStreamChecker(expected);
    return (buffer, length) => {
      const frames = checker.feed(buffer, length);
      if (frames === 0) return;
      received += frames;
      if (running) socket.write(frames === job.window ? batch : batch.subarray(0, frames * frameLength));
    };
  });
  for (const socket of connections) socket.write(batch);
  return measure(job, () => received);
}

/**
 * Broadcast and publish. Broadcast: R receivers and then one sender at /sender, which keeps at most `window`
 * messages that have not yet reached every receiver, and tops the window up in one write once half of it has been
 * delivered. Counted: deliveries at the receivers (the sender's own copies are checked, not counted). On a server
 * of two processes (`job.ports`), the receivers alternate between them and the sender is on the first: half of the
 * receivers get each message only after it has crossed to the other process, and the window waits for them too.
 *
 * Publish: the same with T topics of S subscribers each. Receiver i subscribes to topic t = ⌊i / S⌋ (its path
 * says which), and the server publishes the sender's message k to topic k mod T: so the k-th frame receiver i
 * gets is message k·T + t, and a message is complete once its S subscribers have it. The sender subscribes to
 * nothing: a byte sent to it fails the run. Broadcast is the case T = 1, S = R.
 */
async function fanOut(job: BroadcastJob | PublishJob): Promise<LoadResult> {
  const publish = job.kind === 'publish';
  const topics = publish ? job.topics : 1;
  const perTopic = publish ? job.subscribers : job.receivers;
  const data = payload(job.size, true);
  const frame = clientFrame(data, true);
  const batch = repeat(frame, job.window);
  const expected = new ExpectedStream(serverFrame(data, true));
  // acks[m % window] counts the receivers that have message m; `completed` messages have reached all of theirs.
  const acks = new Int32Array(job.window);
  let sent = 0;
  let completed = 0;
  let delivered = 0;
  let sender: Socket | undefined;
  function topUp(): void {
    const outstanding = sent - completed;
    if (!running || sender === undefined || outstanding > job.window / 2) return;
    const frames = job.window - outstanding;
    sender.write(frames === job.window ? batch : batch.subarray(0, frames * frame.length));
    sent += frames;
  }
  const ports = job.ports ?? [job.port];
  await openMany(ports, publish ? (index) => `/topic/${Math.floor(index / perTopic)}` : '/', topics * perTopic, (_socket, index) => {
    const checker = new FrameStreamChecker(expected);
    const topic = Math.floor(index / perTopic);
    let message = topic; // the message this receiver gets next: topic, topic + T, topic + 2T, …
    return (buffer, length) => {
      const frames = checker.feed(buffer, length);
      if (frames === 0) return;
      delivered += frames;
      for (let i = 0; i < frames; i++, message += topics) {
        if (message >= sent) throw new Error(`Receiver ${index} got message ${message + 1} before it was sent.`);
        acks[message % job.window]! += 1;
      }
      while (completed < sent && acks[completed % job.window] === perTopic) acks[completed++ % job.window] = 0;
      topUp();
    };
  });
  // Across processes, each server tells the others of its topics as its first subscriber to each joins (the
  // adapter's subscribe: a message to the cluster's primary, a SUBSCRIBE to Redis), and no adapter says when that
  // is in effect: a publish that overtook it would be lost. Give the last of them time to land.
  if (publish && ports.length > 1) await delay(TOPICS_SETTLE_MS);
  [sender] = await openMany(ports[0]!, publish ? `/publish/${topics}` : '/sender', 1, () => {
    if (publish) {
      return () => {
        throw new Error('The server sent the publisher a message: it subscribes to no topic.');
      };
    }
    const ownCopies = new FrameStreamChecker(expected);
    return (buffer, length) => void ownCopies.feed(buffer, length);
  });
  topUp();
  const result = await measure(job, () => delivered);
  // A message lost on its way (a subscriber left out) would stop the window for good: say so rather than measure 0.
  if (result.count === 0) {
    throw new Error(
      `No delivery in the measured window: message ${completed + 1} (topic ${completed % topics}) reached ` +
        `${acks[completed % job.window]} of its ${perTopic} receivers, with ${sent} sent and ${delivered} delivered in all.`,
    );
  }
  return result;
}

/**
 * Broadcast latency: one sender at /sender sends a message every 1/rate seconds, on schedule (a setImmediate
 * loop on this process's own core, as in `latency`), whatever has arrived; every delivery is timed from the
 * send of its message. All messages are the same bytes, and each connection delivers a sender's messages in
 * order, so the k-th frame a receiver gets is message k: its send time is kept in a ring by k. Receivers are
 * split over `job.ports` as in `broadcast`; the deliveries to the receivers on another process than the sender's
 * make `latency` (all of them with one process), those on the sender's own `latencySameProcess`.
 */
async function broadcastLatency(job: BroadcastLatencyJob): Promise<LoadResult> {
  const data = payload(job.size, true);
  const frame = clientFrame(data, true);
  const expected = new ExpectedStream(serverFrame(data, true));
  const ports = job.ports ?? [job.port];
  const crossing = ports.length > 1;
  // Send times of the last RING messages; a receiver more than RING messages behind fails the run.
  const RING = 1 << 16;
  const sentAt = new Float64Array(RING);
  let sent = 0;
  const capacity = Math.min(8_000_000, Math.ceil(((job.rate * job.receivers * (job.measureMs + 500)) / 1000) * 1.2));
  const other = { samples: new Float64Array(capacity), count: 0 };
  const same = { samples: new Float64Array(crossing ? capacity : 0), count: 0 };
  let recording = false;
  let delivered = 0;

  await openMany(ports, '/', job.receivers, (_socket, index) => {
    const checker = new FrameStreamChecker(expected);
    const into = !crossing || index % ports.length !== 0 ? other : same;
    let count = 0;
    return (buffer, length) => {
      const frames = checker.feed(buffer, length);
      if (frames === 0) return;
      const now = performance.now();
      delivered += frames;
      for (let i = 0; i < frames; i++, count++) {
        if (count >= sent) throw new Error(`Receiver ${index} got message ${count + 1} before it was sent.`);
        if (sent - count > RING) throw new Error(`Receiver ${index} fell more than ${RING} messages behind the sender.`);
        if (recording && into.count < into.samples.length) into.samples[into.count++] = now - sentAt[count & (RING - 1)]!;
      }
    };
  });
  const [sender] = await openMany(ports[0]!, '/sender', 1, () => {
    const ownCopies = new FrameStreamChecker(expected);
    return (buffer, length) => void ownCopies.feed(buffer, length);
  });

  const start = performance.now();
  function tick(): void {
    if (!running) return;
    const now = performance.now();
    const due = Math.floor(((now - start) * job.rate) / 1000);
    for (; sent < due; sent++) {
      sentAt[sent & (RING - 1)] = now;
      sender!.write(frame);
    }
    setImmediate(tick);
  }
  setImmediate(tick);

  await delay(job.warmupMs);
  recording = true;
  const result = await measure({ warmupMs: 0, measureMs: job.measureMs }, () => delivered);
  recording = false;
  const summary: LoadResult = { ...result, latency: percentiles(other.samples, other.count) };
  if (crossing) summary.latencySameProcess = percentiles(same.samples, same.count);
  return summary;
}

/** p50, p90 and p99 of the first `count` samples (sorted in place). */
function percentiles(samples: Float64Array, count: number): LatencySummary {
  const sorted = samples.subarray(0, count).sort();
  const at = (q: number): number => sorted[Math.min(count - 1, Math.floor(q * count))] ?? NaN;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), samples: count };
}

/** Handshakes: `inFlight` at a time; each connection is reset once its 101 has arrived, and another one opened. */
async function handshakes(job: HandshakeJob): Promise<LoadResult> {
  const request = handshakeRequest(job.port, '/');
  let accepted = 0;
  function open(): void {
    let head: Buffer = Buffer.alloc(0);
    // No setNoDelay here: the request is one write, which Nagle never holds back, and a syscall saved per
    // connection is CPU the load generator (at the limit of one core in this scenario) can use.
    const socket = connect({
      port: job.port,
      host: HOST,
      onread: {
        buffer: READ_BUFFER,
        callback(length: number, buffer: Buffer): boolean {
          head = head.length === 0 ? buffer.subarray(0, length) : Buffer.concat([head, buffer.subarray(0, length)]);
          try {
            if (parseHandshakeResponse(head) === undefined) {
              head = Buffer.from(head); // the shared read buffer is overwritten by the next read
              return true;
            }
          } catch (error) {
            fail(error);
            return false;
          }
          accepted++;
          sockets.delete(socket);
          socket.resetAndDestroy();
          if (running) open();
          return false;
        },
      },
    });
    sockets.add(socket);
    socket.write(request);
    socket.on('error', (error) => {
      if (sockets.has(socket)) socketFailed(error);
    });
  }
  for (let i = 0; i < job.inFlight; i++) open();
  return measure(job, () => accepted);
}

/**
 * Latency: one message every 1/rate seconds, round-robin over the connections, sent on schedule by a loop of
 * setImmediate (this process has its core to itself); each echo's round trip is timed from its send.
 */
async function latency(job: LatencyJob): Promise<LoadResult> {
  const data = payload(job.size, true);
  const frame = clientFrame(data, true);
  const expected = new ExpectedStream(serverFrame(data, true));
  const RING = 1024;
  const sentAt = Array.from({ length: job.connections }, () => new Float64Array(RING));
  const heads = new Uint32Array(job.connections);
  const tails = new Uint32Array(job.connections);
  const samples = new Float64Array(Math.ceil(((job.rate * (job.measureMs + 1000)) / 1000) * 1.2));
  let sampleCount = 0;
  let recording = false;
  let skipped = 0;
  let echoed = 0;

  const connections = await openMany(job.port, '/echo', job.connections, (_socket, index) => {
    const checker = new FrameStreamChecker(expected);
    const times = sentAt[index]!;
    return (buffer, length) => {
      const frames = checker.feed(buffer, length);
      if (frames === 0) return;
      const now = performance.now();
      echoed += frames;
      for (let i = 0; i < frames; i++) {
        const roundTrip = now - times[tails[index]! % RING]!;
        tails[index]! += 1;
        if (recording && sampleCount < samples.length) samples[sampleCount++] = roundTrip;
      }
    };
  });

  const start = performance.now();
  let sent = 0;
  function tick(): void {
    if (!running) return;
    const now = performance.now();
    const due = Math.floor(((now - start) * job.rate) / 1000);
    for (; sent < due; sent++) {
      const index = sent % connections.length;
      if (heads[index]! - tails[index]! >= RING) {
        skipped++;
        continue;
      }
      sentAt[index]![heads[index]! % RING] = now;
      heads[index]! += 1;
      connections[index]!.write(frame);
    }
    setImmediate(tick);
  }
  setImmediate(tick);

  await delay(job.warmupMs);
  recording = true;
  const result = await measure({ warmupMs: 0, measureMs: job.measureMs }, () => echoed);
  recording = false;
  return { ...result, latency: percentiles(samples, sampleCount), skipped };
}

/**
 * Idle: opens half the connections and says so, waits for 'more', opens the other half and says so, then holds
 * them all without traffic until the orchestrator says stop (which measures the server at each step).
 */
async function idle(job: IdleJob): Promise<LoadResult> {
  const commands: LoadCommand['type'][] = [];
  let wake: (() => void) | undefined;
  process.on('message', (command: LoadCommand) => {
    commands.push(command.type);
    wake?.();
  });
  async function command(): Promise<LoadCommand['type']> {
    const limit = setTimeout(() => fail(new Error(`No word from the orchestrator within ${IDLE_LIMIT_MS} ms.`)), IDLE_LIMIT_MS);
    while (commands.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    clearTimeout(limit);
    return commands.shift()!;
  }
  const half = Math.floor(job.connections / 2);
  const first = await openMany(job.port, '/', half, () => () => {});
  report({ type: 'connected', connections: first.length });
  if ((await command()) !== 'more') return { count: first.length, elapsedMs: 0, cpu: 0 };
  const second = await openMany(job.port, '/', job.connections - half, () => () => {});
  report({ type: 'connected', connections: first.length + second.length });
  await command();
  return { count: first.length + second.length, elapsedMs: 0, cpu: 0 };
}

// ─── main ─────────────────────────────────────────────────────────────────────────────────────────────────

async function main(job: LoadJob): Promise<LoadResult> {
  switch (job.kind) {
    case 'echo':
      return echo(job);
    case 'broadcast':
    case 'publish':
      return fanOut(job);
    case 'broadcast-latency':
      return broadcastLatency(job);
    case 'handshake':
      return handshakes(job);
    case 'latency':
      return latency(job);
    case 'idle':
      return idle(job);
  }
}

process.on('uncaughtException', fail);
process.on('disconnect', () => process.exit(1));
const job = JSON.parse(process.argv[2] ?? 'null') as LoadJob | null;
if (job === null) {
  console.error('usage: node build/bench/load.js JOB_JSON (started by bench/run.js)');
  process.exit(2);
}
// The hard limit of a timed job: warm-up and window plus a generous allowance for opening its connections.
const limitMs = 'measureMs' in job ? job.warmupMs + job.measureMs + 60_000 : IDLE_LIMIT_MS + 60_000;
setTimeout(() => fail(new Error(`The load run did not end within ${limitMs} ms.`)), limitMs).unref();
main(job).then(
  (result) => {
    running = false;
    finish({ type: 'result', result }, 0);
  },
  fail,
);
