// RFC 6455 conformance, driven over raw TCP sockets by an independent test client (test/support/raw-client.ts).
// Every failure case asserts the exact close code or HTTP status, then checks that the same server still accepts a
// new connection and echoes a message on it.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { WebsocketServerOptions } from '../websocket-server.ts';
import { buildFrame, closePayload, Op } from './support/frames.ts';
import type { ClientFrame } from './support/frames.ts';
import { handshakeRequest, rawRequest } from './support/raw-client.ts';
import {
  assertPlainFrame,
  assertRawEchoes,
  assertServerStillServes,
  messagesFrom,
  openRaw,
  startServer,
  type Harness,
} from './support/harness.ts';
import type { HttpReply, RawClient } from './support/raw-client.ts';

// ── Shared setup ────────────────────────────────────────────────────────────────────────────────────────────

const TEST = { timeout: 10_000 };
const CLOSE_TIMEOUT_MS = 300;
const MIB = 1024 * 1024;
/** The sample key of RFC 6455 §1.3 and the Accept value the RFC derives from it. */
const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** Short handshake and close timeouts, so that every failure case ends quickly. */
const QUICK: WebsocketServerOptions = { closeTimeout: CLOSE_TIMEOUT_MS, handshakeTimeout: 500 };

/** One echo server for the enclosing `describe`, started before its tests and shut down after them. */
function useEchoServer(options: WebsocketServerOptions = {}): () => Harness {
  let harness: Harness | undefined;
  const cleanups: Array<() => unknown> = [];
  before(async () => {
    harness = await startServer({ after: (fn) => cleanups.push(fn) }, { ...QUICK, ...options });
  });
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
  });
  return () => harness!;
}

/** Sends several frames in one TCP write. */
function sendFrames(client: RawClient, frames: ClientFrame[]): void {
  client.sendRaw(Buffer.concat(frames.map((frame) => buildFrame(frame))));
}

