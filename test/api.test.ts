// API tests: every public method and callback of WebsocketServer and ClientHandler, driven by `ws` as an
// independent client (and by the raw test client where a peer must misbehave, or where a test needs the client's
// TCP socket: under Bun, `ws` is Bun's built-in client, which does not expose one).
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ClientHandler,
  HandshakeError,
  ProtocolError,
  WebsocketServer,
  type Client,
  type HandshakeRequest,
  type WebsocketServerOptions,
} from '../websocket-server.ts';
import { buildFrame, Op } from './support/frames.ts';
import {
  connectRawClient,
  connectWs,
  newWs,
  nextMessage,
  openWs,
  recordingLogger,
  refusedWs,
  shutdownQuietly,
  startBehindApp,
  startServer,
  urlOf,
  type Harness,
  type RecordedWs,
  type WsPeer,
} from './support/harness.ts';
import { LIMIT, SETTLE_MS, SILENT, until, within } from './support/wait.ts';
import { handshakeRequest, rawRequest, type RawClient } from './support/raw-client.ts';

// ─── shared helpers ─────────────────────────────────────────────────────────────────────────────────────────

/**
 * Sends an unmasked frame (§5.1), expects the server to fail the connection with close 1002 and to end TCP,
 * then ends TCP in turn, as a well-behaved peer's stack would (§7.1.1).
 */
async function failWithUnmaskedFrame(raw: RawClient): Promise<void> {
  raw.sendFrame({ opcode: Op.TEXT, payload: 'unmasked', masked: false });
  const close = await raw.closeFrame(2_000);
  assert.equal(close.code, 1002);
  await raw.ended(2_000);
  raw.socket.end();
}

/** Expects the handshake to be refused; resolves with the HTTP status. */
async function refusedStatus(t: TestContext, url: string): Promise<number> {
  return (await refusedWs(t, url)).status;
}

/** Expects the connection itself to fail; resolves with the error. */
async function connectionError(t: TestContext, url: string): Promise<NodeJS.ErrnoException> {
  const ws = newWs(t, url);
  return within(new Promise((resolve, reject) => {
    ws.once('error', resolve);
    ws.once('open', () => reject(new Error('The connection was accepted.')));
    ws.once('unexpected-response', (_request, response) =>
      reject(new Error(`The server answered HTTP ${response.statusCode}.`)));
  }), 'the connection to fail');
}

/** Sends `text` and expects the echo server to send it back. */
async function assertEchoes(peer: RecordedWs, text: string): Promise<void> {
  const count = peer.inbox.length;
  peer.ws.send(text);
  const reply = await nextMessage(peer, count);
  assert.equal(reply.data.toString(), text);
  assert.equal(reply.isBinary, false);
}

function countFor(list: Client[], client: Client): number {
  return list.filter((entry) => entry === client).length;
}

// ─── constructor ────────────────────────────────────────────────────────────────────────────────────────────

describe('new WebsocketServer(options)', () => {
  const sentence = /\.$/;
  const badOptions: Array<{ options: Record<string, unknown>; error: typeof TypeError | typeof RangeError; names: RegExp }> = [
    { options: { port: '8080' }, error: TypeError, names: /port/ },
    { options: { port: -1 }, error: RangeError, names: /port/ },
    { options: { port: 65536 }, error: RangeError, names: /port/ },
    { options: { port: 80.5 }, error: RangeError, names: /port/ },
    { options: { port: Number.NaN }, error: RangeError, names: /port/ },
    { options: { host: 127 }, error: TypeError, names: /host/ },
    { options: { loglevel: 'verbose' }, error: RangeError, names: /loglevel|log level/i },
    { options: { loglevel: 3 }, error: TypeError, names: /loglevel|log level/i },
    { options: { logger: 'console' }, error: TypeError, names: /logger/ },
    { options: { logger: { info() {} } }, error: TypeError, names: /logger/ },
    { options: { maxMessageSize: '1024' }, error: TypeError, names: /maxMessageSize/ },
    { options: { maxMessageSize: 0 }, error: RangeError, names: /maxMessageSize/ },
    { options: { maxMessageSize: -5 }, error: RangeError, names: /maxMessageSize/ },
    { options: { maxMessageSize: 1.5 }, error: RangeError, names: /maxMessageSize/ },
    { options: { maxHeaderSize: true }, error: TypeError, names: /maxHeaderSize/ },
    { options: { maxHeaderSize: 0 }, error: RangeError, names: /maxHeaderSize/ },
    { options: { maxHeaderSize: 100.25 }, error: RangeError, names: /maxHeaderSize/ },
    { options: { handshakeTimeout: '10s' }, error: TypeError, names: /handshakeTimeout/ },
    { options: { handshakeTimeout: -1 }, error: RangeError, names: /handshakeTimeout/ },
    { options: { handshakeTimeout: Number.NaN }, error: RangeError, names: /handshakeTimeout/ },
    { options: { closeTimeout: null }, error: TypeError, names: /closeTimeout/ },
    { options: { closeTimeout: -1 }, error: RangeError, names: /closeTimeout/ },
    { options: { closeTimeout: Number.NaN }, error: RangeError, names: /closeTimeout/ },
    { options: { prot: 80 }, error: TypeError, names: /prot/ },
    { options: { maxPayload: 10 }, error: TypeError, names: /maxPayload/ },
  ];
  for (const { options, error, names } of badOptions) {
    const [[name, value]] = Object.entries(options) as [[string, unknown]];
    const shown = typeof value === 'string' ? `'${value}'` : typeof value === 'object' ? JSON.stringify(value) : String(value);
    test(`option ${name}: ${shown} throws a ${error.name} whose message names the option`, LIMIT, () => {
      assert.throws(
        () => new WebsocketServer(options as WebsocketServerOptions),
        (thrown: unknown) => {
          assert.ok(thrown instanceof error, `expected a ${error.name}, got ${String(thrown)}`);
          assert.equal(thrown.constructor, error, `expected exactly a ${error.name}, got ${thrown.constructor.name}`);
          assert.match(thrown.message, names);
          assert.match(thrown.message, sentence, 'the message is a full sentence');
          return true;
        },
      );
    });
  }

  test('valid boundary values are accepted', LIMIT, () => {
    for (const options of [
      { port: 0 }, { port: 65535 }, { host: 'localhost' }, { loglevel: 'debug' as const },
      { loglevel: 'critical' as const }, { logger: SILENT }, { maxMessageSize: 1 }, { maxHeaderSize: 1024 },
      { handshakeTimeout: 1 }, { closeTimeout: 1 }, {},
    ]) {
      assert.doesNotThrow(() => new WebsocketServer(options), `options ${JSON.stringify(options)}`);
    }
    assert.doesNotThrow(() => new WebsocketServer());
  });

  test('defaults to host 127.0.0.1 and an ephemeral port', LIMIT, async (t) => {
    const { server } = await startServer(t, {}, { run: false });
    assert.equal(server.host, '127.0.0.1');
    await within(server.runForever(), 'runForever()');
    assert.ok(Number.isInteger(server.port) && server.port > 0, `port ${server.port}`);
    await openWs(t, `ws://127.0.0.1:${server.port}/`);
  });
});

