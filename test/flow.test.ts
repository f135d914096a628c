// Backpressure and flow control: bufferedAmount, maxBufferedAmount with each slowClientPolicy, the drain
// callback, and pauseReading/resumeReading. A slow client is a raw client whose socket is paused, so that the
// loopback buffers fill (a few MiB on Linux) and then the server's socket buffer grows.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { WebsocketServer } from '../websocket-server.ts';
import type { Client, SendResult, WebsocketServerOptions } from '../websocket-server.ts';
import { buildFrame, closePayload, Op } from './support/frames.ts';
import { compress, RSV1 } from './support/deflate.ts';
import {
  assertPlainFrame,
  assertRawEchoes,
  connectRawClient,
  messagesFrom,
  pseudoRandomBytes,
  readFrames,
  startServer,
} from './support/harness.ts';
import type { RawClient } from './support/raw-client.ts';
import { LIMIT, SETTLE_MS, until } from './support/wait.ts';

const KIB = 1024;
const MIB = 1024 * KIB;
const SLOW = { timeout: 20_000 };

/** A 16 KiB binary message carrying its index in its first 4 bytes. */
function numbered(index: number, size = 16 * KIB): Buffer {
  const message = Buffer.alloc(size, index & 0xff);
  message.writeUInt32BE(index, 0);
  return message;
}

/** One send and what bufferedAmount was just before it. */
interface Attempt {
  index: number;
  before: number;
  result: SendResult;
}

/**
 * Sends numbered messages to a client until `stop` says so (at most `limit` sends), synchronously, so that
 * nothing drains in between; records bufferedAmount before each send.
 */
function sendUntil(client: Client, stop: (attempts: Attempt[]) => boolean, limit: number, size = 16 * KIB): Attempt[] {
  const attempts: Attempt[] = [];
  for (let index = 0; index < limit && !stop(attempts); index++) {
    const before = client.handler.bufferedAmount;
    attempts.push({ index, before, result: client.handler.send(numbered(index, size)) });
  }
  return attempts;
}

/** Reads `count` frames and checks they are the numbered messages `indices`, in that order. */
async function expectNumbered(raw: RawClient, indices: number[], size = 16 * KIB): Promise<void> {
  const frames = await readFrames(raw, indices.length, 10_000);
  for (const [i, frame] of frames.entries()) {
    assertPlainFrame(frame, Op.BINARY, numbered(indices[i]!, size));
  }
}

// ── bufferedAmount ────────────────────────────────────────────────────────────────────────────────────────

describe('ClientHandler.bufferedAmount', () => {
  test('is 0 when idle, grows while a raw client does not read, and returns to 0 once it has read everything', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    assert.equal(client.handler.bufferedAmount, 0);
    raw.socket.pause();
    const attempts = sendUntil(client, () => client.handler.bufferedAmount > 0, 1024, 256 * KIB);
    assert.ok(client.handler.bufferedAmount > 0, `bufferedAmount stayed 0 after ${attempts.length} messages of 256 KiB`);
    assert.equal(attempts.at(-1)!.result, 'queued', 'the send that left bytes waiting says queued');
    raw.socket.resume();
    await expectNumbered(raw, attempts.map((a) => a.index), 256 * KIB);
    await until(() => client.handler.bufferedAmount === 0, 'bufferedAmount to return to 0');
  });

  test('counts a message waiting for compression at once, and a big compressed message returns queued', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const { raw, client } = await connectRawClient(t, h, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    const message = Buffer.alloc(MIB, 0x61);
    assert.equal(client.handler.send(message), 'queued');
    assert.ok(client.handler.bufferedAmount >= MIB, `bufferedAmount ${client.handler.bufferedAmount} right after the send`);
    const frame = await raw.nextFrame();
    assert.equal(frame.rsv, RSV1);
    await until(() => client.handler.bufferedAmount === 0, 'bufferedAmount to return to 0');
  });
});

