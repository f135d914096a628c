// One hostile client never costs more than its limits, and no message the API accepted is lost: floods of
// control frames, compressed floods, DEFLATE streams ended with BFINAL, messages larger than the send budget or
// in tens of thousands of fragments, invalid UTF-8 trickled in, graceful shutdown behind a compression backlog,
// refused connections, descriptor limits. Every test here failed on the code before issue 11.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import WebSocket from 'ws';
import { FrameParser, type FrameParserHandler, type MessageInflater, type WebSocketError } from '../websocket-server.ts';
import { compress, RSV1 } from './support/deflate.ts';
import { buildFrame, Op } from './support/frames.ts';
import { assertRawEchoes, connectRawClient, connectWs, pseudoRandomText, readFrames, startServer } from './support/harness.ts';
import { handshakeRequest } from './support/raw-client.ts';
import { LIMIT, until, within } from './support/wait.ts';

const SLOW = { timeout: 60_000 };
const KIB = 1024;
const MIB = 1024 * KIB;
const DEFLATE = { 'Sec-WebSocket-Extensions': 'permessage-deflate' };

/** `count` masked frames of one kind, as one buffer. */
function repeated(frame: Buffer, count: number): Buffer {
  return Buffer.concat(Array.from({ length: count }, () => frame));
}

/** Writes `bytes` to a socket in pieces, waiting for 'drain' (bounded); stops early if the socket closes. */
async function writeAll(socket: net.Socket, bytes: Buffer, piece = 256 * KIB): Promise<void> {
  for (let at = 0; at < bytes.length && !socket.destroyed; at += piece) {
    if (!socket.write(bytes.subarray(at, at + piece))) {
      await Promise.race([once(socket, 'drain'), once(socket, 'close'), delay(5_000)]);
    }
  }
}

// ── control frames obey the send budget (RFC 6455 §5.5.2) ───────────────────────────────────────────────────

describe('a flood of Pings from a client that never reads', () => {
  test('is answered within the send budget and closed with 1008, holding one Pong at most', SLOW, async (t) => {
    const limit = MIB;
    const h = await startServer(t, { maxBufferedAmount: limit, closeTimeout: 500 });
    const { raw, client } = await connectRawClient(t, h);
    raw.socket.pause();
    let highest = 0;
    const watch = setInterval(() => (highest = Math.max(highest, client.handler.bufferedAmount)), 5);
    t.after(() => clearInterval(watch));
    // 2 million empty Pings (12 MB): answering each would queue 4 MB of Pongs, four times the budget.
    const pings = repeated(buildFrame({ opcode: Op.PING, payload: '' }), 100_000);
    for (let i = 0; i < 20 && !raw.socket.destroyed && client.handler.state === 'open'; i++) await writeAll(raw.socket, pings);
    await until(() => h.left.includes(client), 'the flooding client to be dropped', 10_000);
    assert.equal(client.handler.closeCode, 1008);
    assert.equal(h.server.stats.closeCodes['1008'], 1);
    assert.ok(highest <= limit + 64 * KIB, `bufferedAmount reached ${highest}`);
    const next = await connectRawClient(t, h);
    await assertRawEchoes(next.raw);
  });

  test('a client that reads gets a Pong for every Ping', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw } = await connectRawClient(t, h);
    raw.sendRaw(Buffer.concat(Array.from({ length: 50 }, (_, i) => buildFrame({ opcode: Op.PING, payload: `p${i}` }))));
    const frames = await readFrames(raw, 50);
    assert.deepEqual(frames.map((f) => [f.opcode, f.payload.toString()]), Array.from({ length: 50 }, (_, i) => [Op.PONG, `p${i}`]));
  });

  test('heartbeat Pings carry unpredictable payloads: Pongs guessed blind do not keep a silent client alive', LIMIT, async (t) => {
    const h = await startServer(t, { pingInterval: 100, pingTimeout: 300 });
    const { raw, client } = await connectRawClient(t, h);
    raw.socket.pause();
    // A client that never reads answers, again and again, every value a counting heartbeat would use first.
    const guesses = Buffer.concat(
      Array.from({ length: 64 }, (_, i) => {
        const payload = Buffer.alloc(4);
        payload.writeUInt32BE(i + 1, 0);
        return buildFrame({ opcode: Op.PONG, payload });
      }),
    );
    const blind = setInterval(() => raw.sendRaw(guesses), 20);
    t.after(() => clearInterval(blind));
    await until(() => h.left.includes(client), 'the silent client to be dropped by the heartbeat', 3_000);
    assert.equal(client.handler.closeCode, 1006);
  });
});

// ── permessage-deflate: bytes held while inflating are bounded (RFC 7692 §8) ────────────────────────────────

