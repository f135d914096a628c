// Running it in production (issue 16): the diagnostics_channel events of a connection's life, stopping with an
// AbortSignal or `await using`, and refusal logs an operator can act on.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { channel, subscribe, unsubscribe } from 'node:diagnostics_channel';
import { getEventListeners, once } from 'node:events';
import { createServer as createNetServer, connect } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CloseCode,
  DiagnosticsChannel,
  HandshakeError,
  MessageTooBigError,
  WebsocketServer,
  type ConnectionCloseEvent,
  type ConnectionOpenEvent,
  type HandshakeRefusedEvent,
  type MessageInEvent,
  type MessageOutEvent,
  type ServerErrorEvent,
} from '../websocket-server.ts';
import { assertOptionError, connectWs, newWs, receivedCount, recordingLogger, startBehindApp, startServer } from './support/harness.ts';
import type { Harness } from './support/harness.ts';
import { rawRequest } from './support/raw-client.ts';
import { LIMIT, SILENT, until, within } from './support/wait.ts';

/** A request to the WebSocket endpoint without `Upgrade: websocket`, as a proxy that drops it would forward. */
const PLAIN_GET = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

type ChannelName = (typeof DiagnosticsChannel)[keyof typeof DiagnosticsChannel];

/** Every event published on the six channels about `server`, in order, from now until the test ends. */
function recordEvents(t: TestContext, server: WebsocketServer): Array<{ name: ChannelName; event: { server: unknown } }> {
  const events: Array<{ name: ChannelName; event: { server: unknown } }> = [];
  for (const name of Object.values(DiagnosticsChannel)) {
    const onMessage = (message: unknown): void => {
      const event = message as { server: unknown };
      if (event.server === server) events.push({ name, event });
    };
    subscribe(name, onMessage);
    t.after(() => unsubscribe(name, onMessage));
  }
  return events;
}

/** The events of one channel, typed. */
function eventsOf<T>(events: ReturnType<typeof recordEvents>, name: ChannelName): T[] {
  return events.filter((entry) => entry.name === name).map((entry) => entry.event as T);
}

