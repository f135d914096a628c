// A seeded fuzzer for the server: valid and mutated frames, and junk handshakes, each on its own raw TCP
// connection to one live echo server, while one well-behaved `ws` client keeps exchanging messages.
//
// Every case is derived from (seed, index) alone, so a failure is replayed with `--seed=N --case=I`.
//
//   npm run fuzz -- --seed=1 --cases=100000 [--concurrency=64]
//   npm run fuzz -- --seed=1 --case=1234        (one case, described)
import { Buffer, isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { WebsocketServer, type Client } from '../websocket-server.ts';
import { buildFrame, closePayload, parseServerFrames, type ClientFrame, type ServerFrame } from '../test/support/frames.ts';

// ---------------------------------------------------------------------------------------------------------------
// Options and results
// ---------------------------------------------------------------------------------------------------------------

export interface FuzzOptions {
  /** The run's seed; case `i` depends only on (seed, i). */
  seed: number;
  /** How many cases, numbered from `first` (default 0). */
  cases: number;
  /** Connections open at once. Default 48. */
  concurrency?: number;
  /** First case index. Default 0. */
  first?: number;
  /** Where progress and failures are written; default none. */
  log?: (line: string) => void;
}

export interface FuzzFailure {
  seed: number;
  /** The case index, or -1 for a failure of the run as a whole (crash, `ws` client, leak). */
  index: number;
  kind: string;
  message: string;
}

export interface FuzzResult {
  cases: number;
  failures: FuzzFailure[];
  casesPerSecond: number;
  byKind: Record<string, number>;
}

/** HTTP statuses the server may answer a handshake with (README, "Handshake answers"). */
const ALLOWED_STATUSES = new Set([101, 400, 403, 404, 405, 408, 413, 414, 426, 431, 500, 503, 505]);

/** Close codes a server may send (RFC 6455 §7.4.1, §7.4.2). */
function serverMaySend(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
}

const LIMITS = { maxMessageSize: 64 * 1024, closeTimeout: 200, handshakeTimeout: 300 } as const;
/** Longest a case may take before it counts as a hang. */
const CASE_DEADLINE_MS = 4_000;

// ---------------------------------------------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------------------------------------------

/** mulberry32: small, fast, good enough for fuzzing, and the same on every platform. */
export class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** An integer in [low, high]. */
  range(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
  /** A size that is usually small and sometimes near the limits. */
  size(max: number): number {
    const roll = this.next();
    if (roll < 0.6) return this.int(Math.min(max, 130) + 1);
    if (roll < 0.9) return this.int(Math.min(max, 4096) + 1);
    return this.int(max + 1);
  }
}

/** The generator of case `index` of run `seed`. */
function caseRandom(seed: number, index: number): Random {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x27d4eb2f);
  return new Random(h ^ (h >>> 15));
}

const TEXT_PIECES = ['a', 'Z', ' ', '0', '\n', 'é', 'ß', '€', '中', '😀', '\u0000', '\u{10ffff}'];

