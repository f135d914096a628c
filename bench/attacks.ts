// Attacks on a server at its default options (except where an attack says), each reproduced against a fresh
// server process and reported as one line of numbers.
//
//   node build/bench/attacks.js [--lib=PATH] [--only=NAME,...] [--connections=N] [--clients=K] [--out=FILE]
//
// --lib is the built websocket-server.js to attack (default: the one built next to this script by
// `tsc -p tsconfig.dev.json`, build/websocket-server.js), so the same script can attack an older build.
// Every client is in this process and connects to 127.0.0.1 only; the server runs in its own process
// (`node --expose-gc`, pinned to core 0 when `taskset` exists). Every attack is bounded in time (each ends
// within about 30 s) and stops early, killing the server, if the server's RSS passes 3 GiB.
//
// Attacks (--only takes their names, comma-separated):
//   ping-flood      masked empty Pings as fast as possible for 8 s from a client that never reads
//   tls-slowloris   1,000 TCP sockets to a wss:// port (handshakeTimeout 3000) that send nothing
//   deflate-flood   1 MiB messages, compressed to ~1 KiB each, as fast as possible for 8 s (perMessageDeflate)
//   bfinal          RFC 7692 §7.2.3.4's "Hello" in a DEFLATE block with BFINAL set, then three normal messages
//   echo-16mib      a 16 MiB text message echoed with sendMessage, from a `ws` client
//   fragments       a 4 MiB message in 65,536 fragments of 64 bytes
//   utf8-failfast   a 64 KiB text frame starting with 0xff, sent in 3 writes 500 ms apart: time to the Close
//   header-memory   memory per idle connection whose request had a 15,000-byte header (bench/memory.ts)
//   graceful        1,500 deflate clients, 40 broadcasts of ~2 KiB then shutdownGracefully() at once
//   refused-503     maxConnections 10, 10 clients, then 200 handshakes that are refused and never closed
//   client-removal  K clients (default 19,000) disconnect at once: time until server.clients is empty
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createDeflateRaw, constants as zlibConstants, inflateRawSync, type DeflateRaw } from 'node:zlib';
import WebSocket from 'ws';
import {
  clientFrame,
  compressibleText,
  deflateMessage,
  FrameReader,
  handshakeRequest,
  inParallel,
  kb,
  loadLibrary,
  makeCertificate,
  measureMemory,
  now,
  openRaw,
  parseArgs,
  rssOf,
  startServerProcess,
  type ServerFrame,
  type ServerProcess,
} from './memory.ts';

const MiB = 1024 * 1024;
const RSS_LIMIT = 3 * 1024 * MiB;
const SCRIPT = fileURLToPath(import.meta.url);

// ─── The server process ──────────────────────────────────────────────────────────────────────────────────

/** How the server process is set up: options added to the defaults, and what it does with a message. */
interface ServerSetup {
  options?: Record<string, unknown>;
  /** `echo`: sendMessage back to the sender; `count`: only counted. */
  handler: 'echo' | 'count';
  tls?: boolean;
}

/** The text of broadcast `i` of the graceful-shutdown attack (~2 KiB, each different). */
function broadcastText(i: number): string {
  return compressibleText(2000 + i, 100 + i);
}

async function attackServer(lib: string | undefined): Promise<void> {
  if (process.send === undefined) throw new Error('attacks.js --child runs under attacks.js only.');
  process.on('disconnect', () => process.exit(0));
  const setup = JSON.parse(process.env['ATTACK_SERVER'] ?? '{}') as ServerSetup;
  const { WebsocketServer } = await loadLibrary(lib);
  const tls = setup.tls === true ? { key: readFileSync(process.env['BENCH_KEY'] ?? '', 'utf8'), cert: readFileSync(process.env['BENCH_CERT'] ?? '', 'utf8') } : {};
  const server = new WebsocketServer({ port: 0, host: '127.0.0.1', loglevel: 'critical', ...setup.options, ...tls });
  let messages = 0;
  let left = 0;
  let firstLeftAt: number | undefined;
  let lastLeftAt: number | undefined;
  let waitingFor: { count: number; id: unknown } | undefined;
  const answerWhenEmpty = (): void => {
    if (waitingFor === undefined || left < waitingFor.count) return;
    const { id } = waitingFor;
    waitingFor = undefined;
    // server.clients may still list a client a moment after the last left callback: look again until empty.
    void (async () => {
      for (let i = 0; i < 3000 && server.clients.length > 0; i++) await delay(1);
      process.send?.({ id, emptyAt: now(), firstLeftAt, lastLeftAt, clients: server.clients.length, left });
    })();
  };
  server.setFnError(() => {});
  server.setFnMessageReceived((client, server, message) => {
    messages++;
    if (setup.handler === 'echo') server.sendMessage(client, message);
  });
  server.setFnClientLeft(() => {
    left++;
    const t = now();
    firstLeftAt ??= t;
    lastLeftAt = t;
    answerWhenEmpty();
  });
  await server.runForever();
  process.on('message', (message: Record<string, unknown>) => {
    const id = message['id'];
    switch (message['type']) {
      case 'stats': {
        const stats = 'stats' in server ? server.stats : undefined;
        process.send?.({ id, clients: server.clients.length, messages, left, firstLeftAt, lastLeftAt, closeCodes: stats?.closeCodes, stats });
        break;
      }
      case 'reset-left':
        left = 0;
        firstLeftAt = undefined;
        lastLeftAt = undefined;
        process.send?.({ id });
        break;
      case 'wait-left':
        waitingFor = { count: Number(message['count']), id };
        answerWhenEmpty();
        break;
      case 'broadcast-shutdown': {
        const count = Number(message['count']);
        const sentAt = now();
        for (let i = 0; i < count; i++) server.sendMessageToAll(broadcastText(i));
        const shutdownAt = now();
        void Promise.resolve(server.shutdownGracefully()).then(
          () => process.send?.({ id, sentAt, shutdownAt, doneAt: now() }),
          (error: unknown) => process.send?.({ id, sentAt, shutdownAt, doneAt: now(), error: String(error) }),
        );
        break;
      }
    }
  });
  process.send({ type: 'ready', port: server.port });
}

