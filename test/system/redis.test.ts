// The Redis adapter end to end: servers in separate processes (test/support/redis-node.ts), joined through a
// redis-server of the test's own (test/support/redis-server.ts), with independent `ws` clients on each. What
// crosses, to whom, in what order; a Redis crash and restart; a server started while Redis is down; and nothing
// left behind when the servers shut down. redis-server must be installed (.ci/run does it): without it these
// tests fail, they never skip.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type WebSocket from 'ws';
import { RedisAdapter } from '../../adapters/redis.ts';
import { runScript, type RunningScript } from '../support/demo.ts';
import { startRedis, type TestRedis } from '../support/redis-server.ts';
import { freePort, openWs } from '../support/harness.ts';
import { LIMIT, until, within } from '../support/wait.ts';

const NODE_SCRIPT = fileURLToPath(new URL('../support/redis-node.js', import.meta.url));
/** The prefix of the fixture's commands and of its replies (see test/support/redis-node.ts). */
const CONTROL = 'ctl:';
/** Tries before giving up on a broadcast crossing after Redis is back (each waits 100 ms for it). */
const PROBE_ATTEMPTS = 50;

/** Starts a fixture server joined through `redis`; it is SIGKILLed when the test ends if it still runs. */
function startNode(
  t: TestContext,
  redis: TestRedis,
  serverId: string,
  startTimeout?: number,
  env?: Record<string, string>,
): Promise<RunningScript> {
  const args = [redis.url, serverId, ...(startTimeout === undefined ? [] : [String(startTimeout)])];
  return runScript(t, NODE_SCRIPT, args, undefined, env);
}

/** A data message as a client received it. */
interface Received {
  readonly data: Buffer;
  readonly binary: boolean;
}

/** A `ws` client of a fixture server: what it received, and the fixture's replies to its commands. */
class Peer {
  readonly received: Received[] = [];
  readonly #replies: unknown[] = [];
  readonly closed: Promise<[number, Buffer]>;
  readonly ws: WebSocket;
  readonly name: string;

  constructor(ws: WebSocket, name: string) {
    this.ws = ws;
    this.name = name;
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (!binary && data.toString('utf8', 0, CONTROL.length) === CONTROL) {
        this.#replies.push(JSON.parse(data.toString('utf8', CONTROL.length)));
      } else {
        this.received.push({ data, binary });
      }
    });
    this.closed = once(ws, 'close') as Promise<[number, Buffer]>;
  }

  /** The text messages received, in order. */
  texts(prefix = ''): string[] {
    return this.received
      .filter((m) => !m.binary)
      .map((m) => m.data.toString('utf8'))
      .filter((text) => text.startsWith(prefix));
  }

  /** Waits (bounded) until `count` data messages have arrived. */
  async receive(count: number): Promise<void> {
    await until(() => this.received.length >= count, `${this.name} to receive ${count} message(s)`);
  }

  /** Waits (bounded) until `count` texts starting with `prefix` have arrived, and returns them. */
  async receiveTexts(prefix: string, count: number): Promise<string[]> {
    const waitingFor = `${this.name} to receive ${count} "${prefix}…" texts`;
    await until(() => this.texts(prefix).length >= count, waitingFor);
    return this.texts(prefix);
  }

  /** Sends a command to the fixture and resolves with its reply to this client. */
  async ask<T>(command: string): Promise<T> {
    const before = this.#replies.length;
    this.ws.send(CONTROL + command);
    await until(() => this.#replies.length > before, `the reply to ${CONTROL}${command} on ${this.name}`);
    return this.#replies[before] as T;
  }
}

/** A Redis of the test's own and two fixture servers, A and B, joined through it. */
async function startPair(t: TestContext): Promise<{ redis: TestRedis; a: RunningScript; b: RunningScript }> {
  const redis = await startRedis(t);
  const [a, b] = await Promise.all([startNode(t, redis, 'A'), startNode(t, redis, 'B')]);
  return { redis, a, b };
}

