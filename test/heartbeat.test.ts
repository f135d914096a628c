// The heartbeat (RFC 6455 §5.5.2, §5.5.3): pingInterval, pingTimeout, ClientHandler.latency, and the one
// server-wide timer. Small values keep the tests fast: pings every 50 ms, 100 ms to answer.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import WebSocket from 'ws';
import { WebsocketServer } from '../websocket-server.ts';
import { Op } from './support/frames.ts';
import { assertOptionError, connectRawClient, echo, openWs, recordingLogger, startServer } from './support/harness.ts';
import { LIMIT, SETTLE_MS, SILENT, until, within } from './support/wait.ts';
import type { TestContext } from 'node:test';

const FAST = { pingInterval: 50, pingTimeout: 100 } as const;

describe('pingInterval and pingTimeout', () => {
  test('a client that never answers pings is dropped: closeCode 1006 and client-left exactly once', LIMIT, async (t) => {
    const logger = recordingLogger();
    const recorder = await startServer(t, { ...FAST, loglevel: 'info', logger });
    const { raw } = await connectRawClient(t, recorder);
    const started = Date.now();
    const ping = await raw.nextFrame(1_000);
    assert.equal(ping.opcode, Op.PING);
    assert.equal(ping.payload.length, 4);
    // No Pong: the server drops the TCP connection, without a Close frame (nothing would answer it).
    await raw.ended(2_000);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 80, `dropped ${elapsed} ms after the ping, before pingTimeout`);
    await until(() => recorder.left.length === 1, 'client-left');
    await delay(SETTLE_MS);
    assert.equal(recorder.left.length, 1, 'client-left exactly once');
    const client = recorder.left[0]!;
    assert.equal(client.handler.closeCode, 1006);
    assert.equal(client.handler.state, 'closed');
    assert.equal(client.handler.latency, undefined);
    assert.deepEqual(recorder.server.clients, []);
    assert.ok(logger.lines.info.some((line) => /client 1 did not answer a ping within 100 ms/.test(line)));
  });

  test('a client that answers with the ping payload stays connected and gets a latency', LIMIT, async (t) => {
    const recorder = await startServer(t, FAST);
    const { raw } = await connectRawClient(t, recorder);
    for (let i = 0; i < 5; i++) {
      const ping = await raw.nextFrame(1_000);
      assert.equal(ping.opcode, Op.PING);
      raw.sendFrame({ opcode: Op.PONG, payload: ping.payload });
    }
    const handler = recorder.joined[0]!.handler;
    assert.equal(handler.state, 'open');
    assert.equal(recorder.left.length, 0);
    assert.equal(typeof handler.latency, 'number');
    assert.ok(handler.latency! >= 0 && handler.latency! < 1_000, `latency ${handler.latency}`);
  });

  test('a pong with another payload does not count as the answer: the client is dropped', LIMIT, async (t) => {
    const recorder = await startServer(t, FAST);
    const { raw } = await connectRawClient(t, recorder);
    const ping = await raw.nextFrame(1_000);
    assert.equal(ping.opcode, Op.PING);
    raw.sendFrame({ opcode: Op.PONG, payload: Buffer.from('not yours') });
    raw.sendFrame({ opcode: Op.PONG, payload: Buffer.alloc(0) });
    await raw.ended(2_000);
    await until(() => recorder.left.length === 1, 'client-left');
    assert.equal(recorder.left[0]!.handler.closeCode, 1006);
    assert.equal(recorder.left[0]!.handler.latency, undefined);
  });

  test('a ws client (which answers pings) stays connected across many intervals, and latency is a number ≥ 0', LIMIT, async (t) => {
    const recorder = await startServer(t, FAST);
    const ws = await openWs(t, `ws://127.0.0.1:${recorder.server.port}/`);
    let pings = 0;
    ws.on('ping', () => pings++);
    await until(() => pings >= 6, 'six pings at the ws client', 3_000);
    assert.equal(ws.readyState, WebSocket.OPEN);
    assert.equal(recorder.left.length, 0);
    const latency = recorder.joined[0]!.handler.latency;
    assert.equal(typeof latency, 'number');
    assert.ok(latency! >= 0, `latency ${latency}`);
    assert.equal(await echo(ws, 'alive'), 'alive');
  });

  test('pings go out about every pingInterval, not faster', LIMIT, async (t) => {
    const recorder = await startServer(t, { pingInterval: 100, pingTimeout: 1_000 });
    const ws = await openWs(t, `ws://127.0.0.1:${recorder.server.port}/`);
    const times: number[] = [];
    ws.on('ping', () => times.push(Date.now()));
    await until(() => times.length >= 4, 'four pings', 3_000);
    for (let i = 1; i < times.length; i++) {
      const gap = times[i]! - times[i - 1]!;
      assert.ok(gap >= 80, `ping ${i} came ${gap} ms after the previous one`);
    }
  });

  test('pingInterval 0 sends no ping at all', LIMIT, async (t) => {
    const recorder = await startServer(t, { pingInterval: 0, pingTimeout: 100 });
    const { raw } = await connectRawClient(t, recorder);
    await assert.rejects(raw.nextFrame(400), /Timed out/);
    assert.equal(recorder.joined[0]!.handler.state, 'open');
    assert.equal(recorder.joined[0]!.handler.latency, undefined);
  });

  test('pingTimeout 0 keeps pinging a silent client but never drops it', LIMIT, async (t) => {
    const recorder = await startServer(t, { pingInterval: 50, pingTimeout: 0 });
    const { raw } = await connectRawClient(t, recorder);
    for (let i = 0; i < 4; i++) assert.equal((await raw.nextFrame(1_000)).opcode, Op.PING);
    assert.equal(recorder.joined[0]!.handler.state, 'open');
    assert.equal(recorder.left.length, 0);
  });

  test('each of several silent clients is dropped once, and the answering one stays', LIMIT, async (t) => {
    const recorder = await startServer(t, FAST);
    const silent = [
      (await connectRawClient(t, recorder)).raw,
      (await connectRawClient(t, recorder)).raw,
      (await connectRawClient(t, recorder)).raw,
    ];
    const ws = await openWs(t, `ws://127.0.0.1:${recorder.server.port}/`);
    await Promise.all(silent.map((raw) => raw.ended(2_000)));
    await until(() => recorder.left.length === 3, 'three client-left calls');
    await delay(SETTLE_MS);
    assert.deepEqual(recorder.left.map((client) => client.id).sort(), [1, 2, 3]);
    assert.equal(recorder.server.clients.length, 1);
    assert.equal(ws.readyState, WebSocket.OPEN);
  });
});