describe('a client that sends compressed frames faster than they inflate', () => {
  test('is read no faster than its messages inflate: the server stops reading past maxReadAhead', SLOW, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true }, { echo: false });
    const { raw } = await connectRawClient(t, h, { headers: DEFLATE });
    // Each frame is about 1 KiB that inflates to 1 MiB: 16,000 of them take seconds to inflate.
    const frame = buildFrame({ opcode: Op.BINARY, rsv: RSV1, payload: compress(Buffer.alloc(MIB, 0x61)) });
    const flood = repeated(frame, 16_000);
    raw.socket.write(flood);
    await delay(500);
    // The server reads what it can handle; the rest waits on the client's side (TCP backpressure), not in the server.
    assert.ok(raw.socket.writableLength > flood.length / 2, `only ${raw.socket.writableLength} of ${flood.length} bytes still wait in the client`);
    assert.ok(h.messages.length > 0, 'messages are being inflated and delivered meanwhile');
  });

  test('a parser waiting for its inflater asks to stop reading once maxReadAhead bytes wait, and to go on after', LIMIT, () => {
    const pressure: boolean[] = [];
    const received: number[] = [];
    let finish: (() => void) | undefined;
    const inflater: MessageInflater = {
      inflate: (_payload, fin, callback) => {
        finish = () => callback(null, fin ? Buffer.from('ok') : undefined);
      },
    };
    const handler: FrameParserHandler = {
      onText: (text) => received.push(text.length),
      onBinary: (data) => received.push(data.length),
      onPing: () => undefined,
      onPong: () => undefined,
      onClose: () => undefined,
      onProtocolError: (error: WebSocketError) => assert.fail(error.message),
      onReadPressure: (pressed) => pressure.push(pressed),
    };
    const parser = new FrameParser(handler, { maxMessageSize: MIB, inflater, maxReadAhead: 64 * KIB });
    parser.push(buildFrame({ opcode: Op.BINARY, rsv: RSV1, payload: compress('x') }));
    const plain = buildFrame({ opcode: Op.BINARY, payload: Buffer.alloc(1024) });
    for (let i = 0; i < 63; i++) parser.push(plain);
    assert.deepEqual(pressure, [], 'under 64 KiB behind the inflating message');
    parser.push(plain);
    parser.push(plain);
    assert.deepEqual(pressure, [true]);
    finish!();
    assert.deepEqual(pressure, [true, false]);
    assert.equal(received.length, 66, 'the compressed message, then the 65 held behind it');
  });
});

// ── permessage-deflate: every message shape of RFC 7692 §7.2.3, BFINAL included ─────────────────────────────

/** The payloads of RFC 7692 §7.2.3, each a "Hello" (or empty) message as the RFC shows it. */
const RFC_7692_SHAPES: ReadonlyArray<{ name: string; frames: Buffer[]; text: string }> = [
  { name: '§7.2.3.1 one compressed block', frames: [Buffer.from('f248cdc9c90700', 'hex')], text: 'Hello' },
  { name: '§7.2.3.1 the same, in two fragments', frames: [Buffer.from('f248cd', 'hex'), Buffer.from('c9c90700', 'hex')], text: 'Hello' },
  { name: '§7.2.3.3 a block with no compression', frames: [Buffer.from('000500faff48656c6c6f00', 'hex')], text: 'Hello' },
  { name: '§7.2.3.4 a block with BFINAL set', frames: [Buffer.from('f348cdc9c9070000', 'hex')], text: 'Hello' },
  { name: '§7.2.3.4 BFINAL without the padding byte', frames: [Buffer.from('f348cdc9c90700', 'hex')], text: 'Hello' },
  { name: '§7.2.3.5 two blocks in one message', frames: [Buffer.from('f24805000000ffffcac9c90700', 'hex')], text: 'Hello' },
  { name: '§7.2.3.6 an empty message', frames: [Buffer.from('00', 'hex')], text: '' },
];

/** The frames of one compressed text message: RSV1 on the first (RFC 7692 §6.1), FIN on the last. */
function compressedMessage(payloads: Buffer[]): Buffer {
  return Buffer.concat(
    payloads.map((payload, i) =>
      buildFrame({ opcode: i === 0 ? Op.TEXT : Op.CONTINUATION, rsv: i === 0 ? RSV1 : 0, fin: i === payloads.length - 1, payload }),
    ),
  );
}