async function connect(t: TestContext, node: RunningScript, name: string): Promise<Peer> {
  return new Peer(await openWs(t, `ws://127.0.0.1:${node.port}/`), name);
}

/** Clients a1 and a2 on server A, b1 and b2 on server B. */
function connectTwoEach(t: TestContext, a: RunningScript, b: RunningScript): Promise<[Peer, Peer, Peer, Peer]> {
  return Promise.all([connect(t, a, 'a1'), connect(t, a, 'a2'), connect(t, b, 'b1'), connect(t, b, 'b2')]);
}

interface Stats {
  server: { broadcastsPublished: number; broadcastsReceived: number };
  adapter: { published: number; received: number; dropped: number; reachable: boolean };
}

/** `["L:0", …, "L:<count-1>"]`. */
function numbered(label: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${label}:${i}`);
}

/** SIGTERM, then the process must exit by itself, with 0. */
async function stopCleanly(node: RunningScript, name: string): Promise<void> {
  let code: number | null;
  try {
    code = await node.stop('SIGTERM');
  } catch {
    throw new Error(
      `${name} did not exit by itself after SIGTERM: something keeps it alive (a leaked handle).\n${node.output()}`,
    );
  }
  assert.equal(code, 0, `${name} exited with ${code} after SIGTERM:\n${node.output()}`);
  assert.match(node.output(), /: shut down\n/, `${name} completed shutdownGracefully()`);
}

/** What `CLIENT LIST` shows while A and B run: two connections each (publisher and subscriber), no other. */
const TWO_EACH = { 'redis-node:A': 2, 'redis-node:B': 2 };

/** The fixture servers' connections to Redis, counted by connection name (`redis-node:<server id>`). */
async function connectionsByServer(redis: TestRedis): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const client of await redis.clients()) {
    const name = client['name'] || `unnamed ${client['addr']}`;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

/** Waits (bounded) until `output()` matches `pattern`. */
async function logged(node: RunningScript, name: string, pattern: RegExp): Promise<void> {
  await until(() => pattern.test(node.output()), `${name} to log ${pattern}:\n${node.output()}`);
}

/** Sends numbered probes from `from` until one reaches `to` (bounded): broadcasts cross again. */
async function probeUntilCrossed(from: Peer, to: Peer, label: string): Promise<void> {
  for (let attempt = 0; attempt < PROBE_ATTEMPTS; attempt++) {
    from.ws.send(`${label}:${attempt}`);
    try {
      await until(() => to.texts(`${label}:`).length > 0, 'a probe', 100);
      return;
    } catch {
      // not yet: Redis or a subscription is still coming back
    }
  }
  throw new Error(`No probe of ${from.name} reached ${to.name} in ${PROBE_ATTEMPTS} tries: they never cross again.`);
}

/** What each received message is, by comparison with the payloads sent: `text` and `binary` kept apart. */
function describeAll(peer: Peer, payloads: Record<string, string | Buffer>): string[] {
  return peer.received.map((m) => {
    for (const [name, payload] of Object.entries(payloads)) {
      const same = typeof payload === 'string'
        ? !m.binary && m.data.toString('utf8') === payload
        : m.binary && m.data.equals(payload);
      if (same) return name;
    }
    if (m.binary) return `unknown binary of ${m.data.length} bytes`;
    return `unknown text ${JSON.stringify(m.data.toString('utf8').slice(0, 80))}`;
  });
}

test('text and binary broadcasts cross byte-exact, to all clients of both servers but the sender', LIMIT, async (t) => {
  const { a, b } = await startPair(t);
  const [a1, a2, b1, b2] = await connectTwoEach(t, a, b);
  const payloads = {
    text: 'multi-byte UTF-8: é (2 bytes), € and 語 (3), 🎉 (4); and a NUL \u0000 too',
    mebibyte: randomBytes(1024 * 1024),
    notUtf8: Buffer.from([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80]),
    end: 'end:0',
  };

  // Each step waits for the previous one to arrive everywhere: only one publisher's order is guaranteed.
  a1.ws.send(payloads.text);
  await Promise.all([a2.receive(1), b1.receive(1), b2.receive(1)]);
  b2.ws.send(payloads.mebibyte);
  await Promise.all([a1.receive(1), a2.receive(2), b1.receive(2)]);
  a2.ws.send(payloads.notUtf8);
  await Promise.all([a1.receive(2), b1.receive(3), b2.receive(2)]);
  // A last broadcast from B, which everyone gets: a copy for a sender would have come before it.
  b1.ws.send(`${CONTROL}burst 1 end`);
  await Promise.all([a1.receive(3), a2.receive(3), b1.receive(4), b2.receive(3)]);

  assert.deepEqual(describeAll(a1, payloads), ['mebibyte', 'notUtf8', 'end']);
  assert.deepEqual(describeAll(a2, payloads), ['text', 'mebibyte', 'end']);
  assert.deepEqual(describeAll(b1, payloads), ['text', 'mebibyte', 'notUtf8', 'end']);
  assert.deepEqual(describeAll(b2, payloads), ['text', 'notUtf8', 'end']);

  const [statsA, statsB] = await Promise.all([a1.ask<Stats>('stats'), b1.ask<Stats>('stats')]);
  assert.deepEqual(statsA.adapter, { published: 2, received: 2, dropped: 0, reachable: true });
  assert.deepEqual(statsB.adapter, { published: 2, received: 2, dropped: 0, reachable: true });
  assert.equal(statsA.server.broadcastsPublished, 2);
  assert.equal(statsA.server.broadcastsReceived, 2);
});

test('a client of the other server with the same id as the excluded sender still gets it', LIMIT, async (t) => {
  const { a, b } = await startPair(t);
  const a1 = await connect(t, a, 'a1');
  const b1 = await connect(t, b, 'b1');
  const [idA, idB] = await Promise.all([a1.ask<{ id: number }>('whoami'), b1.ask<{ id: number }>('whoami')]);
  assert.equal(idA.id, idB.id, 'the two clients have the same id, each on its own server');

  a1.ws.send('to everyone but a1');
  assert.deepEqual(await b1.receiveTexts('', 1), ['to everyone but a1']);
  b1.ws.send('to everyone but b1');
  assert.deepEqual(await a1.receiveTexts('', 1), ['to everyone but b1'], 'a1 got b1\'s message first: not its own');
  // A copy for b1 would have been written before B published, so before this one from A.
  a1.ws.send('fence');
  assert.deepEqual(await b1.receiveTexts('', 2), ['to everyone but a1', 'fence'], 'b1 did not get its own message');
});

test('1,000 broadcasts arrive in order, and in order per server when both publish at once', LIMIT, async (t) => {
  const { a, b } = await startPair(t);
  const [a1, b1] = await Promise.all([connect(t, a, 'a1'), connect(t, b, 'b1')]);

  a1.ws.send(`${CONTROL}burst 1000 one`);
  assert.deepEqual(await b1.receiveTexts('one:', 1000), numbered('one', 1000));
  assert.deepEqual(await a1.receiveTexts('one:', 1000), numbered('one', 1000), 'at the publisher\'s client too');

  a1.ws.send(`${CONTROL}burst 1000 fromA`);
  b1.ws.send(`${CONTROL}burst 1000 fromB`);
  for (const peer of [a1, b1]) {
    assert.deepEqual(await peer.receiveTexts('fromA:', 1000), numbered('fromA', 1000), `A's at ${peer.name}`);
    assert.deepEqual(await peer.receiveTexts('fromB:', 1000), numbered('fromB', 1000), `B's at ${peer.name}`);
  }

  const [statsA, statsB] = await Promise.all([a1.ask<Stats>('stats'), b1.ask<Stats>('stats')]);
  assert.equal(a1.received.length, 3000, 'a1 got nothing twice');
  assert.equal(b1.received.length, 3000, 'b1 got nothing twice');
  assert.deepEqual(statsA.adapter, { published: 2000, received: 1000, dropped: 0, reachable: true });
  assert.deepEqual(statsB.adapter, { published: 1000, received: 2000, dropped: 0, reachable: true });
  assert.deepEqual([statsA.server.broadcastsPublished, statsA.server.broadcastsReceived], [2000, 1000]);
  assert.deepEqual([statsB.server.broadcastsPublished, statsB.server.broadcastsReceived], [1000, 2000]);
});