describe('small frames of one tick', () => {
  test('leave in one write, in order, counted in bufferedAmount until then; a Ping answered between them keeps its place', LIMIT, async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const { raw, client } = await connectRawClient(t, h);
    const socket = recordWritesTo(client);
    client.handler.send('one');
    client.handler.send(Buffer.from([2]));
    assert.equal(client.handler.bufferedAmount, 5 + 3, 'the two frames wait in the batch');
    assert.equal(socket.writes.length, 0, 'nothing written yet');
    client.handler.ping('between'); // a control frame goes at once: the batch before it goes first
    client.handler.send('three');
    await new Promise((resolve) => setImmediate(resolve));
    socket.restore();
    assert.equal(socket.writes.length, 3, `writes: ${socket.writes.map((w) => w.toString('hex')).join(' ')}`);
    assert.equal(socket.writes[0]!.length, 8, 'one write for the two frames before the Ping');
    const frames = await readFrames(raw, 4);
    assert.deepEqual(frames.map((f) => [f.opcode, f.payload.toString('latin1')]), [
      [Op.TEXT, 'one'],
      [Op.BINARY, '\x02'],
      [Op.PING, 'between'],
      [Op.TEXT, 'three'],
    ]);
    assert.equal(client.handler.bufferedAmount, 0);
  });

  test('a frame of 1 KiB or more is not copied into the batch: its buffer is written as it is (a broadcast shares it), after the small ones, in order', LIMIT, async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const { raw, client } = await connectRawClient(t, h);
    const socket = recordWritesTo(client);
    const large = Buffer.alloc(4 * KIB, 7);
    client.handler.send('a');
    client.handler.send('b');
    h.server.sendMessageToAll(large); // framed once for every client
    client.handler.send('c');
    await new Promise((resolve) => setImmediate(resolve));
    socket.restore();
    assert.equal(socket.writes.length, 3, `writes: ${socket.writes.map((w) => w.length).join(' ')}`);
    assert.equal(socket.writes[0]!.length, 6, 'the two small frames gathered');
    assert.equal(socket.writes[1]!.length, 4 + 4 * KIB, 'the large frame alone, not concatenated with the next');
    assert.equal(socket.writes[2]!.length, 3, 'the small frame after it');
    const frames = await readFrames(raw, 4);
    assert.deepEqual(frames.map((f) => [f.opcode, f.payload.length]), [[Op.TEXT, 1], [Op.TEXT, 1], [Op.BINARY, 4 * KIB], [Op.TEXT, 1]]);
    assert.ok(frames[2]!.payload.equals(large));
    assert.equal(client.handler.bufferedAmount, 0);
  });
});

