// permessage-deflate (RFC 7692): negotiation, the reserved bits, compressed messages both ways, limits while
// inflating, context takeover and broadcast. Compressed bytes are made and read by node:zlib in the test
// (./support/deflate.ts), so the library's codec is checked against an independent one; `ws` is the second peer.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import { constants as zlibConstants, inflateRawSync } from 'node:zlib';
import { WebsocketServer } from '../websocket-server.ts';
import type { Client, PerMessageDeflateOptions, WebsocketServerOptions } from '../websocket-server.ts';
import { buildFrame, closePayload, Op, parseServerFrames } from './support/frames.ts';
import type { ClientFrame, ServerFrame } from './support/frames.ts';
import { compress, decompress, RSV1, StreamingDeflater, StreamingInflater } from './support/deflate.ts';
import {
  assertPlainFrame,
  assertRawEchoes,
  assertServerStillServes,
  connectRawClient,
  connectWs,
  messagesFrom,
  pseudoRandomBytes,
  pseudoRandomText,
  readFrames,
  receivedCount,
  startServer,
} from './support/harness.ts';
import type { Harness } from './support/harness.ts';
import { handshakeRequest, rawRequest } from './support/raw-client.ts';
import type { RawClient } from './support/raw-client.ts';
import { LIMIT, until, within } from './support/wait.ts';

const MIB = 1024 * 1024;
/** The default `threshold`: messages of at least this many bytes are sent compressed. */
const THRESHOLD = 1024;

/** Opens a raw client that offers `offer` (default: plain `permessage-deflate`). */
function openOffering(t: TestContext, h: Harness, offer = 'permessage-deflate'): Promise<{ raw: RawClient; client: Client }> {
  return connectRawClient(t, h, { headers: { 'Sec-WebSocket-Extensions': offer } });
}

/** Expects the server to fail the connection: a Close frame with `code`, then the end of TCP. */
async function expectClose(raw: RawClient, code: number): Promise<void> {
  const close = await raw.closeFrame();
  assert.equal(close.code, code, `close code (reason: ${JSON.stringify(close.reason)})`);
  await raw.ended();
}

/** Sends several frames in one TCP write, so that the server gets them in one chunk. */
function sendTogether(raw: RawClient, frames: ClientFrame[]): void {
  raw.sendRaw(Buffer.concat(frames.map((frame) => buildFrame(frame))));
}

/** Asserts a compressed server frame (RSV1, FIN, unmasked) of the given opcode; returns its payload. */
function assertCompressedFrame(frame: ServerFrame, opcode: number): Buffer {
  assert.equal(frame.opcode, opcode, 'opcode');
  assert.equal(frame.fin, true, 'FIN');
  assert.equal(frame.rsv, RSV1, 'RSV1 marks a compressed message, and RSV2/RSV3 stay 0');
  assert.equal(frame.masked, false, 'server frames are not masked');
  return frame.payload;
}

/**
 * Starts a TCP relay on 127.0.0.1 to the server at `port`, for one peer, that records every frame the server sends
 * through it. The frames are read on the wire, not on the peer's socket: under Bun, `ws` is Bun's built-in client,
 * which exposes no socket to listen on.
 */
async function startTap(t: TestContext, port: number): Promise<{ port: number; frames(): ServerFrame[] }> {
  const frames: ServerFrame[] = [];
  const sockets: Socket[] = [];
  const relay = createServer((peer) => {
    const server = connect({ host: '127.0.0.1', port });
    sockets.push(peer, server);
    let pending = Buffer.alloc(0);
    let upgraded = false;
    server.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (!upgraded) {
        // The frames start after the head of the 101 response.
        const end = pending.indexOf('\r\n\r\n');
        if (end === -1) return;
        upgraded = true;
        pending = pending.subarray(end + 4);
      }
      const { frames: decoded, used } = parseServerFrames(pending);
      frames.push(...decoded);
      pending = pending.subarray(used);
    });
    peer.pipe(server).pipe(peer);
    const end = (): void => {
      peer.destroy();
      server.destroy();
    };
    peer.on('error', end).on('close', end);
    server.on('error', end).on('close', end);
  });
  relay.listen(0, '127.0.0.1');
  await within(once(relay, 'listening'), 'the relay to listen');
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    relay.close();
  });
  return { port: (relay.address() as AddressInfo).port, frames: () => frames };
}

/** A text made of one pseudo-random base and a counter: similar messages, as context takeover likes them. */
function similarMessage(base: string, index: number): string {
  return `${base} #${index}`;
}

// ── RFC 7692 §5, §7: negotiation ──────────────────────────────────────────────────────────────────────────