test('a server holds two connections to Redis; after SIGTERM it exits by itself and holds none', LIMIT, async (t) => {
  const { redis, a, b } = await startPair(t);
  const [a1, b1] = await Promise.all([connect(t, a, 'a1'), connect(t, b, 'b1')]);
  a1.ws.send('hello');
  await b1.receive(1);

  assert.deepEqual(await connectionsByServer(redis), TWO_EACH);

  await Promise.all([stopCleanly(a, 'server A'), stopCleanly(b, 'server B')]);
  const [[codeA], [codeB]] = await within(Promise.all([a1.closed, b1.closed]), 'the clients to be closed');
  assert.deepEqual([codeA, codeB], [1001, 1001], 'the clients were closed with 1001 (Going Away)');
  let left = await connectionsByServer(redis);
  // The processes are gone, so are their sockets; Redis may take a moment to notice.
  for (let attempt = 0; attempt < 100 && Object.keys(left).length > 0; attempt++) {
    await delay(10);
    left = await connectionsByServer(redis);
  }
  assert.deepEqual(left, {}, 'no connection to Redis is left');
});

test('a Redis crash is survived: local broadcasts go on, one warning, then they cross again', LIMIT, async (t) => {
  const { redis, a, b } = await startPair(t);
  const [a1, a2, b1, b2] = await connectTwoEach(t, a, b);
  a1.ws.send('before');
  await Promise.all([b1.receiveTexts('before', 1), b2.receiveTexts('before', 1)]);

  await redis.crash();
  const unreachable = /Redis at .* is unreachable.*reconnecting/;
  await Promise.all([logged(a, 'server A', unreachable), logged(b, 'server B', unreachable)]);
  a1.ws.send('during:A');
  b1.ws.send('during:B');
  assert.deepEqual(await a2.receiveTexts('during:', 1), ['during:A'], 'a local broadcast reaches the local clients');
  assert.deepEqual(await b2.receiveTexts('during:', 1), ['during:B'], 'a local broadcast reaches the local clients');
  const statsA = await a1.ask<Stats>('stats');
  assert.equal(statsA.adapter.reachable, false);
  assert.ok(statsA.adapter.dropped >= 1, `A counted its dropped broadcast (${statsA.adapter.dropped})`);

  await redis.restart();
  await probeUntilCrossed(a1, b1, 'probeA');
  await probeUntilCrossed(b1, a1, 'probeB');
  a1.ws.send(`${CONTROL}burst 200 afterA`);
  b1.ws.send(`${CONTROL}burst 200 afterB`);
  for (const peer of [a2, b2]) {
    assert.deepEqual(await peer.receiveTexts('afterA:', 200), numbered('afterA', 200), `A's at ${peer.name}`);
    assert.deepEqual(await peer.receiveTexts('afterB:', 200), numbered('afterB', 200), `B's at ${peer.name}`);
  }
  // Dropped, not queued: had they been queued, they would have crossed before the probes.
  assert.deepEqual(b2.texts('during:'), ['during:B'], 'A\'s broadcast of the outage never reached B');
  assert.deepEqual(a2.texts('during:'), ['during:A'], 'B\'s broadcast of the outage never reached A');

  for (const [node, name] of [[a, 'server A'], [b, 'server B']] as const) {
    await logged(node, name, /is reachable again; \d+ broadcast\(s\) were not shared meanwhile/);
    assert.equal(node.output().match(/is unreachable/g)?.length, 1, `${name} warned once:\n${node.output()}`);
    assert.equal(node.output().match(/is reachable again/g)?.length, 1, `${name} said once that Redis was back`);
  }
  const notShared = Number(/reachable again; (\d+) broadcast/.exec(a.output())![1]);
  assert.ok(notShared >= 1, `A reports the broadcast it could not share (${notShared})`);
  assert.deepEqual(await connectionsByServer(redis), TWO_EACH, 'each connection came back once, not twice');

  await Promise.all([stopCleanly(a, 'server A'), stopCleanly(b, 'server B')]);
});

