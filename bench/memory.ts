// Memory per connection: our server against `ws`, in the same run, for five kinds of connection.
//
//   node build/bench/memory.js [--connections=2000] [--rounds=3] [--only=idle,tls,...] [--lib=PATH] [--out=FILE]
//
// Each (case, server) runs in a fresh server process (`node --expose-gc`, pinned to core 0 when `taskset`
// exists), started by this script, which is also the client: it opens the connections over raw sockets
// (`node:net` / `node:tls`, nothing of ws's or ours on the client side), all to 127.0.0.1. Before measuring, a
// few connections of the same kind are opened and closed, so that what is loaded once (code, zlib, the TLS
// context) is not charged to the connections. The server then reports `process.memoryUsage()` after full GCs
// (repeated until the heap stops shrinking), with no connection, then with N; per connection is
// (after − before) / N, for RSS and for heap = heapUsed + external + arrayBuffers (every field goes to the JSON).
// Every (case, server) runs --rounds times (default 3; the order of the two servers turns each round); the table
// has the medians, the JSON every run and the min–max.
//
// Cases: idle (ws://), tls (wss://, a self-signed P-256 certificate made by the `openssl` CLI in a temporary
// directory), compressor (permessage-deflate; the server has sent each client one 2 KiB message, compressed,
// context takeover), decompressor (each client has sent one compressed 2 KiB message; the server answers with
// a 2-byte message, below the compression threshold, so that it keeps no compressor), header15k (idle ws://,
// each request carried a 15,000-byte `X-Pad` header: within the default maxHeaderSize, 16 KiB).
//
// Our server is imported as the other bench servers import it, `websocket-server` (the built
// dist/websocket-server.js: `npm run build` first), or from --lib=PATH (a built websocket-server.js). `ws` runs
// with its defaults (its perMessageDeflate, when on, also with its defaults: 15-bit windows, memLevel 8).
//
// The functions exported here are also used by bench/attacks.ts.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { constants as zlibConstants, deflateRawSync } from 'node:zlib';
import { WebSocketServer } from 'ws';
import { collectGarbage } from './servers/control.ts';

// ─── Shared helpers (also used by attacks.ts) ────────────────────────────────────────────────────────────

/** The library's module, as `websocket-server` exports it. */
export type Library = typeof import('websocket-server');

/** Loads our library: from `lib` (a path to a built websocket-server.js) or, without, by its package name. */
export async function loadLibrary(lib: string | undefined): Promise<Library> {
  if (lib === undefined || lib === '') return import('websocket-server');
  return (await import(pathToFileURL(lib).href)) as Library;
}

/** Milliseconds since the epoch, sub-millisecond, comparable between processes of one machine. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

/** `--name=value` arguments. */
export function parseArgs(argv: readonly string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([^=]+)(?:=(.*))?$/s.exec(arg);
    if (match === null || match[1] === undefined) throw new Error(`Unknown argument ${arg}: arguments are --name or --name=value.`);
    args.set(match[1], match[2] ?? '');
  }
  return args;
}

/** A self-signed certificate for 127.0.0.1 (P-256), made by the `openssl` CLI in a temporary directory. */
export function makeCertificate(): { key: string; cert: string; keyPath: string; certPath: string; remove: () => void } {
  const directory = mkdtempSync(join(tmpdir(), 'websocket-server-cert-'));
  const keyPath = join(directory, 'key.pem');
  const certPath = join(directory, 'cert.pem');
  const result = spawnSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { encoding: 'utf8', timeout: 20_000 });
  if (result.status !== 0) {
    rmSync(directory, { recursive: true, force: true });
    throw new Error(`openssl could not make a certificate: ${result.error?.message ?? result.stderr}`);
  }
  return {
    key: readFileSync(keyPath, 'utf8'),
    cert: readFileSync(certPath, 'utf8'),
    keyPath,
    certPath,
    remove: () => rmSync(directory, { recursive: true, force: true }),
  };
}

/** ASCII text of `size` bytes that compresses well, different for each `seed`. */
export function compressibleText(size: number, seed = 0): string {
  let text = `#${seed};`;
  for (let i = 0; text.length < size; i++) text += `{"id":${seed * 1000 + i},"name":"user${i % 97}","online":${i % 3 === 0}},`;
  return text.slice(0, size);
}

const MASK = Buffer.from([0x12, 0x34, 0x56, 0x78]);