describe('diagnostics_channel: every event of a connection life', () => {
  test('a subscriber sees open, message-in, message-out and close (by the client), in that order', LIMIT, async (t) => {
    const h = await startServer(t);
    const events = recordEvents(t, h.server);
    const peer = await connectWs(t, h);
    peer.ws.send('héllo');
    peer.ws.send(Buffer.from([1, 2, 3]));
    await receivedCount(peer, 2);
    peer.ws.close(4000, 'bye');
    await within(peer.client.handler.closed, 'the connection to close');

    assert.deepEqual(
      events.map((entry) => entry.name),
      [
        DiagnosticsChannel.CONNECTION_OPEN,
        DiagnosticsChannel.MESSAGE_IN,
        DiagnosticsChannel.MESSAGE_OUT,
        DiagnosticsChannel.MESSAGE_IN,
        DiagnosticsChannel.MESSAGE_OUT,
        DiagnosticsChannel.CONNECTION_CLOSE,
      ],
    );
    const [open] = eventsOf<ConnectionOpenEvent>(events, DiagnosticsChannel.CONNECTION_OPEN);
    assert.equal(open!.client, peer.client);
    const [textIn, binaryIn] = eventsOf<MessageInEvent>(events, DiagnosticsChannel.MESSAGE_IN);
    assert.deepEqual({ ...textIn!, server: null }, { server: null, client: peer.client, data: 'héllo', binary: false, byteLength: 6 });
    assert.equal(binaryIn!.binary, true);
    assert.deepEqual(binaryIn!.data, Buffer.from([1, 2, 3]));
    assert.equal(binaryIn!.byteLength, 3);
    const [textOut, binaryOut] = eventsOf<MessageOutEvent>(events, DiagnosticsChannel.MESSAGE_OUT);
    assert.deepEqual(
      { ...textOut!, server: null },
      { server: null, client: peer.client, topic: undefined, data: 'héllo', binary: false, byteLength: 6, recipients: 1 },
    );
    assert.equal(binaryOut!.binary, true);
    assert.equal(binaryOut!.byteLength, 3);
    const [close] = eventsOf<ConnectionCloseEvent>(events, DiagnosticsChannel.CONNECTION_CLOSE);
    assert.equal(close!.client, peer.client);
    assert.equal(close!.code, 4000);
    assert.equal(close!.reason, 'bye');
    assert.equal(close!.closedBy, 'client');
    assert.ok(close!.duration >= 0 && close!.duration < LIMIT.timeout, `a duration in ms, not ${close!.duration}`);
  });

  test('connection-close says who closed: the server, or the network (1006) when nobody closed', LIMIT, async (t) => {
    const h = await startServer(t);
    const events = recordEvents(t, h.server);
    const closedByServer = await connectWs(t, h);
    closedByServer.client.handler.close(4001, 'go');
    await within(closedByServer.client.handler.closed, 'the first connection to close');
    const dropped = await connectWs(t, h);
    dropped.ws.terminate();
    await within(dropped.client.handler.closed, 'the second connection to close');

    const closes = eventsOf<ConnectionCloseEvent>(events, DiagnosticsChannel.CONNECTION_CLOSE);
    assert.deepEqual(
      closes.map(({ client, code, reason, closedBy }) => ({ id: client.id, code, reason, closedBy })),
      [
        { id: closedByServer.client.id, code: 4001, reason: 'go', closedBy: 'server' },
        { id: dropped.client.id, code: CloseCode.ABNORMAL, reason: '', closedBy: 'network' },
      ],
    );
  });

  test('a connection the server fails is closed by the server, and the failure goes to the error channel', LIMIT, async (t) => {
    const h = await startServer(t, { maxMessageSize: 10 });
    const events = recordEvents(t, h.server);
    const peer = await connectWs(t, h);
    peer.ws.send('x'.repeat(100));
    await within(peer.client.handler.closed, 'the connection to close');

    const [close] = eventsOf<ConnectionCloseEvent>(events, DiagnosticsChannel.CONNECTION_CLOSE);
    assert.equal(close!.closedBy, 'server');
    assert.equal(close!.code, CloseCode.MESSAGE_TOO_BIG);
    const errors = eventsOf<ServerErrorEvent>(events, DiagnosticsChannel.ERROR);
    assert.equal(errors.length, 1);
    assert.ok(errors[0]!.error instanceof MessageTooBigError);
    assert.equal(errors[0]!.client, peer.client);
  });

  test('a refused handshake is published with its status, code, reason and the peer address', LIMIT, async (t) => {
    const h = await startServer(t);
    const events = recordEvents(t, h.server);
    const reply = await rawRequest(h.server.port, PLAIN_GET);
    assert.equal(reply.status, 426);

    const [refusal] = eventsOf<HandshakeRefusedEvent>(events, DiagnosticsChannel.HANDSHAKE_REFUSED);
    assert.ok(refusal!.error instanceof HandshakeError);
    assert.equal(refusal!.status, 426);
    assert.equal(refusal!.code, 'WS_ERR_HANDSHAKE_UPGRADE_REQUIRED');
    assert.equal(refusal!.reason, refusal!.error.message);
    assert.equal(refusal!.remoteAddress, '127.0.0.1');
    assert.ok(refusal!.remotePort > 0);
    // setFnError gets the refusal too, and so does the error channel, without a client.
    const errors = eventsOf<ServerErrorEvent>(events, DiagnosticsChannel.ERROR);
    assert.deepEqual(errors.map(({ error, client }) => [error, client]), [[refusal!.error, null]]);
  });

  test('message-out is published once per broadcast, not per delivery, with the number of recipients', LIMIT, async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const events = recordEvents(t, h.server);
    const first = await connectWs(t, h);
    const second = await connectWs(t, h);
    h.server.subscribe(first.client, 'news');
    assert.equal(h.server.sendMessageToAll('to all'), 2);
    assert.equal(h.server.publish('news', new Uint8Array([7, 7])), 1);
    assert.equal(h.server.publish('nobody', 'to no one'), 0);
    await receivedCount(first, 2);
    await receivedCount(second, 1);

    const sent = eventsOf<MessageOutEvent>(events, DiagnosticsChannel.MESSAGE_OUT);
    assert.deepEqual(
      sent.map(({ client, topic, binary, byteLength, recipients }) => ({ client, topic, binary, byteLength, recipients })),
      [
        { client: undefined, topic: undefined, binary: false, byteLength: 6, recipients: 2 },
        { client: undefined, topic: 'news', binary: true, byteLength: 2, recipients: 1 },
        { client: undefined, topic: 'nobody', binary: false, byteLength: 9, recipients: 0 },
      ],
    );
  });

  test('with no subscriber, no event is built: publish is never called, only hasSubscribers is read', LIMIT, async (t) => {
    // A spy in place of each channel's publish: the library must not call it while nobody listens.
    let published = 0;
    for (const name of Object.values(DiagnosticsChannel)) {
      const target = channel(name);
      assert.equal(target.hasSubscribers, false, `${name} has no subscriber in this test`);
      const original = target.publish;
      target.publish = function (this: typeof target, message: unknown) {
        published++;
        original.call(this, message);
      };
      t.after(() => {
        target.publish = original;
      });
    }
    const lifeOfAConnection = async (): Promise<void> => {
      const h = await startServer(t, { maxMessageSize: 10 });
      const peer = await connectWs(t, h);
      peer.ws.send('hi');
      await receivedCount(peer, 1);
      h.server.sendMessageToAll('all');
      h.server.publish('topic', 'some');
      await receivedCount(peer, 2);
      assert.equal((await rawRequest(h.server.port, PLAIN_GET)).status, 426);
      peer.ws.send('too long for maxMessageSize');
      await within(peer.client.handler.closed, 'the connection to close');
    };
    await lifeOfAConnection();
    assert.equal(published, 0, 'nothing was published while no channel had a subscriber');

    // The spy sees what is published once someone subscribes: the check above could fail.
    const names = Object.values(DiagnosticsChannel);
    const ignore = (): void => {};
    for (const name of names) subscribe(name, ignore);
    t.after(() => names.forEach((name) => unsubscribe(name, ignore)));
    await lifeOfAConnection();
    assert.ok(published >= 9, `every kind of event was published once subscribed (${published})`);
  });

  test('a subscriber that throws does not break the server: the process gets it as an uncaughtException', LIMIT, async () => {
    // In a process of its own: node:test fails whichever test is running when an exception goes uncaught.
    const extension = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    const script = fileURLToPath(new URL(`./support/throwing-subscriber.${extension}`, import.meta.url));
    const output = await within(
      new Promise<string>((resolve, reject) =>
        execFile(process.execPath, [...process.execArgv, script], { timeout: 8_000 }, (error, stdout, stderr) =>
          error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout),
        ),
      ),
      'the script to end',
      9_000,
    );
    const { echoes, uncaught } = JSON.parse(output) as { echoes: string[]; uncaught: string[] };
    assert.deepEqual(echoes, ['one', 'two'], 'both messages were delivered and echoed');
    assert.deepEqual(uncaught, ['the subscriber is broken', 'the subscriber is broken']);
  });
});