let certificate: ReturnType<typeof makeCertificate> | undefined;

async function startServer(lib: string, setup: ServerSetup): Promise<ServerProcess> {
  const env: NodeJS.ProcessEnv = { ATTACK_SERVER: JSON.stringify(setup) };
  if (setup.tls === true) {
    certificate ??= makeCertificate();
    env['BENCH_KEY'] = certificate.keyPath;
    env['BENCH_CERT'] = certificate.certPath;
  }
  return startServerProcess(SCRIPT, ['--child', `--lib=${lib}`], env);
}

interface Stats {
  clients: number;
  messages: number;
  left: number;
  firstLeftAt?: number;
  lastLeftAt?: number;
  closeCodes?: Record<string, number>;
}

/** Watches a server's RSS every 100 ms; `over` is set once it passes {@link RSS_LIMIT} (and the server is killed). */
function watchRss(server: ServerProcess): { baseline: number; peak: () => number; last: () => number; over: () => boolean; stop: () => void } {
  const baseline = rssOf(server.pid);
  let peak = baseline;
  let last = baseline;
  let over = false;
  const timer = setInterval(() => {
    last = rssOf(server.pid);
    peak = Math.max(peak, last);
    if (last > RSS_LIMIT && !over) {
      over = true;
      server.kill();
    }
  }, 100);
  return { baseline, peak: () => peak, last: () => last, over: () => over, stop: () => clearInterval(timer) };
}

/** Open file descriptors of a process (its sockets, mostly); -1 once it is gone. */
function fdsOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** Resolves on the socket's 'drain', or after `ms` at the latest (its listener then removed). */
function drained(socket: Socket, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off('drain', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    socket.once('drain', done);
  });
}

const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const codes = (closeCodes: Record<string, number> | undefined): string =>
  closeCodes === undefined ? 'n/a (no stats)' : Object.keys(closeCodes).length === 0 ? '{}' : JSON.stringify(closeCodes);
const closeCodeOf = (frame: ServerFrame): number | 'none' => (frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 'none');

/** The result of an attack: its line, and its numbers for the JSON. */
interface Outcome {
  line: string;
  data: Record<string, unknown>;
}

// ─── 1. Ping flood ───────────────────────────────────────────────────────────────────────────────────────

