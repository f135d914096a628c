// Topics (issue 14): subscribe, unsubscribe, publish, their bookkeeping, framing once, order, slow subscribers,
// the adapter seam for topics, and typed client data.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Socket } from 'node:net';
import {
  WebsocketServer,
  type AdapterContext,
  type Broadcast,
  type BroadcastAdapter,
  type Client,
} from '../websocket-server.ts';
import { connectRawClient, connectWs, receivedCount, startServer, type Harness, type WsPeer } from './support/harness.ts';
import { Op, closePayload } from './support/frames.ts';
import { SETTLE_MS, SILENT, until, within } from './support/wait.ts';

const texts = (peer: WsPeer): string[] => peer.inbox.map((m) => m.data.toString('utf8'));
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));

/**
 * Runs `action` with every `socket.write` of the process recorded (the chunk objects, in order), then resolves
 * with them; the spy is removed even if `action` throws.
 */
async function recordSocketWrites(action: () => unknown): Promise<unknown[]> {
  const written: unknown[] = [];
  const originalWrite = Socket.prototype.write;
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    written.push(chunk);
    return (originalWrite as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof Socket.prototype.write;
  try {
    await action();
  } finally {
    Socket.prototype.write = originalWrite;
  }
  return written;
}

async function peers(t: TestContext, h: Harness, count: number): Promise<WsPeer[]> {
  const list: WsPeer[] = [];
  for (let i = 0; i < count; i++) list.push(await connectWs(t, h));
  return list;
}

describe('subscribe and unsubscribe', () => {
  test('subscribing twice changes nothing the second time; unsubscribing what was not subscribed returns false', async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const [a] = await peers(t, h, 1);
    const client = a!.client;
    assert.equal(h.server.subscribe(client, 'room'), true);
    assert.equal(h.server.subscribe(client, 'room'), false);
    assert.equal(h.server.subscriberCount('room'), 1);
    assert.equal(h.server.unsubscribe(client, 'other'), false);
    assert.equal(h.server.unsubscribe(client, 'room'), true);
    assert.equal(h.server.unsubscribe(client, 'room'), false);
    assert.equal(h.server.subscriberCount('room'), 0);
  });

  test('client.topics and server.topics are frozen snapshots in joining order; a topic nobody is in is gone', async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const [a, b] = await peers(t, h, 2);
    h.server.subscribe(a!.client, 'b-room');
    h.server.subscribe(a!.client, 'a-room');
    h.server.subscribe(b!.client, 'a-room');
    const snapshot = a!.client.topics;
    assert.deepEqual(snapshot, ['b-room', 'a-room']);
    assert.ok(Object.isFrozen(snapshot));
    assert.deepEqual(h.server.topics, ['b-room', 'a-room']);
    assert.ok(Object.isFrozen(h.server.topics));
    assert.deepEqual(b!.client.topics, ['a-room']);
    h.server.unsubscribe(a!.client, 'b-room');
    assert.deepEqual(snapshot, ['b-room', 'a-room'], 'a snapshot does not change');
    assert.deepEqual(a!.client.topics, ['a-room']);
    assert.deepEqual(h.server.topics, ['a-room'], 'b-room lost its last subscriber');
    h.server.unsubscribe(a!.client, 'a-room');
    h.server.unsubscribe(b!.client, 'a-room');
    assert.deepEqual(h.server.topics, []);
    assert.deepEqual(b!.client.topics, []);
  });

  test('a topic must be a non-empty string, for every method', async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const [a] = await peers(t, h, 1);
    const bad: unknown[] = ['', undefined, null, 1, ['room'], { toString: () => 'room' }];
    for (const topic of bad) {
      assert.throws(() => h.server.subscribe(a!.client, topic as string), TypeError, `subscribe(${String(topic)})`);
      assert.throws(() => h.server.unsubscribe(a!.client, topic as string), TypeError);
      assert.throws(() => h.server.publish(topic as string, 'x'), TypeError);
      assert.throws(() => h.server.subscriberCount(topic as string), TypeError);
    }
    assert.throws(() => h.server.subscribe(a!.client, ''), /subscribe needs a topic: a non-empty string, not an empty string/);
    assert.deepEqual(h.server.topics, []);
  });

  test('a client that left, or one of another server, cannot be subscribed', async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const other = await startServer(t, {}, { echo: false });
    const [a] = await peers(t, h, 1);
    const [stranger] = await peers(t, other, 1);
    assert.equal(h.server.subscribe(stranger!.client, 'room'), false);
    assert.equal(h.server.unsubscribe(stranger!.client, 'room'), false);
    a!.ws.close();
    await until(() => h.left.length === 1, 'client-left');
    assert.equal(h.server.subscribe(a!.client, 'room'), false);
    assert.deepEqual(h.server.topics, []);
  });

  test('a client leaves all its topics when it leaves, before client-left is called', async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const [a, b] = await peers(t, h, 2);
    h.server.subscribe(a!.client, 'one');
    h.server.subscribe(a!.client, 'two');
    h.server.subscribe(b!.client, 'two');
    const seen: Array<{ topics: readonly string[]; one: number; two: number; all: readonly string[] }> = [];
    h.server.setFnClientLeft((client, server) => {
      seen.push({ topics: client.topics, one: server.subscriberCount('one'), two: server.subscriberCount('two'), all: server.topics });
    });
    a!.ws.close();
    await until(() => seen.length === 1, 'client-left');
    assert.deepEqual(seen[0], { topics: [], one: 0, two: 1, all: ['two'] });
    assert.equal(h.server.publish('one', 'nobody'), 0);
  });
});

