// A server under test with recording callbacks, and the two kinds of peers the feature tests drive: the raw
// client (exact bytes, see ./raw-client.ts) and `ws` (an independent implementation). Every wait is bounded and
// every server, socket and client is cleaned up in `t.after`.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import type { TestContext } from 'node:test';
import WebSocket from 'ws';
import { WebsocketServer } from '../../websocket-server.ts';
import type { Client, Message, WebsocketServerOptions } from '../../websocket-server.ts';
import { Op } from './frames.ts';
import type { ServerFrame } from './frames.ts';
import { connectRaw } from './raw-client.ts';
import type { RawClient } from './raw-client.ts';
import { SILENT, until, within } from './wait.ts';

/** A running server and everything its callbacks saw, in order. */
export interface Harness {
  readonly server: WebsocketServer;
  readonly joined: Client[];
  readonly left: Client[];
  readonly messages: Array<{ client: Client; message: Message }>;
  readonly errors: Array<{ error: Error; client: Client | null }>;
}

/**
 * Starts a server on 127.0.0.1, port 0, that records every callback and (unless `echo: false`) sends every
 * message back to its sender with `sendMessage`. It is shut down abruptly after the test.
 *
 * @example
 * ```ts
 * const h = await startServer(t, { perMessageDeflate: true });
 * const { raw, client } = await connectRawClient(t, h, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
 * ```
 */
export async function startServer(
  t: TestContext,
  options: WebsocketServerOptions = {},
  behaviour: { echo?: boolean } = {},
): Promise<Harness> {
  const server = new WebsocketServer({ logger: SILENT, host: '127.0.0.1', port: 0, ...options });
  const h: Harness = { server, joined: [], left: [], messages: [], errors: [] };
  server.setFnNewClient((client) => h.joined.push(client));
  server.setFnClientLeft((client) => h.left.push(client));
  server.setFnError((error, client) => h.errors.push({ error, client }));
  const echo = behaviour.echo ?? true;
  server.setFnMessageReceived((client, self, message) => {
    h.messages.push({ client, message });
    if (echo) self.sendMessage(client, message);
  });
  t.after(() => server.shutdownAbruptly().catch(() => undefined));
  await within(server.runForever(), 'runForever()');
  return h;
}

/** The messages the server received from `client`, in order. */
export function messagesFrom(h: Harness, client: Client): Message[] {
  return h.messages.filter((entry) => entry.client === client).map((entry) => entry.message);
}

/** Opens a raw client (handshake completed) and waits for the server's new-client call for it. */
export async function connectRawClient(
  t: TestContext,
  h: Harness,
  options: { headers?: Record<string, string> } = {},
): Promise<{ raw: RawClient; client: Client }> {
  const before = h.joined.length;
  const raw = await within(connectRaw(h.server.port, options), 'the raw client to connect');
  t.after(() => raw.destroy());
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

/**
 * A `ws` client with what it received and its close event. Not its TCP socket: under Bun, `ws` is Bun's built-in
 * client, which does not expose one; a test that needs the socket uses the raw client.
 */
export interface WsPeer {
  readonly ws: WebSocket;
  readonly inbox: Array<{ data: Buffer; isBinary: boolean }>;
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly errors: Error[];
  /** The server's record of this client. */
  readonly client: Client;
}

/**
 * Opens a `ws` client to 127.0.0.1:`port` (the server's unless told) and waits for its open event and the server's
 * new-client call for it.
 */
export async function connectWs(
  t: TestContext,
  h: Harness,
  options: WebSocket.ClientOptions = {},
  port = h.server.port,
): Promise<WsPeer> {
  const before = h.joined.length;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, options);
  t.after(() => ws.terminate());
  const inbox: WsPeer['inbox'] = [];
  const errors: Error[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('message', (data, isBinary) => inbox.push({ data: rawDataToBuffer(data), isBinary }));
  ws.on('error', (error) => errors.push(error));
  await within(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
    }),
    'the ws client to open',
  );
  await until(() => h.joined.length > before, 'new-client for the ws client');
  return {
    ws,
    inbox,
    closed,
    errors,
    client: h.joined[before]!,
  };
}

/** Waits until a `ws` client has received at least `count` messages. */
export async function receivedCount(peer: WsPeer, count: number, ms = 5_000): Promise<void> {
  await until(() => peer.inbox.length >= count, `${count} message(s) at the ws client (has ${peer.inbox.length})`, ms);
}

function rawDataToBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
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