// ─── runForever ─────────────────────────────────────────────────────────────────────────────────────────────

describe('runForever()', () => {
  test('resolves once listening, and server.port is the bound port', LIMIT, async (t) => {
    const h = await startServer(t);
    assert.ok(Number.isInteger(h.server.port) && h.server.port > 0 && h.server.port <= 65535);
    await connectWs(t, h);
  });

  test('a second server on the same port rejects with EADDRINUSE', LIMIT, async (t) => {
    const h = await startServer(t);
    const second = new WebsocketServer({ port: h.server.port, logger: SILENT });
    t.after(() => shutdownQuietly(second));
    await assert.rejects(within(second.runForever(), 'the second runForever()'), (error: NodeJS.ErrnoException) => {
      assert.equal(error.code, 'EADDRINUSE');
      return true;
    });
    // The first server is unaffected.
    await connectWs(t, h);
  });
});

// ─── setFnNewClient ─────────────────────────────────────────────────────────────────────────────────────────

describe('setFnNewClient', () => {
  test('fires with the client already in server.clients, and with the server', LIMIT, async (t) => {
    const h = await startServer(t);
    let seenServer: WebsocketServer | undefined;
    let listed: boolean | undefined;
    h.server.setFnNewClient((client, s) => {
      seenServer = s;
      listed = s.clients.includes(client);
      h.joined.push(client);
    });
    const { client } = await connectWs(t, h);
    assert.equal(h.joined.length, 1);
    assert.equal(listed, true);
    assert.equal(seenServer, h.server);
    assert.deepEqual(h.server.clients, [client]);
    assert.ok(client.handler instanceof ClientHandler);
    assert.equal(client.handler.state, 'open');
    assert.equal(client.handler.closeCode, undefined);
  });

  test('ids are unique and increasing, and server.clients is in id order', LIMIT, async (t) => {
    const h = await startServer(t);
    const clients: Client[] = [];
    for (let i = 0; i < 4; i++) clients.push((await connectWs(t, h)).client);
    for (let i = 1; i < clients.length; i++) assert.ok(clients[i]!.id > clients[i - 1]!.id, `ids ${clients.map((c) => c.id)}`);
    assert.deepEqual(h.server.clients.map((c) => c.id), clients.map((c) => c.id));
    // An id is never reused after its client left.
    const first = h.server.clients[0]!;
    first.handler.terminate();
    await until(() => h.left.length === 1, 'client-left');
    const next = (await connectWs(t, h)).client;
    assert.ok(next.id > clients[clients.length - 1]!.id, `new id ${next.id}`);
  });

  // These two compare with the client's TCP socket, so the client is the raw one (see the top of the file).
  test('address is the peer host and the client socket local port', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    assert.equal(client.address.host, '127.0.0.1');
    assert.equal(client.address.port, raw.socket.localPort);
  });

  test('handler.request carries the path, query and headers of the handshake', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h, { path: '/room?x=1&y=two', headers: { 'X-Custom-Header': 'Custom Value' } });
    const request = client.handler.request;
    assert.equal(request.method, 'GET');
    assert.equal(request.url, '/room?x=1&y=two');
    assert.equal(request.path, '/room');
    assert.equal(request.query.get('x'), '1');
    assert.equal(request.query.get('y'), 'two');
    assert.equal(request.headers['x-custom-header'], 'Custom Value');
    assert.equal(request.headers['host'], `127.0.0.1:${h.server.port}`);
    assert.equal(request.headers['sec-websocket-version'], '13');
    assert.equal(request.remoteAddress, '127.0.0.1');
    assert.equal(request.remotePort, raw.socket.localPort);
  });
});

