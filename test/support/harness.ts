// The one test harness: a server under test with recording callbacks, and the two kinds of peers the tests drive:
// the raw client (exact bytes, see ./raw-client.ts) and `ws` (an independent implementation), opened in one place
// (`newWs`). Every wait is bounded and every server, socket and client is cleaned up in `t.after`.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { TestContext } from 'node:test';
import WebSocket from 'ws';
import { WebsocketServer } from '../../websocket-server.ts';
import type { Client, Logger, Message, WebsocketServerOptions } from '../../websocket-server.ts';
import { Op } from './frames.ts';
import type { ServerFrame } from './frames.ts';
import { connectRaw } from './raw-client.ts';
import type { RawClient } from './raw-client.ts';
import { SILENT, until, within } from './wait.ts';

/** What cleans up after a test: a `TestContext`, or a stand-in for a server shared by a whole `describe`. */
export interface Cleanup {
  after(fn: () => unknown): void;
}

/** A running server and everything its callbacks saw, in order. */
export interface Harness {
  readonly server: WebsocketServer;
  readonly joined: Client[];
  readonly left: Client[];
  readonly messages: Array<{ client: Client; message: Message }>;
  readonly errors: Array<{ error: Error; client: Client | null }>;
}

/**
 * Starts a server (default options: 127.0.0.1, an ephemeral port, a silent logger) that records every callback
 * and, unless `echo: false`, sends every message back to its sender with `sendMessage`. `runForever()` is awaited
 * (bounded) unless `run: false`. The server is shut down abruptly after the test, if it still runs.
 *
 * @example
 * ```ts
 * const h = await startServer(t, { perMessageDeflate: true });
 * const { raw, client } = await connectRawClient(t, h, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
 * ```
 */
export async function startServer(
  t: Cleanup,
  options: WebsocketServerOptions = {},
  behaviour: { echo?: boolean; run?: boolean } = {},
): Promise<Harness> {
  const server = new WebsocketServer({ logger: SILENT, ...options });
  const h: Harness = { server, joined: [], left: [], messages: [], errors: [] };
  server.setFnNewClient((client) => h.joined.push(client));
  server.setFnClientLeft((client) => h.left.push(client));
  server.setFnError((error, client) => h.errors.push({ error, client }));
  const echo = behaviour.echo ?? true;
  server.setFnMessageReceived((client, self, message) => {
    h.messages.push({ client, message });
    if (echo) self.sendMessage(client, message);
  });
  t.after(() => shutdownQuietly(server));
  if (behaviour.run ?? true) await within(server.runForever(), 'runForever()');
  return h;
}

/**
 * Starts a server that never listens itself, as `startServer` records and echoes: a node:http app on 127.0.0.1,
 * an ephemeral port, answers plain requests with `plain http` and hands the server its upgrades through
 * `handleUpgrade`. `port` is the app's. Both are closed after the test.
 */
export async function startBehindApp(
  t: TestContext,
  options: WebsocketServerOptions = {},
  behaviour: { echo?: boolean } = {},
): Promise<Harness & { readonly port: number }> {
  const h = await startServer(t, options, { ...behaviour, run: false });
  const app = createHttpServer((_request, response) => response.end('plain http'));
  app.on('upgrade', (request, socket, head) => h.server.handleUpgrade(request, socket, head));
  app.listen(0, '127.0.0.1');
  await within(once(app, 'listening'), 'the app to listen');
  t.after(async () => {
    app.closeAllConnections();
    await new Promise((resolve) => app.close(resolve));
  });
  const address = app.address();
  if (typeof address !== 'object' || address === null) throw new Error('The app has no address.');
  return { ...h, port: address.port };
}

/** Cleanup: a server may already be shut down (or never have run) when the test ends. */
export async function shutdownQuietly(server: WebsocketServer): Promise<void> {
  try {
    await server.shutdownAbruptly();
  } catch {
    // already stopped
  }
}

/** The messages the server received, in order: from `client`, or from every client when none is given. */
export function messagesFrom(h: Harness, client?: Client): Message[] {
  return h.messages.filter((entry) => client === undefined || entry.client === client).map((entry) => entry.message);
}

/** Opens a raw client (handshake completed) to 127.0.0.1:`port`, destroyed after the test. */
export async function openRaw(
  t: TestContext,
  port: number,
  options: { path?: string; headers?: Record<string, string> } = {},
): Promise<RawClient> {
  const raw = await within(connectRaw(port, options), 'the raw client to connect');
  t.after(() => raw.destroy());
  return raw;
}