/** Writes `bytes` one byte per write, with a short pause between writes so they arrive as separate segments. */
async function sendByteByByte(client: RawClient, bytes: Buffer): Promise<void> {
  for (let i = 0; i < bytes.length; i++) {
    client.sendRaw(bytes.subarray(i, i + 1));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** Records every byte the client receives from now on (alongside its frame reader). */
function tap(client: RawClient): () => Buffer {
  const chunks: Buffer[] = [];
  client.socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return () => Buffer.concat(chunks);
}

/**
 * Expects the server to fail the connection (§7.1.7): a close frame with `code` and no data frame before it, then
 * the end of the TCP connection.
 */
async function assertFailsWith(client: RawClient, code: number): Promise<void> {
  const close = await client.closeFrame();
  assert.equal(close.code, code, `close code (reason: ${JSON.stringify(close.reason)})`);
  assert.deepEqual(
    close.before.map((frame) => frame.opcode),
    [],
    'no frame precedes the close frame',
  );
  await client.ended();
}

/** Opens a connection, sends `frames` in one write, expects failure with `code`, then checks the server serves. */
async function expectFailure(t: TestContext, h: Harness, frames: ClientFrame[], code: number): Promise<void> {
  const client = await openRaw(t, h.server.port);
  sendFrames(client, frames);
  await assertFailsWith(client, code);
  await assertServerStillServes(t, h);
}

/** `size` bytes of ASCII text. */
function textOfSize(size: number): Buffer {
  return size === 0 ? Buffer.alloc(0) : Buffer.alloc(size, 'The quick brown fox jumps over the lazy dog. ');
}

/** `size` bytes of a pattern using every byte value. */
function bytesOfSize(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 0xff;
  return bytes;
}

// ── §4 Opening handshake ────────────────────────────────────────────────────────────────────────────────────

/** Inserts a raw header line (sent as is) just before the blank line that ends a request head. */
function withHeaderLine(request: string, line: string): string {
  return `${request.slice(0, -2)}${line}\r\n\r\n`;
}

/** Base64 of `length` bytes: a syntactically valid key only when `length` is 16. */
function keyOfBytes(length: number): string {
  return Buffer.alloc(length, 0x5a).toString('base64');
}

/** Asserts a refused handshake: the status, the given headers, `close` in Connection, a body matching its
 * `Content-Length`, no Accept, and the socket closed by the server. */
function assertRefusal(reply: HttpReply & { closed: boolean }, status: number, headers: Record<string, string> = {}): void {
  assert.equal(reply.status, status, `status (got ${reply.status} ${reply.statusText}: ${JSON.stringify(reply.body)})`);
  for (const [name, value] of Object.entries(headers)) assert.equal(reply.headers[name], value, `${name} header`);
  const connection = (reply.headers['connection'] ?? '').toLowerCase().split(',').map((token) => token.trim());
  assert.ok(connection.includes('close'), `Connection lists close (got ${JSON.stringify(reply.headers['connection'])})`);
  // RFC 9110 §7.8: a 426 names the protocol in Upgrade, which needs the "upgrade" connection option beside it.
  if (status === 426) assert.ok(connection.includes('upgrade'), 'a 426 also lists upgrade in Connection');
  assert.equal(reply.headers['content-length'], String(Buffer.byteLength(reply.body)), 'Content-Length matches the body');
  assert.ok(reply.body.length > 0, 'a refusal carries a short plain-text body');
  assert.equal(reply.headers['sec-websocket-accept'], undefined, 'no Sec-WebSocket-Accept on a refusal');
  assert.equal(reply.closed, true, 'the server closes the socket after a refusal');
}

interface Refusal {
  readonly name: string;
  readonly request: () => string;
  readonly status: number;
  readonly headers?: Record<string, string>;
}

const refusals: Refusal[] = [
  {
    name: 'a POST request is refused with 405 and Allow: GET',
    request: () => handshakeRequest({ method: 'POST' }),
    status: 405,
    headers: { allow: 'GET' },
  },
  {
    name: 'a plain GET without Upgrade (a browser page load) is refused with 426, Upgrade: websocket and Sec-WebSocket-Version: 13',
    request: () => 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\nConnection: keep-alive\r\n\r\n',
    status: 426,
    headers: { upgrade: 'websocket', 'sec-websocket-version': '13' },
  },
  {
    name: 'an Upgrade to another protocol (h2c) is refused with 426',
    request: () => handshakeRequest({ headers: { Upgrade: 'h2c' } }),
    status: 426,
    headers: { upgrade: 'websocket', 'sec-websocket-version': '13' },
  },
  {
    name: 'a Connection header without the upgrade token is refused with 400',
    request: () => handshakeRequest({ headers: { Connection: 'keep-alive' } }),
    status: 400,
  },
  {
    name: 'a missing Connection header is refused with 400',
    request: () => handshakeRequest({ headers: { Connection: null } }),
    status: 400,
  },
  {
    name: 'a missing Host header is refused with 400',
    request: () => handshakeRequest({ headers: { Host: null } }),
    status: 400,
  },
  {
    name: 'a missing Sec-WebSocket-Version is refused with 400',
    request: () => handshakeRequest({ headers: { 'Sec-WebSocket-Version': null } }),
    status: 400,
  },
  {
    name: 'Sec-WebSocket-Version: 8 is refused with 426 and Sec-WebSocket-Version: 13',
    request: () => handshakeRequest({ headers: { 'Sec-WebSocket-Version': '8' } }),
    status: 426,
    headers: { 'sec-websocket-version': '13' },
  },
  {
    name: 'Sec-WebSocket-Version: 14 is refused with 426 and Sec-WebSocket-Version: 13',
    request: () => handshakeRequest({ headers: { 'Sec-WebSocket-Version': '14' } }),
    status: 426,
    headers: { 'sec-websocket-version': '13' },
  },
  {
    name: 'a missing Sec-WebSocket-Key is refused with 400',
    request: () => handshakeRequest({ headers: { 'Sec-WebSocket-Key': null } }),
    status: 400,
  },
  {
    name: 'a repeated Sec-WebSocket-Key is refused with 400',
    request: () => withHeaderLine(handshakeRequest(), `Sec-WebSocket-Key: ${keyOfBytes(16)}`),
    status: 400,
  },
  {
    name: 'a Sec-WebSocket-Key of 15 bytes is refused with 400',
    request: () => handshakeRequest({ headers: { 'Sec-WebSocket-Key': keyOfBytes(15) } }),
    status: 400,
  },
  {
    name: 'a Sec-WebSocket-Key of 17 bytes is refused with 400',
    request: () => handshakeRequest({ headers: { 'Sec-WebSocket-Key': keyOfBytes(17) } }),
    status: 400,
  },
  {
    name: 'a Sec-WebSocket-Key that is not base64 is refused with 400',
    request: () => handshakeRequest({ headers: { 'Sec-WebSocket-Key': '!!!!!!!!!!!!!!!!!!!!!!==' } }),
    status: 400,
  },
  {
    name: 'a request announcing a body with Content-Length: 5 is refused with 400',
    request: () => `${handshakeRequest({ headers: { 'Content-Length': '5' } })}hello`,
    status: 400,
  },
  {
    name: 'a request announcing a body with Transfer-Encoding: chunked is refused with 400',
    request: () => `${handshakeRequest({ headers: { 'Transfer-Encoding': 'chunked' } })}0\r\n\r\n`,
    status: 400,
  },
  {
    name: 'an HTTP/1.0 request is refused with 400',
    request: () => handshakeRequest({ version: 'HTTP/1.0' }),
    status: 400,
  },
  {
    name: 'an HTTP/2.0 request line is refused with 505',
    request: () => handshakeRequest({ version: 'HTTP/2.0' }),
    status: 505,
  },
  {
    name: 'a request line over 8 KiB is refused with 414',
    request: () => handshakeRequest({ path: `/${'a'.repeat(9000)}` }),
    status: 414,
  },
  {
    name: 'a request head over maxHeaderSize (16 KiB) is refused with 431',
    request: () => handshakeRequest({ headers: { 'X-Filler': 'a'.repeat(20_000) } }),
    status: 431,
  },
  {
    name: 'a request with more than 100 header fields is refused with 431',
    request: () =>
      handshakeRequest({ headers: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`X-Field-${i}`, 'v'])) }),
    status: 431,
  },
  {
    name: 'a request line without an HTTP version is refused with 400',
    request: () => handshakeRequest().replace(/^GET \/ HTTP\/1\.1\r\n/, 'GET /\r\n'),
    status: 400,
  },
  {
    name: 'a header line without a colon is refused with 400',
    request: () => withHeaderLine(handshakeRequest(), 'X-No-Colon-Here'),
    status: 400,
  },
  {
    name: 'an obs-folded header line is refused with 400',
    request: () => withHeaderLine(handshakeRequest(), 'X-Folded: first\r\n second'),
    status: 400,
  },
  {
    name: 'a request head with bare LF line endings is refused with 400',
    request: () => handshakeRequest().replaceAll('\r\n', '\n'),
    status: 400,
  },
  {
    name: 'a control character in a header value is refused with 400',
    request: () => withHeaderLine(handshakeRequest(), 'X-Control: a\x01b'),
    status: 400,
  },
  {
    name: 'a header name that is not a token (contains a space) is refused with 400',
    request: () => withHeaderLine(handshakeRequest(), 'X Bad: 1'),
    status: 400,
  },
  {
    name: 'whitespace between a header name and its colon is refused with 400',
    request: () => withHeaderLine(handshakeRequest(), 'X-Spaced : 1'),
    status: 400,
  },
];