async function pingFlood(lib: string): Promise<Outcome> {
  const server = await startServer(lib, { handler: 'echo' });
  try {
    const { socket } = await openRaw(server.port); // paused: never read again
    const pings = Buffer.concat(Array.from({ length: 10_923 }, () => clientFrame(0x9, Buffer.alloc(0))));
    const rss = watchRss(server);
    let clientClosedAt: number | undefined;
    let clientError = '';
    socket.on('error', (error: NodeJS.ErrnoException) => (clientError ||= error.code ?? error.message));
    socket.once('close', () => (clientClosedAt = now()));
    const t0 = now();
    let written = 0;
    for (let i = 0; i < 1_000_000 && clientClosedAt === undefined && !rss.over() && now() - t0 < 8000; i++) {
      if (socket.writableLength < MiB) {
        socket.write(pings);
        written += pings.length;
        if (i % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
      } else {
        await drained(socket, 20);
      }
    }
    const floodMs = now() - t0;
    await delay(300);
    rss.stop();
    socket.destroy();
    if (rss.over()) {
      return {
        line: `ping-flood: server RSS passed ${mib(RSS_LIMIT)} after ${seconds(floodMs)} (from ${mib(rss.baseline)}): killed; ${(written / 6 / 1e6).toFixed(1)}M Pings written, connection not closed by the server`,
        data: { rssBaseline: rss.baseline, rssPeak: rss.peak(), killedAtMs: floodMs, pingsWritten: written / 6 },
      };
    }
    await delay(700);
    const stats = await server.request<Stats>({ type: 'stats' });
    const closedAfter = stats.firstLeftAt === undefined ? undefined : stats.firstLeftAt - t0;
    const clientSaw = clientClosedAt === undefined || clientClosedAt >= t0 + floodMs ? undefined : clientClosedAt - t0;
    return {
      line: `ping-flood: ${(written / 6 / 1e6).toFixed(1)}M Pings (${mib(written)}) written in ${seconds(floodMs)}; server RSS +${mib(rss.peak() - rss.baseline)} (peak ${mib(rss.peak())}); ` +
        `server closed it: ${closedAfter === undefined || closedAfter > floodMs ? 'no' : `yes, client left at ${seconds(closedAfter)}`}` +
        `${clientSaw === undefined ? '' : `, writer saw ${clientError || 'close'} at ${seconds(clientSaw)}`}; closeCodes ${codes(stats.closeCodes)}`,
      data: { pingsWritten: written / 6, floodMs, rssBaseline: rss.baseline, rssPeak: rss.peak(), closedAfterMs: closedAfter, clientSawMs: clientSaw, clientError, closeCodes: stats.closeCodes },
    };
  } finally {
    server.kill();
  }
}

// ─── 2. TLS slowloris ────────────────────────────────────────────────────────────────────────────────────

async function tlsSlowloris(lib: string): Promise<Outcome> {
  const handshakeTimeout = 3000;
  const server = await startServer(lib, { handler: 'echo', tls: true, options: { handshakeTimeout } });
  const sockets: Socket[] = [];
  try {
    const fdsBefore = fdsOf(server.pid);
    const open = new Set<Socket>();
    await inParallel(1000, 100, () =>
      new Promise<void>((resolve) => {
        const socket = netConnect({ host: '127.0.0.1', port: server.port });
        sockets.push(socket);
        socket.on('error', () => {});
        socket.on('data', () => {});
        socket.once('connect', () => {
          open.add(socket);
          resolve();
        });
        socket.once('end', () => open.delete(socket));
        socket.once('close', () => {
          open.delete(socket);
          resolve();
        });
      }),
    );
    const t0 = now();
    const connected = open.size;
    await delay(t0 + handshakeTimeout + 1000 - now());
    const atTimeout = { open: open.size, serverFds: fdsOf(server.pid) - fdsBefore };
    await delay(t0 + 10_000 - now());
    const at10 = { open: open.size, serverFds: fdsOf(server.pid) - fdsBefore };
    return {
      line: `tls-slowloris: ${connected}/1000 silent sockets connected; still open (client view / server sockets) after ${seconds(handshakeTimeout + 1000)}: ${atTimeout.open} / ${atTimeout.serverFds}; after 10 s: ${at10.open} / ${at10.serverFds}`,
      data: { connected, atTimeout, at10 },
    };
  } finally {
    for (const socket of sockets) socket.destroy();
    server.kill();
  }
}

// ─── 3. Deflate flood ────────────────────────────────────────────────────────────────────────────────────

async function deflateFlood(lib: string): Promise<Outcome> {
  const server = await startServer(lib, { handler: 'count', options: { perMessageDeflate: true } });
  try {
    const connection = await openRaw(server.port, { extensions: 'permessage-deflate' });
    const { socket } = connection;
    if (!/^permessage-deflate\b/.test(connection.headers['sec-websocket-extensions'] ?? '')) throw new Error('permessage-deflate not negotiated');
    const payload = deflateMessage(Buffer.alloc(MiB, 'a'));
    const batch = Buffer.concat(Array.from({ length: 32 }, () => clientFrame(0x2, payload, true, true)));
    const reader = new FrameReader();
    let closeCode: number | 'none' | undefined;
    let closeAt: number | undefined;
    let clientClosedAt: number | undefined;
    socket.on('data', (chunk: Buffer) => {
      for (const frame of reader.push(chunk)) if (frame.opcode === 8 && closeCode === undefined) [closeCode, closeAt] = [closeCodeOf(frame), now()];
    });
    socket.once('close', () => (clientClosedAt = now()));
    socket.resume();
    const rss = watchRss(server);
    const t0 = now();
    let sent = 0;
    for (let i = 0; i < 1_000_000 && clientClosedAt === undefined && closeCode === undefined && !rss.over() && now() - t0 < 8000; i++) {
      if (socket.writableLength < 4 * MiB) {
        socket.write(batch);
        sent += 32;
        if (i % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
      } else {
        await drained(socket, 20);
      }
    }
    const floodMs = now() - t0;
    await delay(1000);
    rss.stop();
    const stats = rss.over() ? undefined : await server.request<Stats>({ type: 'stats' });
    socket.destroy();
    const closed = closeCode !== undefined ? `closed with ${closeCode} at ${seconds((closeAt ?? 0) - t0)}` : clientClosedAt !== undefined ? `closed without a Close frame at ${seconds(clientClosedAt - t0)}` : 'not closed';
    return {
      line: `deflate-flood: ${sent} msgs of 1 MiB (${(payload.length / 1024).toFixed(1)} KiB compressed) written in ${seconds(floodMs)}; server inflated ${stats?.messages ?? '?'}; ` +
        `server RSS +${mib(rss.peak() - rss.baseline)} (peak ${mib(rss.peak())})${rss.over() ? ', KILLED at the 3 GiB limit' : ''}; ${closed}; closeCodes ${stats === undefined ? '?' : codes(stats.closeCodes)}`,
      data: { sent, floodMs, compressedSize: payload.length, inflated: stats?.messages, rssBaseline: rss.baseline, rssPeak: rss.peak(), killed: rss.over(), closeCode, closeAtMs: closeAt === undefined ? undefined : closeAt - t0, closeCodes: stats?.closeCodes },
    };
  } finally {
    server.kill();
  }
}

// ─── 4. BFINAL ───────────────────────────────────────────────────────────────────────────────────────────

/** Compresses successive messages in one context (context takeover), each sync-flushed. */
function takeoverCompressor(): { compress: (data: Buffer) => Promise<Buffer>; close: () => void } {
  const deflate: DeflateRaw = createDeflateRaw();
  return {
    compress: (data) =>
      new Promise((resolve) => {
        const chunks: Buffer[] = [];
        const collect = (chunk: Buffer): number => chunks.push(chunk);
        deflate.on('data', collect);
        deflate.write(data);
        deflate.flush(zlibConstants.Z_SYNC_FLUSH, () => {
          deflate.off('data', collect);
          const all = Buffer.concat(chunks);
          resolve(all.subarray(0, all.length - 4));
        });
      }),
    close: () => deflate.close(),
  };
}

async function bfinalCase(port: number, noContextTakeover: boolean): Promise<{ summary: string; received: string[]; closeCode?: number | 'none' }> {
  const offer = noContextTakeover ? 'permessage-deflate; client_no_context_takeover' : 'permessage-deflate';
  const connection = await openRaw(port, { extensions: offer });
  const { socket } = connection;
  const expected = ['Hello', 'second message, hello hello', 'third message, hello hello hello', 'fourth message, hello hello hello hello'];
  const received: string[] = [];
  let closeCode: number | 'none' | undefined;
  const reader = new FrameReader();
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 3000);
    socket.on('data', (chunk: Buffer) => {
      for (const frame of reader.push(chunk)) {
        if (frame.opcode === 8) closeCode ??= closeCodeOf(frame);
        else if (frame.opcode === 1 || frame.opcode === 2) {
          let data = frame.payload;
          if (frame.rsv1) data = inflateRawSync(Buffer.concat([data, Buffer.from([0, 0, 0xff, 0xff])]), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
          received.push(data.toString('utf8'));
        }
      }
      if (received.length >= expected.length || closeCode !== undefined) {
        clearTimeout(timer);
        resolve();
      }
    });
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  socket.resume();
  // RFC 7692 §7.2.3.4: "Hello" in a DEFLATE block with BFINAL set.
  socket.write(clientFrame(0x1, Buffer.from([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), true, true));
  const compressor = noContextTakeover ? undefined : takeoverCompressor();
  for (const text of expected.slice(1)) {
    const data = Buffer.from(text);
    socket.write(clientFrame(0x1, compressor === undefined ? deflateMessage(data) : await compressor.compress(data), true, true));
  }
  await done;
  compressor?.close();
  socket.destroy();
  const correct = received.filter((text, i) => text === expected[i]).length;
  const summary = `${correct}/4 echoed intact${received.length > correct ? ` (${received.length - correct} wrong)` : ''}${closeCode === undefined ? '' : `, closed ${closeCode}`}`;
  return { summary, received, ...(closeCode === undefined ? {} : { closeCode }) };
}

async function bfinal(lib: string): Promise<Outcome> {
  const server = await startServer(lib, { handler: 'echo', options: { perMessageDeflate: true } });
  try {
    const takeover = await bfinalCase(server.port, false);
    const noTakeover = await bfinalCase(server.port, true);
    return {
      line: `bfinal: context takeover: ${takeover.summary}; client_no_context_takeover: ${noTakeover.summary}`,
      data: { takeover, noTakeover },
    };
  } finally {
    server.kill();
  }
}

// ─── 5. 16 MiB echo ──────────────────────────────────────────────────────────────────────────────────────

async function echo16MiB(lib: string): Promise<Outcome> {
  const server = await startServer(lib, { handler: 'echo' });
  try {
    const size = 16 * MiB;
    const client = new WebSocket(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: false });
    client.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('close', () => reject(new Error('closed before open')));
    });
    const t0 = now();
    const outcome = await new Promise<{ result: string; ms: number }>((resolve) => {
      const timer = setTimeout(() => resolve({ result: 'nothing within 25 s', ms: now() - t0 }), 25_000);
      client.once('message', (data: Buffer, isBinary: boolean) => {
        clearTimeout(timer);
        resolve({ result: `echo arrived (${data.length === size && !isBinary ? 'intact' : `${data.length} bytes, binary ${isBinary}`})`, ms: now() - t0 });
      });
      client.once('close', (code: number) => {
        clearTimeout(timer);
        resolve({ result: `client closed with ${code}`, ms: now() - t0 });
      });
      client.send('a'.repeat(size));
    });
    client.terminate();
    await delay(200); // the server's side of the close counted
    const stats = await server.request<Stats>({ type: 'stats' });
    return {
      line: `echo-16mib: ${outcome.result} after ${seconds(outcome.ms)}; closeCodes ${codes(stats.closeCodes)}`,
      data: { ...outcome, closeCodes: stats.closeCodes },
    };
  } finally {
    server.kill();
  }
}