/** Opens a raw client (handshake completed) and waits for the server's new-client call for it. */
export async function connectRawClient(
  t: TestContext,
  h: Harness,
  options: { path?: string; headers?: Record<string, string> } = {},
): Promise<{ raw: RawClient; client: Client }> {
  const before = h.joined.length;
  const raw = await openRaw(t, h.server.port, options);
  await until(() => h.joined.length > before, 'new-client for the raw client');
  return { raw, client: h.joined[before]! };
}

/** Reads the next `count` frames of a raw client. */
export async function readFrames(raw: RawClient, count: number, timeoutMs = 5_000): Promise<ServerFrame[]> {
  const frames: ServerFrame[] = [];
  for (let i = 0; i < count; i++) frames.push(await raw.nextFrame(timeoutMs));
  return frames;
}

/** Asserts an uncompressed, final, unmasked server frame with the exact opcode and payload. */
export function assertPlainFrame(frame: ServerFrame, opcode: number, payload: Buffer | string): void {
  const expected = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  assert.equal(frame.opcode, opcode, 'opcode');
  assert.equal(frame.fin, true, 'FIN');
  assert.equal(frame.rsv, 0, 'RSV bits');
  assert.equal(frame.masked, false, 'server frames are not masked (RFC 6455 §5.1)');
  assert.equal(frame.payload.length, expected.length, 'payload length');
  assert.ok(frame.payload.equals(expected), 'payload bytes differ');
}

/** Sends a text message from a raw client and expects the echo as its very next frame (uncompressed). */
export async function assertRawEchoes(raw: RawClient, text = 'still serving'): Promise<void> {
  raw.sendFrame({ opcode: Op.TEXT, payload: text });
  assertPlainFrame(await raw.nextFrame(), Op.TEXT, text);
}

/** Opens a fresh raw client and checks that the server still completes handshakes and echoes. */
export async function assertServerStillServes(t: TestContext, h: Harness): Promise<void> {
  const { raw } = await connectRawClient(t, h);
  await assertRawEchoes(raw, 'the server still serves');
}

/** Where and how a `ws` client connects: a full URL, then `ws`'s subprotocols and client options. */
export type WsTarget = [url: string, protocols?: string[], options?: WebSocket.ClientOptions];

/**
 * The one place a test creates a `ws` client: terminated after the test, with an error listener so that no test
 * crashes on a client error.
 */
export function newWs(t: TestContext, ...[url, protocols = [], options = {}]: WsTarget): WebSocket {
  const ws = protocols.length > 0 ? new WebSocket(url, protocols, options) : new WebSocket(url, options);
  t.after(() => ws.terminate());
  ws.on('error', () => {}); // errors are expected by some tests: an unhandled one would crash the run
  return ws;
}

/** Resolves once `ws` is open; rejects if it is refused or fails. */
function opened(ws: WebSocket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) =>
      reject(new Error(`The handshake was refused with ${response.statusCode}.`)));
  });
}

/** Opens a `ws` client and resolves once it is open; rejects (bounded) if it is refused or fails. */
export async function openWs(t: TestContext, ...target: WsTarget): Promise<WebSocket> {
  const ws = newWs(t, ...target);
  await within(opened(ws), `${target[0]} to open`);
  return ws;
}

/** `ws://127.0.0.1:<the server's port><path>`. */
export function urlOf(h: Harness, path = '/'): string {
  return `ws://127.0.0.1:${h.server.port}${path}`;
}

/**
 * A `ws` client with what it received and its close event. Not its TCP socket: under Bun, `ws` is Bun's built-in
 * client, which does not expose one; a test that needs the socket uses the raw client.
 */
export interface RecordedWs {
  readonly ws: WebSocket;
  readonly inbox: Array<{ data: Buffer; isBinary: boolean }>;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly errors: Error[];
}

/** A recorded `ws` client and the server's record of it. */
export interface WsPeer extends RecordedWs {
  readonly client: Client;
}

/** Records what a `ws` client receives, its errors and its close event, from now on. */
function recordWs(ws: WebSocket): RecordedWs {
  const peer: RecordedWs = {
    ws,
    inbox: [],
    errors: [],
    closed: new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
  };
  ws.on('message', (data, isBinary) => peer.inbox.push({ data: rawDataToBuffer(data), isBinary }));
  ws.on('error', (error) => peer.errors.push(error));
  return peer;
}