describe('§4.1/§4.2 Opening handshake', () => {
  const harness = useEchoServer();

  it('answers the RFC sample key with 101 and the exact Sec-WebSocket-Accept, and nothing it did not negotiate', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port, {
      headers: {
        'Sec-WebSocket-Key': SAMPLE_KEY,
        'Sec-WebSocket-Protocol': 'chat',
        'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits',
      },
    });
    const reply = client.handshake;
    assert.equal(reply.status, 101);
    assert.equal(reply.statusText, 'Switching Protocols');
    assert.equal(reply.headers['upgrade']?.toLowerCase(), 'websocket');
    assert.equal(reply.headers['connection']?.toLowerCase(), 'upgrade');
    assert.equal(reply.headers['sec-websocket-accept'], SAMPLE_ACCEPT);
    assert.equal(reply.headers['sec-websocket-protocol'], undefined);
    assert.equal(reply.headers['sec-websocket-extensions'], undefined);
    await assertRawEchoes(client, 'hello');
  });

  const accepted: Array<[string, Record<string, string>]> = [
    ['Connection: keep-alive, Upgrade', { Connection: 'keep-alive, Upgrade' }],
    ['Connection: UPGRADE', { Connection: 'UPGRADE' }],
    ['Upgrade: WebSocket', { Upgrade: 'WebSocket' }],
    ['Content-Length: 0', { 'Content-Length': '0' }],
    ['an Origin and unknown header fields', { Origin: 'http://example.com', 'X-Unknown': 'ignored' }],
  ];
  for (const [what, headers] of accepted) {
    it(`a handshake with ${what} is accepted and the connection echoes`, TEST, async (t) => {
      const client = await openRaw(t, harness().server.port, { headers });
      assert.equal(client.handshake.status, 101);
      await assertRawEchoes(client);
    });
  }

  it('a handshake request sent one byte per write is accepted', TEST, async () => {
    const request = handshakeRequest({ headers: { 'Sec-WebSocket-Key': SAMPLE_KEY } });
    const reply = await rawRequest(harness().server.port, [...request], { chunkDelayMs: 1 });
    assert.equal(reply.status, 101);
    assert.equal(reply.headers['sec-websocket-accept'], SAMPLE_ACCEPT);
    assert.equal(reply.closed, false);
  });

  for (const refusal of refusals) {
    it(refusal.name, TEST, async (t) => {
      assertRefusal(await rawRequest(harness().server.port, refusal.request()), refusal.status, refusal.headers);
      await assertServerStillServes(t, harness());
    });
  }

  it('a request head left incomplete is answered 408 after handshakeTimeout', TEST, async (t) => {
    const stalled = handshakeRequest().slice(0, -2); // the final blank line never comes
    assertRefusal(await rawRequest(harness().server.port, stalled, { timeoutMs: 4000 }), 408);
    await assertServerStillServes(t, harness());
  });

  it('a connection that sends nothing is answered 408 after handshakeTimeout', TEST, async (t) => {
    assertRefusal(await rawRequest(harness().server.port, '', { timeoutMs: 4000 }), 408);
    await assertServerStillServes(t, harness());
  });

  it('denyNewConnections() answers new handshakes 503, keeps open connections, and allowNewConnections() lifts it', TEST, async (t) => {
    const h = await startServer(t, QUICK);
    const { server } = h;
    const port = server.port;
    const existing = await openRaw(t, port);
    server.denyNewConnections();
    assertRefusal(await rawRequest(port, handshakeRequest()), 503);
    await assertRawEchoes(existing);
    server.allowNewConnections();
    await assertServerStillServes(t, h);
  });

  it('a handshake that setFnAuthenticate rejects (false or a promise of false) is refused with 403', TEST, async (t) => {
    const h = await startServer(t, QUICK);
    const port = h.server.port;
    h.server.setFnAuthenticate((request) => {
      if (request.path === '/sync') return false;
      if (request.path === '/async') return Promise.resolve(false);
      return true;
    });
    assertRefusal(await rawRequest(port, handshakeRequest({ path: '/sync' })), 403);
    assertRefusal(await rawRequest(port, handshakeRequest({ path: '/async' })), 403);
    await assertServerStillServes(t, h);
  });

  it('a handshake whose setFnAuthenticate throws or rejects is refused with 500', TEST, async (t) => {
    const h = await startServer(t, QUICK);
    const port = h.server.port;
    h.server.setFnAuthenticate((request) => {
      if (request.path === '/throw') throw new Error('authenticator failed');
      if (request.path === '/reject') return Promise.reject(new Error('authenticator failed'));
      return true;
    });
    assertRefusal(await rawRequest(port, handshakeRequest({ path: '/throw' })), 500);
    assertRefusal(await rawRequest(port, handshakeRequest({ path: '/reject' })), 500);
    await assertServerStillServes(t, h);
  });
});