describe('RFC 7692 §5, §7: negotiating permessage-deflate', () => {
  const accepted: Array<{ offer: string; config?: PerMessageDeflateOptions; response: string }> = [
    { offer: 'permessage-deflate', response: 'permessage-deflate' },
    { offer: 'permessage-deflate; client_max_window_bits', response: 'permessage-deflate; client_max_window_bits=15' },
    { offer: 'permessage-deflate; client_max_window_bits=10', response: 'permessage-deflate; client_max_window_bits=10' },
    { offer: 'permessage-deflate; client_max_window_bits=8', response: 'permessage-deflate; client_max_window_bits=8' },
    { offer: 'permessage-deflate; server_max_window_bits=10', response: 'permessage-deflate; server_max_window_bits=10' },
    { offer: 'permessage-deflate; server_max_window_bits=9', response: 'permessage-deflate; server_max_window_bits=9' },
    // The configured default is 12: the server answers the smaller of the two.
    { offer: 'permessage-deflate; server_max_window_bits=15', response: 'permessage-deflate; server_max_window_bits=12' },
    { offer: 'permessage-deflate; server_no_context_takeover', response: 'permessage-deflate; server_no_context_takeover' },
    { offer: 'permessage-deflate; client_no_context_takeover', response: 'permessage-deflate; client_no_context_takeover' },
    {
      offer: 'permessage-deflate; client_max_window_bits; server_max_window_bits=11; client_no_context_takeover; server_no_context_takeover',
      response:
        'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=15',
    },
    // §7.1.2.1: a quoted-string value counts once unquoted.
    { offer: 'permessage-deflate; server_max_window_bits="10"', response: 'permessage-deflate; server_max_window_bits=10' },
    { offer: 'permessage-deflate ; client_max_window_bits', response: 'permessage-deflate; client_max_window_bits=15' },
    { offer: 'permessage-deflate', config: { serverNoContextTakeover: true }, response: 'permessage-deflate; server_no_context_takeover' },
    { offer: 'permessage-deflate', config: { clientNoContextTakeover: true }, response: 'permessage-deflate; client_no_context_takeover' },
    { offer: 'permessage-deflate; client_max_window_bits', config: { clientMaxWindowBits: 10 }, response: 'permessage-deflate; client_max_window_bits=10' },
    { offer: 'permessage-deflate; client_max_window_bits=12', config: { clientMaxWindowBits: 10 }, response: 'permessage-deflate; client_max_window_bits=10' },
    { offer: 'permessage-deflate; client_max_window_bits=9', config: { clientMaxWindowBits: 10 }, response: 'permessage-deflate; client_max_window_bits=9' },
    // §7.1.2.2: client_max_window_bits may not be answered when it was not offered, whatever is configured.
    { offer: 'permessage-deflate', config: { clientMaxWindowBits: 10 }, response: 'permessage-deflate' },
    { offer: 'permessage-deflate; server_max_window_bits=15', config: { serverMaxWindowBits: 15 }, response: 'permessage-deflate; server_max_window_bits=15' },
    { offer: 'permessage-deflate; server_max_window_bits=14', config: { serverMaxWindowBits: 9 }, response: 'permessage-deflate; server_max_window_bits=9' },
    // §7.1.2.1: server_max_window_bits is answered only when offered.
    { offer: 'permessage-deflate', config: { serverMaxWindowBits: 9 }, response: 'permessage-deflate' },
    // The first acceptable offer wins (§5.1): an unknown extension, or a declined offer, is passed over.
    { offer: 'x-webkit-deflate-frame, permessage-deflate; client_max_window_bits', response: 'permessage-deflate; client_max_window_bits=15' },
    {
      offer: 'permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10',
      response: 'permessage-deflate; server_max_window_bits=10',
    },
    { offer: 'permessage-deflate; unknown_parameter, permessage-deflate', response: 'permessage-deflate' },
    {
      offer: 'permessage-deflate; server_no_context_takeover, permessage-deflate',
      response: 'permessage-deflate; server_no_context_takeover',
    },
  ];
  for (const { offer, config, response } of accepted) {
    const configured = config === undefined ? '' : ` with ${JSON.stringify(config)}`;
    test(`the offer "${offer}"${configured} is answered "${response}"`, LIMIT, async (t) => {
      const h = await startServer(t, { perMessageDeflate: config ?? true });
      const { raw, client } = await openOffering(t, h, offer);
      assert.equal(raw.handshake.headers['sec-websocket-extensions'], response, 'Sec-WebSocket-Extensions of the 101');
      assert.equal(client.handler.extensions, response, 'handler.extensions');
      // The agreement is in force: a compressed message is understood.
      raw.sendFrame({ opcode: Op.TEXT, rsv: RSV1, payload: compress('agreed') });
      assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'agreed');
    });
  }

  test('a ws client with perMessageDeflate negotiates it, and both sides report it', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const peer = await connectWs(t, h, { perMessageDeflate: true });
    assert.equal(peer.ws.extensions, 'permessage-deflate');
    // ws offers "permessage-deflate; client_max_window_bits".
    assert.equal(peer.client.handler.extensions, 'permessage-deflate; client_max_window_bits=15');
  });

  const declined: Array<{ offer: string; why: string }> = [
    { offer: 'permessage-deflate; foo', why: 'an unknown parameter' },
    { offer: 'permessage-deflate; foo=1', why: 'an unknown parameter with a value' },
    { offer: 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', why: 'a repeated parameter' },
    { offer: 'permessage-deflate; client_max_window_bits; client_max_window_bits=10', why: 'a repeated window parameter' },
    { offer: 'permessage-deflate; server_no_context_takeover=true', why: 'a value on server_no_context_takeover' },
    { offer: 'permessage-deflate; client_no_context_takeover=1', why: 'a value on client_no_context_takeover' },
    { offer: 'permessage-deflate; server_max_window_bits', why: 'server_max_window_bits without a value' },
    { offer: 'permessage-deflate; server_max_window_bits=7', why: 'server_max_window_bits below 8' },
    { offer: 'permessage-deflate; server_max_window_bits=16', why: 'server_max_window_bits above 15' },
    { offer: 'permessage-deflate; server_max_window_bits=010', why: 'a window size with a leading zero' },
    { offer: 'permessage-deflate; server_max_window_bits=ten', why: 'a window size that is not digits' },
    { offer: 'permessage-deflate; server_max_window_bits=8', why: 'server_max_window_bits=8, which zlib cannot honour' },
    { offer: 'permessage-deflate; client_max_window_bits=7', why: 'client_max_window_bits below 8' },
    { offer: 'permessage-deflate; client_max_window_bits=16', why: 'client_max_window_bits above 15' },
    { offer: 'permessage-deflate; client_max_window_bits=09', why: 'client_max_window_bits with a leading zero' },
    { offer: 'permessage-deflate; client_max_window_bits=+9', why: 'client_max_window_bits with a sign' },
    { offer: 'x-webkit-deflate-frame', why: 'only an unknown extension' },
    { offer: 'permessage-deflate; server_max_window_bits=8, permessage-deflate; foo', why: 'every offer declined' },
  ];
  for (const { offer, why } of declined) {
    test(`an offer with ${why} ("${offer}") is declined: the connection opens without the extension`, LIMIT, async (t) => {
      const h = await startServer(t, { perMessageDeflate: true });
      const { raw, client } = await openOffering(t, h, offer);
      assert.equal(raw.handshake.status, 101);
      assert.equal(raw.handshake.headers['sec-websocket-extensions'], undefined, 'no Sec-WebSocket-Extensions in the 101');
      assert.equal(client.handler.extensions, '');
      // Uncompressed: a big message comes back as it was sent, without RSV1.
      const big = pseudoRandomText(4 * THRESHOLD);
      raw.sendFrame({ opcode: Op.TEXT, payload: big });
      assertPlainFrame(await raw.nextFrame(), Op.TEXT, big);
    });
  }

  const malformed = [
    'permessage-deflate;',
    'permessage-deflate; server_max_window_bits=',
    'permessage-deflate; =10',
    'permessage-deflate; server_max_window_bits="10',
    'permessage-deflate client_max_window_bits',
    'permessage-deflate; client_max_window_bits=1 0',
    '"permessage-deflate"',
  ];
  for (const value of malformed) {
    test(`a malformed Sec-WebSocket-Extensions header (${JSON.stringify(value)}) is refused with 400`, LIMIT, async (t) => {
      const h = await startServer(t, { perMessageDeflate: true });
      const reply = await within(
        rawRequest(h.server.port, handshakeRequest({ headers: { 'Sec-WebSocket-Extensions': value } })),
        'the refusal',
      );
      assert.equal(reply.status, 400);
      assert.equal(reply.closed, true, 'the server closes the connection after refusing');
      assert.equal(h.joined.length, 0, 'no client joined');
      await assertServerStillServes(t, h);
    });
  }

  test('without the perMessageDeflate option, an offer gets no Sec-WebSocket-Extensions and no extension', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await openOffering(t, h, 'permessage-deflate; client_max_window_bits');
    assert.equal(raw.handshake.headers['sec-websocket-extensions'], undefined);
    assert.equal(client.handler.extensions, '');
    const peer = await connectWs(t, h, { perMessageDeflate: true });
    assert.equal(peer.ws.extensions, '', 'ws sees no extension');
    assert.equal(peer.client.handler.extensions, '');
    // ws now sends uncompressed, and a big message is echoed uncompressed to the raw client.
    const big = pseudoRandomText(4 * THRESHOLD);
    raw.sendFrame({ opcode: Op.TEXT, payload: big });
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, big);
  });

  test('perMessageDeflate: false is the same as no option', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: false });
    const { raw, client } = await openOffering(t, h);
    assert.equal(raw.handshake.headers['sec-websocket-extensions'], undefined);
    assert.equal(client.handler.extensions, '');
  });
});