/**
 * Opens a recorded `ws` client to 127.0.0.1 (the server's port and `/` unless told) and waits for its open event
 * and the server's new-client call for it (connect one at a time).
 */
export async function connectWs(
  t: TestContext,
  h: Harness,
  options: WebSocket.ClientOptions = {},
  where: { port?: number; path?: string } = {},
): Promise<WsPeer> {
  const before = h.joined.length;
  const url = `ws://127.0.0.1:${where.port ?? h.server.port}${where.path ?? '/'}`;
  const peer = recordWs(newWs(t, url, [], options));
  await within(opened(peer.ws), 'the ws client to open');
  await until(() => h.joined.length > before, 'new-client for the ws client');
  return { ...peer, client: h.joined[before]! };
}

/** Waits until a `ws` client has received at least `count` messages. */
export async function receivedCount(peer: RecordedWs, count: number, ms = 5_000): Promise<void> {
  await until(() => peer.inbox.length >= count, `${count} message(s) at the ws client (has ${peer.inbox.length})`, ms);
}

/** Waits for the next message the ws client receives after `count` already received. */
export async function nextMessage(peer: RecordedWs, count = peer.inbox.length): Promise<{ data: Buffer; isBinary: boolean }> {
  await until(() => peer.inbox.length > count, 'a message at the ws client');
  return peer.inbox[count]!;
}

/** Sends `text` and resolves with the next message the client receives, as a string. */
export async function echo(ws: WebSocket, text: string): Promise<string> {
  const reply = new Promise<string>((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString('utf8'))));
  ws.send(text);
  return within(reply, `the echo of ${JSON.stringify(text)}`);
}

/** An HTTP answer to a refused `ws` handshake. */
export interface Refusal {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Opens a `ws` client that must be refused; resolves with the status, headers and body of the refusal. */
export async function refusedWs(t: TestContext, ...target: WsTarget): Promise<Refusal> {
  const ws = newWs(t, ...target);
  return within(
    new Promise<Refusal>((resolve, reject) => {
      ws.once('open', () => reject(new Error('The handshake was accepted.')));
      ws.once('unexpected-response', (_request, response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? -1, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      });
    }),
    `${target[0]} to be refused`,
  );
}

function rawDataToBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Asserts that constructing a server with `options` throws exactly `ErrorClass`, with a full-sentence message
 * that matches `names` (the option it is about).
 */
export function assertOptionError(
  options: Record<string, unknown>,
  ErrorClass: typeof TypeError | typeof RangeError,
  names: RegExp,
): void {
  assert.throws(
    () => new WebsocketServer(options as WebsocketServerOptions),
    (thrown: unknown) => {
      assert.ok(thrown instanceof Error, `expected an error, got ${String(thrown)}`);
      assert.equal(thrown.constructor, ErrorClass, `expected exactly a ${ErrorClass.name}, got ${thrown.constructor.name}: ${thrown.message}`);
      assert.match(thrown.message, names);
      assert.match(thrown.message, /\.$/, 'the message is a full sentence');
      return true;
    },
  );
}

/** A logger that records each line by level. */
export function recordingLogger(): Logger & { lines: Record<'debug' | 'info' | 'warn' | 'error', string[]> } {
  const lines = { debug: [] as string[], info: [] as string[], warn: [] as string[], error: [] as string[] };
  return {
    lines,
    debug: (m) => lines.debug.push(m),
    info: (m) => lines.info.push(m),
    warn: (m) => lines.warn.push(m),
    error: (m) => lines.error.push(m),
  };
}

/** A port of 127.0.0.1 that was free a moment ago (bound with port 0, then released): nothing listens on it now. */
export async function freePort(): Promise<number> {
  const probe = createNetServer();
  probe.listen(0, '127.0.0.1');
  await within(once(probe, 'listening'), 'a free port');
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('Could not find a free port: no address.');
  return address.port;
}

/**
 * Deterministic pseudo-random bytes (xorshift32): the same `seed` always gives the same bytes, so a failure
 * can be reproduced, and the data does not compress (unlike a repeated pattern).
 */
export function pseudoRandomBytes(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = state & 0xff;
  }
  return out;
}

/** Pseudo-random printable ASCII text of exactly `length` bytes (compresses to about 80 %). */
export function pseudoRandomText(length: number, seed = 1): string {
  const bytes = pseudoRandomBytes(length, seed);
  for (let i = 0; i < length; i++) bytes[i] = 0x20 + (bytes[i]! % 95);
  return bytes.toString('latin1');
}
