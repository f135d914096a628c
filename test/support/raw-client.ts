// Test-side WebSocket client over a raw `node:net` socket (RFC 6455 §4.1 handshake, §5 frames).
// Independent of the library on purpose: it sends exactly the bytes a test asks for, never answers anything by
// itself (no automatic pong, close reply or TCP FIN), and decodes what the server sends with ./frames.ts.
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { buildFrame, parseServerFrames } from './frames.ts';
import type { ClientFrame, ServerFrame } from './frames.ts';

/** The GUID of RFC 6455 §1.3, appended to the key to compute `Sec-WebSocket-Accept`. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Every wait in this module gives up after this long unless told otherwise. */
const DEFAULT_TIMEOUT_MS = 5000;
/** How long {@link rawRequest} waits, after a complete refusal, for the server to close the socket. */
const CLOSE_GRACE_MS = 1000;

/**
 * An HTTP response as received.
 *
 * @example
 * ```ts
 * const reply = await rawRequest(port, handshakeRequest({ method: 'POST' }));
 * assert.equal(reply.status, 405);
 * assert.equal(reply.headers['allow'], 'GET');
 * ```
 */
export interface HttpReply {
  /** The status code of the status line, e.g. `101`. */
  status: number;
  /** The reason phrase of the status line, e.g. `'Switching Protocols'`. */
  statusText: string;
  /** Header fields by lower-case name; a repeated field's values are joined with `', '`. */
  headers: Record<string, string>;
  /** The body, decoded as UTF-8: exactly `Content-Length` bytes, or everything up to the close without it. */
  body: string;
}

/**
 * A connection that completed the opening handshake, driven byte by byte by the test.
 *
 * @example
 * ```ts
 * const client = await connectRaw(server.port);
 * client.sendFrame({ opcode: Op.TEXT, payload: 'hello' });
 * const echo = await client.nextFrame();
 * client.sendFrame({ opcode: Op.CLOSE, payload: closePayload(1000) });
 * assert.equal((await client.closeFrame()).code, 1000);
 * await client.ended();
 * ```
 */
export interface RawClient {
  /** The underlying socket (opened with `allowHalfOpen: true`, so the client never sends FIN by itself). */
  readonly socket: net.Socket;
  /** The HTTP reply to the handshake (status 101 on success). */
  readonly handshake: HttpReply;
  /** Writes bytes as they are. Errors of writing to a closed connection are swallowed. */
  sendRaw(bytes: Buffer): void;
  /** Writes one frame built by `buildFrame` (masked unless the frame says otherwise). */
  sendFrame(frame: ClientFrame): void;
  /** The next decoded server frame, in order. Rejects on timeout or if the socket ends first. */
  nextFrame(timeoutMs?: number): Promise<ServerFrame>;
  /** Reads frames until a close frame and resolves with it. Rejects on timeout or if the socket ends first. */
  closeFrame(timeoutMs?: number): Promise<ReceivedClose>;
  /** Resolves when the server has ended/closed the TCP connection (FIN or reset). Rejects on timeout. */
  ended(timeoutMs?: number): Promise<void>;
  /** Destroys the socket now (no close frame, no FIN). Safe to call more than once. */
  destroy(): void;
}

/** A close frame as {@link RawClient.closeFrame} received it. */
export interface ReceivedClose {
  /** The status code, or undefined if the payload was empty. */
  code: number | undefined;
  reason: string;
  /** The data frames received before it. */
  before: ServerFrame[];
}

/** One step of a wait: `done` with a value, or not yet. A thrown error rejects the wait. */
type Poll<T> = { done: true; value: T } | { done: false };

/**
 * Everything a socket has received and not yet consumed, plus whether it has ended, with waits that re-check a
 * condition each time something arrives.
 */
class ReceivedBytes {
  pending: Buffer = Buffer.alloc(0);
  ended = false;
  error: Error | undefined;
  readonly #waiters = new Set<() => void>();

  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
      this.#notify();
    });
    // 'end' is the server's FIN; 'close' also covers a reset (after 'error') and our own destroy().
    socket.on('end', () => this.#markEnded());
    socket.on('close', () => this.#markEnded());
    socket.on('error', (error: Error) => {
      this.error ??= error;
    });
  }

  /** Takes the first `length` bytes of what is pending. */
  take(length: number): Buffer {
    const taken = this.pending.subarray(0, length);
    this.pending = this.pending.subarray(length);
    return taken;
  }

  /** Describes how the connection ended, for error messages. */
  describeEnd(): string {
    return this.error ? `the connection ended (${this.error.message})` : 'the server ended the connection';
  }

  /** Resolves once `poll` says done; re-polls on every arrival and on the end; rejects after `timeoutMs`. */
  waitFor<T>(poll: () => Poll<T>, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(attempt);
      };
      const attempt = (): void => {
        let result: Poll<T>;
        try {
          result = poll();
        } catch (error) {
          finish();
          reject(error);
          return;
        }
        if (result.done) {
          finish();
          resolve(result.value);
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`Timed out after ${timeoutMs} ms waiting for ${what}.`));
      }, timeoutMs);
      this.#waiters.add(attempt);
      attempt();
    });
  }

  #markEnded(): void {
    if (this.ended) return;
    this.ended = true;
    this.#notify();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** Parses a response head (status line and header lines, without the blank line). */