// ── RFC 7692 §6.1, RFC 6455 §5.2: the reserved bits ───────────────────────────────────────────────────────

describe('RFC 7692 §6.1 and RFC 6455 §5.2: reserved bits with permessage-deflate', () => {
  const withExtension: Array<{ what: string; frames: ClientFrame[] }> = [
    {
      what: 'RSV1 on a continuation frame of a compressed message',
      frames: [
        { opcode: Op.TEXT, fin: false, rsv: RSV1, payload: Buffer.from([0xf2, 0x48, 0xcd]) },
        { opcode: Op.CONTINUATION, rsv: RSV1, payload: Buffer.from([0xc9, 0xc9, 0x07, 0x00]) },
      ],
    },
    {
      what: 'RSV1 on a continuation frame of an uncompressed message',
      frames: [
        { opcode: Op.TEXT, fin: false, payload: 'plain ' },
        { opcode: Op.CONTINUATION, rsv: RSV1, payload: compress('part') },
      ],
    },
    { what: 'RSV1 on a ping', frames: [{ opcode: Op.PING, rsv: RSV1, payload: 'ping' }] },
    { what: 'RSV1 on a pong', frames: [{ opcode: Op.PONG, rsv: RSV1, payload: 'pong' }] },
    { what: 'RSV1 on a close frame', frames: [{ opcode: Op.CLOSE, rsv: RSV1, payload: closePayload(1000) }] },
    { what: 'RSV2 on a text frame', frames: [{ opcode: Op.TEXT, rsv: 2, payload: 'rsv2' }] },
    { what: 'RSV3 on a binary frame', frames: [{ opcode: Op.BINARY, rsv: 1, payload: 'rsv3' }] },
    { what: 'RSV1 and RSV2 on a text frame', frames: [{ opcode: Op.TEXT, rsv: RSV1 | 2, payload: compress('x') }] },
  ];
  for (const { what, frames } of withExtension) {
    test(`with the extension agreed, ${what} fails with 1002`, LIMIT, async (t) => {
      const h = await startServer(t, { perMessageDeflate: true });
      const { raw } = await openOffering(t, h);
      sendTogether(raw, frames);
      await expectClose(raw, 1002);
      assert.equal(h.messages.length, 0, 'nothing was delivered');
      await assertServerStillServes(t, h);
    });
  }

  const withoutExtension: Array<{ what: string; options: WebsocketServerOptions; offer: string | undefined }> = [
    { what: 'the client did not offer the extension', options: { perMessageDeflate: true }, offer: undefined },
    { what: 'the offer was declined', options: { perMessageDeflate: true }, offer: 'permessage-deflate; foo' },
    { what: 'the server has compression off', options: {}, offer: 'permessage-deflate' },
  ];
  for (const { what, options, offer } of withoutExtension) {
    test(`RSV1 on a text frame fails with 1002 when ${what}`, LIMIT, async (t) => {
      const h = await startServer(t, options);
      const { raw } = offer === undefined ? await connectRawClient(t, h) : await openOffering(t, h, offer);
      raw.sendFrame({ opcode: Op.TEXT, rsv: RSV1, payload: compress('Hello') });
      await expectClose(raw, 1002);
      assert.equal(h.messages.length, 0);
      await assertServerStillServes(t, h);
    });
  }
});

// ── RFC 7692 §7.2.3: the RFC's own examples ──────────────────────────────────────────────────────────────

