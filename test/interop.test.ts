// Interoperability: `ws` (the Node reference implementation) as an independent client against an echo server.
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { connectWs, messagesFrom, nextMessage, startServer, type WsPeer } from './support/harness.ts';
import { LIMIT, SETTLE_MS, until, within } from './support/wait.ts';

// ─── shared helpers ─────────────────────────────────────────────────────────────────────────────────────────

/** Deterministic bytes whose order matters (a shuffled or shifted echo cannot match). */
function pattern(size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >>> 8) * 7 + 13) & 0xff;
  return bytes;
}

/** ASCII text of exactly `size` bytes whose order matters. */
function textOf(size: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_';
  let text = '';
  for (let i = 0; i < size; i++) text += alphabet[(i * 7 + (i >>> 6)) % alphabet.length];
  return text;
}

// ─── data frames (§5.6) and lengths (§5.2) ──────────────────────────────────────────────────────────────────

const SIZES = [0, 1, 125, 126, 65535, 65536, 1024 * 1024 + 17];

describe('§5.2 / §5.6 text and binary messages of every length encoding come back unchanged', () => {
  for (const size of SIZES) {
    test(`a text message of ${size} byte${size === 1 ? '' : 's'}`, LIMIT, async (t) => {
      const h = await startServer(t);
      const peer = await connectWs(t, h);
      const text = textOf(size);
      peer.ws.send(text);
      const reply = await nextMessage(peer, 0);
      assert.equal(reply.isBinary, false);
      assert.equal(reply.data.length, size);
      assert.ok(reply.data.toString('utf8') === text, 'the echoed text equals the sent text');
      assert.equal(typeof messagesFrom(h)[0], 'string');
    });

    test(`a binary message of ${size} byte${size === 1 ? '' : 's'}`, LIMIT, async (t) => {
      const h = await startServer(t);
      const peer = await connectWs(t, h);
      const bytes = pattern(size);
      peer.ws.send(bytes);
      const reply = await nextMessage(peer, 0);
      assert.equal(reply.isBinary, true);
      assert.equal(reply.data.length, size);
      assert.ok(reply.data.equals(bytes), 'the echoed bytes equal the sent bytes');
      assert.ok(Buffer.isBuffer(messagesFrom(h)[0]));
    });
  }

  test('a 4 MiB binary message', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const bytes = pattern(4 * 1024 * 1024);
    peer.ws.send(bytes);
    const reply = await nextMessage(peer, 0);
    assert.equal(reply.isBinary, true);
    assert.equal(reply.data.length, bytes.length);
    assert.ok(reply.data.equals(bytes), 'the echoed bytes equal the sent bytes');
  });

  test('unicode text (emoji, CJK, combining marks, astral symbols) comes back unchanged', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const texts = ['😀🎉👩‍👩‍👧‍👦', '中文字符，日本語のテキスト，한국어', 'Ünïcödé e\u0301 𝄞 \u{10FFFF}', '€'.repeat(50_000)];
    for (const text of texts) peer.ws.send(text);
    await until(() => peer.inbox.length === texts.length, 'every echo');
    assert.deepEqual(messagesFrom(h), texts, 'the server received the same strings');
    assert.deepEqual(peer.inbox.map((m) => m.data.toString('utf8')), texts);
    assert.ok(peer.inbox.every((m) => !m.isBinary));
  });

  test('200 messages sent back-to-back arrive and come back in order', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const sent: string[] = [];
    for (let i = 0; i < 200; i++) {
      const message = `message ${i} ${'.'.repeat(i % 17)}`;
      sent.push(message);
      if (i % 2 === 0) peer.ws.send(message);
      else peer.ws.send(Buffer.from(message));
    }
    await until(() => peer.inbox.length === 200, '200 echoes');
    assert.deepEqual(messagesFrom(h).map((m) => m.toString()), sent);
    assert.deepEqual(peer.inbox.map((m) => m.data.toString()), sent);
    assert.deepEqual(peer.inbox.map((m) => m.isBinary), sent.map((_, i) => i % 2 === 1));
    await delay(SETTLE_MS);
    assert.equal(peer.inbox.length, 200);
  });
});