describe('publish', () => {
  test('reaches the subscribers of the topic only, and returns how many it was written or queued to', async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const [a, b, c] = await peers(t, h, 3);
    h.server.subscribe(a!.client, 'room');
    h.server.subscribe(b!.client, 'room');
    h.server.subscribe(c!.client, 'elsewhere');
    assert.equal(h.server.publish('room', 'hello room'), 2);
    assert.equal(h.server.publish('room', Buffer.from([1, 2, 3])), 2);
    assert.equal(h.server.publish('nobody', 'lost'), 0);
    await receivedCount(a!, 2);
    await receivedCount(b!, 2);
    await settle();
    for (const peer of [a!, b!]) {
      assert.deepEqual(peer.inbox, [
        { data: Buffer.from('hello room'), isBinary: false },
        { data: Buffer.from([1, 2, 3]), isBinary: true },
      ]);
    }
    assert.deepEqual(c!.inbox, []);
    assert.equal(h.server.stats.messagesOut, 4);
  });

  test('exclude takes a client, an id, or an iterable of them, as sendMessageToAll does', async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const list = await peers(t, h, 4);
    for (const peer of list) h.server.subscribe(peer.client, 'room');
    const [a, b, c, d] = list as [WsPeer, WsPeer, WsPeer, WsPeer];
    assert.equal(h.server.publish('room', 'not a', a.client), 3);
    assert.equal(h.server.publish('room', 'not b', b.client.id), 3);
    assert.equal(h.server.publish('room', 'not c or d', [c.client, d.client.id]), 2);
    assert.equal(h.server.publish('room', 'not a or b', new Set([a.client, b.client])), 2);
    await receivedCount(a, 2);
    await receivedCount(b, 2);
    await receivedCount(c, 3);
    await receivedCount(d, 3);
    await settle();
    assert.deepEqual(texts(a), ['not b', 'not c or d']);
    assert.deepEqual(texts(b), ['not a', 'not c or d']);
    assert.deepEqual(texts(c), ['not a', 'not b', 'not a or b']);
    assert.deepEqual(texts(d), ['not a', 'not b', 'not a or b']);
  });

  test("a subscriber gets the topic's messages in publish order, interleaved in order with its other messages", async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const [a, b] = await peers(t, h, 2);
    h.server.subscribe(a!.client, 'room');
    const expected: string[] = [];
    for (let i = 0; i < 300; i++) {
      const kind = i % 3;
      const text = `${kind}:${i}`;
      if (kind === 0) h.server.publish('room', text);
      else if (kind === 1) h.server.sendMessage(a!.client, text);
      else h.server.sendMessageToAll(text, b!.client);
      expected.push(text);
    }
    await receivedCount(a!, expected.length);
    assert.deepEqual(texts(a!), expected);
  });

  test('the frame is built once per publish: every subscriber socket is handed the same bytes object', async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const list = await peers(t, h, 5);
    for (const peer of list) h.server.subscribe(peer.client, 'room');
    // What the server hands to any socket for the publish, until the end of the tick, when small frames are
    // written (the test's clients only read meanwhile).
    const written = await recordSocketWrites(async () => {
      assert.equal(h.server.publish('room', 'x'.repeat(300)), 5);
      await new Promise((resolve) => setImmediate(resolve));
    });
    assert.equal(written.length, 5, 'one write per subscriber');
    assert.ok(written.every((chunk) => chunk === written[0]), 'the same Buffer, not five equal ones');
    for (const peer of list) await receivedCount(peer, 1);
  });

  test('with permessage-deflate and no context takeover, one publish is compressed once for all subscribers', async (t) => {
    const h = await startServer(t, { perMessageDeflate: { threshold: 0 } }, { echo: false });
    const offer = { perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true } };
    const list: WsPeer[] = [];
    for (let i = 0; i < 4; i++) list.push(await connectWs(t, h, offer));
    for (const peer of list) h.server.subscribe(peer.client, 'room');
    const message = 'compressible '.repeat(200);
    const written = await recordSocketWrites(async () => {
      assert.equal(h.server.publish('room', message), 4);
      for (const peer of list) await receivedCount(peer, 1);
    });
    for (const peer of list) assert.equal(peer.inbox[0]!.data.toString(), message);
    // Each subscriber gets a header and the compressed payload; the payloads are one and the same object.
    const payloads = written.filter((chunk): chunk is Buffer => Buffer.isBuffer(chunk) && chunk.length > 14);
    assert.equal(payloads.length, 4, `compressed payload writes: ${payloads.length}`);
    assert.ok(payloads.every((chunk) => chunk === payloads[0]), 'compressed once');
    assert.ok(payloads[0]!.length < message.length / 4, 'and it is compressed');
  });

  test("a slow subscriber is closed by slowClientPolicy 'close' while the others get every message", async (t) => {
    const limit = 64 * 1024;
    const h = await startServer(t, { maxBufferedAmount: limit, slowClientPolicy: 'close', closeTimeout: 2_000 }, { echo: false });
    const { raw, client: slow } = await connectRawClient(t, h);
    raw.socket.pause();
    const [fast] = await peers(t, h, 1);
    h.server.subscribe(slow, 'room');
    h.server.subscribe(fast!.client, 'room');
    const chunk = 'y'.repeat(8 * 1024);
    let count = 0;
    // Bounded: the slow client is closed after about limit / chunk messages; the fast one reads them as they come.
    while (slow.handler.state === 'open' && count < 1_000) {
      h.server.publish('room', `${count}:${chunk}`);
      count++;
      if (count % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(slow.handler.state, 'closing', `the slow subscriber is closing after ${count} publishes`);
    assert.ok(count < 1_000);
    await receivedCount(fast!, count, 10_000);
    assert.deepEqual(texts(fast!).map((text) => Number.parseInt(text, 10)), [...Array(count).keys()]);
    raw.socket.resume();
    const close = await raw.closeFrame(10_000);
    assert.equal(close.code, 1008);
    raw.sendFrame({ opcode: Op.CLOSE, payload: closePayload(1008) });
    await until(() => h.left.includes(slow), 'the slow client leaves');
    assert.deepEqual(h.server.topics, ['room']);
    assert.equal(h.server.subscriberCount('room'), 1);
  });
});