// ── §5.2/§5.3 Framing ──────────────────────────────────────────────────────────────────────────────────────

describe('§5.2/§5.3 Base framing protocol and masking', () => {
  const harness = useEchoServer();

  for (const [kind, opcode, make] of [
    ['text', Op.TEXT, textOfSize],
    ['binary', Op.BINARY, bytesOfSize],
  ] as const) {
    for (const size of [0, 125, 126, 127, 65535, 65536, MIB + 1]) {
      it(`a ${size}-byte ${kind} message is echoed byte for byte in one unmasked final frame with the minimal length encoding`, TEST, async (t) => {
        const client = await openRaw(t, harness().server.port);
        const received = tap(client);
        const payload = make(size);
        client.sendFrame({ opcode, payload });
        assertPlainFrame(await client.nextFrame(), opcode, payload);
        // The header the RFC prescribes: FIN, RSV 0, no mask bit, 7-bit length up to 125, else 126 + 16-bit up
        // to 65535, else 127 + 64-bit (§5.2 "the minimal number of bytes MUST be used").
        const header = buildFrame({ opcode, masked: false, declaredLength: size });
        assert.deepEqual(received().subarray(0, header.length), header, 'frame header');
        assert.equal(received().length, header.length + size, 'exactly one frame was sent');
      });
    }
  }

  it('many frames in one TCP write are all echoed, in order', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    const frames = Array.from({ length: 40 }, (_, i): ClientFrame =>
      i % 2 === 0 ? { opcode: Op.TEXT, payload: `message ${i}` } : { opcode: Op.BINARY, payload: bytesOfSize(i * 10) },
    );
    sendFrames(client, frames);
    for (const frame of frames) {
      const payload = typeof frame.payload === 'string' ? Buffer.from(frame.payload) : Buffer.from(frame.payload ?? []);
      assertPlainFrame(await client.nextFrame(), frame.opcode, payload);
    }
  });

  it('a frame with a 16-bit length sent one byte per write is echoed', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    const payload = textOfSize(300);
    await sendByteByByte(client, buildFrame({ opcode: Op.TEXT, payload }));
    assertPlainFrame(await client.nextFrame(), Op.TEXT, payload);
  });

  it('an unmasked client frame fails with 1002', TEST, async (t) => {
    await expectFailure(t, harness(), [{ opcode: Op.TEXT, payload: 'unmasked', masked: false }], 1002);
  });

  for (const [bit, rsv] of [
    ['RSV1', 4],
    ['RSV2', 2],
    ['RSV3', 1],
  ] as const) {
    it(`a frame with ${bit} set fails with 1002`, TEST, async (t) => {
      await expectFailure(t, harness(), [{ opcode: Op.TEXT, payload: 'reserved', rsv }], 1002);
    });
  }

  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    it(`a frame with the reserved opcode 0x${opcode.toString(16).toUpperCase()} fails with 1002`, TEST, async (t) => {
      await expectFailure(t, harness(), [{ opcode, payload: 'x' }], 1002);
    });
  }

  it('a 64-bit length with its most significant bit set fails with 1002 (header only)', TEST, async (t) => {
    await expectFailure(t, harness(), [{ opcode: Op.BINARY, lengthBits: 64, length64High: 0x8000_0000, declaredLength: 1 }], 1002);
  });

  it('a 5-byte payload announced with a 16-bit length (not minimal) fails with 1002', TEST, async (t) => {
    await expectFailure(t, harness(), [{ opcode: Op.TEXT, payload: 'hello', lengthBits: 16 }], 1002);
  });

  it('a 200-byte payload announced with a 64-bit length (not minimal) fails with 1002', TEST, async (t) => {
    await expectFailure(t, harness(), [{ opcode: Op.BINARY, payload: bytesOfSize(200), lengthBits: 64 }], 1002);
  });
});