// ─── fragmentation (§5.4) ───────────────────────────────────────────────────────────────────────────────────

describe('§5.4 Fragmentation', () => {
  test('a text message sent by ws in three fragments arrives as one message', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.ws.send('first-', { fin: false });
    peer.ws.send('second-', { fin: false });
    peer.ws.send('third', { fin: true });
    const reply = await nextMessage(peer, 0);
    assert.deepEqual(messagesFrom(h), ['first-second-third']);
    assert.equal(reply.data.toString(), 'first-second-third');
    assert.equal(reply.isBinary, false);
    await delay(SETTLE_MS);
    assert.equal(messagesFrom(h).length, 1, 'exactly one message');
  });

  test('a binary message sent by ws in three fragments arrives as one message', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const whole = pattern(70_000);
    peer.ws.send(whole.subarray(0, 10), { fin: false });
    peer.ws.send(whole.subarray(10, 66_000), { fin: false });
    peer.ws.send(whole.subarray(66_000), { fin: true });
    const reply = await nextMessage(peer, 0);
    assert.equal(messagesFrom(h).length, 1);
    assert.ok(Buffer.isBuffer(messagesFrom(h)[0]));
    assert.ok(reply.data.equals(whole), 'the reassembled bytes equal the sent bytes');
    assert.equal(reply.isBinary, true);
  });

  test('a code point split across text fragments is reassembled (§5.6)', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const euro = Buffer.from('€', 'utf8'); // E2 82 AC
    peer.ws.send(Buffer.concat([Buffer.from('price: '), euro.subarray(0, 2)]), { binary: false, fin: false });
    peer.ws.send(euro.subarray(2), { binary: false, fin: false });
    peer.ws.send(Buffer.from(' 5'), { binary: false, fin: true });
    const reply = await nextMessage(peer, 0);
    assert.deepEqual(messagesFrom(h), ['price: € 5']);
    assert.equal(reply.data.toString(), 'price: € 5');
  });

  test('a ping between fragments is answered and the message still arrives whole (§5.5)', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const pongs: Buffer[] = [];
    peer.ws.on('pong', (data) => pongs.push(data));
    peer.ws.send('left ', { fin: false });
    peer.ws.ping('in between');
    peer.ws.send('right', { fin: true });
    const reply = await nextMessage(peer, 0);
    assert.equal(reply.data.toString(), 'left right');
    await until(() => pongs.length === 1, 'the pong');
    assert.deepEqual(pongs[0], Buffer.from('in between'));
  });
});

// ─── control frames (§5.5) ──────────────────────────────────────────────────────────────────────────────────

describe('§5.5.2 / §5.5.3 Ping and Pong', () => {
  test('a ws ping is answered with a pong carrying the same payload', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const pongs: Buffer[] = [];
    peer.ws.on('pong', (data) => pongs.push(data));
    const payloads = [Buffer.from('hello ping'), Buffer.alloc(0), pattern(125)];
    for (const payload of payloads) peer.ws.ping(payload);
    await until(() => pongs.length === payloads.length, 'three pongs');
    assert.deepEqual(pongs, payloads);
    assert.equal(messagesFrom(h).length, 0, 'pings are not messages');
  });

  test('a server ping reaches ws and its automatic pong does not disturb the connection', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const pings: Buffer[] = [];
    peer.ws.on('ping', (data) => pings.push(data));
    assert.equal(peer.client.handler.ping('from server'), true);
    await until(() => pings.length === 1, 'the ping');
    assert.deepEqual(pings[0], Buffer.from('from server'));
    peer.ws.send('after ping');
    assert.equal((await nextMessage(peer, 0)).data.toString(), 'after ping');
    assert.deepEqual(h.errors, []);
  });
});