/** An adapter joining servers in one process through an EventEmitter, that honours topic interest. */
function busAdapter(bus: EventEmitter, record: { subscribed: string[]; unsubscribed: string[]; delivered: Broadcast[] }): BroadcastAdapter {
  let context: AdapterContext | undefined;
  const topics = new Set<string>();
  const listener = (broadcast: Broadcast): void => {
    if (context === undefined || broadcast.origin === context.serverId) return;
    if (broadcast.topic !== undefined && !topics.has(broadcast.topic)) return;
    record.delivered.push(broadcast);
    context.deliver(broadcast);
  };
  return {
    start(started) {
      context = started;
      bus.on('broadcast', listener);
    },
    publish(broadcast) {
      bus.emit('broadcast', broadcast);
    },
    subscribe(topic) {
      record.subscribed.push(topic);
      topics.add(topic);
    },
    unsubscribe(topic) {
      record.unsubscribed.push(topic);
      topics.delete(topic);
    },
    close() {
      bus.off('broadcast', listener);
    },
  };
}

describe('topics across servers, through the adapter', () => {
  test("a publish on one server reaches the other's subscribers; the adapter hears of a topic's first and last local subscriber", async (t) => {
    const bus = new EventEmitter();
    const recA = { subscribed: [] as string[], unsubscribed: [] as string[], delivered: [] as Broadcast[] };
    const recB = { subscribed: [] as string[], unsubscribed: [] as string[], delivered: [] as Broadcast[] };
    const a = await startServer(t, { adapter: busAdapter(bus, recA) }, { echo: false });
    const b = await startServer(t, { adapter: busAdapter(bus, recB) }, { echo: false });
    const [onA] = await peers(t, a, 1);
    const [onB1, onB2] = await peers(t, b, 2);
    b.server.subscribe(onB1!.client, 'room');
    b.server.subscribe(onB2!.client, 'room');
    assert.deepEqual(recB.subscribed, ['room'], 'told once, at the first subscriber');
    a.server.publish('room', 'from a', [7, 8]);
    await receivedCount(onB1!, 1);
    await receivedCount(onB2!, 1);
    assert.equal(recB.delivered[0]!.topic, 'room');
    assert.deepEqual(recB.delivered[0]!.exclude, [7, 8]);
    assert.deepEqual(onA!.inbox, [], 'a has no subscriber to room');
    assert.equal(a.server.stats.broadcastsPublished, 1);
    assert.equal(b.server.stats.broadcastsReceived, 1);

    b.server.unsubscribe(onB1!.client, 'room');
    assert.deepEqual(recB.unsubscribed, [], 'one subscriber is left');
    b.server.unsubscribe(onB2!.client, 'room');
    assert.deepEqual(recB.unsubscribed, ['room'], 'told at the last');
    a.server.publish('room', 'nobody listens');
    await settle();
    assert.equal(recB.delivered.length, 1, 'b receives nothing for a topic it has no subscriber to');
    assert.equal(b.server.stats.broadcastsReceived, 1);
    assert.deepEqual(recA.subscribed, []);
  });

  test('topics that had subscribers before the adapter started are told to it once it has started', async (t) => {
    const bus = new EventEmitter();
    const rec = { subscribed: [] as string[], unsubscribed: [] as string[], delivered: [] as Broadcast[] };
    const inner = busAdapter(bus, rec);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    // Its start settles when the test says: the client subscribes while the adapter is still starting.
    const adapter: BroadcastAdapter = { ...inner, start: async (context) => { await gate; await inner.start(context); } };
    const h = await startServer(t, { adapter }, { echo: false, run: false });
    // Clients come in through handleUpgrade before any start: the adapter starts then, asynchronously.
    const { createServer } = await import('node:http');
    const app = createServer();
    app.on('upgrade', (request, socket, head) => h.server.handleUpgrade(request, socket, head));
    app.listen(0, '127.0.0.1');
    await within(EventEmitter.once(app, 'listening'), 'app listening');
    t.after(() => new Promise<void>((resolve) => { app.closeAllConnections(); app.close(() => resolve()); }));
    const port = (app.address() as { port: number }).port;
    const peer = await connectWs(t, h, {}, { port });
    h.server.subscribe(peer.client, 'early');
    await settle();
    assert.deepEqual(rec.subscribed, [], 'not before the start has settled');
    open();
    await until(() => rec.subscribed.length === 1, 'the adapter is told of the early topic');
    assert.deepEqual(rec.subscribed, ['early']);
  });

  test("a broadcast with a topic that is not a non-empty string is refused and logged", async (t) => {
    let context: AdapterContext | undefined;
    const adapter: BroadcastAdapter = { start: (c) => void (context = c), publish() {}, close() {} };
    const errors: string[] = [];
    const logger = { ...SILENT, error: (line: string) => errors.push(line) };
    const h = await startServer(t, { adapter, logger }, { echo: false });
    const [peer] = await peers(t, h, 1);
    h.server.subscribe(peer!.client, 'room');
    context!.deliver({ origin: 'other', message: 'bad', exclude: [], topic: '' });
    context!.deliver({ origin: 'other', message: 'bad', exclude: [], topic: 5 as unknown as string });
    context!.deliver({ origin: 'other', message: 'good', exclude: [], topic: 'room' });
    await receivedCount(peer!, 1);
    await settle();
    assert.deepEqual(texts(peer!), ['good']);
    assert.equal(errors.filter((line) => line.includes('not a broadcast')).length, 2);
  });
});