/** A client frame: masked, FIN as `fin`, RSV1 as `rsv1`. */
export function clientFrame(opcode: number, payload: Uint8Array, fin = true, rsv1 = false): Buffer {
  const length = payload.length;
  const extra = length < 126 ? 0 : length < 65_536 ? 2 : 8;
  const frame = Buffer.allocUnsafe(2 + extra + 4 + length);
  frame[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  if (extra === 0) frame[1] = 0x80 | length;
  else if (extra === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  MASK.copy(frame, 2 + extra);
  const start = 6 + extra;
  for (let i = 0; i < length; i++) frame[start + i] = (payload[i] ?? 0) ^ (MASK[i & 3] ?? 0);
  return frame;
}

/** A message compressed as permessage-deflate sends it: raw DEFLATE, sync-flushed, without the final 00 00 ff ff. */
export function deflateMessage(data: Uint8Array): Buffer {
  const compressed = deflateRawSync(data, { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  return compressed.subarray(0, compressed.length - 4);
}

/** A frame from the server (unmasked). */
export interface ServerFrame {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  payload: Buffer;
}

/** Splits the bytes a server sends into frames; concatenates a frame's chunks once it is complete. */
export class FrameReader {
  #chunks: Buffer[] = [];
  #length = 0;

  push(chunk: Buffer): ServerFrame[] {
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    const frames: ServerFrame[] = [];
    for (let guard = 0; guard < 1_000_000; guard++) {
      const frame = this.#next();
      if (frame === undefined) break;
      frames.push(frame);
    }
    return frames;
  }

  #next(): ServerFrame | undefined {
    if (this.#length < 2) return undefined;
    let first = this.#chunks[0] ?? Buffer.alloc(0);
    if (first.length < 14 && this.#chunks.length > 1) {
      first = Buffer.concat(this.#chunks);
      this.#chunks = [first];
    }
    const b0 = first[0] ?? 0;
    const b1 = first[1] ?? 0;
    let length = b1 & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (this.#length < 4) return undefined;
      length = first.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (this.#length < 10) return undefined;
      length = Number(first.readBigUInt64BE(2));
      offset = 10;
    }
    if ((b1 & 0x80) !== 0) offset += 4; // a server never masks; tolerated
    if (this.#length < offset + length) return undefined;
    const all = this.#chunks.length === 1 ? first : Buffer.concat(this.#chunks);
    const payload = Buffer.from(all.subarray(offset, offset + length));
    const rest = all.subarray(offset + length);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#length = rest.length;
    return { fin: (b0 & 0x80) !== 0, rsv1: (b0 & 0x40) !== 0, opcode: b0 & 0x0f, payload };
  }
}

/** A WebSocket connection opened over a raw socket; paused after the handshake, with the bytes read past it. */
export interface RawConnection {
  socket: Socket;
  /** The 101 response's header fields, by lower-case name. */
  headers: Record<string, string>;
  /** Bytes received after the response's head. */
  rest: Buffer;
}

export interface RawOptions {
  tls?: boolean;
  /** The Sec-WebSocket-Extensions offer. */
  extensions?: string;
  /** The size of an `X-Pad` header field's value. */
  pad?: number;
  timeoutMs?: number;
}

/** The opening handshake's request; `key` is its Sec-WebSocket-Key. */
export function handshakeRequest(port: number, options: RawOptions = {}): { request: string; accept: string } {
  const key = Buffer.from(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))).toString('base64');
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  let request = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
  if (options.extensions !== undefined) request += `Sec-WebSocket-Extensions: ${options.extensions}\r\n`;
  if (options.pad !== undefined) request += `X-Pad: ${'x'.repeat(options.pad)}\r\n`;
  return { request: `${request}\r\n`, accept };
}

/** Connects to 127.0.0.1:`port` and completes the opening handshake; rejects on anything but a valid 101. */
export function openRaw(port: number, options: RawOptions = {}): Promise<RawConnection> {
  const { request, accept } = handshakeRequest(port, options);
  return new Promise((resolve, reject) => {
    const socket: Socket = options.tls === true
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : netConnect({ host: '127.0.0.1', port });
    socket.setNoDelay(true);
    let received: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error('handshake timed out')), options.timeoutMs ?? 15_000);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) {
        if (received.length > 65_536) fail(new Error('response head too long'));
        return;
      }
      const lines = received.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      if (!/^HTTP\/1\.1 101/.test(lines[0] ?? '')) return fail(new Error(`refused: ${lines[0] ?? ''}`));
      if (headers['sec-websocket-accept'] !== accept) return fail(new Error('wrong Sec-WebSocket-Accept'));
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', fail);
      socket.off('close', onClose);
      socket.pause();
      socket.on('error', () => {}); // the users of the connection watch 'close'
      resolve({ socket, headers, rest: received.subarray(end + 4) });
    };
    const onClose = (): void => fail(new Error('closed during the handshake'));
    socket.on('data', onData);
    socket.once('error', fail);
    socket.once('close', onClose);
    socket.write(request);
  });
}

/** Runs `task` for 0..count-1, at most `parallel` at once. */
export async function inParallel(count: number, parallel: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
}

/** Whether the processes can be pinned (server on core 0). */
const pinned = availableParallelism() >= 2 && spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' }).status === 0;

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** A server process of ours, with an IPC channel; `request` asks it something and waits for its answer. */
export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  port: number;
  request<T = Record<string, unknown>>(message: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  kill(): void;
}

let requestIds = 0;

/**
 * Starts `node --expose-gc script ...args` (pinned to core 0 when possible), waits for its `{ type: 'ready',
 * port }`, and returns it. Every request carries an `id` that its answer repeats.
 */
export async function startServerProcess(script: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  const node = [process.execPath, '--expose-gc', script, ...args];
  const child = pinned
    ? spawn('taskset', ['-c', '0', ...node], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } })
    : spawn(node[0] ?? process.execPath, node.slice(1), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const pending = new Map<number, (reply: Record<string, unknown>) => void>();
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server process did not start within 15 s')), 15_000);
    child.on('message', (message: Record<string, unknown>) => {
      if (message['type'] === 'ready') {
        clearTimeout(timer);
        resolve(Number(message['port']));
      } else if (typeof message['id'] === 'number') pending.get(message['id'])?.(message);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server process exited (${signal ?? code}) before it was ready`));
    });
  });
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return {
    child,
    pid: child.pid ?? -1,
    port,
    kill,
    request: <T>(message: Record<string, unknown>, timeoutMs = 20_000) =>
      new Promise<T>((resolve, reject) => {
        const id = ++requestIds;
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`the server did not answer ${String(message['type'])} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, (reply) => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(reply as T);
        });
        child.send({ ...message, id });
      }),
  };
}

