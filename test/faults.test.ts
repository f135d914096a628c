// Faults: peers that misbehave at the TCP level (resets, half-closes, vanishing, stalling, leaving mid-handshake,
// mid-message or mid-compression), user callbacks that throw or are slow, and a graceful shutdown under 2,000
// connections. After every fault the same three things must hold: client-left fired exactly once for each client
// that got new-client, `server.clients` holds exactly the survivors, and the server still serves a new client.
// At the end, no timer or socket of ours is left behind.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import * as net from 'node:net';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '../websocket-server.ts';
import { buildFrame, closePayload, Op } from './support/frames.ts';
import { compress, RSV1 } from './support/deflate.ts';
import {
  assertRawEchoes,
  assertServerStillServes,
  connectRawClient,
  pseudoRandomBytes,
  pseudoRandomText,
  startServer,
} from './support/harness.ts';
import type { Harness } from './support/harness.ts';
import { connectRaw, handshakeRequest } from './support/raw-client.ts';
import type { RawClient } from './support/raw-client.ts';
import { LIMIT, SETTLE_MS, until, within } from './support/wait.ts';

const KIB = 1024;
const MIB = 1024 * KIB;
const SLOW = { timeout: 30_000 };
const DEFLATE = { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } };

/** The resource kinds that our servers, sockets and timers show up as. */
const WATCHED = ['Timeout', 'TCPSocketWrap', 'TCPServerWrap'] as const;

function countResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const kind of WATCHED) counts[kind] = 0;
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind in counts) counts[kind]! += 1;
  }
  return counts;
}

let baseline: Record<string, number> = {};
before(() => {
  baseline = countResources();
});

after(async () => {
  // Every test's t.after has shut its server down by now; closing handles takes a turn of the event loop.
  const leftOver = (): string[] => {
    const now = countResources();
    return WATCHED.filter((kind) => now[kind]! > baseline[kind]!).map((kind) => `${kind} ${baseline[kind]} → ${now[kind]}`);
  };
  await until(() => leftOver().length === 0, 'our timers and sockets to be released', 3_000).catch(() => undefined);
  assert.deepEqual(leftOver(), [], 'resources left once all servers are shut down');
});

/** How many times client-left fired for `client`. */
function leftCount(h: Harness, client: Client): number {
  return h.left.filter((left) => left === client).length;
}

/** Waits until every client in `leaving` has left, then lets late duplicates show before checking. */
async function awaitLeft(h: Harness, leaving: Client[], ms = 5_000): Promise<void> {
  await until(() => leaving.every((client) => leftCount(h, client) > 0), `client-left for ${leaving.length} client(s)`, ms);
  await delay(SETTLE_MS);
}

/**
 * The aftermath of a fault: client-left fired exactly once for every client that got new-client and is not in
 * `survivors`, never for a survivor, `server.clients` is exactly the survivors, and a new client is served.
 */
async function assertAftermath(t: TestContext, h: Harness, survivors: Client[] = []): Promise<void> {
  for (const client of h.joined) {
    const expected = survivors.includes(client) ? 0 : 1;
    assert.equal(leftCount(h, client), expected, `client-left calls for client ${client.id}`);
  }
  assert.equal(h.left.length, h.joined.length - survivors.length, 'client-left only for clients that got new-client');
  assert.deepEqual(
    h.server.clients.map((client) => client.id).sort((a, b) => a - b),
    survivors.map((client) => client.id).sort((a, b) => a - b),
    'server.clients holds exactly the survivors',
  );
  await assertServerStillServes(t, h);
}

// ── TCP faults of an open connection ─────────────────────────────────────────────────────────────────────────

describe('a peer that resets its TCP connection', () => {
  const frame = buildFrame({ opcode: Op.BINARY, payload: pseudoRandomBytes(64 * KIB) });
  const cuts: Array<[string, Buffer]> = [
    ['after one byte of a frame header', frame.subarray(0, 1)],
    ['after half of the extended length', frame.subarray(0, 3)],
    ['after half of a 64 KiB payload', frame.subarray(0, 8 + 32 * KIB)],
  ];
  for (const [when, bytes] of cuts) {
    test(`leaves once with 1006 when it resets ${when}`, LIMIT, async (t) => {
      const h = await startServer(t);
      const { raw, client } = await connectRawClient(t, h);
      const bystander = await connectRawClient(t, h);
      raw.sendRaw(bytes);
      await delay(20);
      raw.socket.resetAndDestroy();
      await awaitLeft(h, [client]);
      assert.equal(client.handler.closeCode, 1006);
      assert.equal(client.handler.state, 'closed');
      assert.equal(h.messages.length, 0, 'no partial message was delivered');
      await assertRawEchoes(bystander.raw, 'the bystander still echoes');
      await assertAftermath(t, h, [bystander.client]);
    });
  }
});