// ── §5.4 Fragmentation ─────────────────────────────────────────────────────────────────────────────────────

describe('§5.4 Fragmentation', () => {
  const harness = useEchoServer();

  it('a text message in three fragments is echoed as one message', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    sendFrames(client, [
      { opcode: Op.TEXT, fin: false, payload: 'Hel' },
      { opcode: Op.CONTINUATION, fin: false, payload: 'lo, ' },
      { opcode: Op.CONTINUATION, payload: 'world' },
    ]);
    assertPlainFrame(await client.nextFrame(), Op.TEXT, 'Hello, world');
  });

  it('a binary message in three fragments sent in separate writes is echoed as one message', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    const payload = bytesOfSize(3000);
    const parts = [payload.subarray(0, 1000), payload.subarray(1000, 2000), payload.subarray(2000)];
    client.sendFrame({ opcode: Op.BINARY, fin: false, payload: parts[0]! });
    await new Promise((resolve) => setTimeout(resolve, 10));
    client.sendFrame({ opcode: Op.CONTINUATION, fin: false, payload: parts[1]! });
    await new Promise((resolve) => setTimeout(resolve, 10));
    client.sendFrame({ opcode: Op.CONTINUATION, payload: parts[2]! });
    assertPlainFrame(await client.nextFrame(), Op.BINARY, payload);
  });

  it('empty fragments are allowed and contribute nothing', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    sendFrames(client, [
      { opcode: Op.TEXT, fin: false },
      { opcode: Op.CONTINUATION, fin: false, payload: 'only' },
      { opcode: Op.CONTINUATION },
    ]);
    assertPlainFrame(await client.nextFrame(), Op.TEXT, 'only');
  });

  it('a ping between fragments is answered with a pong before the message completes', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    sendFrames(client, [
      { opcode: Op.TEXT, fin: false, payload: 'Hel' },
      { opcode: Op.PING, payload: 'between' },
    ]);
    assertPlainFrame(await client.nextFrame(), Op.PONG, 'between');
    client.sendFrame({ opcode: Op.CONTINUATION, payload: 'lo' });
    assertPlainFrame(await client.nextFrame(), Op.TEXT, 'Hello');
  });

  it('a final continuation frame without a started message fails with 1002', TEST, async (t) => {
    await expectFailure(t, harness(), [{ opcode: Op.CONTINUATION, payload: 'orphan' }], 1002);
  });

  it('a non-final continuation frame without a started message fails with 1002', TEST, async (t) => {
    await expectFailure(t, harness(), [{ opcode: Op.CONTINUATION, fin: false, payload: 'orphan' }], 1002);
  });

  it('a new text frame inside a fragmented text message fails with 1002', TEST, async (t) => {
    await expectFailure(
      t,
      harness(),
      [
        { opcode: Op.TEXT, fin: false, payload: 'first' },
        { opcode: Op.TEXT, payload: 'second' },
      ],
      1002,
    );
  });

  it('a new binary frame inside a fragmented text message fails with 1002', TEST, async (t) => {
    await expectFailure(
      t,
      harness(),
      [
        { opcode: Op.TEXT, fin: false, payload: 'first' },
        { opcode: Op.BINARY, fin: false, payload: 'second' },
      ],
      1002,
    );
  });
});