/** A process's resident set from /proc (readable while its event loop is busy), in bytes; 0 once it is gone. */
export function rssOf(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

// ─── Memory per connection ───────────────────────────────────────────────────────────────────────────────

export const CASES = ['idle', 'tls', 'compressor', 'decompressor', 'header15k'] as const;
export type MemoryCase = (typeof CASES)[number];
export type MemoryServer = 'ours' | 'ws';

const CASE_TITLES: Record<MemoryCase, string> = {
  idle: 'idle ws://',
  tls: 'idle wss:// (TLS)',
  compressor: 'deflate, server sent 1 msg',
  decompressor: 'deflate, client sent 1 msg',
  header15k: 'idle, 15 KB request header',
};

/** The message the server sends each client in the `compressor` case (above the 1 KiB threshold). */
const SERVER_MESSAGE = compressibleText(2048, 1);
/** The message each client sends in the `decompressor` case. */
const CLIENT_MESSAGE = compressibleText(2048, 2);

type Usage = ReturnType<typeof process.memoryUsage>;

export interface MemoryResult {
  case: MemoryCase;
  server: MemoryServer;
  connections: number;
  before: Usage;
  after: Usage;
  /** Bytes per connection: (after − before) / connections. */
  perConnection: { rss: number; heap: number; heapUsed: number; external: number; arrayBuffers: number };
  seconds: number;
}

/** The server side of one (case, server): run in its own process by {@link measureMemory}. */
async function memoryServer(kind: MemoryServer, which: MemoryCase, lib: string | undefined): Promise<void> {
  if (process.send === undefined) throw new Error('memory.js --child runs under memory.js only.');
  process.on('disconnect', () => process.exit(0));
  const tls = which === 'tls' ? { key: readFileSync(process.env['BENCH_KEY'] ?? '', 'utf8'), cert: readFileSync(process.env['BENCH_CERT'] ?? '', 'utf8') } : undefined;
  const deflate = which === 'compressor' || which === 'decompressor';
  let port: number;
  let clients: () => number;
  if (kind === 'ours') {
    const { WebsocketServer } = await loadLibrary(lib);
    const server = new WebsocketServer({
      port: 0,
      host: '127.0.0.1',
      loglevel: 'critical',
      ...(tls ?? {}),
      ...(deflate ? { perMessageDeflate: true } : {}),
    });
    if (which === 'compressor') server.setFnNewClient((client, server) => void server.sendMessage(client, SERVER_MESSAGE));
    if (which === 'decompressor') server.setFnMessageReceived((client, server) => void server.sendMessage(client, 'ok'));
    await server.runForever();
    port = server.port;
    clients = () => server.clients.length;
  } else {
    const https = tls === undefined ? undefined : createHttpsServer(tls);
    const wss = https === undefined
      ? new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate })
      : new WebSocketServer({ server: https, perMessageDeflate: deflate });
    wss.on('connection', (socket) => {
      socket.on('error', () => {});
      if (which === 'compressor') socket.send(SERVER_MESSAGE);
      if (which === 'decompressor') socket.on('message', () => socket.send('ok'));
    });
    if (https !== undefined) {
      await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
      const address = https.address();
      port = typeof address === 'object' && address !== null ? address.port : 0;
    } else {
      await new Promise<void>((resolve) => wss.once('listening', resolve));
      const address = wss.address();
      port = typeof address === 'object' && address !== null ? address.port : 0;
    }
    clients = () => wss.clients.size;
  }
  process.on('message', (message: Record<string, unknown>) => {
    void (async () => {
      if (message['type'] === 'memory') await collectGarbage();
      process.send?.({ id: message['id'], clients: clients(), memory: process.memoryUsage() });
    })();
  });
  process.send({ type: 'ready', port });
}

