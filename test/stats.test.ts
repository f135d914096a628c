// server.stats: traffic and connection counters. Byte counts are checked exactly against the frames the raw
// client sends and receives (frames as on the wire, after the handshake).
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, test } from 'node:test';
import type { ServerStats } from '../websocket-server.ts';
import { buildFrame, closePayload, Op } from './support/frames.ts';
import type { ClientFrame } from './support/frames.ts';
import { compress, RSV1 } from './support/deflate.ts';
import { assertPlainFrame, connectRawClient, connectWs, readFrames, startServer } from './support/harness.ts';
import { handshakeRequest, rawRequest } from './support/raw-client.ts';
import type { RawClient } from './support/raw-client.ts';
import { LIMIT, until, within } from './support/wait.ts';

/** Sends frames one write each and returns how many bytes went on the wire. */
function sendCounted(raw: RawClient, frames: ClientFrame[]): number {
  let bytes = 0;
  for (const frame of frames) {
    const encoded = buildFrame(frame);
    bytes += encoded.length;
    raw.sendRaw(encoded);
  }
  return bytes;
}

/** A clean close from the raw client's side (§7.1.1): Close, the server's Close and FIN, then our FIN. */
async function closeCleanly(raw: RawClient, code: number): Promise<void> {
  raw.sendFrame({ opcode: Op.CLOSE, payload: closePayload(code) });
  assert.equal((await raw.closeFrame()).code, code);
  await raw.ended();
  raw.socket.end();
}