function randomText(r: Random, bytes: number): string {
  let out = '';
  for (let length = 0; length < bytes; ) {
    const piece = r.chance(0.7) ? String.fromCharCode(r.range(0x20, 0x7e)) : r.pick(TEXT_PIECES);
    out += piece;
    length += Buffer.byteLength(piece);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------------------------

interface ExpectedMessage {
  binary: boolean;
  data: Buffer;
}

/** What one case sends and what it may check. */
interface FuzzCase {
  kind: 'valid' | 'mutated-frames' | 'handshake';
  /** Bytes after a valid handshake (frame cases), or the whole request and anything after it (handshake cases). */
  bytes: Buffer;
  /** Write sizes the bytes are cut into. */
  chunks: number[];
  /** Delay in ms after each write (0 = same tick). */
  delays: number[];
  /** For valid cases: the exact echoes. */
  echoes?: ExpectedMessage[];
  /** Half-close our side once everything is written (frame cases whose traffic may not end by itself). */
  endAfterWrite: boolean;
  /** Close codes in 1012–1014 the client's bytes may carry in a Close frame: the server may echo them. */
  echoableCodes?: ReadonlySet<number>;
  description: string;
}

const VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999];

function maskKey(r: Random): Uint8Array {
  return r.chance(0.1) ? Uint8Array.of(0, 0, 0, 0) : r.bytes(4);
}

/** A valid sequence of frames: 1–4 messages, maybe fragmented, with Pings in between, then maybe a close. */
function validFrames(r: Random, withClose: boolean): { frames: ClientFrame[]; echoes: ExpectedMessage[] } {
  const frames: ClientFrame[] = [];
  const echoes: ExpectedMessage[] = [];
  const messages = r.range(1, 4);
  for (let m = 0; m < messages; m++) {
    const binary = r.chance(0.4);
    const size = r.size(LIMITS.maxMessageSize);
    const data = binary ? r.bytes(size) : Buffer.from(randomText(r, size), 'utf8');
    echoes.push({ binary, data });
    const pieces = r.chance(0.6) ? 1 : r.range(2, 6);
    const cuts = [0];
    for (let i = 1; i < pieces; i++) cuts.push(r.int(data.length + 1));
    cuts.push(data.length);
    cuts.sort((a, b) => a - b);
    for (let i = 0; i < pieces; i++) {
      frames.push({
        opcode: i === 0 ? (binary ? 0x2 : 0x1) : 0x0,
        fin: i === pieces - 1,
        payload: data.subarray(cuts[i]!, cuts[i + 1]!),
        maskKey: maskKey(r),
      });
      if (r.chance(0.15)) frames.push({ opcode: r.pick([0x9, 0xa]), payload: r.bytes(r.int(126)), maskKey: maskKey(r) });
    }
  }
  if (withClose) frames.push(validClose(r));
  return { frames, echoes };
}

function validClose(r: Random): ClientFrame {
  const roll = r.int(3);
  const payload = roll === 0 ? Buffer.alloc(0) : closePayload(r.pick(VALID_CLOSE_CODES), roll === 1 ? '' : randomText(r, r.int(100)));
  return { opcode: 0x8, payload, maskKey: maskKey(r) };
}

const DECLARED_LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 65537, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 60];

/** A frame with any opcode, RSV bits, FIN, mask, length encoding and declared length. */
function wildFrame(r: Random): ClientFrame {
  const frame: ClientFrame = {
    opcode: r.int(16),
    rsv: r.chance(0.5) ? 0 : r.int(8),
    fin: r.chance(0.7),
    masked: r.chance(0.8),
    maskKey: maskKey(r),
    payload: r.chance(0.5) ? r.bytes(r.size(300)) : Buffer.from(randomText(r, r.size(300))),
  };
  if (r.chance(0.3)) frame.lengthBits = r.pick([7, 16, 64] as const);
  if (r.chance(0.3)) {
    const declared = r.chance(0.7) ? r.pick(DECLARED_LENGTHS) : r.int(70_000);
    const bits = declared < 126 ? r.pick([7, 16, 64] as const) : declared < 65536 ? r.pick([16, 64] as const) : 64;
    frame.declaredLength = declared;
    frame.lengthBits = bits;
  }
  if (frame.lengthBits === 7 && (frame.declaredLength ?? Buffer.byteLength(frame.payload ?? '')) > 125) delete frame.lengthBits;
  if (frame.lengthBits === 16 && (frame.declaredLength ?? Buffer.byteLength(frame.payload ?? '')) > 65535) delete frame.lengthBits;
  if (r.chance(0.05)) {
    frame.lengthBits = 64;
    frame.length64High = r.pick([0x80000000, 0xffffffff, 0x7fffffff, r.int(2 ** 32)]);
  }
  return frame;
}

/** A close frame with a random payload: any code, any reason bytes, any length up to past 125. */
function wildClose(r: Random): ClientFrame {
  const roll = r.int(4);
  let payload: Buffer;
  if (roll === 0) payload = r.bytes(r.int(131));
  else if (roll === 1) payload = Buffer.alloc(1, r.int(256));
  else payload = closePayload(r.chance(0.5) ? r.int(65536) : r.range(990, 1020), r.chance(0.5) ? r.bytes(r.int(130)) : randomText(r, r.int(130)));
  return { opcode: 0x8, payload, masked: r.chance(0.9), maskKey: maskKey(r) };
}

