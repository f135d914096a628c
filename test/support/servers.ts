// Shared set-up for the feature tests (TLS, heartbeat, subprotocols, attaching, handshake context): an echo
// server that records its callbacks, a `ws` client that resolves once open or refused, and option checks.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { TestContext } from 'node:test';
import WebSocket from 'ws';
import { WebsocketServer, type Client, type Logger, type Message, type WebsocketServerOptions } from '../../websocket-server.ts';
import { SILENT, within } from './wait.ts';

/** A running echo server and everything its callbacks saw. */
export interface Recorder {
  server: WebsocketServer;
  joined: Client[];
  left: Client[];
  messages: Message[];
  errors: Array<{ error: Error; client: Client | null }>;
}

/**
 * An echo server (127.0.0.1, port 0 unless `server` is given) whose callbacks record what they see. It is shut
 * down abruptly when the test ends. `runForever()` is awaited (bounded) unless `run` is false.
 */
export async function startServer(
  t: TestContext,
  options: WebsocketServerOptions = {},
  run = true,
): Promise<Recorder> {
  const server = new WebsocketServer({ logger: SILENT, ...options });
  const recorder: Recorder = { server, joined: [], left: [], messages: [], errors: [] };
  server.setFnNewClient((client) => recorder.joined.push(client));
  server.setFnClientLeft((client) => recorder.left.push(client));
  server.setFnMessageReceived((client, s, message) => {
    recorder.messages.push(message);
    s.sendMessage(client, message);
  });
  server.setFnError((error, client) => recorder.errors.push({ error, client }));
  t.after(() => shutdownQuietly(server));
  if (run) await within(server.runForever(), 'runForever()');
  return recorder;
}

/** Cleanup: a server may already be shut down (or never have run) when the test ends. */
export async function shutdownQuietly(server: WebsocketServer): Promise<void> {
  try {
    await server.shutdownAbruptly();
  } catch {
    // already stopped
  }
}

/** Opens a `ws` client and resolves once it is open; rejects (bounded) if it is refused or fails. */
export async function openWs(
  t: TestContext,
  url: string,
  protocols: string[] = [],
  options: WebSocket.ClientOptions = {},
): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, options);
  t.after(() => ws.terminate());
  await within(
    new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (_request, response) =>
        reject(new Error(`The handshake was refused with ${response.statusCode}.`)));
    }),
    `${url} to open`,
  );
  return ws;
}

/** An HTTP answer to a refused `ws` handshake. */
export interface Refusal {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Opens a `ws` client that must be refused; resolves with the status, headers and body of the refusal. */
export async function refusedWs(
  t: TestContext,
  url: string,
  protocols: string[] = [],
  options: WebSocket.ClientOptions = {},
): Promise<Refusal> {
  const ws = new WebSocket(url, protocols, options);
  t.after(() => ws.terminate());
  ws.on('error', () => {}); // ws reports the refusal as an error too, once the response is handled
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
    `${url} to be refused`,
  );
}

/** Sends `text` and resolves with the next message the client receives, as a string. */
export async function echo(ws: WebSocket, text: string): Promise<string> {
  const reply = new Promise<string>((resolve) => ws.once('message', (data: Buffer) => resolve(data.toString('utf8'))));
  ws.send(text);
  return within(reply, `the echo of ${JSON.stringify(text)}`);
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