describe('typed client data', () => {
  interface User {
    name: string;
    visits: number;
  }

  test('WebsocketServer<Data> types client.data in every callback; setFnAuthenticate attaches it and the app replaces it', async (t) => {
    const server = new WebsocketServer<User>({ host: '127.0.0.1', port: 0, logger: SILENT });
    t.after(() => server.shutdownAbruptly());
    server.setFnAuthenticate((request) => ({ data: { name: request.query.get('name') ?? 'anonymous', visits: 0 } }));
    const seen: string[] = [];
    server.setFnMessageReceived((client, self, message) => {
      // Typed: no cast. The line below the expect-error would not compile without the `Data` parameter at work.
      client.data.visits += 1;
      const name: string = client.data.name;
      // @ts-expect-error -- `name` is a string, not a number
      const wrong: number = client.data.name;
      void wrong;
      if (message === 'rename') client.data = { name: 'renamed', visits: client.data.visits };
      seen.push(`${name}:${client.data.visits}`);
      self.sendMessage(client, `${client.data.name}`);
    });
    const clients: Client<User>[] = [];
    server.setFnNewClient((client) => clients.push(client));
    await server.runForever();
    const h = { server: server as unknown as WebsocketServer, joined: clients as Client[], left: [], messages: [], errors: [] };
    const peer = await connectWs(t, h, {}, { path: '/?name=ada' });
    peer.ws.send('one');
    peer.ws.send('rename');
    peer.ws.send('three');
    await receivedCount(peer, 3);
    assert.deepEqual(seen, ['ada:1', 'ada:2', 'renamed:3']);
    assert.deepEqual(texts(peer), ['ada', 'renamed', 'renamed']);
    assert.deepEqual(clients[0]!.data, { name: 'renamed', visits: 3 });
  });

  test('without setFnAuthenticate data starts undefined, and the application may set it', async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const [peer] = await peers(t, h, 1);
    assert.equal(peer!.client.data, undefined);
    peer!.client.data = { anything: true };
    assert.deepEqual(h.server.clients[0]!.data, { anything: true });
  });
});