function mutatedFramesCase(r: Random): FuzzCase {
  const { frames } = validFrames(r, false);
  const notes: string[] = [];
  const mutations = r.range(1, 4);
  for (let i = 0; i < mutations; i++) {
    const at = r.int(frames.length + 1);
    switch (r.int(5)) {
      case 0:
        frames.splice(at, 0, wildFrame(r));
        notes.push('wild frame');
        break;
      case 1:
        frames.splice(at, 0, wildClose(r));
        notes.push('wild close');
        break;
      case 2: {
        // A random fragmentation sequence of small text/binary/continuation frames.
        for (let n = r.range(1, 5); n > 0; n--) {
          frames.splice(at, 0, { opcode: r.pick([0, 0, 1, 2, 9, 10]), fin: r.chance(0.5), payload: r.bytes(r.int(40)), maskKey: maskKey(r) });
        }
        notes.push('fragments');
        break;
      }
      case 3:
        if (frames.length > 1) frames.splice(r.int(frames.length), 1);
        notes.push('drop frame');
        break;
      default:
        if (frames.length > 0) frames.splice(at, 0, frames[r.int(frames.length)]!);
        notes.push('duplicate frame');
    }
  }
  let bytes = Buffer.concat(frames.map((frame) => buildFrame(frame)));
  // Byte-level damage: bit flips, truncation, inserted junk.
  const damage = r.int(4);
  if (damage === 1 && bytes.length > 0) {
    for (let n = r.range(1, 4); n > 0; n--) {
      const at = r.int(bytes.length);
      bytes[at] = bytes[at]! ^ (1 << r.int(8));
    }
    notes.push('bit flips');
  } else if (damage === 2 && bytes.length > 0) {
    bytes = bytes.subarray(0, r.int(bytes.length));
    notes.push('truncated');
  } else if (damage === 3) {
    const at = r.int(bytes.length + 1);
    bytes = Buffer.concat([bytes.subarray(0, at), r.bytes(r.range(1, 32)), bytes.subarray(at)]);
    notes.push('junk inserted');
  }
  if (r.chance(0.5)) bytes = Buffer.concat([bytes, buildFrame(validClose(r))]);
  const fuzzCase: FuzzCase = {
    kind: 'mutated-frames',
    bytes,
    ...chunking(r, bytes.length),
    endAfterWrite: true,
    description: `${frames.length} frames, ${bytes.length} bytes: ${notes.join(', ')}`,
  };
  // A close code in 1012–1014 is accepted from the peer and may be echoed. Looked for in the bytes as sent, after
  // the damage: a bit flip can make one out of another code.
  const echoable = echoableCloseCodes(bytes);
  if (echoable.size > 0) fuzzCase.echoableCodes = echoable;
  return fuzzCase;
}

/** The codes in 1012–1014 of every masked Close frame that may start anywhere in `bytes` (RFC 6455 §5.2, §5.3). */
function echoableCloseCodes(bytes: Buffer): Set<number> {
  const codes = new Set<number>();
  for (let at = 0; at + 8 <= bytes.length; at++) {
    const length = bytes[at + 1]! & 0x7f;
    if ((bytes[at]! & 0x0f) !== 0x8 || (bytes[at + 1]! & 0x80) === 0 || length < 2 || length > 125) continue;
    const code = ((bytes[at + 6]! ^ bytes[at + 2]!) << 8) | (bytes[at + 7]! ^ bytes[at + 3]!);
    if (code >= 1012 && code <= 1014) codes.add(code);
  }
  return codes;
}

function validCase(r: Random): FuzzCase {
  const { frames, echoes } = validFrames(r, true);
  const bytes = Buffer.concat(frames.map((frame) => buildFrame(frame)));
  return {
    kind: 'valid',
    bytes,
    ...chunking(r, bytes.length),
    echoes,
    endAfterWrite: false,
    description: `${echoes.length} messages (${echoes.map((e) => `${e.binary ? 'binary' : 'text'} ${e.data.length}`).join(', ')}) in ${frames.length} frames`,
  };
}

const HEADER_NAMES = ['Host', 'Upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Origin',
  'Sec-WebSocket-Protocol', 'Sec-WebSocket-Extensions', 'Content-Length', 'Transfer-Encoding', 'X-Junk', 'Cookie'];

function randomToken(r: Random, max: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&\'*+.^`|~';
  let out = '';
  for (let n = r.range(1, max); n > 0; n--) out += alphabet[r.int(alphabet.length)];
  return out;
}