describe('the signal option and Symbol.asyncDispose stop the server gracefully', () => {
  test("'signal' must be an AbortSignal", () => {
    assertOptionError({ signal: { aborted: false } }, TypeError, /'signal' must be an AbortSignal/);
  });

  test('aborting the signal closes every client with 1001 and stops listening', LIMIT, async (t) => {
    const controller = new AbortController();
    const h = await startServer(t, { signal: controller.signal });
    const peers = [await connectWs(t, h), await connectWs(t, h)];
    const port = h.server.port;
    controller.abort();
    for (const peer of peers) assert.equal((await within(peer.closed, 'the client to be closed')).code, CloseCode.GOING_AWAY);
    await until(() => h.server.clients.length === 0, 'every client to leave');
    await assert.rejects(connectOnce(port), /ECONNREFUSED/, 'nothing listens any more');
  });

  test('an aborted signal starts nothing: runForever() rejects with its reason, handleUpgrade answers 503', LIMIT, async (t) => {
    const controller = new AbortController();
    controller.abort(new Error('stop now'));
    const server = new WebsocketServer({ logger: SILENT, signal: controller.signal });
    await assert.rejects(server.runForever(), (error: Error) => {
      assert.match(error.message, /^Cannot start the server: its signal is aborted\.$/);
      assert.equal((error.cause as Error).message, 'stop now');
      return true;
    });
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
    const h = await startBehindApp(t, { signal: controller.signal });
    assert.equal((await rawRequest(h.port, 'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')).status, 503);
  });

  test('the listener on the signal is removed when the server stops otherwise, or fails to start', LIMIT, async (t) => {
    const controller = new AbortController();
    const listeners = (): number => getEventListeners(controller.signal, 'abort').length;
    const h = await startServer(t, { signal: controller.signal });
    assert.equal(listeners(), 1, 'a running server listens to its signal');
    await h.server.shutdownGracefully();
    assert.equal(listeners(), 0, 'shutdownGracefully removes the listener');
    await h.server.runForever();
    assert.equal(listeners(), 1);
    await h.server.shutdownAbruptly();
    assert.equal(listeners(), 0, 'shutdownAbruptly removes the listener');

    const taken = createNetServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    t.after(() => taken.close());
    const port = (taken.address() as { port: number }).port;
    const server = new WebsocketServer({ logger: SILENT, port, signal: controller.signal });
    await assert.rejects(server.runForever(), /EADDRINUSE/);
    assert.equal(listeners(), 0, 'a failed start removes the listener');
    // And the signal, aborted later, no longer reaches the stopped servers.
    controller.abort();
    assert.equal(h.server.clients.length, 0);
  });

  test('await using shuts the server down gracefully at the end of its block (1001)', LIMIT, async (t) => {
    let peer: Awaited<ReturnType<typeof connectWs>>;
    let port: number;
    {
      await using server = new WebsocketServer({ logger: SILENT });
      await server.runForever();
      port = server.port;
      const h: Harness = { server, joined: [], left: [], messages: [], errors: [] };
      server.setFnNewClient((client) => h.joined.push(client));
      peer = await connectWs(t, h);
    }
    assert.equal((await within(peer.closed, 'the client to be closed')).code, CloseCode.GOING_AWAY);
    assert.equal(peer.client.handler.state, 'closed', 'the shutdown was awaited: the client has gone');
    await assert.rejects(connectOnce(port), /ECONNREFUSED/);
  });

  test('Symbol.asyncDispose is idempotent: a second call returns the same shutdown', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const first = h.server[Symbol.asyncDispose]();
    assert.equal(h.server[Symbol.asyncDispose](), first);
    await within(first, 'the shutdown');
    assert.equal((await peer.closed).code, CloseCode.GOING_AWAY);
    assert.equal(h.server[Symbol.asyncDispose](), first);
  });
});