// ─── setFnMessageReceived ───────────────────────────────────────────────────────────────────────────────────

describe('setFnMessageReceived', () => {
  test('a text message arrives as a string', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.ws.send('héllo wörld');
    await until(() => h.messages.length === 1, 'message-received');
    const { client, message } = h.messages[0]!;
    assert.equal(client, peer.client);
    assert.equal(typeof message, 'string');
    assert.equal(message, 'héllo wörld');
  });

  test('a binary message arrives as a Buffer with the exact bytes', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
    peer.ws.send(bytes);
    await until(() => h.messages.length === 1, 'message-received');
    const { message } = h.messages[0]!;
    assert.ok(Buffer.isBuffer(message), `got ${typeof message}`);
    assert.deepEqual(message, bytes);
  });

  test('an empty text message arrives as the empty string and an empty binary one as an empty Buffer', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.ws.send('');
    peer.ws.send(Buffer.alloc(0));
    await until(() => h.messages.length === 2, 'two messages');
    assert.equal(h.messages[0]!.message, '');
    assert.ok(Buffer.isBuffer(h.messages[1]!.message));
    assert.equal(h.messages[1]!.message.length, 0);
  });
});

// ─── setFnClientLeft and closeCode, for every way a connection ends ─────────────────────────────────────────

interface Ending {
  /** Completes "client-left fires exactly once, after removal, when ..." */
  when: string;
  options?: WebsocketServerOptions;
  /** The ending client is a raw client (else a ws client). */
  raw?: boolean;
  /** The ending affects every client (a ws bystander leaves too). */
  all?: boolean;
  end(target: { client: Client; peer?: WsPeer; raw?: RawClient }, h: Harness): Promise<unknown> | void;
  closeCode: number;
  closeReason?: string;
  /** What the ws client's close event reports. */
  peerSees?: { code: number; reason?: string };
}

const endings: Ending[] = [
  {
    when: 'the client closes with ws.close(1000, "bye") (§7.1.2)',
    end: ({ peer }) => peer!.ws.close(1000, 'bye'),
    closeCode: 1000, closeReason: 'bye', peerSees: { code: 1000 },
  },
  {
    when: 'the client resets its TCP connection',
    raw: true,
    end: ({ raw }) => void raw!.socket.resetAndDestroy(),
    closeCode: 1006,
  },
  {
    when: 'the client drops its TCP connection without a close frame',
    raw: true,
    end: ({ raw }) => raw!.destroy(),
    closeCode: 1006,
  },
  {
    when: 'the client sends an unmasked frame (§5.1 protocol error)',
    raw: true,
    end: ({ raw }) => failWithUnmaskedFrame(raw!),
    closeCode: 1002,
  },
  {
    when: 'the server calls handler.close(4000, "done")',
    end: ({ client }) => client.handler.close(4000, 'done'),
    closeCode: 4000, peerSees: { code: 4000, reason: 'done' },
  },
  {
    when: 'the server calls handler.terminate()',
    end: ({ client }) => client.handler.terminate(),
    closeCode: 1006, peerSees: { code: 1006 },
  },
  {
    when: 'the peer never answers the server close frame (closeTimeout)',
    raw: true,
    options: { closeTimeout: 200 },
    end: async ({ client, raw }) => {
      client.handler.close(1000, 'going');
      const close = await raw!.closeFrame(2_000);
      assert.equal(close.code, 1000);
    },
    closeCode: 1006,
  },
  {
    when: 'the server calls disconnectClientsGracefully()',
    all: true,
    end: (_target, h) => within(h.server.disconnectClientsGracefully(), 'disconnectClientsGracefully()'),
    closeCode: 1000, peerSees: { code: 1000 },
  },
  {
    when: 'the server calls disconnectClientsAbruptly()',
    all: true,
    end: (_target, h) => h.server.disconnectClientsAbruptly(),
    closeCode: 1006, peerSees: { code: 1006 },
  },
  {
    when: 'the server calls shutdownGracefully()',
    all: true,
    end: (_target, h) => within(h.server.shutdownGracefully(), 'shutdownGracefully()'),
    closeCode: 1001, peerSees: { code: 1001 },
  },
  {
    when: 'the server calls shutdownAbruptly()',
    all: true,
    end: (_target, h) => within(h.server.shutdownAbruptly(), 'shutdownAbruptly()'),
    closeCode: 1006, peerSees: { code: 1006 },
  },
];