describe('RFC 7692 §7.2.3: the examples of the RFC are understood', () => {
  const examples: Array<{ section: string; what: string; frames: ClientFrame[] }> = [
    {
      section: '§7.2.3.1',
      what: 'a compressed "Hello" in one frame',
      frames: [{ opcode: Op.TEXT, rsv: RSV1, payload: Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]) }],
    },
    {
      section: '§7.2.3.1',
      what: 'a compressed "Hello" in two fragments, RSV1 on the first only',
      frames: [
        { opcode: Op.TEXT, fin: false, rsv: RSV1, payload: Buffer.from([0xf2, 0x48, 0xcd]) },
        { opcode: Op.CONTINUATION, payload: Buffer.from([0xc9, 0xc9, 0x07, 0x00]) },
      ],
    },
    {
      section: '§7.2.3.3',
      what: '"Hello" in a DEFLATE block with no compression',
      frames: [{ opcode: Op.TEXT, rsv: RSV1, payload: Buffer.from([0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]) }],
    },
    {
      section: '§7.2.3.4',
      what: '"Hello" in a DEFLATE block with BFINAL set',
      frames: [{ opcode: Op.TEXT, rsv: RSV1, payload: Buffer.from([0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]) }],
    },
    {
      section: '§7.2.3.5',
      what: '"Hello" in two DEFLATE blocks',
      frames: [
        {
          opcode: Op.TEXT,
          rsv: RSV1,
          payload: Buffer.from([0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]),
        },
      ],
    },
  ];
  for (const { section, what, frames } of examples) {
    test(`${section}: ${what} arrives as "Hello", and the connection goes on`, LIMIT, async (t) => {
      const h = await startServer(t, { perMessageDeflate: true });
      const { raw, client } = await openOffering(t, h);
      sendTogether(raw, frames);
      assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'Hello');
      await assertRawEchoes(raw, 'next');
      assert.deepEqual(messagesFrom(h, client), ['Hello', 'next']);
    });
  }

  test('§7.2.3.2: two "Hello" messages sharing the LZ77 window both arrive as "Hello"', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const { raw, client } = await openOffering(t, h);
    sendTogether(raw, [
      { opcode: Op.TEXT, rsv: RSV1, payload: Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]) },
      { opcode: Op.TEXT, rsv: RSV1, payload: Buffer.from([0xf2, 0x00, 0x11, 0x00, 0x00]) },
    ]);
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'Hello');
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'Hello');
    assert.deepEqual(messagesFrom(h, client), ['Hello', 'Hello']);
  });

  test('§7.2.3.6: an empty compressed message (one 0x00 byte) arrives as the empty string', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const { raw, client } = await openOffering(t, h);
    raw.sendFrame({ opcode: Op.TEXT, rsv: RSV1, payload: Buffer.from([0x00]) });
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, '');
    assert.deepEqual(messagesFrom(h, client), ['']);
  });
});

// ── RFC 7692 §6.2: compressed messages from the client ───────────────────────────────────────────────────

describe('RFC 7692 §6.2: compressed messages from a raw client', () => {
  for (const [kind, opcode] of [['text', Op.TEXT], ['binary', Op.BINARY]] as const) {
    for (const size of [1, 200, THRESHOLD, 70_000, MIB]) {
      test(`a compressed ${kind} message of ${size} bytes arrives exactly`, LIMIT, async (t) => {
        const h = await startServer(t, { perMessageDeflate: true }, { echo: false });
        const { raw, client } = await openOffering(t, h);
        const data = kind === 'text' ? Buffer.from(pseudoRandomText(size, size)) : pseudoRandomBytes(size, size);
        raw.sendFrame({ opcode, rsv: RSV1, payload: compress(data) });
        await until(() => h.messages.length === 1, 'the message');
        const [message] = messagesFrom(h, client);
        if (kind === 'text') assert.equal(message, data.toString('latin1'));
        else assert.ok(Buffer.isBuffer(message) && message.equals(data), 'the binary message differs');
      });
    }
  }

  test('a compressed message in five fragments (RSV1 on the first only) is reassembled', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true }, { echo: false });
    const { raw, client } = await openOffering(t, h);
    const text = pseudoRandomText(50_000, 7);
    const compressed = compress(text);
    const step = Math.ceil(compressed.length / 5);
    const frames: ClientFrame[] = [];
    for (let i = 0; i < 5; i++) {
      frames.push({
        opcode: i === 0 ? Op.TEXT : Op.CONTINUATION,
        fin: i === 4,
        rsv: i === 0 ? RSV1 : 0,
        payload: compressed.subarray(i * step, (i + 1) * step),
      });
    }
    // A ping between fragments (§5.4) is answered and does not disturb the message.
    frames.splice(2, 0, { opcode: Op.PING, payload: 'between' });
    sendTogether(raw, frames);
    assertPlainFrame(await raw.nextFrame(), Op.PONG, 'between');
    await until(() => h.messages.length === 1, 'the reassembled message');
    assert.deepEqual(messagesFrom(h, client), [text]);
  });

  test('uncompressed messages (RSV1 = 0) are still accepted on a connection with the extension', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const { raw, client } = await openOffering(t, h);
    raw.sendFrame({ opcode: Op.TEXT, payload: 'plain' });
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'plain');
    raw.sendFrame({ opcode: Op.BINARY, fin: false, payload: Buffer.from([1, 2]) });
    raw.sendFrame({ opcode: Op.CONTINUATION, payload: Buffer.from([3]) });
    assertPlainFrame(await raw.nextFrame(), Op.BINARY, Buffer.from([1, 2, 3]));
    assert.equal(messagesFrom(h, client).length, 2);
  });

  test('messages behind a compressed one are delivered in order (the parser waits for inflation)', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const { raw, client } = await openOffering(t, h);
    const big = pseudoRandomText(300_000, 3);
    sendTogether(raw, [
      { opcode: Op.TEXT, rsv: RSV1, payload: compress(big) },
      { opcode: Op.TEXT, payload: 'after-1' },
      { opcode: Op.TEXT, rsv: RSV1, payload: compress('after-2') },
      { opcode: Op.BINARY, payload: Buffer.from([1, 2, 3]) },
      { opcode: Op.TEXT, rsv: RSV1, payload: compress(big) },
      { opcode: Op.TEXT, payload: 'last' },
    ]);
    await until(() => h.messages.length === 6, 'six messages');
    assert.deepEqual(messagesFrom(h, client), [big, 'after-1', 'after-2', Buffer.from([1, 2, 3]), big, 'last']);
    // The echoes come back in the same order: big ones compressed, small ones not.
    const frames = await readFrames(raw, 6);
    assert.equal(decompress(assertCompressedFrame(frames[0]!, Op.TEXT)).toString(), big);
    assertPlainFrame(frames[1]!, Op.TEXT, 'after-1');
    assertPlainFrame(frames[2]!, Op.TEXT, 'after-2');
    assertPlainFrame(frames[3]!, Op.BINARY, Buffer.from([1, 2, 3]));
    assert.equal(frames[4]!.rsv, RSV1);
    assertPlainFrame(frames[5]!, Op.TEXT, 'last');
  });

  test('a Close frame right behind a compressed message is handled after it: the message first, then the close', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const { raw, client } = await openOffering(t, h);
    const big = pseudoRandomText(200_000, 4);
    sendTogether(raw, [
      { opcode: Op.TEXT, rsv: RSV1, payload: compress(big) },
      { opcode: Op.CLOSE, payload: closePayload(1000) },
    ]);
    const close = await raw.closeFrame();
    assert.equal(close.code, 1000);
    assert.deepEqual(messagesFrom(h, client), [big]);
  });

  test('a binary message whose inflated bytes are not UTF-8 is delivered as it is', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const { raw } = await openOffering(t, h);
    raw.sendFrame({ opcode: Op.BINARY, rsv: RSV1, payload: compress(Buffer.from([0xc3, 0x28, 0xff])) });
    assertPlainFrame(await raw.nextFrame(), Op.BINARY, Buffer.from([0xc3, 0x28, 0xff]));
  });
});