/** Records the buffers written to the server's socket of `client` (told apart by the client's port). */
function recordWritesTo(client: Client): { writes: Buffer[]; restore: () => void } {
  const writes: Buffer[] = [];
  const net = Socket.prototype;
  const original = net.write;
  net.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    if (this.remotePort === client.address.port && Buffer.isBuffer(chunk)) writes.push(chunk);
    return (original as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof net.write;
  return { writes, restore: () => (net.write = original) };
}

// ── maxBufferedAmount and slowClientPolicy ──────────────────────────────────────────────────────────────

describe('maxBufferedAmount and slowClientPolicy', () => {
  const limit = 64 * KIB;

  test("'close': the first message sent with more than the limit waiting is dropped and the client is closed with 1008", SLOW, async (t) => {
    const h = await startServer(t, { maxBufferedAmount: limit, slowClientPolicy: 'close' });
    const { raw, client } = await connectRawClient(t, h);
    raw.socket.pause();
    const attempts = sendUntil(client, (a) => a.at(-1)?.result === 'dropped', 8192);
    const dropped = attempts.at(-1)!;
    assert.equal(dropped.result, 'dropped', `no drop after ${attempts.length} sends`);
    // The backlog is judged, not the new message: the drop comes once more than the limit already waits.
    assert.ok(dropped.before > limit, `dropped with ${dropped.before} bytes waiting`);
    for (const accepted of attempts.slice(0, -1)) {
      assert.notEqual(accepted.result, 'dropped');
      assert.ok(accepted.before <= limit, `message ${accepted.index} was accepted with ${accepted.before} bytes waiting`);
    }
    assert.equal(client.handler.state, 'closing');
    assert.equal(client.handler.send('after'), 'dropped', 'a closing client takes no more messages');
    assert.equal(h.server.stats.messagesDropped, 2);

    raw.socket.resume();
    const close = await raw.closeFrame(10_000);
    assert.equal(close.code, 1008);
    // Everything accepted before the limit was passed is delivered, in order, before the Close frame.
    assert.deepEqual(
      close.before.map((frame) => frame.payload.readUInt32BE(0)),
      attempts.slice(0, -1).map((a) => a.index),
    );
    raw.sendFrame({ opcode: Op.CLOSE, payload: closePayload(1008) });
    await raw.ended();
    raw.socket.end(); // §7.1.1: the client ends TCP after the server did
    await until(() => h.left.includes(client), 'client-left');
    assert.equal(client.handler.closeCode, 1008);
    assert.equal(h.server.stats.closeCodes['1008'], 1);
  });

  test("'drop': messages sent while more than the limit waits return dropped, the client stays open and gets every other message in order", SLOW, async (t) => {
    const h = await startServer(t, { maxBufferedAmount: limit, slowClientPolicy: 'drop' });
    const { raw, client } = await connectRawClient(t, h);
    raw.socket.pause();
    const attempts = sendUntil(client, (a) => a.filter((x) => x.result === 'dropped').length === 3, 8192);
    const dropped = attempts.filter((a) => a.result === 'dropped');
    const accepted = attempts.filter((a) => a.result !== 'dropped');
    assert.equal(dropped.length, 3, `drops after ${attempts.length} sends`);
    for (const a of dropped) assert.ok(a.before > limit, `message ${a.index} dropped with ${a.before} bytes waiting`);
    for (const a of accepted) assert.ok(a.before <= limit, `message ${a.index} accepted with ${a.before} bytes waiting`);
    assert.equal(client.handler.state, 'open');
    assert.equal(h.server.stats.messagesDropped, 3);

    raw.socket.resume();
    await expectNumbered(raw, accepted.map((a) => a.index));
    await until(() => client.handler.bufferedAmount === 0, 'the client to catch up');
    assert.equal(client.handler.send(numbered(999)), 'written', 'once caught up, messages go again');
    await expectNumbered(raw, [999]);
    await assertRawEchoes(raw);
  });

  test("'drop': a broadcast skips the slow client only", SLOW, async (t) => {
    const h = await startServer(t, { maxBufferedAmount: limit, slowClientPolicy: 'drop' });
    const slow = await connectRawClient(t, h);
    const fast = await connectRawClient(t, h);
    slow.raw.socket.pause();
    const attempts = sendUntil(slow.client, (a) => a.at(-1)?.result === 'dropped', 8192);
    assert.equal(attempts.at(-1)!.result, 'dropped');
    // In the same tick: the slow client's buffer cannot have drained.
    assert.equal(h.server.sendMessageToAll(numbered(5000)), 1);
    await expectNumbered(fast.raw, [5000]);
    slow.raw.socket.resume();
    await expectNumbered(slow.raw, attempts.slice(0, -1).map((a) => a.index));
    assert.equal(h.server.stats.messagesDropped, 2);
  });

  test("messages waiting for compression count toward the limit ('drop' with permessage-deflate)", SLOW, async (t) => {
    const h = await startServer(t, { maxBufferedAmount: limit, slowClientPolicy: 'drop', perMessageDeflate: true });
    const { raw, client } = await connectRawClient(t, h, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    // Compression is asynchronous: in one tick, nothing has reached the socket yet.
    const message = Buffer.alloc(40 * KIB, 0x61);
    assert.equal(client.handler.send(message), 'queued');
    assert.equal(client.handler.send(message), 'queued', '40 KiB waiting is within 64 KiB');
    assert.equal(client.handler.send('small'), 'dropped', '80 KiB waiting is over 64 KiB, however small the message');
    assert.equal(h.server.stats.messagesDropped, 1);
    assert.equal((await raw.nextFrame()).rsv, RSV1);
    assert.equal((await raw.nextFrame()).rsv, RSV1);
    await until(() => client.handler.bufferedAmount === 0, 'the compressed messages to leave');
    assert.equal(client.handler.send('small'), 'written', 'once they left, messages go again');
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'small');
  });

  test("'queue': nothing is dropped however much waits, and everything arrives in order", SLOW, async (t) => {
    const h = await startServer(t, { maxBufferedAmount: limit, slowClientPolicy: 'queue' });
    const { raw, client } = await connectRawClient(t, h);
    raw.socket.pause();
    const attempts = sendUntil(client, () => client.handler.bufferedAmount > 8 * limit, 8192);
    assert.ok(client.handler.bufferedAmount > 8 * limit, `bufferedAmount ${client.handler.bufferedAmount}`);
    assert.ok(attempts.every((a) => a.result !== 'dropped'), 'no message was dropped');
    assert.equal(client.handler.state, 'open');
    assert.equal(h.server.stats.messagesDropped, 0);
    raw.socket.resume();
    await expectNumbered(raw, attempts.map((a) => a.index));
  });

  test('by default, a client with more than 16 MiB waiting is closed with 1008', SLOW, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    raw.socket.pause();
    const attempts = sendUntil(client, (a) => a.at(-1)?.result === 'dropped', 64, MIB);
    const dropped = attempts.at(-1)!;
    assert.equal(dropped.result, 'dropped', `no drop after ${attempts.length} MiB`);
    assert.ok(dropped.before > 16 * MIB, `dropped with ${dropped.before} bytes waiting`);
    for (const a of attempts.slice(0, -1)) assert.ok(a.before <= 16 * MIB);
    assert.equal(client.handler.state, 'closing');
    raw.socket.resume();
    assert.equal((await raw.closeFrame(15_000)).code, 1008);
  });

  const bad: Array<{ options: Record<string, unknown>; error: typeof TypeError | typeof RangeError; names: RegExp }> = [
    { options: { maxBufferedAmount: 0 }, error: RangeError, names: /maxBufferedAmount/ },
    { options: { maxBufferedAmount: -1 }, error: RangeError, names: /maxBufferedAmount/ },
    { options: { maxBufferedAmount: 1.5 }, error: RangeError, names: /maxBufferedAmount/ },
    { options: { maxBufferedAmount: '64k' }, error: TypeError, names: /maxBufferedAmount/ },
    { options: { slowClientPolicy: 'block' }, error: RangeError, names: /slowClientPolicy/ },
  ];
  for (const { options, error, names } of bad) {
    test(`option ${JSON.stringify(options)} throws a ${error.name} naming the option`, LIMIT, () => {
      assert.throws(
        () => new WebsocketServer(options as WebsocketServerOptions),
        (thrown: unknown) => {
          assert.ok(thrown instanceof Error);
          assert.equal(thrown.constructor, error, `got ${thrown.constructor.name}: ${thrown.message}`);
          assert.match(thrown.message, names);
          return true;
        },
      );
    });
  }

  test('every policy and a 1-byte limit are accepted', LIMIT, () => {
    for (const slowClientPolicy of ['close', 'drop', 'queue'] as const) {
      assert.doesNotThrow(() => new WebsocketServer({ slowClientPolicy, maxBufferedAmount: 1 }));
    }
  });
});