function randomHeaderValue(r: Random): string {
  switch (r.int(6)) {
    case 0: return '';
    case 1: return r.bytes(r.int(40)).toString('latin1');
    case 2: return randomToken(r, 30);
    case 3: return `${randomToken(r, 10)}, ${randomToken(r, 10)}; x=${randomToken(r, 5)}`;
    case 4: return ' '.repeat(r.int(5)) + randomToken(r, 10) + '\t';
    default: return String(r.int(100000) - 50);
  }
}

function handshakeCase(r: Random): FuzzCase {
  const notes: string[] = [];
  let text: string;
  if (r.chance(0.1)) {
    text = r.bytes(r.size(3000)).toString('latin1');
    notes.push('garbage');
  } else {
    const method = r.chance(0.8) ? 'GET' : r.pick(['POST', 'get', 'HEAD', 'PUT', 'OPTIONS', randomToken(r, 8), '']);
    let path = r.chance(0.8) ? '/' : r.pick(['/x', '*', 'http://127.0.0.1/', '/?q=1', '', '/ /', '/' + randomToken(r, 40)]);
    if (r.chance(0.03)) path = '/' + 'a'.repeat(r.range(8000, 9000));
    const version = r.chance(0.85) ? 'HTTP/1.1' : r.pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/3', 'HTTP/1.2', 'HTTP/9.9', 'http/1.1', 'HTTP/1', 'XYZ', '']);
    const key = r.chance(0.85) ? r.bytes(16).toString('base64') : r.pick(['', 'short', r.bytes(r.int(30)).toString('base64'), '!!!!!!!!!!!!!!!!!!!!!!==']);
    const fields: Array<[string, string]> = [
      ['Host', '127.0.0.1'],
      ['Upgrade', r.chance(0.9) ? 'websocket' : r.pick(['WebSocket', 'h2c', '', 'websocket, foo'])],
      ['Connection', r.chance(0.9) ? 'Upgrade' : r.pick(['keep-alive', 'keep-alive, Upgrade', 'close', ''])],
      ['Sec-WebSocket-Key', key],
      ['Sec-WebSocket-Version', r.chance(0.85) ? '13' : r.pick(['8', '12', '14', '', '13, 8', ' 13', 'abc', '0013'])],
    ];
    for (let n = r.chance(0.3) ? r.range(1, 3) : 0; n > 0; n--) {
      fields.splice(r.int(fields.length), 1);
      notes.push('removed header');
    }
    for (let n = r.chance(0.4) ? r.range(1, 4) : 0; n > 0; n--) {
      fields.splice(r.int(fields.length + 1), 0, [r.chance(0.6) ? r.pick(HEADER_NAMES) : randomToken(r, 20), randomHeaderValue(r)]);
      notes.push('extra header');
    }
    if (r.chance(0.04)) {
      fields.push(['X-Huge', 'h'.repeat(r.range(10_000, 20_000))]);
      notes.push('huge header');
    }
    if (r.chance(0.03)) {
      for (let n = 0; n < 120; n++) fields.push([`X-F${n}`, 'v']);
      notes.push('many headers');
    }
    let lines = [`${method} ${path} ${version}`, ...fields.map(([name, value]) => `${name}: ${value}`)];
    if (r.chance(0.1)) {
      const at = r.int(lines.length);
      lines[at] = r.pick([' ', 'no colon here', ': empty name', 'Bad Name: x', '\tfolded', r.bytes(10).toString('latin1')]);
      notes.push('bad line');
    }
    const eol = r.chance(0.9) ? '\r\n' : r.pick(['\n', '\r', '\r\r\n']);
    if (eol !== '\r\n') notes.push('odd line ends');
    lines = [...lines, '', ''];
    text = lines.join(eol);
    if (r.chance(0.05)) {
      text = text.slice(0, r.int(text.length));
      notes.push('truncated');
    }
  }
  let bytes = Buffer.from(text, 'latin1');
  if (r.chance(0.05) && bytes.length > 0) {
    const at = r.int(bytes.length);
    bytes[at] = bytes[at]! ^ (1 << r.int(8));
    notes.push('bit flip');
  }
  if (r.chance(0.3)) {
    const { frames } = validFrames(r, true);
    bytes = Buffer.concat([bytes, ...frames.map((frame) => buildFrame(frame))]);
    notes.push('frames follow');
  }
  return {
    kind: 'handshake',
    bytes,
    ...chunking(r, bytes.length),
    endAfterWrite: false,
    description: `${bytes.length} bytes: ${notes.join(', ') || 'plain'}`,
  };
}