describe('setFnClientLeft, closeCode and closeReason (§7.1.5)', () => {
  for (const ending of endings) {
    test(`client-left fires exactly once, after removal from server.clients, when ${ending.when}`, LIMIT, async (t) => {
      const h = await startServer(t, ending.options ?? {});
      const listedAtLeft = new Map<Client, boolean>();
      h.server.setFnClientLeft((client, s) => {
        listedAtLeft.set(client, s.clients.includes(client));
        h.left.push(client);
      });
      let target: { client: Client; peer?: WsPeer; raw?: RawClient };
      if (ending.raw) {
        target = await connectRawClient(t, h);
      } else {
        const peer = await connectWs(t, h);
        target = { client: peer.client, peer };
      }
      const bystander = await connectWs(t, h);
      assert.equal(target.client.handler.closeCode, undefined, 'no close code while open');

      await ending.end(target, h);
      const leaving = ending.all ? [target.client, bystander.client] : [target.client];
      await until(() => leaving.every((c) => countFor(h.left, c) > 0), 'client-left');
      await delay(SETTLE_MS);

      for (const client of leaving) {
        assert.equal(countFor(h.left, client), 1, `client-left calls for client ${client.id}`);
        assert.equal(listedAtLeft.get(client), false, 'removed before client-left');
        assert.ok(!h.server.clients.includes(client));
        assert.equal(client.handler.state, 'closed');
      }
      assert.equal(h.left.length, leaving.length, 'no other client left');
      assert.equal(target.client.handler.closeCode, ending.closeCode);
      if (ending.closeReason !== undefined) assert.equal(target.client.handler.closeReason, ending.closeReason);
      if (ending.peerSees && target.peer) {
        const seen = await within(target.peer.closed, 'the ws close event');
        assert.equal(seen.code, ending.peerSees.code);
        if (ending.peerSees.reason !== undefined) assert.equal(seen.reason, ending.peerSees.reason);
      }
      if (!ending.all) {
        assert.deepEqual(h.server.clients, [bystander.client], 'the bystander stays');
        await assertEchoes(bystander, 'still here');
      } else {
        assert.equal(h.server.clients.length, 0);
      }
    });
  }

  test('a handshake that is refused never triggers new-client or client-left', LIMIT, async (t) => {
    const h = await startServer(t);
    h.server.setFnAuthenticate((request) => request.path !== '/forbidden');
    assert.equal(await refusedStatus(t, urlOf(h, '/forbidden')), 403);
    const bad = await within(
      rawRequest(h.server.port, handshakeRequest({ headers: { 'Sec-WebSocket-Version': '12' } })),
      'a handshake with version 12',
    );
    assert.equal(bad.status, 426);
    const malformed = await within(rawRequest(h.server.port, 'GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n'), 'a malformed request');
    assert.equal(malformed.status, 400);
    h.server.denyNewConnections();
    assert.equal(await refusedStatus(t, urlOf(h)), 503);
    await delay(SETTLE_MS);
    assert.equal(h.joined.length, 0);
    assert.equal(h.left.length, 0);
    assert.equal(h.server.clients.length, 0);
  });
});

// ─── sendMessage / sendMessageToAll ─────────────────────────────────────────────────────────────────────────

describe('sendMessage and sendMessageToAll', () => {
  test('sendMessage to an open client returns written or queued and the client receives it', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const result = h.server.sendMessage(peer.client, 'to you');
    assert.ok(result === 'written' || result === 'queued', `result ${result}`);
    const got = await nextMessage(peer, 0);
    assert.equal(got.data.toString(), 'to you');
  });

  test('a string is sent as a text message and a Uint8Array as a binary message', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    h.server.sendMessage(peer.client, 'text ✓');
    h.server.sendMessage(peer.client, Uint8Array.of(0, 1, 2, 0xfe, 0xff));
    h.server.sendMessage(peer.client, Buffer.from('buffer'));
    await until(() => peer.inbox.length === 3, 'three messages');
    assert.deepEqual(peer.inbox[0], { data: Buffer.from('text ✓'), isBinary: false });
    assert.deepEqual(peer.inbox[1], { data: Buffer.from([0, 1, 2, 0xfe, 0xff]), isBinary: true });
    assert.deepEqual(peer.inbox[2], { data: Buffer.from('buffer'), isBinary: true });
  });

  test('sendMessage after the client left returns dropped without throwing', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.ws.close();
    await until(() => h.left.length === 1, 'client-left');
    assert.equal(h.server.sendMessage(peer.client, 'too late'), 'dropped');
    assert.equal(peer.client.handler.send(Uint8Array.of(1)), 'dropped');
  });

  test('sendMessage while the client is closing returns dropped', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.client.handler.close();
    assert.equal(peer.client.handler.state, 'closing');
    assert.equal(h.server.sendMessage(peer.client, 'too late'), 'dropped');
    await within(peer.closed, 'the ws close event');
    await delay(SETTLE_MS);
    assert.equal(peer.inbox.length, 0);
  });

  test('sendMessageToAll reaches every open client exactly once and returns the count', LIMIT, async (t) => {
    const h = await startServer(t);
    const peers: WsPeer[] = [];
    for (let i = 0; i < 3; i++) peers.push(await connectWs(t, h));
    assert.equal(h.server.sendMessageToAll('to everyone'), 3);
    assert.equal(h.server.sendMessageToAll(Uint8Array.of(7, 8, 9)), 3);
    await until(() => peers.every((p) => p.inbox.length >= 2), 'the broadcasts');
    await delay(SETTLE_MS);
    for (const peer of peers) {
      assert.deepEqual(peer.inbox, [
        { data: Buffer.from('to everyone'), isBinary: false },
        { data: Buffer.from([7, 8, 9]), isBinary: true },
      ]);
    }
  });

  test('sendMessageToAll skips a closing client', LIMIT, async (t) => {
    const h = await startServer(t, { closeTimeout: 3_000 });
    const closing = await connectRawClient(t, h);
    const open = [await connectWs(t, h), await connectWs(t, h)];
    closing.client.handler.close(1000);
    assert.equal(closing.client.handler.state, 'closing');
    assert.equal(h.server.sendMessageToAll('after the close'), 2);
    await until(() => open.every((p) => p.inbox.length === 1), 'the broadcast');
    const close = await closing.raw.closeFrame(2_000);
    assert.equal(close.code, 1000);
    await assert.rejects(closing.raw.nextFrame(SETTLE_MS), 'no frame after the close frame');
  });

  test('sendMessageToAll with no clients returns 0', LIMIT, async (t) => {
    const h = await startServer(t);
    assert.equal(h.server.sendMessageToAll('nobody'), 0);
  });
});