// ── setFnDrain ────────────────────────────────────────────────────────────────────────────────────────────

describe('setFnDrain', () => {
  test('fires once, with the client and the server, after a client that fell behind has read everything', SLOW, async (t) => {
    const h = await startServer(t, { slowClientPolicy: 'queue' });
    const drains: Array<{ client: Client; server: WebsocketServer; buffered: number }> = [];
    h.server.setFnDrain((client, server) => drains.push({ client, server, buffered: client.handler.bufferedAmount }));
    const slow = await connectRawClient(t, h);
    const other = await connectRawClient(t, h);
    assert.equal(other.client.handler.send('small'), 'written');
    assertPlainFrame(await other.raw.nextFrame(), Op.TEXT, 'small');

    slow.raw.socket.pause();
    // 24 MiB: far more than the loopback buffers hold, so the socket cannot drain while the client is paused.
    const attempts = sendUntil(slow.client, () => false, 96, 256 * KIB);
    assert.equal(attempts.at(-1)!.result, 'queued');
    await delay(SETTLE_MS);
    assert.equal(drains.length, 0, 'no drain while the client does not read');

    slow.raw.socket.resume();
    await expectNumbered(slow.raw, attempts.map((a) => a.index), 256 * KIB);
    await until(() => drains.length > 0, 'the drain callback');
    await delay(SETTLE_MS);
    assert.equal(drains.length, 1, 'drain fires once');
    assert.equal(drains[0]!.client, slow.client);
    assert.equal(drains[0]!.server, h.server);
    assert.equal(drains[0]!.buffered, 0, 'nothing waits any more when drain fires');
  });
});

// ── pauseReading / resumeReading ───────────────────────────────────────────────────────────────────────────