function parseHead(head: string): Omit<HttpReply, 'body'> {
  const [statusLine = '', ...lines] = head.split('\r\n');
  const match = /^HTTP\/\d+(?:\.\d+)? (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!match) throw new Error(`The server sent a malformed status line: ${JSON.stringify(statusLine)}.`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`The server sent a malformed header line: ${JSON.stringify(line)}.`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { status: Number(match[1]), statusText: match[2] ?? '', headers };
}

/** Waits for a complete response head and parses it; the bytes after the blank line stay pending. */
async function readHead(received: ReceivedBytes, timeoutMs: number): Promise<Omit<HttpReply, 'body'>> {
  const head = await received.waitFor<string>(
    () => {
      const end = received.pending.indexOf('\r\n\r\n');
      if (end !== -1) {
        const text = received.take(end).toString('latin1');
        received.take(4);
        return { done: true, value: text };
      }
      if (received.ended) {
        throw new Error(
          `No HTTP response head: ${received.describeEnd()} after ${received.pending.length} bytes ` +
            `(${JSON.stringify(received.pending.toString('latin1').slice(0, 200))}).`,
        );
      }
      return { done: false };
    },
    timeoutMs,
    'the HTTP response head',
  );
  return parseHead(head);
}

/**
 * Reads the body after a parsed head: `Content-Length` bytes if given; nothing for 101/204/304; else everything
 * until the server closes. Resolves early with what arrived if the server closes before `Content-Length` is met.
 */
async function readBody(received: ReceivedBytes, head: Omit<HttpReply, 'body'>, timeoutMs: number): Promise<string> {
  if (head.status === 101 || head.status === 204 || head.status === 304) return '';
  const declared = head.headers['content-length'];
  const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : undefined;
  const body = await received.waitFor<Buffer>(
    () => {
      if (length !== undefined && received.pending.length >= length) return { done: true, value: received.take(length) };
      if (received.ended) return { done: true, value: received.take(received.pending.length) };
      return { done: false };
    },
    timeoutMs,
    length === undefined ? 'the response body (until close)' : `a ${length}-byte response body`,
  );
  return body.toString('utf8');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A fresh `Sec-WebSocket-Key`: base64 of 16 random bytes (§4.1). */
function randomKey(): string {
  return randomBytes(16).toString('base64');
}

/** The `Sec-WebSocket-Accept` value for a key (§4.2.2 step 5.4). */
function acceptFor(key: string): string {
  return createHash('sha1').update(key + WEBSOCKET_GUID).digest('base64');
}

/**
 * A valid handshake request text for path '/' with the given extra headers (value null removes a default header).
 *
 * Defaults: `GET / HTTP/1.1` with `Host: 127.0.0.1`, `Upgrade: websocket`, `Connection: Upgrade`, a fresh random
 * `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`. A header whose name matches a default one
 * (case-insensitively) replaces it in place, under the given spelling; other headers are appended in order.
 * `version` is the request line's HTTP-version, `'HTTP/1.0'` or just `'1.0'`.
 *
 * @example
 * ```ts
 * handshakeRequest({ method: 'POST', headers: { 'Sec-WebSocket-Version': '8', Origin: 'http://example.com' } });
 * handshakeRequest({ headers: { Host: null } }); // no Host header
 * ```
 */
export function handshakeRequest(
  options: { path?: string; method?: string; version?: string; headers?: Record<string, string | null> } = {},
): string {
  const fields: Array<[string, string]> = [
    ['Host', '127.0.0.1'],
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Key', randomKey()],
    ['Sec-WebSocket-Version', '13'],
  ];
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    const at = fields.findIndex(([existing]) => existing.toLowerCase() === name.toLowerCase());
    if (value === null) {
      if (at !== -1) fields.splice(at, 1);
    } else if (at !== -1) {
      fields[at] = [name, value];
    } else {
      fields.push([name, value]);
    }
  }
  const version = options.version ?? 'HTTP/1.1';
  const requestLine = `${options.method ?? 'GET'} ${options.path ?? '/'} ${/^\d/.test(version) ? `HTTP/${version}` : version}`;
  return [requestLine, ...fields.map(([name, value]) => `${name}: ${value}`), '', ''].join('\r\n');
}

/**
 * Opens a TCP connection to 127.0.0.1:port, sends a valid handshake (extra/overridden headers allowed), verifies
 * 101 and Sec-WebSocket-Accept, returns the client. Rejects if the reply is not 101 (or the Accept is wrong, or
 * no reply comes within 5 s). Bytes that arrive together with the 101 reply are kept as frames.
 *
 * @example
 * ```ts
 * const client = await connectRaw(port, { path: '/chat?room=1', headers: { Origin: 'http://localhost' } });
 * t.after(() => client.destroy());
 * ```
 */
export async function connectRaw(
  port: number,
  options: { path?: string; headers?: Record<string, string> } = {},
): Promise<RawClient> {
  const headers: Record<string, string> = { Host: `127.0.0.1:${port}`, 'Sec-WebSocket-Key': randomKey(), ...options.headers };
  // The last spelling of the key wins in handshakeRequest, so the Accept is checked against that one.
  const key = Object.entries(headers).filter(([name]) => name.toLowerCase() === 'sec-websocket-key').at(-1)?.[1] ?? '';
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.setNoDelay(true);
  const received = new ReceivedBytes(socket);
  const request = options.path === undefined ? handshakeRequest({ headers }) : handshakeRequest({ path: options.path, headers });
  socket.write(request);

  let handshake: HttpReply;
  try {
    const head = await readHead(received, DEFAULT_TIMEOUT_MS);
    if (head.status !== 101) {
      const body = await readBody(received, head, 1000).catch(() => '');
      throw new Error(`The handshake was refused: ${head.status} ${head.statusText} ${JSON.stringify(body)}.`);
    }
    const accept = head.headers['sec-websocket-accept'];
    if (accept !== acceptFor(key)) {
      throw new Error(`The 101 reply has Sec-WebSocket-Accept ${JSON.stringify(accept)}, not ${JSON.stringify(acceptFor(key))}.`);
    }
    handshake = { ...head, body: '' };
  } catch (error) {
    socket.destroy();
    throw error;
  }

  const frames: ServerFrame[] = [];
  /** Moves every complete frame from the pending bytes to `frames`. */
  const decode = (): void => {
    const { frames: decoded, used } = parseServerFrames(received.pending);
    if (used > 0) {
      received.take(used);
      frames.push(...decoded);
    }
  };
  const write = (bytes: Buffer): void => {
    if (!socket.destroyed && socket.writable) socket.write(bytes);
  };

  return {
    socket,
    handshake,
    sendRaw: write,
    sendFrame(frame: ClientFrame): void {
      write(buildFrame(frame));
    },
    nextFrame(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ServerFrame> {
      return received.waitFor<ServerFrame>(
        () => {
          decode();
          const frame = frames.shift();
          if (frame) return { done: true, value: frame };
          if (received.ended) throw new Error(`No next frame: ${received.describeEnd()}.`);
          return { done: false };
        },
        timeoutMs,
        'the next server frame',
      );
    },
    closeFrame(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ReceivedClose> {
      const before: ServerFrame[] = [];
      return received.waitFor<ReceivedClose>(
        () => {
          decode();
          for (let frame = frames.shift(); frame; frame = frames.shift()) {
            if (frame.opcode === 0x8) {
              const code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined;
              return { done: true, value: { code, reason: frame.payload.subarray(2).toString('utf8'), before } };
            }
            before.push(frame);
          }
          if (received.ended) {
            throw new Error(`No close frame: ${received.describeEnd()} after ${before.length} other frame(s).`);
          }
          return { done: false };
        },
        timeoutMs,
        'a close frame',
      );
    },
    ended(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
      return received.waitFor<void>(
        () => (received.ended ? { done: true, value: undefined } : { done: false }),
        timeoutMs,
        'the server to end the TCP connection',
      );
    },
    destroy(): void {
      socket.destroy();
    },
  };
}

/**
 * Sends raw request bytes (optionally as several chunks with a small delay between), reads the HTTP reply
 * head+body until the server closes or Content-Length is satisfied, and reports whether the server then closed
 * the socket (waiting up to 1 s for it; a 101 reply is not waited on). The socket is destroyed before resolving.
 * Rejects if no complete head arrives within `timeoutMs` (default 5000).
 *
 * @example
 * ```ts
 * const reply = await rawRequest(port, [...handshakeRequest()], { chunkDelayMs: 1 }); // one byte per write
 * assert.equal(reply.status, 101);
 * ```
 */
export async function rawRequest(
  port: number,
  request: string | Buffer | Array<string | Buffer>,
  options: { chunkDelayMs?: number; timeoutMs?: number } = {},
): Promise<HttpReply & { closed: boolean }> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const chunks = Array.isArray(request) ? request : [request];
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.setNoDelay(true);
  const received = new ReceivedBytes(socket);

  const writeAll = async (): Promise<void> => {
    for (let i = 0; i < chunks.length; i++) {
      if (socket.destroyed || !socket.writable || received.ended) return;
      socket.write(chunks[i]!);
      if (options.chunkDelayMs !== undefined && i < chunks.length - 1) await sleep(options.chunkDelayMs);
    }
  };
  const writing = writeAll().catch(() => undefined);

  try {
    const started = Date.now();
    const head = await readHead(received, timeoutMs);
    const body = await readBody(received, head, Math.max(1, timeoutMs - (Date.now() - started)));
    let closed = received.ended;
    if (!closed && head.status !== 101) {
      closed = await received
        .waitFor<boolean>(() => (received.ended ? { done: true, value: true } : { done: false }), CLOSE_GRACE_MS, 'close')
        .catch(() => false);
    }
    return { ...head, body, closed };
  } finally {
    socket.destroy();
    await writing;
  }
}