// ── RFC 7692 §7.2.2, RFC 6455 §8.1, §10.4: bad compressed data and limits ───────────────────────────────

describe('RFC 7692 §7.2.2 with RFC 6455 §8.1 and §10.4: bad compressed data and limits', () => {
  const invalid: Array<{ what: string; frames: ClientFrame[]; code: number }> = [
    { what: 'invalid DEFLATE data in a text message', frames: [{ opcode: Op.TEXT, rsv: RSV1, payload: Buffer.from([0xff, 0xff]) }], code: 1007 },
    { what: 'invalid DEFLATE data in a binary message', frames: [{ opcode: Op.BINARY, rsv: RSV1, payload: Buffer.from([0xff, 0xff, 0xff]) }], code: 1007 },
    {
      what: 'invalid DEFLATE data in the continuation of a compressed message',
      frames: [
        // "Hello" up to its flush point, then a stored block whose length and its complement disagree.
        { opcode: Op.BINARY, fin: false, rsv: RSV1, payload: Buffer.from([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]) },
        { opcode: Op.CONTINUATION, payload: Buffer.from([0xff, 0xff, 0xff, 0xff]) },
      ],
      code: 1007,
    },
    {
      what: 'a text message that inflates to invalid UTF-8',
      frames: [{ opcode: Op.TEXT, rsv: RSV1, payload: compress(Buffer.from([0x48, 0x69, 0xc3, 0x28])) }],
      code: 1007,
    },
    {
      what: 'a fragmented text message that inflates to a truncated UTF-8 sequence',
      frames: [
        { opcode: Op.TEXT, fin: false, rsv: RSV1, payload: compress(Buffer.from([0x61, 0xe2, 0x82])).subarray(0, 2) },
        { opcode: Op.CONTINUATION, payload: compress(Buffer.from([0x61, 0xe2, 0x82])).subarray(2) },
      ],
      code: 1007,
    },
  ];
  for (const { what, frames, code } of invalid) {
    test(`${what} fails with ${code}`, LIMIT, async (t) => {
      const h = await startServer(t, { perMessageDeflate: true });
      const { raw } = await openOffering(t, h);
      sendTogether(raw, frames);
      await expectClose(raw, code);
      assert.equal(h.messages.length, 0, 'nothing was delivered');
      assert.equal(h.errors[0]?.error.constructor.name, 'InvalidPayloadError');
      await assertServerStillServes(t, h);
    });
  }

  test('a deflate bomb (10 MiB of zeros in about 10 KB) with maxMessageSize 1 MiB fails with 1009, and the server still serves', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true, maxMessageSize: MIB });
    const { raw } = await openOffering(t, h);
    const bomb = compress(Buffer.alloc(10 * MIB), { level: 9 });
    assert.ok(bomb.length < 20_000, `the bomb is small on the wire (${bomb.length} bytes)`);
    raw.sendFrame({ opcode: Op.BINARY, rsv: RSV1, payload: bomb });
    await expectClose(raw, 1009);
    assert.equal(h.messages.length, 0);
    assert.equal(h.errors[0]?.error.constructor.name, 'MessageTooBigError');
    await assertServerStillServes(t, h);
  });

  test('a deflate bomb spread over many small fragments fails with 1009', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true, maxMessageSize: MIB });
    const { raw } = await openOffering(t, h);
    const bomb = compress(Buffer.alloc(4 * MIB), { level: 9 });
    const frames: ClientFrame[] = [];
    for (let at = 0, i = 0; at < bomb.length; at += 100, i++) {
      frames.push({ opcode: i === 0 ? Op.TEXT : Op.CONTINUATION, rsv: i === 0 ? RSV1 : 0, fin: at + 100 >= bomb.length, payload: bomb.subarray(at, at + 100) });
    }
    sendTogether(raw, frames);
    await expectClose(raw, 1009);
    assert.equal(h.messages.length, 0);
    await assertServerStillServes(t, h);
  });

  for (const [what, payload, code] of [
    ['a deflate bomb', compress(Buffer.alloc(4 * MIB), { level: 9 }), 1009],
    ['invalid DEFLATE data', Buffer.from([0xff, 0xff]), 1007],
  ] as const) {
    test(`after ${what} fails with ${code}, the zlib slot is free again (concurrencyLimit 1)`, LIMIT, async (t) => {
      const h = await startServer(t, { perMessageDeflate: { concurrencyLimit: 1 }, maxMessageSize: MIB });
      const { raw: bad } = await openOffering(t, h);
      bad.sendFrame({ opcode: Op.BINARY, rsv: RSV1, payload });
      await expectClose(bad, code);
      const { raw, client } = await openOffering(t, h);
      raw.sendFrame({ opcode: Op.TEXT, rsv: RSV1, payload: compress('inflated after the failure') });
      assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'inflated after the failure');
      client.handler.send(pseudoRandomText(5_000, 6));
      assert.equal(decompress(assertCompressedFrame(await raw.nextFrame(), Op.TEXT)).toString(), pseudoRandomText(5_000, 6));
    });
  }

  test('a compressed message that inflates to exactly maxMessageSize is accepted, one byte more fails with 1009', LIMIT, async (t) => {
    const limit = 64 * 1024;
    const h = await startServer(t, { perMessageDeflate: true, maxMessageSize: limit }, { echo: false });
    const { raw: fits, client } = await openOffering(t, h);
    fits.sendFrame({ opcode: Op.BINARY, rsv: RSV1, payload: compress(Buffer.alloc(limit, 0x61)) });
    await until(() => h.messages.length === 1, 'the message of exactly maxMessageSize');
    assert.equal((messagesFrom(h, client)[0] as Buffer).length, limit);
    const { raw: over } = await openOffering(t, h);
    over.sendFrame({ opcode: Op.BINARY, rsv: RSV1, payload: compress(Buffer.alloc(limit + 1, 0x61)) });
    await expectClose(over, 1009);
    assert.equal(h.messages.length, 1);
  });
});