/** Cuts `length` bytes into 1–8 writes (or one byte per write for short inputs), some with tiny delays. */
function chunking(r: Random, length: number): { chunks: number[]; delays: number[] } {
  const chunks: number[] = [];
  const delays: number[] = [];
  const bytewise = length < 64 && r.chance(0.1);
  let left = length;
  for (let n = 0; left > 0 && n < 200; n++) {
    const size = bytewise ? 1 : n === 7 ? left : Math.min(left, r.chance(0.5) ? r.range(1, 32) : r.range(1, left));
    chunks.push(size);
    delays.push(r.chance(0.2) ? r.range(0, 3) : -1);
    left -= size;
  }
  if (left > 0) chunks.push(left), delays.push(-1);
  return { chunks, delays };
}

/** The case `index` of run `seed`. */
export function generateCase(seed: number, index: number): FuzzCase {
  const r = caseRandom(seed, index);
  const roll = r.next();
  if (roll < 0.3) return validCase(r);
  if (roll < 0.75) return mutatedFramesCase(r);
  return handshakeCase(r);
}

// ---------------------------------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------------------------------

/** A raw connection that records what arrives and when it ends. */
class Connection {
  readonly socket: net.Socket;
  readonly chunks: Buffer[] = [];
  ended = false;
  #waiters: Array<() => void> = [];

  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.setNoDelay(true);
    this.socket.on('connect', () => this.#wake());
    this.socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.#wake();
    });
    const end = (): void => {
      this.ended = true;
      this.#wake();
    };
    this.socket.on('end', end);
    this.socket.on('close', end);
    this.socket.on('error', end); // ECONNRESET / EPIPE: the server may drop us at any point.
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const waiter of waiters) waiter();
  }

  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Resolves true once `condition` holds, false after `ms`. */
  async until(condition: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  async write(bytes: Buffer, chunks: number[], delays: number[]): Promise<void> {
    let at = 0;
    for (let i = 0; i < chunks.length; i++) {
      if (this.ended || this.socket.destroyed || !this.socket.writable) return;
      this.socket.write(bytes.subarray(at, at + chunks[i]!));
      at += chunks[i]!;
      const delay = delays[i]!;
      if (delay === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      else if (delay > 0) await new Promise<void>((resolve) => setTimeout(resolve, delay));
    }
  }
}

const HANDSHAKE = (key: string): Buffer =>
  Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);

function acceptFor(key: string): string {
  return createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
}

/** Splits a reply into its HTTP head (status) and the bytes after it. */
function splitHead(data: Buffer): { status: number; head: string; rest: Buffer } | undefined {
  const end = data.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const head = data.subarray(0, end).toString('latin1');
  const match = /^HTTP\/1\.1 (\d{3}) /.exec(head);
  return { status: match ? Number(match[1]) : -1, head, rest: data.subarray(end + 4) };
}