describe('permessage-deflate: every message shape RFC 7692 §7.2.3 shows arrives intact, and so does every message after it', () => {
  for (const offer of ['permessage-deflate', 'permessage-deflate; client_no_context_takeover']) {
    test(`with "${offer}"`, LIMIT, async (t) => {
      const h = await startServer(t, { perMessageDeflate: true }, { echo: false });
      const { raw, client } = await connectRawClient(t, h, { headers: { 'Sec-WebSocket-Extensions': offer } });
      const expected: string[] = [];
      for (const shape of RFC_7692_SHAPES) {
        raw.sendRaw(compressedMessage(shape.frames));
        expected.push(shape.text);
        // After each shape, messages compressed the ordinary way (each on its own) must still decode.
        raw.sendRaw(compressedMessage([compress(`after ${shape.name}`)]));
        expected.push(`after ${shape.name}`);
      }
      if (!offer.includes('client_no_context_takeover')) {
        // §7.2.3.2: the second "Hello" refers back to the first through the shared LZ77 window.
        raw.sendRaw(compressedMessage([Buffer.from('f248cdc9c90700', 'hex')]));
        raw.sendRaw(compressedMessage([Buffer.from('f200110000', 'hex')]));
        expected.push('Hello', 'Hello');
      }
      await until(() => h.messages.length === expected.length, `${expected.length} messages`);
      assert.deepEqual(h.messages.map((m) => m.message), expected);
      assert.equal(client.handler.state, 'open');
    });
  }
});

// ── legitimate traffic is not refused at the defaults ───────────────────────────────────────────────────────

describe('legitimate traffic at the default options', () => {
  test('a 16 MiB message echoed with sendMessage arrives whole: one message into an empty buffer is not a slow client', SLOW, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const text = 'x'.repeat(16 * MIB);
    peer.ws.send(text);
    await until(() => peer.inbox.length === 1, 'the echo', 30_000);
    assert.equal(peer.inbox[0]!.data.toString('latin1'), text);
    assert.equal(h.joined[0]!.handler.state, 'open');
  });

  test('a 4 MiB message in 65,536 fragments of 64 bytes is delivered intact', SLOW, async (t) => {
    const h = await startServer(t);
    const { raw } = await connectRawClient(t, h);
    const text = pseudoRandomText(4 * MIB);
    const count = (4 * MIB) / 64;
    const frames: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      frames.push(buildFrame({ opcode: i === 0 ? Op.TEXT : Op.CONTINUATION, fin: i === count - 1, payload: Buffer.from(text.slice(i * 64, i * 64 + 64), 'latin1') }));
    }
    await writeAll(raw.socket, Buffer.concat(frames));
    await until(() => h.messages.length === 1, 'the message', 30_000);
    assert.equal(h.messages[0]!.message, text);
  });
});

// ── UTF-8 fails fast inside one frame (RFC 6455 §8.1) ───────────────────────────────────────────────────────

describe('invalid UTF-8 in a text frame that arrives in several reads', () => {
  test('fails with 1007 at the read that shows it, before the rest of the frame is sent', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw } = await connectRawClient(t, h);
    const payload = Buffer.alloc(64 * KIB, 0x61);
    payload[10] = 0xff;
    const frame = buildFrame({ opcode: Op.TEXT, payload });
    raw.sendRaw(frame.subarray(0, 100));
    const close = await raw.closeFrame(3_000);
    assert.equal(close.code, 1007);
    raw.sendRaw(frame.subarray(100));
  });

  test('a valid sequence split across reads (and across the mask key rotation) still passes', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw } = await connectRawClient(t, h);
    const text = 'é€𝄞'.repeat(5_000);
    const frame = buildFrame({ opcode: Op.TEXT, payload: text });
    for (let at = 0; at < frame.length; at += 4_093) {
      raw.sendRaw(frame.subarray(at, at + 4_093));
      await delay(1);
    }
    const [echo] = await readFrames(raw, 1);
    assert.equal(echo!.payload.toString('utf8'), text);
  });
});

// ── graceful shutdown delivers what was accepted ────────────────────────────────────────────────────────────

describe('shutdownGracefully behind a compression backlog', () => {
  test('every client gets every broadcast sent before it, then close 1001: the close timer starts when Close leaves', SLOW, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true, closeTimeout: 300 }, { echo: false });
    const peers = await Promise.all(Array.from({ length: 20 }, () => connectWs(t, h, { perMessageDeflate: true })));
    for (let i = 0; i < 40; i++) h.server.sendMessageToAll(`${i}:${pseudoRandomText(64 * KIB, i + 1)}`);
    await within(h.server.shutdownGracefully(), 'the graceful shutdown', 50_000);
    const closes = await within(Promise.all(peers.map((peer) => peer.closed)), 'every client to see the close', 10_000);
    for (const peer of peers) {
      assert.deepEqual(peer.inbox.map((m) => m.data.toString('latin1').split(':')[0]), Array.from({ length: 40 }, (_, i) => String(i)));
    }
    assert.deepEqual(closes.map((c) => c.code), peers.map(() => 1001));
  });
});