// ── RFC 7692 §6.1: what the server sends ─────────────────────────────────────────────────────────────────

describe('RFC 7692 §6.1: compressed messages from the server', () => {
  test('messages of at least threshold bytes go compressed (RSV1), smaller ones plain, in the order sent', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const { raw, client } = await openOffering(t, h);
    const sizes = [0, 1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 5_000, 70_000, 3, 300_000, 2];
    const messages = sizes.map((size, i) => (i % 2 === 0 ? pseudoRandomText(size, i + 1) : pseudoRandomBytes(size, i + 1)));
    const results = messages.map((message) => client.handler.send(message));
    sizes.forEach((size, i) => {
      if (size >= THRESHOLD) assert.equal(results[i], 'queued', `a compressed message of ${size} bytes is queued`);
      else assert.notEqual(results[i], 'dropped');
    });
    const inflater = new StreamingInflater();
    t.after(() => inflater.close());
    const frames = await readFrames(raw, sizes.length);
    for (const [i, size] of sizes.entries()) {
      const frame = frames[i]!;
      const opcode = i % 2 === 0 ? Op.TEXT : Op.BINARY;
      const expected = Buffer.from(messages[i]!);
      if (size >= THRESHOLD) {
        const payload = assertCompressedFrame(frame, opcode);
        assert.ok((await inflater.decompress(payload)).equals(expected), `message ${i} (${size} bytes) inflates to what was sent`);
      } else {
        assertPlainFrame(frame, opcode, expected);
      }
    }
  });

  test('close() right after a big compressed send: the message arrives before the Close frame', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const { raw, client } = await openOffering(t, h);
    const big = pseudoRandomText(100_000, 8);
    assert.equal(client.handler.send(big), 'queued');
    client.handler.close(1000, 'done');
    const close = await raw.closeFrame();
    assert.equal(close.code, 1000);
    assert.equal(close.reason, 'done');
    assert.equal(close.before.length, 1);
    assert.equal(decompress(assertCompressedFrame(close.before[0]!, Op.TEXT)).toString(), big);
  });

  test('a connection dropped while its message is being compressed leaves the server serving', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: { concurrencyLimit: 1 } });
    const { client } = await openOffering(t, h);
    assert.equal(client.handler.send(pseudoRandomBytes(4 * MIB, 12)), 'queued');
    client.handler.terminate();
    await until(() => h.left.includes(client), 'client-left');
    const { raw, client: next } = await openOffering(t, h);
    next.handler.send(pseudoRandomText(5_000, 13));
    assert.equal(decompress(assertCompressedFrame(await raw.nextFrame(), Op.TEXT)).toString(), pseudoRandomText(5_000, 13));
    await assertRawEchoes(raw);
  });

  test('with threshold 100, a 99-byte message goes plain and a 100-byte one compressed', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: { threshold: 100, serverNoContextTakeover: true } });
    const { raw, client } = await openOffering(t, h);
    client.handler.send('a'.repeat(99));
    client.handler.send('b'.repeat(100));
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'a'.repeat(99));
    assert.equal(decompress(assertCompressedFrame(await raw.nextFrame(), Op.TEXT)).toString(), 'b'.repeat(100));
  });

  test('with threshold 0, even an empty message goes compressed', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: { threshold: 0, serverNoContextTakeover: true } });
    const { raw, client } = await openOffering(t, h);
    client.handler.send('');
    client.handler.send(new Uint8Array(0));
    assert.equal(decompress(assertCompressedFrame(await raw.nextFrame(), Op.TEXT)).length, 0);
    assert.equal(decompress(assertCompressedFrame(await raw.nextFrame(), Op.BINARY)).length, 0);
  });

  test('the server compresses with no larger window than agreed (server_max_window_bits=9 inflates with a 9-bit window)', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: { serverNoContextTakeover: true } });
    const { raw, client } = await openOffering(t, h, 'permessage-deflate; server_max_window_bits=9');
    // A 600-byte block repeated: a 12-bit window would reach back 600 bytes; a 9-bit one (512) cannot.
    const text = pseudoRandomText(600, 9).repeat(30);
    client.handler.send(text);
    const payload = assertCompressedFrame(await raw.nextFrame(), Op.TEXT);
    const inflated = inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), {
      windowBits: 9,
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
    });
    assert.equal(inflated.toString(), text);
  });
});

// ── RFC 7692 §7.1.1: context takeover ───────────────────────────────────────────────────────────────────