test('a server started while Redis is down serves its clients, and joins once Redis is up', LIMIT, async (t) => {
  const redis = await startRedis(t);
  await redis.crash();
  const a = await startNode(t, redis, 'A', 500);
  assert.match(a.output(), /not reached within 500 ms: starting anyway/);
  const [a1, a2] = await Promise.all([connect(t, a, 'a1'), connect(t, a, 'a2')]);
  a1.ws.send('alone');
  assert.deepEqual(await a2.receiveTexts('', 1), ['alone']);
  assert.equal((await a1.ask<Stats>('stats')).adapter.reachable, false);

  await redis.restart();
  const b = await startNode(t, redis, 'B');
  const b1 = await connect(t, b, 'b1');
  await probeUntilCrossed(a1, b1, 'probeA');
  await probeUntilCrossed(b1, a1, 'probeB');
  a1.ws.send(`${CONTROL}burst 100 fromA`);
  assert.deepEqual(await b1.receiveTexts('fromA:', 100), numbered('fromA', 100));
  assert.deepEqual(await connectionsByServer(redis), TWO_EACH);
  await logged(a, 'server A', /is reachable again/);

  await Promise.all([stopCleanly(a, 'server A'), stopCleanly(b, 'server B')]);
});

test('a server shut down while Redis is unreachable still exits by itself', LIMIT, async (t) => {
  const redis = await startRedis(t);
  const a = await startNode(t, redis, 'A');
  const a1 = await connect(t, a, 'a1');
  await redis.crash();
  await logged(a, 'server A', /is unreachable/);
  a1.ws.send(`${CONTROL}burst 1 lost`);
  assert.deepEqual(await a1.receiveTexts('lost:', 1), ['lost:0']);
  await stopCleanly(a, 'server A');
});