/** Opens one client of `which` on `port` and does what the case asks; resolves with its socket. */
async function openCaseClient(port: number, which: MemoryCase): Promise<Socket> {
  const deflate = which === 'compressor' || which === 'decompressor';
  const connection = await openRaw(port, {
    ...(which === 'tls' ? { tls: true } : {}),
    ...(deflate ? { extensions: 'permessage-deflate' } : {}),
    ...(which === 'header15k' ? { pad: 15_000 } : {}),
  });
  const { socket } = connection;
  if (deflate && !/^permessage-deflate\b/.test(connection.headers['sec-websocket-extensions'] ?? '')) {
    socket.destroy();
    throw new Error('the server did not accept permessage-deflate');
  }
  if (deflate) {
    // Wait for the server's message: compressed (RSV1) in the compressor case, the 2-byte answer otherwise.
    const reader = new FrameReader();
    const first = await new Promise<ServerFrame>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no message from the server within 15 s')), 15_000);
      const look = (chunk: Buffer): void => {
        const frame = reader.push(chunk).find((f) => f.opcode === 1 || f.opcode === 2 || f.opcode === 8);
        if (frame === undefined) return;
        clearTimeout(timer);
        socket.off('data', look);
        resolve(frame);
      };
      socket.on('data', look);
      if (which === 'decompressor') socket.write(clientFrame(1, deflateMessage(Buffer.from(CLIENT_MESSAGE)), true, true));
      if (connection.rest.length > 0) look(connection.rest);
      socket.resume();
    });
    if (first.opcode === 8) throw new Error(`the server closed the connection (${first.payload.length >= 2 ? first.payload.readUInt16BE(0) : 'no code'})`);
    if (which === 'compressor' && !first.rsv1) throw new Error('the server sent its message uncompressed');
  }
  socket.on('data', () => {}); // Pings and anything else: read and ignored
  socket.resume();
  return socket;
}

/** Memory per connection of one (case, server), in a fresh server process. */
export async function measureMemory(which: MemoryCase, kind: MemoryServer, connections: number, lib: string | undefined, certificate?: { keyPath: string; certPath: string }): Promise<MemoryResult> {
  if (which === 'tls' && certificate === undefined) throw new Error('the tls case needs a certificate');
  const started = now();
  const server = await startServerProcess(fileURLToPath(import.meta.url), [
    '--child', `--server=${kind}`, `--case=${which}`, ...(lib === undefined ? [] : [`--lib=${lib}`]),
  ], certificate === undefined ? {} : { BENCH_KEY: certificate.keyPath, BENCH_CERT: certificate.certPath });
  const sockets: Socket[] = [];
  try {
    type Reply = { clients: number; memory: Usage };
    // Warm-up: a few connections of the same kind, closed again.
    const warm: Socket[] = [];
    await inParallel(16, 16, async () => void warm.push(await openCaseClient(server.port, which)));
    for (const socket of warm) socket.destroy();
    for (let i = 0; i < 100 && (await server.request<Reply>({ type: 'count' })).clients > 0; i++) await delay(50);
    const before = (await server.request<Reply>({ type: 'memory' })).memory;
    await inParallel(connections, 64, async () => void sockets.push(await openCaseClient(server.port, which)));
    await delay(300);
    const reply = await server.request<Reply>({ type: 'memory' });
    if (reply.clients !== connections) throw new Error(`the server has ${reply.clients} clients, not ${connections}`);
    const after = reply.memory;
    const per = (field: keyof Usage): number => (after[field] - before[field]) / connections;
    const heap = (u: Usage): number => u.heapUsed + u.external + u.arrayBuffers;
    return {
      case: which,
      server: kind,
      connections,
      before,
      after,
      perConnection: {
        rss: per('rss'),
        heap: (heap(after) - heap(before)) / connections,
        heapUsed: per('heapUsed'),
        external: per('external'),
        arrayBuffers: per('arrayBuffers'),
      },
      seconds: (now() - started) / 1000,
    };
  } finally {
    server.kill();
    for (const socket of sockets) socket.destroy();
  }
}