// ─── 6. 4 MiB in 64-byte fragments ───────────────────────────────────────────────────────────────────────

async function fragments(lib: string): Promise<Outcome> {
  const server = await startServer(lib, { handler: 'echo' });
  try {
    const { socket } = await openRaw(server.port);
    const count = 65_536;
    const message = Buffer.alloc(4 * MiB);
    for (let i = 0; i < message.length; i++) message[i] = (i * 31) & 0xff;
    const frames: Buffer[] = [];
    for (let i = 0; i < count; i++) frames.push(clientFrame(i === 0 ? 0x2 : 0x0, message.subarray(i * 64, (i + 1) * 64), i === count - 1));
    const reader = new FrameReader();
    const t0 = now();
    const outcome = await new Promise<{ result: string; ms: number }>((resolve) => {
      const timer = setTimeout(() => resolve({ result: 'nothing within 20 s', ms: now() - t0 }), 20_000);
      socket.on('data', (chunk: Buffer) => {
        for (const frame of reader.push(chunk)) {
          if (frame.opcode === 8) {
            clearTimeout(timer);
            return resolve({ result: `closed with ${closeCodeOf(frame)}`, ms: now() - t0 });
          }
          if (frame.opcode === 2) {
            clearTimeout(timer);
            return resolve({ result: frame.payload.equals(message) ? 'delivered (echo intact)' : `echo of ${frame.payload.length} bytes, not intact`, ms: now() - t0 });
          }
        }
      });
      socket.once('close', () => {
        clearTimeout(timer);
        resolve({ result: 'TCP closed without a Close frame', ms: now() - t0 });
      });
      socket.resume();
      socket.write(Buffer.concat(frames));
    });
    socket.destroy();
    return { line: `fragments: 4 MiB in ${count} fragments of 64 B: ${outcome.result} after ${seconds(outcome.ms)}`, data: outcome };
  } finally {
    server.kill();
  }
}