describe('RFC 7692 §7.1.1: context takeover', () => {
  const base = pseudoRandomText(3_000, 11);

  test('client to server: messages compressed with one shared context (raw client) all arrive exactly', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true }, { echo: false });
    const { raw, client } = await openOffering(t, h);
    const deflater = new StreamingDeflater();
    t.after(() => deflater.close());
    const sizes: number[] = [];
    for (let i = 0; i < 6; i++) {
      const payload = await deflater.compress(similarMessage(base, i));
      sizes.push(payload.length);
      raw.sendFrame({ opcode: Op.TEXT, rsv: RSV1, payload });
    }
    // The test really shares the context: the later messages are mostly back-references to the first.
    assert.ok(sizes[1]! * 4 < sizes[0]!, `compressed sizes ${sizes.join(', ')}`);
    await until(() => h.messages.length === 6, 'six messages');
    assert.deepEqual(messagesFrom(h, client), Array.from({ length: 6 }, (_, i) => similarMessage(base, i)));
  });

  test('client to server: a ws client with context takeover sends many similar messages, all arrive exactly', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true }, { echo: false });
    const peer = await connectWs(t, h, { perMessageDeflate: true });
    const expected = Array.from({ length: 20 }, (_, i) => similarMessage(base, i));
    for (const message of expected) peer.ws.send(message);
    await until(() => h.messages.length === expected.length, 'every message');
    assert.deepEqual(messagesFrom(h, peer.client), expected);
    const bytesIn = h.server.stats.bytesIn;
    assert.ok(bytesIn < base.length * 3, `the messages were sent compressed with a shared context (${bytesIn} bytes in)`);
  });

  test('server to client: with context takeover, similar messages reference the earlier ones and inflate in sequence', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const { raw, client } = await openOffering(t, h);
    for (let i = 0; i < 5; i++) client.handler.send(similarMessage(base, i));
    const inflater = new StreamingInflater();
    t.after(() => inflater.close());
    const payloads = (await readFrames(raw, 5)).map((frame) => assertCompressedFrame(frame, Op.TEXT));
    for (const [i, payload] of payloads.entries()) {
      assert.equal((await inflater.decompress(payload)).toString(), similarMessage(base, i));
    }
    assert.ok(payloads[1]!.length * 4 < payloads[0]!.length, `compressed sizes ${payloads.map((p) => p.length).join(', ')}`);
  });

  for (const [how, config, offer] of [
    ['offered by the client', {}, 'permessage-deflate; server_no_context_takeover'],
    ['configured on the server', { serverNoContextTakeover: true }, 'permessage-deflate'],
  ] as const) {
    test(`server to client: with server_no_context_takeover ${how}, each message inflates on its own`, LIMIT, async (t) => {
      const h = await startServer(t, { perMessageDeflate: config });
      const { raw, client } = await openOffering(t, h, offer);
      assert.match(client.handler.extensions, /server_no_context_takeover/);
      for (let i = 0; i < 3; i++) client.handler.send(base);
      const payloads = (await readFrames(raw, 3)).map((frame) => assertCompressedFrame(frame, Op.TEXT));
      for (const payload of payloads) assert.equal(decompress(payload).toString(), base);
      assert.ok(payloads[1]!.equals(payloads[0]!) && payloads[2]!.equals(payloads[0]!), 'the same message compresses to the same bytes');
    });
  }

  test('with client_no_context_takeover agreed, messages each compressed alone all arrive', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: { clientNoContextTakeover: true } }, { echo: false });
    const { raw, client } = await openOffering(t, h);
    assert.equal(client.handler.extensions, 'permessage-deflate; client_no_context_takeover');
    for (let i = 0; i < 4; i++) raw.sendFrame({ opcode: Op.TEXT, rsv: RSV1, payload: compress(similarMessage(base, i)) });
    await until(() => h.messages.length === 4, 'four messages');
    assert.deepEqual(messagesFrom(h, client), Array.from({ length: 4 }, (_, i) => similarMessage(base, i)));
  });
});

// ── with ws as the peer ───────────────────────────────────────────────────────────────────────────────────

describe('permessage-deflate with ws as the peer', () => {
  const sizes = [0, 1, 125, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 65_535, 65_536, 300_000, MIB];
  for (const kind of ['text', 'binary'] as const) {
    test(`${kind} messages of ${sizes.join(', ')} bytes, compressed by ws, are echoed exactly; RSV1 exactly on echoes of at least threshold bytes`, LIMIT, async (t) => {
      const h = await startServer(t, { perMessageDeflate: true });
      const { port, frames } = await startTap(t, h.server.port);
      // threshold 0: ws compresses every message, even the empty one.
      const peer = await connectWs(t, h, { perMessageDeflate: { threshold: 0 } }, { port });
      const messages = sizes.map((size) => (kind === 'text' ? pseudoRandomText(size, size + 5) : pseudoRandomBytes(size, size + 5)));
      for (const [i, message] of messages.entries()) {
        peer.ws.send(message);
        await receivedCount(peer, i + 1);
      }
      await until(() => frames().length === sizes.length, 'every echo frame to be tapped');
      for (const [i, size] of sizes.entries()) {
        const received = peer.inbox[i]!;
        assert.equal(received.isBinary, kind === 'binary', `message ${i} type`);
        assert.ok(received.data.equals(Buffer.from(messages[i]!)), `the ${size}-byte message came back different`);
        assert.deepEqual(messagesFrom(h, peer.client)[i], kind === 'text' ? messages[i] : Buffer.from(messages[i]!));
        assert.equal(frames()[i]!.rsv, size >= THRESHOLD ? RSV1 : 0, `RSV of the echo of ${size} bytes`);
      }
      const total = sizes.reduce((sum, size) => sum + size, 0);
      if (kind === 'text') assert.ok(h.server.stats.bytesIn < total, 'ws really sent the text compressed');
    });
  }

  test('a text message with multi-byte characters survives compression both ways', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const peer = await connectWs(t, h, { perMessageDeflate: { threshold: 0 } });
    const text = 'é✓𝄞 naïve façade — ';
    const message = text.repeat(400);
    peer.ws.send(message);
    await receivedCount(peer, 1);
    assert.equal(peer.inbox[0]!.data.toString('utf8'), message);
    assert.deepEqual(messagesFrom(h, peer.client), [message]);
  });

  test('big compressed and small plain messages sent back to back reach ws in the order sent', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true }, { echo: false });
    const peer = await connectWs(t, h, { perMessageDeflate: true });
    const big1 = pseudoRandomText(2 * MIB, 21);
    const big2 = pseudoRandomBytes(500_000, 22);
    const sent: Array<string | Buffer> = [big1, 'a', big2, 'b', 'c', big1, 'd'];
    for (const message of sent) assert.notEqual(peer.client.handler.send(message), 'dropped');
    await receivedCount(peer, sent.length, 8_000);
    assert.deepEqual(
      peer.inbox.map((m) => (m.isBinary ? m.data : m.data.toString('latin1'))),
      sent,
    );
  });
});

// ── broadcast ───────────────────────────────────────────────────────────────────────────────────────────────