test('a server whose Redis was never reached shuts down cleanly, without an error line after', LIMIT, async (t) => {
  const redis = await startRedis(t);
  await redis.crash();
  const a = await startNode(t, redis, 'A', 300);
  assert.match(a.output(), /not reached within 300 ms: starting anyway/);
  await stopCleanly(a, 'server A');
  // The client's pending connection fails once closed; that is not an error of a server that has shut down.
  assert.doesNotMatch(a.output(), /ERROR|could not subscribe/);
});

test('a stalled Redis costs bounded memory: past maxPendingBytes broadcasts stay local, then sharing resumes', LIMIT, async (t) => {
  const redis = await startRedis(t);
  const limit = { MAX_PENDING_BYTES: String(256 * 1024) };
  const [a, b] = await Promise.all([startNode(t, redis, 'A', undefined, limit), startNode(t, redis, 'B', undefined, limit)]);
  const [a1, b1] = await Promise.all([connect(t, a, 'a1'), connect(t, b, 'b1')]);
  await probeUntilCrossed(a1, b1, 'ready');

  // Stopped, Redis keeps its connections but answers nothing: A's unacknowledged publishes pile up to the limit.
  redis.pause();
  const count = 40;
  const size = 64 * 1024;
  assert.deepEqual(await a1.ask('spread 40 65536'), { spread: count });
  const binaries = (peer: Peer): Buffer[] => peer.received.filter((m) => m.binary).map((m) => m.data);
  await until(() => binaries(a1).length === count, 'every broadcast at the local client');
  assert.deepEqual(binaries(a1).map((data) => data.readUInt32BE(0)), Array.from({ length: count }, (_, i) => i));
  await logged(a, 'server A', /holds \d+ bytes not yet sent: dropping broadcasts/);
  const stalled = await a1.ask<Stats>('stats');
  assert.ok(stalled.adapter.dropped > 0 && stalled.adapter.dropped < count, `some were dropped: ${JSON.stringify(stalled.adapter)}`);
  // At most the limit (plus the one batch that may pass it) was held for Redis: the rest was never queued.
  assert.ok((count - stalled.adapter.dropped) * size <= 256 * 1024 + size, `held ${count - stalled.adapter.dropped} broadcasts`);

  redis.resume();
  await logged(a, 'server A', /has drained; \d+ broadcast\(s\) were dropped meanwhile/);
  const dropped = Number(/has drained; (\d+) broadcast/.exec(a.output())![1]);
  assert.equal(dropped, stalled.adapter.dropped);
  // What was held reaches B once Redis goes on, in order; what was dropped never does.
  await until(() => binaries(b1).length === count - dropped, `B's client to get the ${count - dropped} shared broadcasts`);
  const indexes = binaries(b1).map((data) => data.readUInt32BE(0));
  assert.deepEqual(indexes, [...indexes].sort((x, y) => x - y));
  await probeUntilCrossed(a1, b1, 'after');
  await Promise.all([stopCleanly(a, 'server A'), stopCleanly(b, 'server B')]);
});