// ─── 7. UTF-8 fail-fast ──────────────────────────────────────────────────────────────────────────────────

async function utf8FailFast(lib: string): Promise<Outcome> {
  const server = await startServer(lib, { handler: 'echo' });
  try {
    const { socket } = await openRaw(server.port);
    const payload = Buffer.alloc(64 * 1024, 'a');
    payload[0] = 0xff;
    payload[1] = 0xff;
    const frame = clientFrame(0x1, payload);
    const third = Math.ceil(frame.length / 3);
    const reader = new FrameReader();
    let t0 = 0;
    const outcome = new Promise<{ result: string; ms: number }>((resolve) => {
      const timer = setTimeout(() => resolve({ result: 'no Close within 6 s', ms: now() - t0 }), 6000);
      socket.on('data', (chunk: Buffer) => {
        const close = reader.push(chunk).find((f) => f.opcode === 8);
        if (close === undefined) return;
        clearTimeout(timer);
        resolve({ result: `Close ${closeCodeOf(close)}`, ms: now() - t0 });
      });
      socket.once('close', () => {
        clearTimeout(timer);
        resolve({ result: 'TCP closed without a Close frame', ms: now() - t0 });
      });
    });
    socket.resume();
    t0 = now();
    let settled = false;
    void outcome.then(() => (settled = true));
    for (let part = 0; part < 3 && !settled; part++) {
      if (part > 0) await Promise.race([delay(500), outcome]);
      if (!settled && !socket.destroyed) socket.write(frame.subarray(part * third, (part + 1) * third));
    }
    const result = await outcome;
    socket.destroy();
    return { line: `utf8-failfast: ${result.result} ${seconds(result.ms)} after the first of 3 writes (500 ms apart)`, data: result };
  } finally {
    server.kill();
  }
}