/** Checks the frames a server sent after 101; returns a problem, or undefined. */
function checkServerFrames(rest: Buffer, fuzzCase: FuzzCase, complete: boolean): string | undefined {
  const { frames, used } = parseServerFrames(rest);
  if (complete && used !== rest.length) return `${rest.length - used} trailing bytes are not a whole frame`;
  const messages: ExpectedMessage[] = [];
  let fragments: ServerFrame[] = [];
  let closed = false;
  for (const frame of frames) {
    if (closed) return `a frame (opcode ${frame.opcode}) after the close frame`;
    if (frame.masked) return 'a masked server frame';
    if (frame.rsv !== 0) return `a server frame with RSV ${frame.rsv}`;
    if (![0, 1, 2, 8, 9, 10].includes(frame.opcode)) return `a server frame with opcode ${frame.opcode}`;
    if (frame.opcode >= 8) {
      if (!frame.fin || frame.payload.length > 125) return 'a bad control frame from the server';
      if (frame.opcode === 8) {
        closed = true;
        if (frame.payload.length === 1) return 'a close frame with a one-byte payload';
        if (frame.payload.length >= 2) {
          const code = frame.payload.readUInt16BE(0);
          if (!serverMaySend(code) && !fuzzCase.echoableCodes?.has(code)) return `close code ${code}, which a server may not send`;
          if (!isUtf8(frame.payload.subarray(2))) return 'a close reason that is not UTF-8';
        }
      }
      continue;
    }
    if ((frame.opcode === 0) !== (fragments.length > 0)) return 'a bad fragment sequence from the server';
    fragments.push(frame);
    if (frame.fin) {
      const data = Buffer.concat(fragments.map((f) => f.payload));
      const binary = fragments[0]!.opcode === 2;
      if (!binary && !isUtf8(data)) return 'a text message that is not UTF-8';
      messages.push({ binary, data });
      fragments = [];
    }
  }
  if (complete && !closed) return 'the connection ended without a close frame';
  if (fuzzCase.echoes) {
    if (messages.length !== fuzzCase.echoes.length) return `${messages.length} echoes for ${fuzzCase.echoes.length} messages`;
    for (let i = 0; i < messages.length; i++) {
      const got = messages[i]!;
      const want = fuzzCase.echoes[i]!;
      if (got.binary !== want.binary || !got.data.equals(want.data)) {
        return `echo ${i} differs: ${got.binary ? 'binary' : 'text'} ${got.data.length} bytes for ${want.binary ? 'binary' : 'text'} ${want.data.length}`;
      }
    }
  }
  return undefined;
}