describe('a peer that half-closes (FIN without a close frame)', () => {
  test('makes the server end the connection too, with closeCode 1006', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    raw.socket.end();
    await within(raw.ended(), 'the server to end its side');
    await awaitLeft(h, [client]);
    assert.equal(client.handler.closeCode, 1006);
    await assertAftermath(t, h);
  });

  test('mid-frame: the half frame is discarded and the connection ends with 1006', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    raw.sendRaw(buildFrame({ opcode: Op.TEXT, payload: 'x'.repeat(1000) }).subarray(0, 500));
    raw.socket.end();
    await within(raw.ended(), 'the server to end its side');
    await awaitLeft(h, [client]);
    assert.equal(client.handler.closeCode, 1006);
    assert.equal(h.messages.length, 0);
    await assertAftermath(t, h);
  });
});

describe('a peer that vanishes without a FIN', () => {
  test('is dropped by the heartbeat (pingInterval 50, pingTimeout 100) with 1006', LIMIT, async (t) => {
    const h = await startServer(t, { pingInterval: 50, pingTimeout: 100 });
    const { raw, client } = await connectRawClient(t, h);
    // The raw client never answers a Ping; pausing it also stops it reading, as a vanished host would.
    raw.socket.pause();
    const started = Date.now();
    await awaitLeft(h, [client], 3_000);
    const took = Date.now() - started;
    assert.equal(client.handler.closeCode, 1006);
    assert.ok(took < 1_000, `the heartbeat took ${took} ms to drop the client`);
    raw.socket.resume();
    await within(raw.ended(), 'the server to drop the TCP connection');
    // A client that answers Pings (ws does) stays through several heartbeats.
    await assertAftermath(t, h);
  });
});

describe('a peer that stops reading while the server sends', () => {
  test("with slowClientPolicy 'close': bufferedAmount stays bounded and the client is closed with 1008", SLOW, async (t) => {
    const limit = 256 * KIB;
    const h = await startServer(t, { maxBufferedAmount: limit, slowClientPolicy: 'close', closeTimeout: 2_000 });
    const { raw, client } = await connectRawClient(t, h);
    const healthy = await connectRawClient(t, h);
    raw.socket.pause();
    const message = pseudoRandomBytes(16 * KIB);
    let highest = 0;
    let sends = 0;
    // Send in bursts, as an application would, letting the event loop run between them (bounded).
    for (let burst = 0; burst < 200 && client.handler.state === 'open'; burst++) {
      for (let i = 0; i < 32; i++) {
        h.server.sendMessageToAll(message);
        sends++;
        highest = Math.max(highest, client.handler.bufferedAmount);
      }
      await delay(1);
      // The healthy client keeps up: drain what it got.
      healthy.raw.socket.resume();
    }
    assert.notEqual(client.handler.state, 'open', `still open after ${sends} broadcasts`);
    // The limit judges what waits before each message: one message more is the most it can hold.
    assert.ok(highest <= limit + message.length + 4, `bufferedAmount reached ${highest}, over the limit of ${limit} and one message`);
    raw.socket.resume();
    const close = await raw.closeFrame(10_000);
    assert.equal(close.code, 1008);
    raw.sendFrame({ opcode: Op.CLOSE, payload: closePayload(1008) });
    await awaitLeft(h, [client]);
    assert.equal(client.handler.closeCode, 1008);
    assert.equal(healthy.client.handler.state, 'open', 'the healthy client was not closed');
    await assertAftermath(t, h, [healthy.client]);
  });
});

// ── leaving during the handshake ───────────────────────────────────────────────────────────────────────────

describe('a peer that leaves during the opening handshake', () => {
  test('after half a request: no new-client, no client-left, and nothing is listed', LIMIT, async (t) => {
    const h = await startServer(t);
    const request = handshakeRequest();
    for (const cut of [1, request.length >> 1, request.length - 2]) {
      const socket = net.connect({ host: '127.0.0.1', port: h.server.port });
      socket.on('error', () => undefined);
      await within(new Promise((resolve) => socket.once('connect', resolve)), 'the TCP connection');
      socket.write(request.slice(0, cut));
      await delay(20);
      socket.destroy();
    }
    await delay(SETTLE_MS);
    assert.equal(h.joined.length, 0);
    assert.equal(h.left.length, 0);
    await assertAftermath(t, h);
  });

  test('while an async setFnAuthenticate is running: no new-client once it resolves', LIMIT, async (t) => {
    const h = await startServer(t);
    let asked = 0;
    let answered = 0;
    h.server.setFnAuthenticate(async () => {
      asked++;
      await delay(150);
      answered++;
      return { data: 'welcome' };
    });
    const socket = net.connect({ host: '127.0.0.1', port: h.server.port });
    socket.on('error', () => undefined);
    socket.write(handshakeRequest());
    await until(() => asked === 1, 'setFnAuthenticate to be asked');
    socket.destroy();
    await until(() => answered === 1, 'setFnAuthenticate to answer');
    await delay(SETTLE_MS);
    assert.equal(h.joined.length, 0, 'no new-client for a socket that is gone');
    assert.equal(h.left.length, 0);
    assert.equal(h.server.clients.length, 0);
    await assertAftermath(t, h);
  });
});