describe('§5.5.1 / §7 Close', () => {
  test('ws.close(4001, "reason") gives handler.closeCode 4001 and ws sees 4001 echoed', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.ws.close(4001, 'reason');
    const seen = await within(peer.closed, 'the ws close event');
    assert.equal(seen.code, 4001);
    await until(() => h.left.length === 1, 'client-left');
    assert.equal(peer.client.handler.closeCode, 4001);
    assert.equal(peer.client.handler.closeReason, 'reason');
  });

  test('ws.close() without a code gives handler.closeCode 1005', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.ws.close();
    const seen = await within(peer.closed, 'the ws close event');
    assert.equal(seen.code, 1005, 'an empty close is answered with an empty close');
    await until(() => h.left.length === 1, 'client-left');
    assert.equal(peer.client.handler.closeCode, 1005);
    assert.equal(peer.client.handler.closeReason, '');
  });

  test('handler.close(1000, "bye") reaches ws as close 1000 "bye"', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    peer.client.handler.close(1000, 'bye');
    assert.deepEqual(await within(peer.closed, 'the ws close event'), { code: 1000, reason: 'bye' });
    await until(() => h.left.length === 1, 'client-left');
    assert.equal(peer.client.handler.closeCode, 1000);
  });

  test('a message sent by the server before its close frame is delivered first', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const big = pattern(1024 * 1024);
    h.server.sendMessage(peer.client, big);
    peer.client.handler.close(1000, 'after data');
    assert.deepEqual(await within(peer.closed, 'the ws close event'), { code: 1000, reason: 'after data' });
    assert.equal(peer.inbox.length, 1);
    assert.ok(peer.inbox[0]!.data.equals(big));
  });
});

// ─── §4 handshake details seen by ws ────────────────────────────────────────────────────────────────────────

describe('§4.2.2 Opening handshake with ws', () => {
  test('ws offers permessage-deflate and the server accepts without extensions or subprotocol', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    assert.equal(peer.ws.extensions, '');
    assert.equal(peer.ws.protocol, '');
    assert.equal(peer.client.handler.request.headers['sec-websocket-extensions']?.includes('permessage-deflate'), true);
  });
});

// ─── several clients ────────────────────────────────────────────────────────────────────────────────────────

describe('several ws clients at once', () => {
  test('sendMessageToAll reaches each of five ws clients exactly once', LIMIT, async (t) => {
    const h = await startServer(t);
    const peers: WsPeer[] = [];
    for (let i = 0; i < 5; i++) peers.push(await connectWs(t, h));
    assert.equal(h.server.sendMessageToAll('broadcast ✓'), 5);
    const bytes = pattern(70_000);
    assert.equal(h.server.sendMessageToAll(bytes), 5);
    await until(() => peers.every((p) => p.inbox.length >= 2), 'both broadcasts at every client');
    await delay(SETTLE_MS);
    for (const peer of peers) {
      assert.equal(peer.inbox.length, 2);
      assert.deepEqual(peer.inbox[0], { data: Buffer.from('broadcast ✓'), isBinary: false });
      assert.equal(peer.inbox[1]!.isBinary, true);
      assert.ok(peer.inbox[1]!.data.equals(bytes));
    }
  });

  test('echoes to interleaved clients go to the right client', LIMIT, async (t) => {
    const h = await startServer(t);
    const peers: WsPeer[] = [];
    for (let i = 0; i < 4; i++) peers.push(await connectWs(t, h));
    for (let round = 0; round < 25; round++) {
      for (const [i, peer] of peers.entries()) peer.ws.send(`client ${i} round ${round}`);
    }
    await until(() => peers.every((p) => p.inbox.length === 25), 'every echo');
    for (const [i, peer] of peers.entries()) {
      assert.deepEqual(peer.inbox.map((m) => m.data.toString()), Array.from({ length: 25 }, (_, r) => `client ${i} round ${r}`));
    }
  });

  test('after one ws client closes, sendMessageToAll reaches only the others', LIMIT, async (t) => {
    const h = await startServer(t);
    const peers: WsPeer[] = [];
    for (let i = 0; i < 3; i++) peers.push(await connectWs(t, h));
    peers[1]!.ws.close(1000);
    await within(peers[1]!.closed, 'the ws close event');
    await until(() => h.left.length === 1, 'client-left');
    assert.equal(h.server.sendMessageToAll('to the rest'), 2);
    await until(() => peers[0]!.inbox.length === 1 && peers[2]!.inbox.length === 1, 'the broadcast');
    assert.equal(peers[1]!.inbox.length, 0);
  });
});