describe('the heartbeat timer', () => {
  /** Records the intervals the library creates and clears while `body` runs. */
  async function watchIntervals(
    t: TestContext,
    body: (counts: { created: number; cleared: number }) => Promise<void>,
  ): Promise<{ created: number; cleared: number }> {
    const live = new Set<unknown>();
    const counts = { created: 0, cleared: 0 };
    const originalSet = globalThis.setInterval;
    const originalClear = globalThis.clearInterval;
    const restore = (): void => {
      globalThis.setInterval = originalSet;
      globalThis.clearInterval = originalClear;
    };
    t.after(restore);
    globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
      const timer = originalSet(...args);
      counts.created++;
      live.add(timer);
      return timer;
    }) as typeof setInterval;
    globalThis.clearInterval = ((timer: Parameters<typeof clearInterval>[0]) => {
      if (live.delete(timer)) counts.cleared++;
      originalClear(timer);
    }) as typeof clearInterval;
    try {
      await body(counts);
    } finally {
      restore();
    }
    return counts;
  }

  test('one timer serves every client, and shutting down stops it at once', LIMIT, async (t) => {
    const counts = await watchIntervals(t, async (live) => {
      const recorder = await startServer(t, FAST);
      const url = `ws://127.0.0.1:${recorder.server.port}/`;
      for (let i = 0; i < 5; i++) await openWs(t, url);
      await until(() => recorder.joined.length === 5, 'five clients');
      assert.deepEqual(live, { created: 1, cleared: 0 });
      const shutdown = recorder.server.shutdownGracefully();
      // Stopped before the clients have finished closing.
      assert.deepEqual(live, { created: 1, cleared: 1 });
      assert.equal(recorder.server.clients.length, 5);
      await within(shutdown, 'shutdownGracefully()');
    });
    assert.deepEqual(counts, { created: 1, cleared: 1 });
  });

  test('the timer stops when the last client leaves and starts again with the next one', LIMIT, async (t) => {
    const counts = await watchIntervals(t, async () => {
      const recorder = await startServer(t, FAST);
      const url = `ws://127.0.0.1:${recorder.server.port}/`;
      const first = await openWs(t, url);
      first.close();
      await until(() => recorder.left.length === 1, 'the first client to leave');
      await openWs(t, url);
      await until(() => recorder.joined.length === 2, 'the second client');
    });
    assert.deepEqual(counts, { created: 2, cleared: 1 });
  });

  test('with pingInterval 0 no timer is created', LIMIT, async (t) => {
    const counts = await watchIntervals(t, async () => {
      const recorder = await startServer(t, { pingInterval: 0 });
      await openWs(t, `ws://127.0.0.1:${recorder.server.port}/`);
      await until(() => recorder.joined.length === 1, 'new-client');
    });
    assert.deepEqual(counts, { created: 0, cleared: 0 });
  });

  test('a client that is closing is not dropped by the heartbeat: its close handshake finishes with 1000', LIMIT, async (t) => {
    const recorder = await startServer(t, { ...FAST, closeTimeout: 2_000 });
    const { raw } = await connectRawClient(t, recorder);
    recorder.joined[0]!.handler.close(1000, 'bye');
    const close = await raw.closeFrame(1_000);
    assert.equal(close.code, 1000);
    await delay(300); // several pingTimeouts, without answering anything
    raw.sendFrame({ opcode: Op.CLOSE, payload: Buffer.from([0x03, 0xe8]) });
    await raw.ended(1_000);
    raw.socket.end();
    await until(() => recorder.left.length === 1, 'client-left');
    assert.equal(recorder.left[0]!.handler.closeCode, 1000);
  });
});