// ── smaller ones ────────────────────────────────────────────────────────────────────────────────────────────

describe('refusals, departures and the descriptor limit', () => {
  test('a connection refused with 503 is closed as soon as the answer is out, not after closeTimeout', LIMIT, async (t) => {
    const h = await startServer(t, { maxConnections: 1, closeTimeout: 30_000 });
    await connectRawClient(t, h);
    const socket = net.connect({ host: '127.0.0.1', port: h.server.port, allowHalfOpen: true });
    t.after(() => socket.destroy());
    socket.on('error', () => undefined);
    let reply = '';
    socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
    const closed = new Promise<void>((resolve) => {
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
    socket.write(handshakeRequest());
    await within(once(socket, 'end'), 'the answer and the FIN');
    assert.match(reply, /^HTTP\/1\.1 503 /);
    // A server that still holds the socket takes these bytes silently; one that let it go answers with a reset.
    const poke = setInterval(() => socket.write('x'), 100);
    t.after(() => clearInterval(poke));
    await within(closed, 'the server to have released the refused connection', 2_000);
  });

  test('a client closed for being slow counts as 1008 in stats.closeCodes, even if it never answers', LIMIT, async (t) => {
    const h = await startServer(t, { maxBufferedAmount: 64 * KIB, closeTimeout: 300 });
    const { raw, client } = await connectRawClient(t, h);
    raw.socket.pause();
    for (let i = 0; i < 1_000 && client.handler.state === 'open'; i++) client.handler.send(Buffer.alloc(16 * KIB));
    assert.equal(client.handler.state, 'closing');
    await until(() => h.left.includes(client), 'the slow client to be dropped');
    assert.equal(client.handler.closeCode, 1008);
    assert.deepEqual(h.server.stats.closeCodes, { '1008': 1 });
    assert.ok(h.errors.some((e) => (e.error as WebSocketError).code === 'WS_ERR_SLOW_CLIENT'), 'setFnError is told');
  });

  test('clients leaving from the middle keep `clients` in connection order; the list is frozen', LIMIT, async (t) => {
    const h = await startServer(t);
    const peers: Array<Awaited<ReturnType<typeof connectRawClient>>> = [];
    for (let i = 0; i < 6; i++) peers.push(await connectRawClient(t, h));
    const list = h.server.clients;
    assert.ok(Object.isFrozen(list));
    assert.equal(h.server.clients, list, 'the same array while nothing changes');
    for (const i of [1, 4]) peers[i]!.raw.destroy();
    await until(() => h.server.clients.length === 4, 'two clients to leave');
    assert.deepEqual(h.server.clients.map((c) => c.id), [0, 2, 3, 5].map((i) => peers[i]!.client.id));
    assert.equal(h.server.stats.connectionsOpen, 4);
  });

  test('the default maxConnections stays below the descriptor limit: over it, 503 rather than a reset', SLOW, async (t) => {
    // A server in a process limited to 200 descriptors; 220 clients. Each must get an answer: 101 or 503.
    const library = fileURLToPath(new URL('../websocket-server.js', import.meta.url));
    const script =
      `import(${JSON.stringify(library)}).then(async ({ WebsocketServer }) => {` +
      `const s = new WebsocketServer({ logger: { debug() {}, info() {}, warn() {}, error() {} } });` +
      `await s.runForever(); console.log(s.port); setTimeout(() => process.exit(0), 30000); })`;
    const child = execFile('bash', ['-c', `ulimit -n 200 && exec "${process.execPath}" --input-type=module -e '${script}'`]);
    t.after(() => child.kill());
    const [port] = (await within(once(child.stdout!, 'data'), 'the child server to listen')) as [Buffer];
    const answers = await Promise.all(
      Array.from({ length: 220 }, async () => {
        const socket = net.connect({ host: '127.0.0.1', port: Number(String(port).trim()) });
        t.after(() => socket.destroy());
        let reply = '';
        const outcome = await within(
          new Promise<string>((resolve) => {
            socket.on('data', (chunk: Buffer) => {
              reply += chunk.toString('latin1');
              if (reply.includes('\r\n')) resolve(reply.slice(9, 12));
            });
            socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
            socket.on('close', () => resolve('closed'));
            socket.write(handshakeRequest());
          }),
          'an answer',
          10_000,
        );
        return outcome;
      }),
    );
    const counts: Record<string, number> = {};
    for (const answer of answers) counts[answer] = (counts[answer] ?? 0) + 1;
    assert.deepEqual(Object.keys(counts).sort(), ['101', '503'], JSON.stringify(counts));
    assert.ok(counts['101']! < 200 && counts['101']! > 100, JSON.stringify(counts));
  });
});