describe('pauseReading() and resumeReading()', () => {
  test('a pause in a message callback holds back the frames that arrived in the same chunk until resumeReading()', LIMIT, async (t) => {
    const h = await startServer(t, {}, { echo: false });
    h.server.setFnMessageReceived((client, _server, message) => {
      h.messages.push({ client, message });
      if (message === 'one') client.handler.pauseReading();
    });
    const { raw, client } = await connectRawClient(t, h);
    raw.sendRaw(Buffer.concat(['one', 'two', 'three', 'four'].map((text) => buildFrame({ opcode: Op.TEXT, payload: text }))));
    await until(() => h.messages.length >= 1, 'the first message');
    await delay(SETTLE_MS);
    assert.deepEqual(messagesFrom(h, client), ['one'], 'no message-received call while paused');
    assert.equal(h.server.stats.messagesIn, 1);
    client.handler.resumeReading();
    await until(() => h.messages.length === 4, 'the held-back messages');
    assert.deepEqual(messagesFrom(h, client), ['one', 'two', 'three', 'four']);
  });

  test('paused before anything arrives: nothing is delivered until resumeReading(), then all in order', LIMIT, async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const { raw, client } = await connectRawClient(t, h);
    client.handler.pauseReading();
    for (let i = 0; i < 5; i++) raw.sendFrame({ opcode: Op.TEXT, payload: `m${i}` });
    await delay(SETTLE_MS);
    assert.equal(h.messages.length, 0);
    client.handler.resumeReading();
    await until(() => h.messages.length === 5, 'five messages');
    assert.deepEqual(messagesFrom(h, client), ['m0', 'm1', 'm2', 'm3', 'm4']);
  });

  test('a ping is not answered while paused, and is answered after resumeReading()', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    client.handler.pauseReading();
    raw.sendFrame({ opcode: Op.PING, payload: 'are you there' });
    await assert.rejects(raw.nextFrame(SETTLE_MS), /Timed out/, 'no pong while paused');
    client.handler.resumeReading();
    assertPlainFrame(await raw.nextFrame(), Op.PONG, 'are you there');
  });

  test('compressed messages behind a pause wait too, and arrive in order after resumeReading()', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true }, { echo: false });
    h.server.setFnMessageReceived((client, _server, message) => {
      h.messages.push({ client, message });
      if (message === 'one') client.handler.pauseReading();
    });
    const { raw, client } = await connectRawClient(t, h, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    raw.sendRaw(
      Buffer.concat([
        buildFrame({ opcode: Op.TEXT, rsv: RSV1, payload: compress('one') }),
        buildFrame({ opcode: Op.TEXT, rsv: RSV1, payload: compress('two') }),
        buildFrame({ opcode: Op.TEXT, payload: 'three' }),
        buildFrame({ opcode: Op.TEXT, rsv: RSV1, payload: compress('four') }),
      ]),
    );
    await until(() => h.messages.length >= 1, 'the first message');
    await delay(SETTLE_MS);
    assert.deepEqual(messagesFrom(h, client), ['one']);
    client.handler.resumeReading();
    await until(() => h.messages.length === 4, 'the held-back messages');
    assert.deepEqual(messagesFrom(h, client), ['one', 'two', 'three', 'four']);
  });

  test('a compressed message still being inflated when pauseReading() is called is delivered only after resumeReading()', LIMIT, async (t) => {
    // One zlib slot for the whole server, held by the compression of a 16 MiB message for another client: the
    // reader's frame is received and waits for inflation while the test pauses the reader.
    const h = await startServer(t, { perMessageDeflate: { concurrencyLimit: 1 } }, { echo: false });
    const offer = { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } };
    const hog = await connectRawClient(t, h, offer);
    const reader = await connectRawClient(t, h, offer);
    hog.raw.socket.pause(); // the 16 MiB frame is never read
    const big = pseudoRandomBytes(16 * MIB, 5);
    assert.equal(hog.client.handler.send(big), 'queued');
    const bytesInBefore = h.server.stats.bytesIn;
    reader.raw.sendFrame({ opcode: Op.TEXT, rsv: RSV1, payload: compress('inflated while paused') });
    await until(() => h.server.stats.bytesIn > bytesInBefore, "the reader's frame to reach the server");
    assert.equal(h.server.stats.messagesOut, 0, 'precondition: the big message is still being compressed');
    reader.client.handler.pauseReading();
    await until(() => h.server.stats.messagesOut === 1, 'the big message to be compressed', 8_000);
    await delay(SETTLE_MS);
    assert.deepEqual(messagesFrom(h, reader.client), [], 'no message-received call while paused');
    reader.client.handler.resumeReading();
    await until(() => h.messages.length === 1, 'the message after resumeReading()');
    assert.deepEqual(messagesFrom(h, reader.client), ['inflated while paused']);
  });

  test('while paused the server stops reading TCP: a client sending much finds its own send buffer full', LIMIT, async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const { raw, client } = await connectRawClient(t, h);
    client.handler.pauseReading();
    const frame = buildFrame({ opcode: Op.BINARY, payload: Buffer.alloc(512 * KIB, 0x42) });
    for (let i = 0; i < 48; i++) raw.sendRaw(frame);
    await delay(SETTLE_MS);
    assert.ok(raw.socket.writableLength > 0, 'the client could not hand everything to the server');
    assert.equal(h.messages.length, 0);
    client.handler.resumeReading();
    await until(() => h.messages.length === 48, 'all 48 messages', 8_000);
    await until(() => raw.socket.writableLength === 0, "the client's buffer to drain");
  });

  test('resumeReading() after the connection closed does nothing', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    client.handler.pauseReading();
    client.handler.terminate();
    await raw.ended();
    await until(() => h.left.includes(client), 'client-left');
    assert.doesNotThrow(() => client.handler.resumeReading());
    assert.equal(client.handler.state, 'closed');
  });
});