// ── §5.5 Control frames ────────────────────────────────────────────────────────────────────────────────────

describe('§5.5 Control frames', () => {
  const harness = useEchoServer();

  for (const size of [0, 125]) {
    it(`a ping with a ${size}-byte payload is answered with a pong carrying the identical payload`, TEST, async (t) => {
      const client = await openRaw(t, harness().server.port);
      const payload = bytesOfSize(size);
      client.sendFrame({ opcode: Op.PING, payload });
      assertPlainFrame(await client.nextFrame(), Op.PONG, payload);
    });
  }

  for (const [name, opcode] of [
    ['ping', Op.PING],
    ['pong', Op.PONG],
    ['close', Op.CLOSE],
  ] as const) {
    it(`a ${name} frame with a 126-byte payload fails with 1002`, TEST, async (t) => {
      const payload = opcode === Op.CLOSE ? closePayload(1000, 'r'.repeat(124)) : bytesOfSize(126);
      await expectFailure(t, harness(), [{ opcode, payload }], 1002);
    });

    it(`a fragmented ${name} frame (FIN clear) fails with 1002`, TEST, async (t) => {
      const payload = opcode === Op.CLOSE ? closePayload(1000) : 'frag';
      await expectFailure(t, harness(), [{ opcode, fin: false, payload }], 1002);
    });
  }

  it('an unsolicited pong is ignored and the connection keeps echoing', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    client.sendFrame({ opcode: Op.PONG, payload: 'unsolicited' });
    await assertRawEchoes(client, 'after the pong');
  });
});

