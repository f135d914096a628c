// The resource limits of issue 6 that earlier suites do not reach: fragments per message, received chunks per
// frame, and connections. (Message size, head size, request line, handshake and close timeouts, buffered output
// and inflated size have their tests in conformance, api, flow and deflate.)
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { FrameParser, PolicyViolationError, WebsocketServer, type FrameParserHandler, type WebSocketError } from '../websocket-server.ts';
import { buildFrame, Op } from './support/frames.ts';
import { rawRequest, handshakeRequest } from './support/raw-client.ts';
import { openRaw, startServer } from './support/harness.ts';
import { LIMIT, until } from './support/wait.ts';

/** A parser whose events are recorded as `['text', …]`, `['error', closeCode]`. */
function recordingParser(options: ConstructorParameters<typeof FrameParser>[1]): { parser: FrameParser; events: unknown[][] } {
  const events: unknown[][] = [];
  const handler: FrameParserHandler = {
    onText: (text) => events.push(['text', text]),
    onBinary: (data) => events.push(['binary', data.length]),
    onPing: () => events.push(['ping']),
    onPong: () => events.push(['pong']),
    onClose: (code) => events.push(['close', code]),
    onProtocolError: (error: WebSocketError) => events.push(['error', error.closeCode, error.constructor.name]),
  };
  return { parser: new FrameParser(handler, options), events };
}

/** A text message of `count` fragments of one character each. */
function fragmented(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) =>
    buildFrame({ opcode: i === 0 ? Op.TEXT : Op.CONTINUATION, fin: i === count - 1, payload: 'x' }),
  );
}

describe('maxFragments (RFC 6455 §5.4, §10.4)', () => {
  test('a message in exactly maxFragments fragments is delivered', LIMIT, () => {
    const { parser, events } = recordingParser({ maxMessageSize: 1 << 20, maxFragments: 4 });
    for (const frame of fragmented(4)) parser.push(frame);
    assert.deepEqual(events, [['text', 'xxxx']]);
  });

  test('one fragment more fails with 1008 when that fragment\'s header arrives', LIMIT, () => {
    const { parser, events } = recordingParser({ maxMessageSize: 1 << 20, maxFragments: 4 });
    const frames = fragmented(5);
    for (const frame of frames.slice(0, 4)) parser.push(frame);
    assert.deepEqual(events, []);
    parser.push(frames[4]!.subarray(0, 6)); // its header (2 bytes + the 4-byte mask), none of its payload
    assert.deepEqual(events, [['error', 1008, PolicyViolationError.name]]);
  });

  test('the count starts again with every message', LIMIT, () => {
    const { parser, events } = recordingParser({ maxMessageSize: 1 << 20, maxFragments: 3 });
    for (let i = 0; i < 3; i++) for (const frame of fragmented(3)) parser.push(frame);
    assert.deepEqual(events, [['text', 'xxx'], ['text', 'xxx'], ['text', 'xxx']]);
  });

  test('over a live connection: the client gets close 1008 and the server serves the next one', LIMIT, async (t) => {
    const { server } = await startServer(t, { closeTimeout: 300, maxFragments: 4 });
    const raw = await openRaw(t, server.port);
    raw.sendRaw(Buffer.concat(fragmented(5)));
    const close = await raw.closeFrame();
    assert.equal(close.code, 1008);
    const next = await openRaw(t, server.port);
    next.sendRaw(Buffer.concat(fragmented(4)));
    assert.equal((await next.nextFrame()).payload.toString(), 'xxxx');
  });
});

describe('maxBufferedChunks (RFC 6455 §10.4)', () => {
  test('a frame in maxBufferedChunks pieces is delivered', LIMIT, () => {
    const { parser, events } = recordingParser({ maxMessageSize: 1 << 20, maxBufferedChunks: 16 });
    const frame = buildFrame({ opcode: Op.BINARY, payload: Buffer.alloc(10, 1) }); // 2 + 4 + 10 = 16 bytes
    for (let i = 0; i < frame.length; i++) parser.push(frame.subarray(i, i + 1));
    assert.deepEqual(events, [['binary', 10]]);
  });

  test('one piece more fails with 1008 before the frame completes', LIMIT, () => {
    const { parser, events } = recordingParser({ maxMessageSize: 1 << 20, maxBufferedChunks: 16 });
    const frame = buildFrame({ opcode: Op.BINARY, payload: Buffer.alloc(100, 1) });
    // The 6 header bytes are consumed as they complete; then the payload's pieces wait: 16 may, the 17th fails.
    for (let i = 0; i < 6 + 16; i++) parser.push(frame.subarray(i, i + 1));
    assert.deepEqual(events, []);
    parser.push(frame.subarray(22, 23));
    assert.deepEqual(events, [['error', 1008, PolicyViolationError.name]]);
  });

  test('pieces already consumed do not count: many small frames one byte at a time pass', LIMIT, () => {
    const { parser, events } = recordingParser({ maxMessageSize: 1 << 20, maxBufferedChunks: 16 });
    const frames = Buffer.concat(Array.from({ length: 20 }, () => buildFrame({ opcode: Op.TEXT, payload: 'ab' })));
    for (let i = 0; i < frames.length; i++) parser.push(frames.subarray(i, i + 1));
    assert.equal(events.length, 20);
    assert.deepEqual(events[19], ['text', 'ab']);
  });

  test('over a live connection: a frame trickled in tiny writes gets close 1008', LIMIT, async (t) => {
    const { server } = await startServer(t, { closeTimeout: 300, maxBufferedChunks: 16 });
    const raw = await openRaw(t, server.port);
    raw.socket.setNoDelay(true);
    const frame = buildFrame({ opcode: Op.BINARY, payload: Buffer.alloc(200, 7) });
    const closed = raw.closeFrame(8_000);
    // Bounded: at most the whole frame, one byte per write, a few ms apart so that reads stay separate.
    for (let i = 0; i < frame.length && !raw.socket.destroyed; i++) {
      raw.sendRaw(frame.subarray(i, i + 1));
      await delay(3);
      if (i > 40) break;
    }
    assert.equal((await closed).code, 1008);
  });
});

describe('maxConnections', () => {
  test('a connection over the limit is answered 503; once a client leaves, a new one is accepted', LIMIT, async (t) => {
    const { server } = await startServer(t, { closeTimeout: 300, maxConnections: 2 });
    const first = await openRaw(t, server.port);
    const second = await openRaw(t, server.port);
    const refused = await rawRequest(server.port, handshakeRequest());
    assert.equal(refused.status, 503);
    assert.equal(refused.closed, true);
    assert.equal(server.clients.length, 2);
    assert.equal(server.stats.handshakeFailures['WS_ERR_HANDSHAKE_TOO_MANY_CONNECTIONS'], 1);

    first.destroy();
    await until(() => server.clients.length === 1, 'the first client to leave');
    const third = await openRaw(t, server.port);
    assert.equal(third.handshake.status, 101);
  });

  test('option values are checked', LIMIT, () => {
    assert.throws(() => new WebsocketServer({ maxConnections: 0 }), RangeError);
    assert.throws(() => new WebsocketServer({ maxFragments: 1.5 }), RangeError);
    assert.throws(() => new WebsocketServer({ maxBufferedChunks: 8 }), RangeError);
    assert.throws(() => new WebsocketServer({ maxFragments: '4' as unknown as number }), TypeError);
  });
});