describe('topics through Redis', () => {
  /** Polls an asynchronous condition every 25 ms until it holds (bounded by `ms`). */
  async function eventually(condition: () => Promise<boolean>, what: string, ms = 5_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}.`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** The servers subscribed to a topic's channel, as Redis counts them (`PUBSUB NUMSUB`). */
  async function channelSubscribers(redis: TestRedis, topic: string): Promise<number> {
    const reply = await redis.command('PUBSUB', 'NUMSUB', `websocket-server:broadcast:topic:${topic}`);
    return Number(reply.trim().split('\n').at(-1));
  }

  test("a publish on one server reaches the room's clients on another; a server without subscribers is sent nothing for it", LIMIT, async (t) => {
    const redis = await startRedis(t);
    const [a, b, c] = await Promise.all([startNode(t, redis, 'A'), startNode(t, redis, 'B'), startNode(t, redis, 'C')]);
    const [onA, onB, onC] = await Promise.all([connect(t, a, 'a1'), connect(t, b, 'b1'), connect(t, c, 'c1')]);
    assert.deepEqual(await onB.ask('join room-1'), { joined: 'room-1' });
    await eventually(async () => (await channelSubscribers(redis, 'room-1')) === 1, 'B subscribed to room-1 in Redis');
    // The subscription is confirmed by Redis before the publish goes out: nothing is lost to the race.
    for (let i = 0; i < 20; i++) onA.ws.send(`ctl:publish room-1 line ${i}`);
    await onB.receive(20);
    assert.deepEqual(onB.texts(), numbered('line', 20).map((label) => label.replace(':', ' ')));
    // C has no subscriber to room-1: Redis sends it nothing of the topic; a plain broadcast still reaches it.
    onA.ws.send('to everyone');
    await onC.receive(1);
    await onB.receive(21);
    assert.deepEqual(onC.texts(), ['to everyone']);
    assert.deepEqual(onA.texts(), [], 'the publisher is excluded, and is in no room');
    const statsC = await onC.ask<Stats>('stats');
    assert.equal(statsC.adapter.received, 1, 'C received only the plain broadcast from Redis');
    const statsB = await onB.ask<Stats>('stats');
    assert.equal(statsB.adapter.received, 21);
    assert.equal(await channelSubscribers(redis, 'room-1'), 1);
  });

  test("when a server's last subscriber leaves the room, it unsubscribes and receives no more of it", LIMIT, async (t) => {
    const { redis, a, b } = await startPair(t);
    const [onA, b1, b2] = await Promise.all([connect(t, a, 'a1'), connect(t, b, 'b1'), connect(t, b, 'b2')]);
    await b1.ask('join room');
    await b2.ask('join room');
    await eventually(async () => (await channelSubscribers(redis, 'room')) === 1, 'B subscribed once');
    onA.ws.send('ctl:publish room one');
    await b1.receive(1);
    await b2.receive(1);
    await b1.ask('leave room');
    assert.equal(await channelSubscribers(redis, 'room'), 1, 'b2 is still in the room');
    await b2.ask('leave room');
    await eventually(async () => (await channelSubscribers(redis, 'room')) === 0, 'B unsubscribed from the room in Redis');
    const before = (await b1.ask<Stats>('stats')).adapter.received;
    onA.ws.send('ctl:publish room two');
    onA.ws.send('after');
    await b1.receive(2);
    assert.deepEqual(b1.texts(), ['one', 'after']);
    assert.equal((await b1.ask<Stats>('stats')).adapter.received, before + 1, 'Redis did not send B the second publish');
  });

  test('a room left while Redis was down is not subscribed to again once it is back', LIMIT, async (t) => {
    const { redis, a, b } = await startPair(t);
    const [onA, onB] = await Promise.all([connect(t, a, 'a1'), connect(t, b, 'b1')]);
    await onB.ask('join room');
    await eventually(async () => (await channelSubscribers(redis, 'room')) === 1, 'B subscribed');
    await redis.crash();
    await onB.ask('leave room');
    await redis.restart();
    await probeUntilCrossed(onA, onB, 'back'); // both servers are connected again
    await eventually(async () => (await channelSubscribers(redis, 'room')) === 0, 'nobody subscribed to the room');
    const before = (await onB.ask<Stats>('stats')).adapter.received;
    onA.ws.send('ctl:publish room nobody');
    onA.ws.send('after');
    await until(() => onB.texts('after').length > 0, 'the plain broadcast at B');
    assert.equal((await onB.ask<Stats>('stats')).adapter.received, before + 1, 'Redis sent B only the plain broadcast');
  });

  test('a room survives a Redis restart: the server subscribes to it again and publishes cross again', LIMIT, async (t) => {
    const { redis, a, b } = await startPair(t);
    const [onA, onB] = await Promise.all([connect(t, a, 'a1'), connect(t, b, 'b1')]);
    await onB.ask('join room');
    await eventually(async () => (await channelSubscribers(redis, 'room')) === 1, 'B subscribed');
    await redis.crash();
    await redis.restart();
    await eventually(async () => (await channelSubscribers(redis, 'room')) === 1, 'B subscribed again after the restart', 10_000);
    for (let attempt = 0; attempt < PROBE_ATTEMPTS && onB.texts('probe').length === 0; attempt++) {
      onA.ws.send(`ctl:publish room probe ${attempt}`);
      await until(() => onB.texts('probe').length > 0, 'a probe', 100).catch(() => undefined);
    }
    assert.ok(onB.texts('probe').length > 0, 'a publish crossed after the restart');
  });
});

describe('RedisAdapter on its own', () => {
  test('its options are checked: a URL that is not redis://, an empty channel, limits out of range', () => {
    assert.throws(() => new RedisAdapter({ url: 'http://127.0.0.1:6379' }), TypeError);
    assert.throws(() => new RedisAdapter({ channel: '' }), TypeError);
    assert.throws(() => new RedisAdapter({ maxReconnectDelay: 0 }), RangeError);
    assert.throws(() => new RedisAdapter({ startTimeout: 1.5 }), RangeError);
    assert.throws(() => new RedisAdapter({ maxPendingBytes: -1 }), RangeError);
    assert.doesNotThrow(() => new RedisAdapter({ url: 'rediss://user:pw@example.com:6380/2', channel: 'room' }));
  });

  test('a password in the URL never reaches the log lines', LIMIT, async () => {
    const port = await freePort();
    const lines: string[] = [];
    const adapter = new RedisAdapter({ url: `redis://chat:s3cret-word@127.0.0.1:${port}`, startTimeout: 200, maxReconnectDelay: 50 });
    await adapter.start({ serverId: 'X', deliver: () => {}, log: (level, line) => lines.push(`${level} ${line}`) });
    await until(() => lines.some((line) => /unreachable/.test(line)), 'the unreachable warning');
    await adapter.close();
    assert.ok(lines.some((line) => line.includes('redis://chat:***@127.0.0.1')), lines.join('\n'));
    assert.ok(lines.every((line) => !line.includes('s3cret-word')), lines.join('\n'));
    assert.equal(adapter.stats.reachable, false);
  });
});