describe('server.stats', () => {
  test('a new server reports every counter at zero and no failures or close codes', LIMIT, async (t) => {
    const h = await startServer(t);
    const expected: ServerStats = {
      connectionsOpen: 0,
      connectionsTotal: 0,
      messagesIn: 0,
      messagesOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      messagesDropped: 0,
      handshakeFailures: {},
      closeCodes: {},
      broadcastsPublished: 0,
      broadcastsReceived: 0,
    };
    assert.deepEqual(h.server.stats, expected);
  });

  test('connectionsOpen follows clients joining and leaving; connectionsTotal only grows', LIMIT, async (t) => {
    const h = await startServer(t);
    const a = await connectRawClient(t, h);
    await connectWs(t, h);
    assert.equal(h.server.stats.connectionsOpen, 2);
    assert.equal(h.server.stats.connectionsTotal, 2);
    await closeCleanly(a.raw, 1000);
    await until(() => h.left.length === 1, 'client-left');
    assert.equal(h.server.stats.connectionsOpen, 1);
    assert.equal(h.server.stats.connectionsTotal, 2);
    await connectRawClient(t, h);
    assert.equal(h.server.stats.connectionsOpen, 2);
    assert.equal(h.server.stats.connectionsTotal, 3);
  });

  test('messagesIn, messagesOut, bytesIn and bytesOut count messages and wire bytes exactly', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw } = await connectRawClient(t, h);
    const binary = Buffer.alloc(200, 7);
    const bytesSent = sendCounted(raw, [
      { opcode: Op.TEXT, payload: 'hello' }, // 2 + 4 + 5
      { opcode: Op.BINARY, payload: binary }, // 4 + 4 + 200
      { opcode: Op.TEXT, fin: false, payload: 'ab' }, // 2 + 4 + 2
      { opcode: Op.PING, payload: 'ping' }, // 2 + 4 + 4: a control frame counts in bytesIn, not in messagesIn
      { opcode: Op.CONTINUATION, payload: 'cd' }, // 2 + 4 + 2
    ]);
    assert.equal(bytesSent, 11 + 208 + 8 + 10 + 8);
    const [hello, bytes, pong, abcd] = await readFrames(raw, 4);
    assertPlainFrame(hello!, Op.TEXT, 'hello');
    assertPlainFrame(bytes!, Op.BINARY, binary);
    assertPlainFrame(pong!, Op.PONG, 'ping');
    assertPlainFrame(abcd!, Op.TEXT, 'abcd');
    const stats = h.server.stats;
    assert.equal(stats.messagesIn, 3);
    assert.equal(stats.messagesOut, 3);
    assert.equal(stats.bytesIn, bytesSent);
    assert.equal(stats.bytesOut, (2 + 5) + (4 + 200) + (2 + 4), 'data frames as on the wire; the pong is not data');
  });

  test('with permessage-deflate, bytesIn and bytesOut count the compressed bytes on the wire', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const { raw } = await connectRawClient(t, h, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    const message = Buffer.alloc(100_000);
    const bytesSent = sendCounted(raw, [{ opcode: Op.BINARY, rsv: RSV1, payload: compress(message) }]);
    const echo = await raw.nextFrame();
    assert.equal(echo.rsv, RSV1);
    const stats = h.server.stats;
    assert.equal(stats.bytesIn, bytesSent);
    assert.equal(stats.bytesOut, echo.payload.length + (echo.payload.length < 126 ? 2 : 4));
    assert.ok(stats.bytesOut < 1_000, `${stats.bytesOut} bytes out for 100,000 zeros`);
    assert.equal(stats.messagesIn, 1);
    assert.equal(stats.messagesOut, 1);
  });

  test('a broadcast counts one message out per client; a closing client counts as dropped', LIMIT, async (t) => {
    const h = await startServer(t);
    const clients = [await connectRawClient(t, h), await connectRawClient(t, h), await connectRawClient(t, h)];
    clients[2]!.client.handler.close(1000);
    assert.equal(h.server.sendMessageToAll('xyz'), 2);
    for (const { raw } of clients.slice(0, 2)) assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'xyz');
    const stats = h.server.stats;
    assert.equal(stats.messagesOut, 2);
    assert.equal(stats.bytesOut, 2 * (2 + 3));
    assert.equal(stats.messagesDropped, 1);
  });

  test('messagesDropped counts messages sent to a client that has left', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    raw.destroy();
    await until(() => h.left.includes(client), 'client-left');
    assert.equal(h.server.sendMessage(client, 'lost'), 'dropped');
    assert.equal(client.handler.send(Buffer.from('lost too')), 'dropped');
    assert.equal(h.server.stats.messagesDropped, 2);
    assert.equal(h.server.stats.messagesOut, 0);
  });

  test('handshakeFailures counts refused handshakes by HandshakeError code', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    h.server.setFnAuthenticate((request) => request.path !== '/forbidden');
    const refusals: Array<[Record<string, string>, string | undefined, number]> = [
      [{ 'Sec-WebSocket-Version': '8' }, undefined, 426],
      [{ 'Sec-WebSocket-Version': '12' }, undefined, 426],
      [{ 'Sec-WebSocket-Key': 'short' }, undefined, 400],
      [{ 'Sec-WebSocket-Extensions': 'permessage-deflate;' }, undefined, 400],
      [{}, '/forbidden', 403],
    ];
    for (const [headers, path, status] of refusals) {
      const request = path === undefined ? handshakeRequest({ headers }) : handshakeRequest({ headers, path });
      const reply = await within(rawRequest(h.server.port, request), 'a refused handshake');
      assert.equal(reply.status, status);
    }
    const stats = h.server.stats;
    assert.deepEqual(stats.handshakeFailures, {
      WS_ERR_HANDSHAKE_UNSUPPORTED_VERSION: 2,
      WS_ERR_HANDSHAKE_INVALID_KEY: 1,
      WS_ERR_HANDSHAKE_INVALID_EXTENSIONS: 1,
      WS_ERR_HANDSHAKE_FORBIDDEN: 1,
    });
    assert.equal(stats.connectionsTotal, 0, 'a refused handshake is not a connection');
    assert.deepEqual(stats.closeCodes, {});
  });

  test('closeCodes counts the clients that left by close code, 1006 for no Close frame', LIMIT, async (t) => {
    const h = await startServer(t);
    const normal = await connectRawClient(t, h);
    const custom = await connectWs(t, h);
    const vanished = await connectRawClient(t, h);
    const broken = await connectRawClient(t, h);
    const alsoNormal = await connectRawClient(t, h);

    await closeCleanly(normal.raw, 1000);
    custom.ws.close(4001, 'bye');
    vanished.raw.destroy();
    broken.raw.sendFrame({ opcode: Op.TEXT, payload: 'unmasked', masked: false });
    assert.equal((await broken.raw.closeFrame()).code, 1002);
    await broken.raw.ended();
    broken.raw.socket.end();
    await closeCleanly(alsoNormal.raw, 1000);

    await until(() => h.left.length === 5, 'all five clients to leave');
    const stats = h.server.stats;
    assert.deepEqual(stats.closeCodes, { '1000': 2, '4001': 1, '1006': 1, '1002': 1 });
    assert.equal(stats.connectionsOpen, 0);
    assert.equal(stats.connectionsTotal, 5);
  });

  test('each read is a fresh snapshot: changing one affects neither the server nor later reads', LIMIT, async (t) => {
    const h = await startServer(t);
    const first = h.server.stats;
    const second = h.server.stats;
    assert.notEqual(first, second);
    assert.notEqual(first.handshakeFailures, second.handshakeFailures);
    assert.notEqual(first.closeCodes, second.closeCodes);
    const writable = first as { -readonly [K in keyof ServerStats]: ServerStats[K] };
    writable.messagesIn = 99;
    (writable.closeCodes as Record<string, number>)['1000'] = 5;
    (writable.handshakeFailures as Record<string, number>)['WS_ERR_X'] = 5;
    assert.equal(h.server.stats.messagesIn, 0);
    assert.deepEqual(h.server.stats.closeCodes, {});
    assert.deepEqual(h.server.stats.handshakeFailures, {});

    // A snapshot does not move with later traffic.
    const before = h.server.stats;
    const { raw } = await connectRawClient(t, h);
    raw.sendFrame({ opcode: Op.TEXT, payload: 'hi' });
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'hi');
    assert.equal(before.messagesIn, 0);
    assert.equal(before.connectionsOpen, 0);
    assert.equal(h.server.stats.messagesIn, 1);
  });
});