// ─── ClientHandler ──────────────────────────────────────────────────────────────────────────────────────────

describe('ClientHandler', () => {
  test('send() returns written or queued, a string as text and bytes as binary', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    for (const result of [peer.client.handler.send('one'), peer.client.handler.send(Uint8Array.of(2))]) {
      assert.ok(result === 'written' || result === 'queued', `result ${result}`);
    }
    await until(() => peer.inbox.length === 2, 'two messages');
    assert.deepEqual(peer.inbox, [
      { data: Buffer.from('one'), isBinary: false },
      { data: Buffer.from([2]), isBinary: true },
    ]);
  });

  test('ping(payload) reaches the client with the payload, and the connection keeps working (§5.5.2)', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const pings: Buffer[] = [];
    peer.ws.on('ping', (data) => pings.push(data));
    assert.equal(peer.client.handler.ping('are you there'), true);
    assert.equal(peer.client.handler.ping(Uint8Array.of(0, 255)), true);
    assert.equal(peer.client.handler.ping(), true);
    await until(() => pings.length === 3, 'three pings');
    assert.deepEqual(pings, [Buffer.from('are you there'), Buffer.from([0, 255]), Buffer.alloc(0)]);
    await assertEchoes(peer, 'after the pongs');
    assert.equal(h.errors.length, 0, `errors: ${h.errors.map((e) => e.error.message)}`);
    assert.equal(peer.client.handler.state, 'open');
  });

  test('ping() accepts 125 bytes and throws a RangeError for 126', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const pings: Buffer[] = [];
    peer.ws.on('ping', (data) => pings.push(data));
    assert.throws(() => peer.client.handler.ping(Buffer.alloc(126, 1)), RangeError);
    assert.equal(peer.client.handler.ping(Buffer.alloc(125, 2)), true);
    await until(() => pings.length === 1, 'the ping');
    assert.deepEqual(pings[0], Buffer.alloc(125, 2));
  });

  test('ping() returns false once the connection is closed', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.client.handler.terminate();
    await until(() => h.left.length === 1, 'client-left');
    assert.equal(peer.client.handler.ping('late'), false);
  });

  test('close(1000, "done") reaches the ws client as close event 1000 "done"', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.client.handler.close(1000, 'done');
    assert.deepEqual(await within(peer.closed, 'the ws close event'), { code: 1000, reason: 'done' });
  });

  test('close() without arguments sends 1000', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.client.handler.close();
    assert.equal((await within(peer.closed, 'the ws close event')).code, 1000);
  });

  test('close() accepts every code an endpoint may send and a 123-byte reason (§7.4)', LIMIT, async (t) => {
    const h = await startServer(t);
    const cases: Array<[number, string]> = [[1003, ''], [1014, 'x'], [3000, 'a'.repeat(123)], [4999, 'é'.repeat(61) + 'z']];
    for (const [code, reason] of cases) {
      const peer = await connectWs(t, h);
      peer.client.handler.close(code, reason);
      assert.deepEqual(await within(peer.closed, `close ${code}`), { code, reason });
    }
  });

  test('close() with a code an endpoint may not send throws a RangeError and the connection stays open', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 1000.5]) {
      assert.throws(() => peer.client.handler.close(code), RangeError, `code ${code}`);
    }
    assert.equal(peer.client.handler.state, 'open');
    await assertEchoes(peer, 'still open');
  });

  test('close() with a reason over 123 UTF-8 bytes throws a RangeError', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    assert.throws(() => peer.client.handler.close(1000, 'a'.repeat(124)), RangeError);
    assert.throws(() => peer.client.handler.close(1000, 'é'.repeat(62)), RangeError, '62 characters but 124 bytes');
    assert.equal(peer.client.handler.state, 'open');
    await assertEchoes(peer, 'still open');
  });

  test('state goes open, closing, closed', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    let stateAtLeft: string | undefined;
    h.server.setFnClientLeft((client) => {
      stateAtLeft = client.handler.state;
      h.left.push(client);
    });
    assert.equal(peer.client.handler.state, 'open');
    peer.client.handler.close(1000);
    assert.equal(peer.client.handler.state, 'closing');
    await until(() => h.left.length === 1, 'client-left');
    assert.equal(stateAtLeft, 'closed');
    assert.equal(peer.client.handler.state, 'closed');
  });

  test('terminate() ends the TCP connection without a close frame', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.client.handler.terminate();
    assert.equal((await within(peer.closed, 'the ws close event')).code, 1006);
    assert.equal(peer.client.handler.state, 'closed');
  });

  test('bufferedAmount is 0 when idle and grows while the client does not read', LIMIT, async (t) => {
    const h = await startServer(t);
    // The raw client, whose TCP socket the test pauses (see the top of the file).
    const { raw, client } = await connectRawClient(t, h);
    assert.equal(client.handler.bufferedAmount, 0);
    raw.socket.pause();
    const chunk = Buffer.alloc(1024 * 1024, 0x5a);
    const results: string[] = [];
    // Bounded: the kernel buffers of a paused loopback peer hold far less than 64 MiB.
    while (results.length < 64 && client.handler.bufferedAmount === 0) results.push(client.handler.send(chunk));
    assert.ok(client.handler.bufferedAmount > 0, `bufferedAmount stayed 0 after ${results.length} MiB`);
    assert.equal(results.at(-1), 'queued', 'the send that left bytes buffered reports queued');
    assert.ok(results.every((r) => r === 'written' || r === 'queued'), `results ${results}`);
    raw.socket.resume();
    for (let i = 0; i < results.length; i++) {
      const frame = await raw.nextFrame(8_000);
      assert.equal(frame.opcode, Op.BINARY, `message ${i} opcode`);
      assert.ok(frame.payload.equals(chunk), `message ${i} payload`);
    }
    await until(() => client.handler.bufferedAmount === 0, 'the queue to drain');
  });
});