/** Runs one case; resolves with a problem, or undefined when it passed. */
async function runCase(port: number, fuzzCase: FuzzCase): Promise<string | undefined> {
  const connection = new Connection(port);
  try {
    const connected = await connection.until(() => connection.socket.readyState === 'open' || connection.ended, 2_000);
    if (!connected || connection.ended) return 'could not connect';

    if (fuzzCase.kind === 'handshake') {
      await connection.write(fuzzCase.bytes, fuzzCase.chunks, fuzzCase.delays);
      const answered = await connection.until(() => splitHead(connection.received) !== undefined || connection.ended, LIMITS.handshakeTimeout + 1_500);
      const reply = splitHead(connection.received);
      if (!reply) {
        if (!answered) return 'no answer to the handshake (hang)';
        return `the connection ended without an HTTP answer (${connection.received.length} bytes received)`;
      }
      if (!ALLOWED_STATUSES.has(reply.status)) return `HTTP status ${reply.status}: ${JSON.stringify(reply.head.slice(0, 80))}`;
      if (reply.status !== 101) {
        if (!(await connection.until(() => connection.ended, 1_500))) return `the server kept the connection open after ${reply.status}`;
        return undefined;
      }
      // Accepted: whatever followed the request was frames; finish with a close and expect the server to end.
      connection.socket.write(buildFrame({ opcode: 0x8, payload: closePayload(1000) }));
      connection.socket.end();
      if (!(await connection.until(() => connection.ended, LIMITS.closeTimeout + 1_500))) return 'the server kept an accepted connection open after our close (hang)';
      const after = splitHead(connection.received)!;
      return checkServerFrames(after.rest, fuzzCase, false);
    }

    const key = Buffer.from(Array.from({ length: 16 }, (_, i) => (i * 37 + fuzzCase.bytes.length) & 0xff)).toString('base64');
    connection.socket.write(HANDSHAKE(key));
    if (!(await connection.until(() => splitHead(connection.received) !== undefined || connection.ended, 2_000))) return 'no answer to a valid handshake';
    const reply = splitHead(connection.received);
    if (!reply || reply.status !== 101) return `a valid handshake got ${reply ? reply.status : 'no answer'}`;
    if (!reply.head.toLowerCase().includes(`\r\nsec-websocket-accept: ${acceptFor(key).toLowerCase()}\r\n`) && !reply.head.toLowerCase().endsWith(`\r\nsec-websocket-accept: ${acceptFor(key).toLowerCase()}`)) return 'a wrong Sec-WebSocket-Accept';

    await connection.write(fuzzCase.bytes, fuzzCase.chunks, fuzzCase.delays);
    if (fuzzCase.endAfterWrite) {
      // The traffic may stop mid-frame: give the server a moment, then half-close, which it must answer by ending.
      await connection.until(() => connection.ended, 30);
      if (!connection.ended) connection.socket.end();
    }
    if (!(await connection.until(() => connection.ended, LIMITS.closeTimeout + 2_000))) return 'the connection did not end (hang)';
    const rest = splitHead(connection.received)!.rest;
    // After a valid close the server's close frame must be there; after mutated traffic a plain TCP end is fine.
    return checkServerFrames(rest, fuzzCase, fuzzCase.kind === 'valid');
  } finally {
    connection.socket.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------------------

function heapAfterGc(): number | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== 'function') return undefined;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `cases` cases against one live echo server; resolves with what failed. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const { seed, cases } = options;
  const first = options.first ?? 0;
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 48, cases || 1));
  const log = options.log ?? ((): void => {});
  const failures: FuzzFailure[] = [];
  const byKind: Record<string, number> = {};
  const fail = (index: number, kind: string, message: string): void => {
    failures.push({ seed, index, kind, message });
    log(`FAIL seed=${seed} case=${index} (${kind}): ${message}  — replay: npm run fuzz -- --seed=${seed} --case=${index}`);
  };

  const onUncaught = (error: unknown): void => fail(-1, 'process', `uncaught exception: ${String((error as Error)?.stack ?? error)}`);
  const onRejection = (error: unknown): void => fail(-1, 'process', `unhandled rejection: ${String((error as Error)?.stack ?? error)}`);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);

  const silent = { debug() {}, info() {}, warn() {}, error() {} };
  const server = new WebsocketServer({ port: 0, host: '127.0.0.1', logger: silent, pingInterval: 0, ...LIMITS });
  server.setFnMessageReceived((client, s, message) => s.sendMessage(client, message));
  let ws: WebSocket | undefined;
  let keepTalking = true;
  let talker: Promise<void> = Promise.resolve();
  const started = Date.now();
  try {
    await server.runForever();
    const port = server.port;

    // The well-behaved client: connected before the first case, exact echoes until the last.
    const joined = new Promise<Client>((resolve) => server.setFnNewClient((client) => resolve(client)));
    ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const socket = ws;
    socket.on('error', (error) => fail(-1, 'ws-client', `error: ${error.message}`));
    await Promise.race([
      new Promise<void>((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); }),
      sleep(5_000).then(() => { throw new Error('The ws client did not open within 5 s.'); }),
    ]);
    const wellBehaved = await Promise.race([joined, sleep(2_000).then(() => undefined)]);
    server.setFnNewClient(() => {});
    if (!wellBehaved) throw new Error('The server did not report the ws client within 2 s.');
    let exchanged = 0;
    talker = (async () => {
      const r = new Random(seed ^ 0x5eed);
      while (keepTalking && socket.readyState === WebSocket.OPEN) {
        const binary = r.chance(0.3);
        const message = binary ? r.bytes(r.size(8192)) : randomText(r, r.size(8192));
        const echoed = new Promise<{ data: Buffer; isBinary: boolean } | undefined>((resolve) => {
          const timer = setTimeout(() => { socket.off('message', onMessage); resolve(undefined); }, 3_000);
          function onMessage(data: Buffer, isBinary: boolean): void {
            clearTimeout(timer);
            resolve({ data, isBinary });
          }
          socket.once('message', onMessage);
        });
        socket.send(message, { binary });
        const got = await echoed;
        const want = binary ? (message as Buffer) : Buffer.from(message as string, 'utf8');
        if (!got) {
          fail(-1, 'ws-client', `no echo within 3 s for message ${exchanged}`);
          return;
        }
        if (got.isBinary !== binary || !Buffer.from(got.data).equals(want)) {
          fail(-1, 'ws-client', `echo ${exchanged} differs`);
          return;
        }
        exchanged++;
        await sleep(2);
      }
    })();

    const baseline = heapAfterGc();
    let next = first;
    let done = 0;
    let lastReport = Date.now();
    const worker = async (): Promise<void> => {
      for (let index = next++; index < first + cases; index = next++) {
        let fuzzCase: FuzzCase;
        try {
          fuzzCase = generateCase(seed, index);
        } catch (error) {
          fail(index, 'generator', String(error));
          continue;
        }
        byKind[fuzzCase.kind] = (byKind[fuzzCase.kind] ?? 0) + 1;
        let timer: NodeJS.Timeout | undefined;
        const problem = await Promise.race([
          runCase(port, fuzzCase).catch((error: unknown) => `the case threw: ${String(error)}`),
          new Promise<string>((resolve) => { timer = setTimeout(() => resolve(`no verdict within ${CASE_DEADLINE_MS} ms (hang)`), CASE_DEADLINE_MS); }),
        ]);
        clearTimeout(timer);
        if (problem !== undefined) fail(index, fuzzCase.kind, `${problem} [${fuzzCase.description}]`);
        done++;
        if (Date.now() - lastReport > 5_000) {
          lastReport = Date.now();
          log(`${done}/${cases} cases, ${Math.round(done / ((Date.now() - started) / 1000))} cases/s, ${failures.length} failures`);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, () => worker()));
    const elapsed = (Date.now() - started) / 1000;

    // Every fuzz connection must be gone: only the well-behaved client is left.
    const settleDeadline = Date.now() + LIMITS.closeTimeout + LIMITS.handshakeTimeout + 2_000;
    while (Date.now() < settleDeadline && !(server.clients.length === 1 && server.clients[0] === wellBehaved)) await sleep(10);
    if (!(server.clients.length === 1 && server.clients[0] === wellBehaved)) {
      fail(-1, 'leak', `server.clients holds ${server.clients.length} clients (ids ${server.clients.map((c) => c.id).slice(0, 10).join(', ')}) after the run, not just the ws client`);
    }
    keepTalking = false;
    await Promise.race([talker, sleep(4_000)]);
    if (socket.readyState !== WebSocket.OPEN) fail(-1, 'ws-client', 'the ws client was disconnected during the run');
    else if (exchanged === 0) fail(-1, 'ws-client', 'the ws client exchanged no message');

    if (baseline !== undefined) {
      const after = heapAfterGc()!;
      const allowed = baseline + 16 * 1024 * 1024;
      if (after > allowed) fail(-1, 'memory', `heapUsed ${after} after the run, baseline ${baseline}`);
      else log(`heap: baseline ${(baseline / 1048576).toFixed(1)} MiB, after ${(after / 1048576).toFixed(1)} MiB`);
    }
    const casesPerSecond = Math.round(cases / elapsed);
    log(`${cases} cases in ${elapsed.toFixed(1)} s: ${casesPerSecond} cases/s, ${failures.length} failures, ws client exchanged ${exchanged} messages, kinds ${JSON.stringify(byKind)}`);
    return { cases, failures, casesPerSecond, byKind };
  } finally {
    keepTalking = false;
    ws?.terminate();
    await Promise.race([talker, sleep(4_000)]);
    await Promise.race([server.shutdownAbruptly().catch(() => undefined), sleep(4_000)]);
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onRejection);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------------------------