describe('heartbeat options', () => {
  const bad: Array<[Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp]> = [
    [{ pingInterval: '20s' }, TypeError, /pingInterval/],
    [{ pingInterval: -1 }, RangeError, /pingInterval/],
    [{ pingInterval: 1.5 }, RangeError, /pingInterval/],
    [{ pingTimeout: null }, TypeError, /pingTimeout/],
    [{ pingTimeout: -1 }, RangeError, /pingTimeout/],
    [{ pingTimeout: Number.NaN }, RangeError, /pingTimeout/],
  ];
  for (const [options, ErrorClass, names] of bad) {
    const [[name, value]] = Object.entries(options) as [[string, unknown]];
    test(`${name}: ${typeof value === 'string' ? `'${value}'` : String(value)} throws a ${ErrorClass.name}`, LIMIT, () =>
      assertOptionError(options, ErrorClass, names));
  }

  test('0 is accepted for both', LIMIT, () => {
    assert.doesNotThrow(() => new WebsocketServer({ logger: SILENT, pingInterval: 0, pingTimeout: 0 }));
  });

  test('by default (pingInterval 20 s) a connected ws client is not pinged within 300 ms', LIMIT, async (t) => {
    const recorder = await startServer(t);
    const ws = await openWs(t, `ws://127.0.0.1:${recorder.server.port}/`);
    let pinged = false;
    ws.on('ping', () => (pinged = true));
    await delay(300);
    assert.equal(pinged, false);
    ws.close();
    await within(once(ws, 'close'), 'the close');
  });
});