// ─── setFnAuthenticate ──────────────────────────────────────────────────────────────────────────────────────

describe('setFnAuthenticate (§4.2.2)', () => {
  test('returning true accepts the connection', LIMIT, async (t) => {
    const h = await startServer(t);
    h.server.setFnAuthenticate(() => true);
    const peer = await connectWs(t, h);
    await assertEchoes(peer, 'authenticated');
  });

  test('returning false refuses with 403', LIMIT, async (t) => {
    const h = await startServer(t);
    h.server.setFnAuthenticate(() => false);
    assert.equal(await refusedStatus(t, urlOf(h)), 403);
  });

  test('a promise resolving to true accepts, to false refuses with 403', LIMIT, async (t) => {
    const h = await startServer(t);
    h.server.setFnAuthenticate(async (request) => {
      await delay(20);
      return request.query.get('token') === 'good';
    });
    await connectWs(t, h, {}, { path: '/?token=good' });
    assert.equal(await refusedStatus(t, urlOf(h, '/?token=bad')), 403);
  });

  test('a refusal reaches setFnError as a HandshakeError with status 403 and no client', LIMIT, async (t) => {
    const h = await startServer(t);
    h.server.setFnAuthenticate(() => false);
    assert.equal(await refusedStatus(t, urlOf(h)), 403);
    await until(() => h.errors.length > 0, 'setFnError');
    const { error, client } = h.errors[0]!;
    assert.ok(error instanceof HandshakeError, `got ${error.name}`);
    assert.equal(error.status, 403);
    assert.equal(client, null);
  });

  test('throwing refuses with 500 and the thrown error reaches setFnError', LIMIT, async (t) => {
    const h = await startServer(t);
    const thrown = new Error('auth database down');
    h.server.setFnAuthenticate(() => {
      throw thrown;
    });
    assert.equal(await refusedStatus(t, urlOf(h)), 500);
    await until(() => h.errors.some((e) => e.error === thrown), 'the thrown error at setFnError');
    assert.equal(h.errors.find((e) => e.error === thrown)!.client, null);
    assert.equal(h.joined.length, 0);
  });

  test('a rejected promise refuses with 500 and the error reaches setFnError', LIMIT, async (t) => {
    const h = await startServer(t);
    const rejected = new Error('auth service timeout');
    h.server.setFnAuthenticate(() => Promise.reject(rejected));
    assert.equal(await refusedStatus(t, urlOf(h)), 500);
    await until(() => h.errors.some((e) => e.error === rejected), 'the rejection at setFnError');
    // The server still accepts once authentication works again.
    h.server.setFnAuthenticate(() => true);
    await connectWs(t, h);
  });

  test('receives the request: method GET, url, path, query, headers and remote address', LIMIT, async (t) => {
    const h = await startServer(t);
    const requests: HandshakeRequest[] = [];
    h.server.setFnAuthenticate((request) => {
      requests.push(request);
      return true;
    });
    // The raw client, to compare with its TCP socket (see the top of the file).
    const { raw } = await connectRawClient(t, h, { path: '/auth/path?token=abc&n=1', headers: { 'X-Api-Key': 'k-123', Cookie: 'a=1' } });
    assert.equal(requests.length, 1);
    const request = requests[0]!;
    assert.equal(request.method, 'GET');
    assert.equal(request.url, '/auth/path?token=abc&n=1');
    assert.equal(request.path, '/auth/path');
    assert.equal(request.query.get('token'), 'abc');
    assert.equal(request.query.get('n'), '1');
    assert.equal(request.headers['x-api-key'], 'k-123');
    assert.equal(request.headers['cookie'], 'a=1');
    assert.equal(request.headers['upgrade']?.toLowerCase(), 'websocket');
    assert.ok(request.headers['sec-websocket-key'], 'the key header is present');
    assert.equal(request.remoteAddress, '127.0.0.1');
    assert.equal(request.remotePort, raw.socket.localPort);
  });
});