function argument(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv.find((arg) => arg.startsWith(prefix))?.slice(prefix.length);
}

async function main(): Promise<void> {
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') {
    // The memory check wants a real gc; this exposes it without a node flag.
    setFlagsFromString('--expose-gc');
    (globalThis as { gc?: unknown }).gc = runInNewContext('gc');
  }
  const seed = Number(argument('seed') ?? Date.now() % 1_000_000_000);
  const single = argument('case');
  const concurrency = Number(argument('concurrency') ?? 48);
  if (single !== undefined) {
    const index = Number(single);
    const fuzzCase = generateCase(seed, index);
    console.log(`seed=${seed} case=${index} kind=${fuzzCase.kind}: ${fuzzCase.description}`);
    console.log(`bytes (first 256, hex): ${fuzzCase.bytes.subarray(0, 256).toString('hex')}`);
    const result = await runFuzz({ seed, cases: 1, first: index, concurrency: 1, log: (line) => console.log(line) });
    process.exitCode = result.failures.length > 0 ? 1 : 0;
    return;
  }
  const cases = Number(argument('cases') ?? 10_000);
  console.log(`fuzzing: seed=${seed} cases=${cases} concurrency=${concurrency}`);
  const result = await runFuzz({ seed, cases, concurrency, log: (line) => console.log(line) });
  if (result.failures.length > 0) {
    console.log(`${result.failures.length} failures (seed ${seed}): cases ${[...new Set(result.failures.map((f) => f.index))].slice(0, 50).join(', ')}`);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