// ── §8.1 UTF-8 ─────────────────────────────────────────────────────────────────────────────────────────────

describe('§8.1 Handling errors in UTF-8-encoded data', () => {
  const harness = useEchoServer();

  it('valid multi-byte UTF-8 text is echoed unchanged', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    await assertRawEchoes(client, 'héllo wörld — € 日本語 𝄞 🎉');
  });

  const invalid: Array<[string, number[]]> = [
    ['a 0xFF byte', [0x41, 0xff, 0x42]],
    ['a lone continuation byte', [0x80]],
    ['an overlong two-byte encoding of "/"', [0xc0, 0xaf]],
    ['an overlong three-byte encoding', [0xe0, 0x80, 0xaf]],
    ['a UTF-16 surrogate (U+D800)', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['a five-byte sequence', [0xf8, 0x88, 0x80, 0x80, 0x80]],
    ['a sequence truncated at the end of the message', [0x41, 0xe2, 0x82]],
  ];
  for (const [what, bytes] of invalid) {
    it(`a text message containing ${what} fails with 1007`, TEST, async (t) => {
      await expectFailure(t, harness(), [{ opcode: Op.TEXT, payload: Buffer.from(bytes) }], 1007);
    });
  }

  it('invalid UTF-8 in the first of two fragments fails with 1007 before the second fragment is sent', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    client.sendFrame({ opcode: Op.TEXT, fin: false, payload: Buffer.from([0x41, 0xff]) });
    await assertFailsWith(client, 1007);
    await assertServerStillServes(t, harness());
  });

  it('a code point split across two fragments is echoed whole', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    const euro = Buffer.from('€', 'utf8'); // e2 82 ac
    sendFrames(client, [
      { opcode: Op.TEXT, fin: false, payload: Buffer.concat([Buffer.from('A'), euro.subarray(0, 2)]) },
      { opcode: Op.CONTINUATION, payload: Buffer.concat([euro.subarray(2), Buffer.from('B')]) },
    ]);
    assertPlainFrame(await client.nextFrame(), Op.TEXT, 'A€B');
  });

  it('a fragmented message that ends inside a code point fails with 1007', TEST, async (t) => {
    await expectFailure(
      t,
      harness(),
      [
        { opcode: Op.TEXT, fin: false, payload: Buffer.from([0x41, 0xe2]) },
        { opcode: Op.CONTINUATION, payload: Buffer.from([0x82]) },
      ],
      1007,
    );
  });
});

// ── §5.5.1/§7 Closing ──────────────────────────────────────────────────────────────────────────────────────

describe('§5.5.1/§7 Closing the connection', () => {
  const harness = useEchoServer();

  it("a client close 1000 'bye' is answered with close 1000, then the server ends TCP", TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    client.sendFrame({ opcode: Op.CLOSE, payload: closePayload(1000, 'bye') });
    const close = await client.closeFrame();
    assert.equal(close.code, 1000);
    assert.deepEqual(close.before, []);
    await client.ended();
  });

  it('an empty close payload is answered with an empty close payload', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    const received = tap(client);
    client.sendFrame({ opcode: Op.CLOSE });
    const close = await client.closeFrame();
    assert.equal(close.code, undefined);
    assert.deepEqual(received(), Buffer.from([0x88, 0x00]), 'exactly an empty, unmasked close frame');
    await client.ended();
  });

  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]) {
    it(`the valid close code ${code} is echoed`, TEST, async (t) => {
      const client = await openRaw(t, harness().server.port);
      client.sendFrame({ opcode: Op.CLOSE, payload: closePayload(code, 'reason') });
      assert.equal((await client.closeFrame()).code, code);
      await client.ended();
    });
  }

  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    it(`the invalid close code ${code} fails with 1002`, TEST, async (t) => {
      await expectFailure(t, harness(), [{ opcode: Op.CLOSE, payload: closePayload(code) }], 1002);
    });
  }

  it('a close frame with a one-byte payload fails with 1002', TEST, async (t) => {
    await expectFailure(t, harness(), [{ opcode: Op.CLOSE, payload: Buffer.from([0x03]) }], 1002);
  });

  it('a close reason that is invalid UTF-8 fails with 1007', TEST, async (t) => {
    await expectFailure(t, harness(), [{ opcode: Op.CLOSE, payload: closePayload(1000, Buffer.from([0x6f, 0xff])) }], 1007);
  });

  it('a text frame after the close frame is not processed', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    const marker = `after the close ${Date.now()}`;
    sendFrames(client, [
      { opcode: Op.CLOSE, payload: closePayload(1000) },
      { opcode: Op.TEXT, payload: marker },
    ]);
    const close = await client.closeFrame();
    assert.equal(close.code, 1000);
    assert.deepEqual(close.before, []);
    await client.ended();
    await assert.rejects(client.nextFrame(500), 'no frame follows the close frame');
    assert.ok(!messagesFrom(harness()).includes(marker), 'the message callback never saw the text frame');
  });
});