// ── leaving mid-message ────────────────────────────────────────────────────────────────────────────────────

describe('a peer that leaves during a fragmented message', () => {
  for (const how of ['destroys its socket', 'resets', 'half-closes'] as const) {
    test(`no message is delivered and it leaves once with 1006 when it ${how} between fragments`, LIMIT, async (t) => {
      const h = await startServer(t);
      const { raw, client } = await connectRawClient(t, h);
      raw.sendFrame({ opcode: Op.TEXT, fin: false, payload: 'first ' });
      raw.sendFrame({ opcode: Op.CONTINUATION, fin: false, payload: 'second ' });
      raw.sendFrame({ opcode: Op.PING, payload: 'in between' });
      const pong = await raw.nextFrame();
      assert.equal(pong.opcode, Op.PONG, 'the fragments were read');
      if (how === 'destroys its socket') raw.destroy();
      else if (how === 'resets') raw.socket.resetAndDestroy();
      else raw.socket.end();
      await awaitLeft(h, [client]);
      assert.equal(client.handler.closeCode, 1006);
      assert.equal(h.messages.length, 0);
      await assertAftermath(t, h);
    });
  }
});

describe('a peer that leaves while compression is running', () => {
  test('the server drops it mid-deflate and keeps compressing for the others (concurrencyLimit 1)', SLOW, async (t) => {
    const h = await startServer(t, { perMessageDeflate: { concurrencyLimit: 1 } });
    const leaving = await connectRawClient(t, h, DEFLATE);
    const staying = await connectRawClient(t, h, DEFLATE);
    const big = pseudoRandomText(8 * MIB, 7);
    // Both jobs are queued behind one another; the first client leaves while its job runs.
    assert.equal(leaving.client.handler.send(big), 'queued');
    assert.equal(staying.client.handler.send(big), 'queued');
    leaving.raw.destroy();
    await awaitLeft(h, [leaving.client]);
    assert.equal(leaving.client.handler.closeCode, 1006);
    const frame = await staying.raw.nextFrame(20_000);
    assert.equal(frame.rsv, RSV1, 'the message to the staying client is compressed');
    assert.equal(frame.fin, true);
    await until(() => staying.client.handler.bufferedAmount === 0, 'the staying client to be caught up');
    await assertRawEchoes(staying.raw, 'after the big one');
    await assertAftermath(t, h, [staying.client]);
  });

  test('the server drops it mid-inflate of a big compressed message it sent (a 12 MiB bomb of 12 KiB)', SLOW, async (t) => {
    const h = await startServer(t, { perMessageDeflate: { concurrencyLimit: 1 } });
    const { raw, client } = await connectRawClient(t, h, DEFLATE);
    const payload = compress(Buffer.alloc(12 * MIB, 0x61));
    raw.sendFrame({ opcode: Op.BINARY, rsv: RSV1, payload });
    raw.socket.resetAndDestroy();
    await awaitLeft(h, [client]);
    assert.equal(client.handler.closeCode, 1006);
    await assertAftermath(t, h);
  });
});

// ── user callbacks ─────────────────────────────────────────────────────────────────────────────────────────