describe('refusals are logged so that an operator can act on them', () => {
  test('with the default level, the first refusal of a kind is a warning with a hint; the next are at info', LIMIT, async (t) => {
    const logger = recordingLogger();
    const h = await startServer(t, { logger, path: '/ws' });
    const upgrade = (path: string): string =>
      `GET ${path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';
    for (let i = 0; i < 3; i++) assert.equal((await rawRequest(h.server.port, PLAIN_GET.replace('/', '/ws'))).status, 426);
    assert.equal((await rawRequest(h.server.port, upgrade('/other'))).status, 404);

    assert.equal(logger.lines.warn.length, 2, logger.lines.warn.join('\n'));
    assert.match(logger.lines.warn[0]!, /^refused a handshake from 127\.0\.0\.1:\d+: 426 .*the first of its kind/);
    assert.match(logger.lines.warn[0]!, /Check: a request reached us without "Upgrade: websocket": a proxy that drops hop-by-hop headers\?/);
    assert.match(logger.lines.warn[1]!, /: 404 .*Check: clients ask for another path than '\/ws'/);
    assert.equal(logger.lines.info.length, 0, 'the default level writes no info line');
    assert.equal(h.server.stats.handshakeFailures['WS_ERR_HANDSHAKE_UPGRADE_REQUIRED'], 3, 'every refusal is counted');
  });

  test('within a minute, more refusals of a kind are at info; the first after it counts them in a warning', LIMIT, async (t) => {
    t.mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const logger = recordingLogger();
    const h = await startServer(t, { logger, loglevel: 'info' });
    for (let i = 0; i < 3; i++) await rawRequest(h.server.port, PLAIN_GET);
    t.mock.timers.tick(59_999);
    await rawRequest(h.server.port, PLAIN_GET);
    assert.equal(logger.lines.warn.length, 1, 'one warning in the first minute');
    assert.equal(logger.lines.info.filter((line) => /refused a handshake .* 426 /.test(line)).length, 3);
    t.mock.timers.tick(1);
    await rawRequest(h.server.port, PLAIN_GET);
    assert.equal(logger.lines.warn.length, 2);
    assert.match(logger.lines.warn[1]!, /: 426 .*\(3 more of its kind since the last warning 60 s ago; /);
  });

  test("the application's own refusals (setFnAuthenticate) stay at info", LIMIT, async (t) => {
    const logger = recordingLogger();
    const h = await startServer(t, { logger, loglevel: 'info' });
    h.server.setFnAuthenticate(() => ({ status: 401 }));
    const ws = newWs(t, `ws://127.0.0.1:${h.server.port}/`);
    await within(once(ws, 'unexpected-response'), 'the refusal');
    assert.equal(logger.lines.warn.length, 0, logger.lines.warn.join('\n'));
    assert.ok(logger.lines.info.some((line) => /refused a handshake .*: 401 /.test(line)));
  });
});

/** Connects to 127.0.0.1:`port` and closes at once; rejects with the connection's error. */
async function connectOnce(port: number): Promise<void> {
  const socket = connect(port, '127.0.0.1');
  try {
    await within(once(socket, 'connect'), `a connection to port ${port}`);
  } finally {
    socket.destroy();
  }
}