describe('§7 Server-initiated close', () => {
  /** A server that starts the closing handshake with 4000 'x' as soon as a client arrives. */
  async function closingServer(t: TestContext): Promise<Harness> {
    const h = await startServer(t, QUICK);
    h.server.setFnNewClient((client) => client.handler.close(4000, 'x'));
    return h;
  }

  it("close(4000, 'x') from the new-client callback sends close frame 4000 'x'; after the reply the server ends TCP", TEST, async (t) => {
    const client = await openRaw(t, (await closingServer(t)).server.port);
    const close = await client.closeFrame();
    assert.equal(close.code, 4000);
    assert.equal(close.reason, 'x');
    assert.deepEqual(close.before, []);
    client.sendFrame({ opcode: Op.CLOSE, payload: closePayload(4000) });
    await client.ended();
  });

  it('a peer that never answers the close frame is dropped after closeTimeout', TEST, async (t) => {
    const client = await openRaw(t, (await closingServer(t)).server.port);
    assert.equal((await client.closeFrame()).code, 4000);
    await client.ended(CLOSE_TIMEOUT_MS + 3000);
  });
});

// ── §10.4 Limits ───────────────────────────────────────────────────────────────────────────────────────────

describe('§10.4 Implementation-specific limits (maxMessageSize)', () => {
  const LIMIT = 1024;
  const harness = useEchoServer({ maxMessageSize: LIMIT });

  it('a frame header announcing one byte over the limit fails with 1009 without the payload being sent', TEST, async (t) => {
    await expectFailure(t, harness(), [{ opcode: Op.TEXT, declaredLength: LIMIT + 1 }], 1009);
  });

  it('a frame header announcing 2^40 bytes fails with 1009 without the payload being sent', TEST, async (t) => {
    await expectFailure(t, harness(), [{ opcode: Op.BINARY, declaredLength: 2 ** 40 }], 1009);
  });

  it('a fragmented message whose second fragment header crosses the limit fails with 1009', TEST, async (t) => {
    await expectFailure(
      t,
      harness(),
      [
        { opcode: Op.BINARY, fin: false, payload: bytesOfSize(600) },
        { opcode: Op.CONTINUATION, declaredLength: 600 },
      ],
      1009,
    );
  });

  it('a single frame of exactly the limit is echoed', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    const payload = bytesOfSize(LIMIT);
    client.sendFrame({ opcode: Op.BINARY, payload });
    assertPlainFrame(await client.nextFrame(), Op.BINARY, payload);
  });

  it('a fragmented message of exactly the limit is echoed', TEST, async (t) => {
    const client = await openRaw(t, harness().server.port);
    const payload = textOfSize(LIMIT);
    sendFrames(client, [
      { opcode: Op.TEXT, fin: false, payload: payload.subarray(0, 400) },
      { opcode: Op.CONTINUATION, fin: false, payload: payload.subarray(400, 800) },
      { opcode: Op.CONTINUATION, payload: payload.subarray(800) },
    ]);
    assertPlainFrame(await client.nextFrame(), Op.TEXT, payload);
  });
});