describe('user callbacks that misbehave', () => {
  test('a message callback that throws is reported to the error callback and disturbs nobody', LIMIT, async (t) => {
    const h = await startServer(t);
    h.server.setFnMessageReceived((client, server, message) => {
      if (message === 'throw') throw new Error('callback failure');
      if (message === 'reject') return Promise.reject(new Error('async callback failure'));
      server.sendMessage(client, message);
      return undefined;
    });
    const a = await connectRawClient(t, h);
    const b = await connectRawClient(t, h);
    a.raw.sendFrame({ opcode: Op.TEXT, payload: 'throw' });
    a.raw.sendFrame({ opcode: Op.TEXT, payload: 'reject' });
    await until(() => h.errors.length === 2, 'two errors reported');
    assert.deepEqual(h.errors.map((e) => e.error.message).sort(), ['async callback failure', 'callback failure']);
    await assertRawEchoes(a.raw, 'the thrower is still served');
    await assertRawEchoes(b.raw, 'and so is the other');
    await assertAftermath(t, h, [a.client, b.client]);
  });

  test('a new-client and a client-left callback that throw do not break joining and leaving', LIMIT, async (t) => {
    const h = await startServer(t);
    h.server.setFnNewClient((client) => {
      h.joined.push(client);
      throw new Error('new-client failure');
    });
    h.server.setFnClientLeft((client) => {
      h.left.push(client);
      throw new Error('client-left failure');
    });
    const { raw, client } = await connectRawClient(t, h);
    await assertRawEchoes(raw);
    raw.destroy();
    await awaitLeft(h, [client]);
    assert.ok(h.errors.length >= 2, `${h.errors.length} error(s) reported`);
    await assertAftermath(t, h);
  });

  test('a slow async message callback (200 ms) does not hold other clients back', LIMIT, async (t) => {
    const h = await startServer(t);
    h.server.setFnMessageReceived(async (client, server, message) => {
      if (message === 'slow') await delay(200);
      server.sendMessage(client, message);
    });
    const slow = await connectRawClient(t, h);
    const other = await connectRawClient(t, h);
    const started = Date.now();
    slow.raw.sendFrame({ opcode: Op.TEXT, payload: 'slow' });
    let echoes = 0;
    while (Date.now() - started < 150) {
      const sent = Date.now();
      await assertRawEchoes(other.raw, `echo ${echoes}`);
      const took = Date.now() - sent;
      assert.ok(took < 100, `an echo took ${took} ms while the slow callback waited`);
      echoes++;
    }
    assert.ok(echoes >= 5, `only ${echoes} echoes during the slow callback`);
    const reply = await slow.raw.nextFrame(2_000);
    assert.equal(reply.payload.toString(), 'slow');
    assert.ok(Date.now() - started >= 190, 'the slow reply came after its wait');
    await assertAftermath(t, h, [slow.client, other.client]);
  });
});

// ── graceful shutdown under load ───────────────────────────────────────────────────────────────────────────

describe('shutdownGracefully() with 2,000 raw clients', () => {
  test('closes each with 1001 or drops it after closeTimeout, reports each once, and resolves', { timeout: 60_000 }, async (t) => {
    const count = 2_000;
    const closeTimeout = 1_000;
    const h = await startServer(t, { closeTimeout, pingInterval: 0 });
    const raws: RawClient[] = [];
    t.after(() => {
      for (const raw of raws) raw.destroy();
    });
    // Connect in batches so that the listen backlog never overflows (a dropped SYN is retried after 1 s).
    for (let batch = 0; batch < count; batch += 200) {
      const opened = await within(
        Promise.all(Array.from({ length: Math.min(200, count - batch) }, () => connectRaw(h.server.port))),
        'a batch of 200 raw clients to connect',
        15_000,
      );
      raws.push(...opened);
    }
    await until(() => h.joined.length === count, `${count} new-client calls (have ${h.joined.length})`, 10_000);
    assert.equal(h.server.clients.length, count);

    // Even clients answer the close frame; odd ones read it and never answer, so closeTimeout drops them.
    const seen = raws.map(async (raw, index) => {
      const close = await raw.closeFrame(closeTimeout + 10_000);
      if (index % 2 === 0) raw.sendFrame({ opcode: Op.CLOSE, payload: closePayload(close.code ?? 1000) });
      await raw.ended(closeTimeout + 10_000);
      return close.code;
    });
    const started = Date.now();
    await within(h.server.shutdownGracefully(), 'shutdownGracefully()', closeTimeout + 15_000);
    const took = Date.now() - started;
    const codes = await within(Promise.all(seen), 'every client to see the close and the end', 15_000);
    assert.ok(codes.every((code) => code === 1001), 'every client got a close frame with 1001');
    assert.ok(took < closeTimeout + 5_000, `shutdownGracefully() took ${took} ms`);
    await delay(SETTLE_MS);

    assert.equal(h.left.length, count, 'client-left calls');
    assert.equal(new Set(h.left.map((client) => client.id)).size, count, 'each client left exactly once');
    assert.equal(h.server.clients.length, 0);
    const byCode = new Map<number | undefined, number>();
    for (const client of h.joined) byCode.set(client.handler.closeCode, (byCode.get(client.handler.closeCode) ?? 0) + 1);
    assert.equal(byCode.get(1001), count / 2, `close codes ${JSON.stringify([...byCode])}`);
    assert.equal(byCode.get(1006), count / 2, `close codes ${JSON.stringify([...byCode])}`);
    // The server no longer listens.
    await assert.rejects(connectRaw(h.server.port), 'a connection after shutdown is refused');
  });
});