// ─── setFnError and throwing callbacks ──────────────────────────────────────────────────────────────────────

describe('setFnError', () => {
  test('receives a ProtocolError with closeCode 1002 and the client for an unmasked frame (§5.1)', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    await failWithUnmaskedFrame(raw);
    await until(() => h.errors.length > 0, 'setFnError');
    const { error, client: reported } = h.errors[0]!;
    assert.ok(error instanceof ProtocolError, `got ${error.name}`);
    assert.equal(error.closeCode, 1002);
    assert.equal(typeof error.code, 'string');
    assert.equal(reported, client);
    await delay(SETTLE_MS);
    assert.equal(h.errors.length, 1, 'reported once');
  });

  // Each callback that throws (or rejects): the error reaches setFnError with the client, the process survives
  // and a second client keeps getting echoes.
  const throwers: Array<{ callback: string; install(h: Harness, error: Error, victimId: () => number): void; trigger(peer: WsPeer): void }> = [
    {
      callback: 'new-client throws',
      install: (h, error) => h.server.setFnNewClient((client, s) => {
        h.joined.push(client);
        if (h.joined.length === 1) throw error;
      }),
      trigger: () => {},
    },
    {
      callback: 'message-received throws',
      install: (h, error) => h.server.setFnMessageReceived((client, s, message) => {
        if (message === 'boom') throw error;
        s.sendMessage(client, message);
      }),
      trigger: (peer) => peer.ws.send('boom'),
    },
    {
      callback: 'message-received returns a rejected promise',
      install: (h, error) => h.server.setFnMessageReceived(async (client, s, message) => {
        if (message === 'boom') throw error;
        s.sendMessage(client, message);
      }),
      trigger: (peer) => peer.ws.send('boom'),
    },
    {
      callback: 'client-left throws',
      install: (h, error, victimId) => h.server.setFnClientLeft((client) => {
        h.left.push(client);
        if (client.id === victimId()) throw error;
      }),
      trigger: (peer) => peer.ws.close(),
    },
    {
      callback: 'client-left returns a rejected promise',
      install: (h, error, victimId) => h.server.setFnClientLeft(async (client) => {
        h.left.push(client);
        if (client.id === victimId()) throw error;
      }),
      trigger: (peer) => peer.ws.close(),
    },
  ];
  for (const thrower of throwers) {
    test(`when ${thrower.callback}, the error reaches setFnError and other clients keep working`, LIMIT, async (t) => {
      const h = await startServer(t);
      const error = new Error(`deliberate failure: ${thrower.callback}`);
      let victim: Client | undefined;
      thrower.install(h, error, () => victim?.id ?? -1);
      const first = await connectWs(t, h);
      victim = first.client;
      thrower.trigger(first);
      await until(() => h.errors.some((e) => e.error === error), 'the error at setFnError');
      assert.equal(h.errors.find((e) => e.error === error)!.client, first.client);
      const second = await connectWs(t, h);
      await assertEchoes(second, 'second client works');
      await delay(SETTLE_MS);
      assert.equal(h.errors.filter((e) => e.error === error).length, 1, 'reported once');
    });
  }
});

// ─── denyNewConnections / allowNewConnections ───────────────────────────────────────────────────────────────

describe('denyNewConnections and allowNewConnections', () => {
  test('while denied, new handshakes get 503 and existing clients are unaffected; allowing accepts again', LIMIT, async (t) => {
    const h = await startServer(t);
    const existing = await connectWs(t, h);
    h.server.denyNewConnections();
    assert.equal(await refusedStatus(t, urlOf(h)), 503);
    assert.equal(await refusedStatus(t, urlOf(h)), 503);
    await assertEchoes(existing, 'unaffected');
    assert.deepEqual(h.server.clients, [existing.client]);
    h.server.allowNewConnections();
    const later = await connectWs(t, h);
    await assertEchoes(later, 'accepted again');
    assert.equal(h.server.clients.length, 2);
  });
});

// ─── shutdownGracefully ─────────────────────────────────────────────────────────────────────────────────────

describe('shutdownGracefully()', () => {
  test('sends every client close 1001, resolves, and refuses new connections afterwards', LIMIT, async (t) => {
    const h = await startServer(t);
    const peers = [await connectWs(t, h), await connectWs(t, h)];
    await within(h.server.shutdownGracefully(), 'shutdownGracefully()');
    for (const peer of peers) assert.equal((await within(peer.closed, 'the ws close event')).code, 1001);
    assert.equal(h.server.clients.length, 0);
    assert.equal(h.left.length, 2);
    const error = await connectionError(t, urlOf(h));
    assert.equal(error.code, 'ECONNREFUSED');
  });

  test('passes a custom code and reason', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    await within(h.server.shutdownGracefully(1012, 'restarting'), 'shutdownGracefully()');
    assert.deepEqual(await within(peer.closed, 'the ws close event'), { code: 1012, reason: 'restarting' });
  });

  test('shutdownAbruptly() refuses new connections afterwards', LIMIT, async (t) => {
    const h = await startServer(t);
    await connectWs(t, h);
    await within(h.server.shutdownAbruptly(), 'shutdownAbruptly()');
    const error = await connectionError(t, urlOf(h));
    assert.equal(error.code, 'ECONNREFUSED');
  });

  test('disconnectClientsGracefully() keeps listening', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    await within(h.server.disconnectClientsGracefully(4001, 'go away'), 'disconnectClientsGracefully()');
    assert.deepEqual(await within(peer.closed, 'the ws close event'), { code: 4001, reason: 'go away' });
    const later = await connectWs(t, h);
    await assertEchoes(later, 'still listening');
  });
});