// ─── 8. Memory of a connection with a 15 KB header ───────────────────────────────────────────────────────

async function headerMemory(lib: string, connections: number): Promise<Outcome> {
  const padded = await measureMemory('header15k', 'ours', connections, lib);
  const idle = await measureMemory('idle', 'ours', connections, lib);
  return {
    line: `header-memory: ${connections} idle connections whose request had a 15,000-byte X-Pad: RSS ${kb(padded.perConnection.rss)}/conn, heap ${kb(padded.perConnection.heap)}/conn ` +
      `(without the header: RSS ${kb(idle.perConnection.rss)}, heap ${kb(idle.perConnection.heap)}; ws: bench/memory.js)`,
    data: { padded: padded.perConnection, idle: idle.perConnection, connections },
  };
}

// ─── 9. Graceful shutdown after broadcasts ───────────────────────────────────────────────────────────────

async function graceful(lib: string): Promise<Outcome> {
  const clientCount = 1500;
  const broadcasts = 40;
  const server = await startServer(lib, { handler: 'echo', options: { perMessageDeflate: true } });
  const clients: WebSocket[] = [];
  try {
    const expected = Array.from({ length: broadcasts }, (_, i) => broadcastText(i));
    const received = new Map<WebSocket, number>();
    const wrong = new Map<WebSocket, number>();
    const closeCodes: Record<string, number> = {};
    let closed = 0;
    let lastMessageAt = 0;
    let lastCloseAt = 0;
    let allClosed: () => void = () => {};
    const everyoneClosed = new Promise<void>((resolve) => (allClosed = resolve));
    await inParallel(clientCount, 50, () =>
      new Promise<void>((resolve, reject) => {
        const client = new WebSocket(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: true });
        clients.push(client);
        received.set(client, 0);
        client.on('error', () => {});
        client.on('message', (data: Buffer) => {
          const n = received.get(client) ?? 0;
          if (data.toString('utf8') !== expected[n]) wrong.set(client, (wrong.get(client) ?? 0) + 1);
          received.set(client, n + 1);
          lastMessageAt = now();
        });
        client.once('open', () => {
          if (!(client.extensions as string).includes('permessage-deflate')) reject(new Error('permessage-deflate not negotiated'));
          resolve();
        });
        client.once('close', (code: number) => {
          closeCodes[code] = (closeCodes[code] ?? 0) + 1;
          lastCloseAt = now();
          if (++closed === clientCount) allClosed();
          resolve(); // a failed open still ends
        });
      }),
    );
    const connected = (await server.request<Stats>({ type: 'stats' })).clients;
    const t0 = now();
    const shutdown = await server.request<{ sentAt: number; shutdownAt: number; doneAt: number; error?: string }>({ type: 'broadcast-shutdown', count: broadcasts }, 30_000);
    await Promise.race([everyoneClosed, delay(Math.max(0, t0 + 30_000 - now()))]);
    const counts = [...received.values()].sort((a, b) => a - b);
    const all = counts.filter((n) => n === broadcasts).length;
    const wrongClients = [...wrong.values()].filter((n) => n > 0).length;
    return {
      line: `graceful: ${connected} clients connected; ${all}/${clientCount} received all ${broadcasts} (fewest ${counts[0] ?? 0}, median ${counts[counts.length >> 1] ?? 0})` +
        `${wrongClients > 0 ? `, ${wrongClients} got a wrong message` : ''}; close codes ${JSON.stringify(closeCodes)}; ${closed} closed; ` +
        `last message ${seconds(lastMessageAt - shutdown.sentAt)} and last close ${seconds(lastCloseAt - shutdown.sentAt)} after the first broadcast; ` +
        `shutdownGracefully() took ${seconds(shutdown.doneAt - shutdown.shutdownAt)}${shutdown.error === undefined ? '' : ` and failed: ${shutdown.error}`}`,
      data: { connected, all, counts: { min: counts[0], median: counts[counts.length >> 1], max: counts[counts.length - 1] }, wrongClients, closeCodes, closed, lastMessageMs: lastMessageAt - shutdown.sentAt, lastCloseMs: lastCloseAt - shutdown.sentAt, shutdownMs: shutdown.doneAt - shutdown.shutdownAt },
    };
  } finally {
    for (const client of clients) client.terminate();
    server.kill();
  }
}