/** KB (1,000 bytes) with one decimal. */
export function kb(bytes: number): string {
  return `${(bytes / 1000).toFixed(1)} KB`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const lib = args.get('lib');
  if (args.has('child')) {
    const kind = args.get('server');
    const which = args.get('case') as MemoryCase;
    if ((kind !== 'ours' && kind !== 'ws') || !CASES.includes(which)) throw new Error('--child needs --server=ours|ws and --case');
    await memoryServer(kind, which, lib);
    return;
  }
  const connections = Number(args.get('connections') ?? 2000);
  if (!Number.isInteger(connections) || connections < 1 || connections > 18_000) throw new Error('--connections must be an integer from 1 to 18,000');
  const only = args.get('only');
  const cases = only === undefined ? [...CASES] : CASES.filter((c) => only.split(',').includes(c));
  if (cases.length === 0) throw new Error(`--only names none of ${CASES.join(', ')}`);
  const rounds = Number(args.get('rounds') ?? 3);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 9) throw new Error('--rounds must be an integer from 1 to 9');
  const certificate = cases.includes('tls') ? makeCertificate() : undefined;
  const results: MemoryResult[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const which of cases) {
        // The order turns every round, so that neither server always runs first.
        for (const kind of round % 2 === 0 ? (['ours', 'ws'] as const) : (['ws', 'ours'] as const)) {
          const result = await measureMemory(which, kind, connections, lib, certificate);
          results.push(result);
          console.log(`round ${round + 1}/${rounds} ${which.padEnd(12)} ${kind.padEnd(4)} RSS ${kb(result.perConnection.rss).padStart(9)}/conn, heap ${kb(result.perConnection.heap).padStart(9)}/conn  (${result.seconds.toFixed(1)} s)`);
        }
      }
    }
  } finally {
    certificate?.remove();
  }
  const median = (values: number[]): number => {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = sorted.length >> 1;
    return sorted.length % 2 === 1 ? (sorted[middle] ?? NaN) : ((sorted[middle - 1] ?? NaN) + (sorted[middle] ?? NaN)) / 2;
  };
  const summary = (which: MemoryCase, kind: MemoryServer): { rss: number; heap: number; rssMin: number; rssMax: number; heapMin: number; heapMax: number } | undefined => {
    const runs = results.filter((r) => r.case === which && r.server === kind);
    if (runs.length === 0) return undefined;
    const rss = runs.map((r) => r.perConnection.rss);
    const heap = runs.map((r) => r.perConnection.heap);
    return { rss: median(rss), heap: median(heap), rssMin: Math.min(...rss), rssMax: Math.max(...rss), heapMin: Math.min(...heap), heapMax: Math.max(...heap) };
  };
  const rows: string[][] = [['case', 'ours RSS', 'ours heap', 'ws RSS', 'ws heap', 'RSS ours/ws', 'heap ours/ws']];
  const summaries: Record<string, unknown> = {};
  for (const which of cases) {
    const ours = summary(which, 'ours');
    const ws = summary(which, 'ws');
    if (ours === undefined || ws === undefined) continue;
    const ratio = { rss: ours.rss / ws.rss, heap: ours.heap / ws.heap };
    summaries[which] = { ours, ws, ratio };
    rows.push([CASE_TITLES[which], kb(ours.rss), kb(ours.heap), kb(ws.rss), kb(ws.heap), `${ratio.rss.toFixed(2)}×`, `${ratio.heap.toFixed(2)}×`]);
  }
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  console.log(`\nMemory per connection, median of ${rounds} runs, ${connections} connections (heap = heapUsed + external + arrayBuffers; KB = 1,000 bytes)`);
  for (const row of rows) console.log(row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  '));
  const out = args.get('out');
  if (out !== undefined && out !== '') {
    const wsVersion = (JSON.parse(readFileSync(new URL(import.meta.resolve('ws/package.json')), 'utf8')) as { version: string }).version;
    writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, ws: wsVersion, lib: lib ?? 'websocket-server', connections, rounds, pinned, summaries, results }, null, 2)}\n`);
    console.log(`\nwritten: ${out}`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => {
      if (!parseArgs(process.argv.slice(2)).has('child')) process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