// ─── logging ────────────────────────────────────────────────────────────────────────────────────────────────

describe('logger and loglevel', () => {
  async function protocolFailure(t: TestContext, h: Harness): Promise<void> {
    const { raw } = await connectRawClient(t, h);
    await failWithUnmaskedFrame(raw);
    await until(() => h.left.length === 1, 'client-left');
    await delay(SETTLE_MS);
  }

  test('with loglevel info, a protocol failure is logged at info through the injected logger', LIMIT, async (t) => {
    const logger = recordingLogger();
    const h = await startServer(t, { loglevel: 'info', logger });
    await protocolFailure(t, h);
    assert.ok(logger.lines.info.length > 0, 'an info line');
    assert.equal(logger.lines.debug.length, 0, 'no debug lines at level info');
  });

  test('with loglevel error, the same failure logs no debug, info or warning line', LIMIT, async (t) => {
    const logger = recordingLogger();
    const h = await startServer(t, { loglevel: 'error', logger });
    await protocolFailure(t, h);
    assert.deepEqual(logger.lines.debug, []);
    assert.deepEqual(logger.lines.info, []);
    assert.deepEqual(logger.lines.warn, []);
  });
});

// ─── handleUpgrade: sharing a port with a node:http app ─────────────────────────────────────────────────────

describe('handleUpgrade', () => {
  test('WebSocket and plain HTTP share one port: the app answers requests, the server takes upgrades', LIMIT, async (t) => {
    const { server, port } = await startBehindApp(t);
    const page = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.equal(page.status, 200);
    assert.equal(page.body, 'plain http');
    const ws = await openWs(t, `ws://127.0.0.1:${port}/chat?room=7`);
    ws.send('through the app');
    const [echo] = (await within(once(ws, 'message'), 'the echo')) as [Buffer];
    assert.equal(echo.toString(), 'through the app');
    assert.equal(server.clients.length, 1);
    assert.equal(server.clients[0]!.handler.request.path, '/chat');
    assert.equal(server.clients[0]!.handler.request.query.get('room'), '7');
  });

  test('an upgrade request that breaks a rule gets the same refusal as on the own listener (426 for version 8)', LIMIT, async (t) => {
    const { server, port, errors } = await startBehindApp(t);
    const reply = await rawRequest(port, handshakeRequest({ headers: { 'Sec-WebSocket-Version': '8' } }));
    assert.equal(reply.status, 426);
    assert.equal(reply.headers['sec-websocket-version'], '13');
    assert.equal(reply.closed, true);
    assert.equal(server.clients.length, 0);
    assert.ok(errors[0]?.error instanceof HandshakeError && errors[0].error.status === 426);
  });

  test('frames sent right behind the handshake (in the head buffer) reach the parser', LIMIT, async (t) => {
    const { port } = await startBehindApp(t);
    // One write: the handshake and a masked text frame; node:http hands the frame over as `head`.
    const frame = buildFrame({ opcode: Op.TEXT, payload: 'early' });
    const reply = await rawUpgradeWithFrame(port, Buffer.concat([Buffer.from(handshakeRequest(), 'latin1'), frame]));
    assert.equal(reply.toString('latin1').split('\r\n')[0], 'HTTP/1.1 101 Switching Protocols');
    assert.ok(reply.includes(Buffer.from([0x81, 5, ...Buffer.from('early')])), 'the early frame was echoed');
  });

  test('a stream that is not a net.Socket is refused with a TypeError', LIMIT, () => {
    const server = new WebsocketServer({ logger: SILENT });
    assert.throws(
      () => server.handleUpgrade({} as never, new PassThrough(), Buffer.alloc(0)),
      (error: unknown) => error instanceof TypeError && /net\.Socket/.test(error.message),
    );
  });
});

/** Writes `bytes` on a fresh TCP connection and collects what comes back until an echo frame arrives (bounded). */
async function rawUpgradeWithFrame(port: number, bytes: Buffer): Promise<Buffer> {
  const socket = createConnection({ port, host: '127.0.0.1' });
  try {
    await within(once(socket, 'connect'), 'the TCP connection');
    socket.write(bytes);
    let received = Buffer.alloc(0);
    await within(
      new Promise<void>((resolve) => {
        socket.on('data', (chunk: Buffer) => {
          received = Buffer.concat([received, chunk]);
          const headEnd = received.indexOf('\r\n\r\n');
          if (headEnd !== -1 && received.length >= headEnd + 4 + 7) resolve();
        });
      }),
      'the 101 and the echo',
    );
    return received;
  } finally {
    socket.destroy();
  }
}