// ─── 10. Refused connections' descriptors ────────────────────────────────────────────────────────────────

async function refused503(lib: string): Promise<Outcome> {
  const server = await startServer(lib, { handler: 'echo', options: { maxConnections: 10 } });
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < 10; i++) {
      const { socket } = await openRaw(server.port);
      socket.on('data', () => {});
      socket.resume();
      sockets.push(socket);
    }
    await delay(200);
    const fdsBase = fdsOf(server.pid);
    const statuses: Record<string, number> = {};
    const endTimes: number[] = [];
    const t0 = now();
    for (let i = 0; i < 200; i++) {
      // allowHalfOpen: a server's FIN does not make this side close; only the server can free its descriptor.
      const socket = netConnect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
      sockets.push(socket);
      let head = '';
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        if (head.length < 200) {
          head += chunk.toString('latin1');
          const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
          if (status !== undefined && head.length - chunk.length < 12) statuses[status] = (statuses[status] ?? 0) + 1;
        }
      });
      socket.once('end', () => endTimes.push(now() - t0));
      socket.once('connect', () => socket.write(handshakeRequest(server.port).request));
    }
    const samples: Array<{ at: number; extraFds: number }> = [];
    const marks = [1000, 2000, 5000, 10_000, 14_800];
    let releasedAt: number | undefined;
    for (let i = 0; i < 150 && now() - t0 < 15_000; i++) {
      await delay(100);
      const extra = fdsOf(server.pid) - fdsBase;
      const mark = marks[samples.length];
      if (mark !== undefined && now() - t0 >= mark) samples.push({ at: mark, extraFds: extra });
      if (extra <= 0 && releasedAt === undefined && now() - t0 > 300) releasedAt = now() - t0;
      if (extra > 0) releasedAt = undefined;
    }
    const extraAtEnd = fdsOf(server.pid) - fdsBase;
    endTimes.sort((a, b) => a - b);
    return {
      line: `refused-503: 200 refused handshakes, responses ${JSON.stringify(statuses)}; server FIN seen by ${endTimes.length}/200 (median ${seconds(endTimes[endTimes.length >> 1] ?? NaN)}, last ${seconds(endTimes[endTimes.length - 1] ?? NaN)}); ` +
        `server descriptors above the 10 clients: ${samples.map((s) => `${s.extraFds}@${(s.at / 1000).toFixed(0)}s`).join(', ')}; ` +
        `${releasedAt === undefined ? `still ${extraAtEnd} at 15 s (clients never close)` : `all released by ${seconds(releasedAt)}`}`,
      data: { statuses, ends: endTimes.length, endMedianMs: endTimes[endTimes.length >> 1], endLastMs: endTimes[endTimes.length - 1], samples, releasedAtMs: releasedAt, extraAtEnd },
    };
  } finally {
    for (const socket of sockets) socket.destroy();
    server.kill();
  }
}

// ─── 11. Removal of many clients ─────────────────────────────────────────────────────────────────────────

/**
 * The clients of the removal attack, in a process of their own (`attacks.js --holder`): when it is killed, the
 * kernel closes all its sockets at once, so the server sees every disconnect together and the time measured is
 * the server's, not that of a loop of destroy() calls.
 */
async function holdClients(port: number, count: number): Promise<void> {
  process.on('disconnect', () => process.exit(0));
  const sockets: Socket[] = [];
  let failed = 0;
  await inParallel(count, 128, async () => {
    try {
      const { socket } = await openRaw(port);
      socket.on('data', () => {});
      socket.resume();
      sockets.push(socket);
    } catch {
      failed++;
    }
  });
  process.send?.({ type: 'ready', opened: sockets.length, failed });
}