describe('sendMessageToAll with permessage-deflate', () => {
  test('with serverNoContextTakeover, every raw client receives identical compressed bytes that inflate to the message', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: { serverNoContextTakeover: true } });
    const clients = [await openOffering(t, h), await openOffering(t, h), await openOffering(t, h)];
    const message = pseudoRandomText(40_000, 31);
    assert.equal(h.server.sendMessageToAll(message), 3);
    assert.equal(h.server.sendMessageToAll(message), 3);
    const first: Buffer[] = [];
    for (const { raw } of clients) {
      const [one, two] = await readFrames(raw, 2);
      const payload = assertCompressedFrame(one!, Op.TEXT);
      assert.equal(decompress(payload).toString(), message);
      assert.ok(assertCompressedFrame(two!, Op.TEXT).equals(payload), 'no context: the second broadcast has the same bytes');
      first.push(payload);
    }
    assert.ok(first[1]!.equals(first[0]!) && first[2]!.equals(first[0]!), 'every client got the same compressed bytes');
  });

  test('clients with and without the extension, with and without context takeover, each get the right form', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const takeover = await openOffering(t, h);
    const noContext = await openOffering(t, h, 'permessage-deflate; server_no_context_takeover');
    const smallWindow = await openOffering(t, h, 'permessage-deflate; server_no_context_takeover; server_max_window_bits=9');
    const plain = await connectRawClient(t, h);
    const wsDeflate = await connectWs(t, h, { perMessageDeflate: true });
    const wsPlain = await connectWs(t, h, { perMessageDeflate: false });
    assert.equal(wsDeflate.ws.extensions, 'permessage-deflate');
    assert.equal(wsPlain.ws.extensions, '');

    const message = pseudoRandomText(30_000, 41);
    assert.equal(h.server.sendMessageToAll(message), 6);
    assert.equal(h.server.sendMessageToAll('tail'), 6, 'a small message right behind it');

    const inflater = new StreamingInflater();
    t.after(() => inflater.close());
    const [takeoverBig, takeoverTail] = await readFrames(takeover.raw, 2);
    assert.equal((await inflater.decompress(assertCompressedFrame(takeoverBig!, Op.TEXT))).toString(), message);
    assertPlainFrame(takeoverTail!, Op.TEXT, 'tail');
    for (const { raw } of [noContext, smallWindow]) {
      const [big, tail] = await readFrames(raw, 2);
      assert.equal(decompress(assertCompressedFrame(big!, Op.TEXT)).toString(), message);
      assertPlainFrame(tail!, Op.TEXT, 'tail');
    }
    const [plainBig, plainTail] = await readFrames(plain.raw, 2);
    assertPlainFrame(plainBig!, Op.TEXT, message);
    assertPlainFrame(plainTail!, Op.TEXT, 'tail');
    for (const peer of [wsDeflate, wsPlain]) {
      await receivedCount(peer, 2);
      assert.deepEqual(peer.inbox.map((m) => m.data.toString('latin1')), [message, 'tail']);
    }
    assert.equal(h.server.stats.messagesOut, 12, 'a broadcast counts once per client');
  });

  test('a broadcast skips a client that is closing, compressed or not', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: { serverNoContextTakeover: true } });
    const open = await openOffering(t, h);
    const closing = await openOffering(t, h);
    closing.client.handler.close(1000);
    assert.equal(h.server.sendMessageToAll(pseudoRandomText(5_000, 51)), 1);
    assert.equal(decompress(assertCompressedFrame(await open.raw.nextFrame(), Op.TEXT)).toString(), pseudoRandomText(5_000, 51));
    const close = await closing.raw.closeFrame();
    assert.equal(close.code, 1000);
    assert.equal(close.before.length, 0, 'the closing client got no data frame');
  });
});

// ── options ───────────────────────────────────────────────────────────────────────────────────────────────

describe('perMessageDeflate option validation', () => {
  const bad: Array<{ value: unknown; error: typeof TypeError | typeof RangeError; names: RegExp }> = [
    { value: 'yes', error: TypeError, names: /perMessageDeflate/ },
    { value: 1, error: TypeError, names: /perMessageDeflate/ },
    { value: null, error: TypeError, names: /perMessageDeflate/ },
    { value: { windowBits: 10 }, error: TypeError, names: /windowBits/ },
    { value: { serverNoContextTakeover: 'yes' }, error: TypeError, names: /serverNoContextTakeover/ },
    { value: { clientNoContextTakeover: 1 }, error: TypeError, names: /clientNoContextTakeover/ },
    { value: { serverMaxWindowBits: 8 }, error: RangeError, names: /serverMaxWindowBits/ },
    { value: { serverMaxWindowBits: 16 }, error: RangeError, names: /serverMaxWindowBits/ },
    { value: { serverMaxWindowBits: '12' }, error: TypeError, names: /serverMaxWindowBits/ },
    { value: { clientMaxWindowBits: 7 }, error: RangeError, names: /clientMaxWindowBits/ },
    { value: { clientMaxWindowBits: 16 }, error: RangeError, names: /clientMaxWindowBits/ },
    { value: { clientMaxWindowBits: 12.5 }, error: RangeError, names: /clientMaxWindowBits/ },
    { value: { threshold: -1 }, error: RangeError, names: /threshold/ },
    { value: { threshold: Number.NaN }, error: RangeError, names: /threshold/ },
    { value: { level: 10 }, error: RangeError, names: /level/ },
    { value: { level: -1 }, error: RangeError, names: /level/ },
    { value: { memLevel: 0 }, error: RangeError, names: /memLevel/ },
    { value: { memLevel: 10 }, error: RangeError, names: /memLevel/ },
    { value: { concurrencyLimit: 0 }, error: RangeError, names: /concurrencyLimit/ },
  ];
  for (const { value, error, names } of bad) {
    test(`perMessageDeflate: ${JSON.stringify(value) ?? String(value)} throws a ${error.name} naming the option`, LIMIT, () => {
      assert.throws(
        () => new WebsocketServer({ perMessageDeflate: value as PerMessageDeflateOptions }),
        (thrown: unknown) => {
          assert.ok(thrown instanceof Error);
          assert.equal(thrown.constructor, error, `expected exactly a ${error.name}, got ${thrown.constructor.name}: ${thrown.message}`);
          assert.match(thrown.message, names);
          return true;
        },
      );
    });
  }

  test('the boundary values are accepted', LIMIT, () => {
    for (const value of [
      true, false, {}, { serverMaxWindowBits: 9 }, { serverMaxWindowBits: 15 }, { clientMaxWindowBits: 8 },
      { clientMaxWindowBits: 15 }, { threshold: 0 }, { level: 0 }, { level: 9 }, { memLevel: 1 }, { memLevel: 9 },
      { concurrencyLimit: 1 }, { serverNoContextTakeover: true, clientNoContextTakeover: false },
    ]) {
      assert.doesNotThrow(() => new WebsocketServer({ perMessageDeflate: value }), JSON.stringify(value));
    }
  });
});