async function removalRun(lib: string, count: number): Promise<Outcome> {
  const server = await startServer(lib, { handler: 'echo' });
  const holder = spawn(process.execPath, [SCRIPT, '--holder', `--port=${server.port}`, `--clients=${count}`], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const t = now();
    const cpuAtStart = cpuSeconds(server.pid);
    const opened = await new Promise<{ opened: number; failed: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the clients did not connect within 25 s')), 25_000);
      holder.once('message', (message: { opened: number; failed: number }) => {
        clearTimeout(timer);
        resolve(message);
      });
      holder.once('exit', () => reject(new Error('the client process exited')));
    });
    const connectMs = now() - t;
    const connectCpu = cpuSeconds(server.pid) - cpuAtStart;
    const connected = (await server.request<Stats>({ type: 'stats' })).clients;
    await server.request({ type: 'reset-left' });
    const cpuBefore = cpuSeconds(server.pid);
    const result = server.request<{ emptyAt: number; firstLeftAt?: number; lastLeftAt?: number; clients: number; left: number }>({ type: 'wait-left', count: connected }, 30_000);
    await delay(50); // the request is in place
    const t0 = now();
    holder.kill('SIGKILL');
    const outcome = await result.catch((error: unknown) => ({ error: String(error) }));
    const cpu = cpuSeconds(server.pid) - cpuBefore;
    if ('error' in outcome) {
      const stats = await server.request<Stats>({ type: 'stats' });
      return { line: `client-removal: ${connected} clients: not empty within 30 s (${stats.left} left, ${stats.clients} remain)`, data: { connected, left: stats.left, remaining: stats.clients } };
    }
    return {
      line: `client-removal: ${connected} clients (${opened.failed} failed to connect; connected in ${seconds(connectMs)}, server CPU ${connectCpu.toFixed(2)} s), their process killed: server.clients empty ${seconds(outcome.emptyAt - t0)} after the kill ` +
        `(left callbacks from ${seconds((outcome.firstLeftAt ?? t0) - t0)} to ${seconds((outcome.lastLeftAt ?? t0) - t0)}); server CPU ${cpu.toFixed(2)} s`,
      data: { connected, failed: opened.failed, connectMs, connectCpuSeconds: connectCpu, emptyMs: outcome.emptyAt - t0, firstLeftMs: (outcome.firstLeftAt ?? t0) - t0, lastLeftMs: (outcome.lastLeftAt ?? t0) - t0, serverCpuSeconds: cpu },
    };
  } finally {
    if (holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    server.kill();
  }
}

/** Removal at K/4 and at K clients: a cost per client that grows with K shows a removal that is not O(1). */
async function clientRemoval(lib: string, count: number): Promise<Outcome> {
  const small = await removalRun(lib, Math.max(1, Math.round(count / 4)));
  await delay(500);
  const large = await removalRun(lib, count);
  return { line: `${small.line}\n${large.line}`, data: { quarter: small.data, full: large.data } };
}

/** CPU seconds a process has used, from /proc/PID/stat (USER_HZ = 100). */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

// ─── Main ────────────────────────────────────────────────────────────────────────────────────────────────

const ATTACKS = ['ping-flood', 'tls-slowloris', 'deflate-flood', 'bfinal', 'echo-16mib', 'fragments', 'utf8-failfast', 'header-memory', 'graceful', 'refused-503', 'client-removal'] as const;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const lib = args.get('lib') ?? fileURLToPath(new URL('../websocket-server.js', import.meta.url));
  if (args.has('child')) return attackServer(lib);
  if (args.has('holder')) return holdClients(Number(args.get('port')), Number(args.get('clients')));
  const only = args.get('only');
  const chosen = only === undefined ? [...ATTACKS] : ATTACKS.filter((name) => only.split(',').includes(name));
  if (chosen.length === 0) throw new Error(`--only names none of ${ATTACKS.join(', ')}`);
  const connections = Number(args.get('connections') ?? 2000);
  // Each process may open 20,000 files here (ulimit -n, not raisable without privileges): the server needs a
  // few besides its clients, and so does this process.
  const clients = Number(args.get('clients') ?? 19_000);
  if (!Number.isInteger(connections) || connections < 1 || connections > 18_000) throw new Error('--connections must be an integer from 1 to 18,000');
  if (!Number.isInteger(clients) || clients < 1 || clients > 19_500) throw new Error('--clients must be an integer from 1 to 19,500');
  console.log(`attacking ${lib}`);
  const results: Record<string, unknown> = {};
  const run: Record<(typeof ATTACKS)[number], () => Promise<Outcome>> = {
    'ping-flood': () => pingFlood(lib),
    'tls-slowloris': () => tlsSlowloris(lib),
    'deflate-flood': () => deflateFlood(lib),
    bfinal: () => bfinal(lib),
    'echo-16mib': () => echo16MiB(lib),
    fragments: () => fragments(lib),
    'utf8-failfast': () => utf8FailFast(lib),
    'header-memory': () => headerMemory(lib, connections),
    graceful: () => graceful(lib),
    'refused-503': () => refused503(lib),
    'client-removal': () => clientRemoval(lib, clients),
  };
  try {
    for (const name of chosen) {
      try {
        const outcome = await run[name]();
        results[name] = outcome.data;
        console.log(outcome.line);
      } catch (error) {
        results[name] = { error: String(error) };
        console.log(`${name}: FAILED: ${error instanceof Error ? error.message : String(error)}`);
      }
      await delay(500); // the previous server's sockets gone
    }
  } finally {
    certificate?.remove();
  }
  const out = args.get('out');
  if (out !== undefined && out !== '') {
    writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, lib, results }, null, 2)}\n`);
    console.log(`written: ${out}`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => {
      if (!process.argv.includes('--child') && !process.argv.includes('--holder')) process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
