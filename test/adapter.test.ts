// The adapter seam, in one process: servers joined by an in-memory bus (delivering a tick later, as a network
// would) share their broadcasts, exclusions name the origin's clients only, nothing loops, and the adapter's
// life follows the server's. Then the broadcast wire format that byte-carrying adapters use.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { connect } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { broadcastOrigin, decodeBroadcast, encodeBroadcast } from '../adapters/wire.ts';
import { WebsocketServer } from '../websocket-server.ts';
import type { AdapterContext, Broadcast, BroadcastAdapter, Client } from '../websocket-server.ts';
import {
  assertOptionError,
  connectWs,
  freePort,
  openWs,
  pseudoRandomBytes,
  recordingLogger,
  startBehindApp,
  startServer,
  type Harness,
  type WsPeer,
} from './support/harness.ts';
import { LIMIT, SILENT, until, within } from './support/wait.ts';

// ─── an in-memory bus ───────────────────────────────────────────────────────────────────────────────────────

/** What a server asked of its adapter, in order. */
type AdapterCall = 'start' | 'publish' | 'close';

/** One server's adapter on a {@link Bus}, recording what the server asked of it. */
interface BusAdapter extends BroadcastAdapter {
  readonly calls: AdapterCall[];
  /** The context of its latest start. */
  context: AdapterContext | undefined;
}

/** Stops a runaway (a broadcast bouncing between servers) from eating the machine before the test fails. */
const BUS_CAPACITY = 10_000;

/**
 * Joins servers in one process. A broadcast is copied when published (the caller may reuse its buffer) and
 * handed to each subscriber in a later turn of the event loop, in publish order; a binary message is delivered
 * as a `Uint8Array` view into a larger buffer, as `decodeBroadcast` gives. With `echo`, the publisher gets its
 * own broadcasts back too, as Redis does.
 */
class Bus {
  /** Every broadcast published on the bus, by any server, in order. */
  readonly published: Broadcast[] = [];
  readonly #subscribers = new Set<AdapterContext>();
  readonly #echo: boolean;
  #pending = 0;

  constructor(options: { echo?: boolean } = {}) {
    this.#echo = options.echo ?? false;
  }

  /** Whether every delivery scheduled so far has been made. */
  get idle(): boolean {
    return this.#pending === 0;
  }

  /** A new adapter on this bus; `onClose` runs inside its `close()`. */
  join(hooks: { onClose?: () => void } = {}): BusAdapter {
    const adapter: BusAdapter = {
      calls: [],
      context: undefined,
      start: (context) => {
        adapter.calls.push('start');
        adapter.context = context;
        this.#subscribers.add(context);
      },
      publish: (broadcast) => {
        adapter.calls.push('publish');
        this.#publish(broadcast, adapter.context);
      },
      close: () => {
        adapter.calls.push('close');
        hooks.onClose?.();
        if (adapter.context !== undefined) this.#subscribers.delete(adapter.context);
      },
    };
    return adapter;
  }

  #publish(broadcast: Broadcast, from: AdapterContext | undefined): void {
    const { origin, message, exclude } = broadcast;
    const copy: Broadcast = { origin, message: typeof message === 'string' ? message : Uint8Array.from(message), exclude: [...exclude] };
    this.published.push(copy);
    if (this.published.length > BUS_CAPACITY) return;
    for (const subscriber of this.#subscribers) {
      if (subscriber === from && !this.#echo) continue;
      this.#pending++;
      setImmediate(() => {
        this.#pending--;
        const delivered = typeof copy.message === 'string' ? copy.message : viewAtOffset(copy.message);
        subscriber.deliver({ origin: copy.origin, message: delivered, exclude: copy.exclude });
      });
    }
  }
}

/** The same bytes, as a view that does not start at the beginning of its ArrayBuffer. */
function viewAtOffset(bytes: Uint8Array): Uint8Array {
  const backing = new Uint8Array(bytes.length + 8);
  backing.set(bytes, 3);
  return backing.subarray(3, 3 + bytes.length);
}

/** Two (or more) running servers, each with its own adapter on one bus. */
async function joinedServers(t: TestContext, count: number, bus = new Bus()): Promise<Array<Harness & { adapter: BusAdapter }>> {
  const servers: Array<Harness & { adapter: BusAdapter }> = [];
  for (let i = 0; i < count; i++) {
    const adapter = bus.join();
    servers.push({ ...(await startServer(t, { adapter }, { echo: false })), adapter });
  }
  return servers;
}

/** Waits until the bus has made every delivery it scheduled. */
async function settle(bus: Bus): Promise<void> {
  await until(() => bus.idle, 'the bus to make its deliveries');
}

/** The messages a peer received, text as is and binary as `<hex>`. */
function received(peer: { inbox: WsPeer['inbox'] }): string[] {
  return peer.inbox.map(({ data, isBinary }) => (isBinary ? `<${data.toString('hex')}>` : data.toString('utf8')));
}

let flushes = 0;

/**
 * Sends a marker to `peer` straight from `server` and waits for it: whatever the server sent that client before
 * has arrived by then, so what the inbox lacks was never sent. Returns the inbox before the marker.
 */
async function receivedBeforeMarker(server: WebsocketServer, peer: { inbox: WsPeer['inbox']; client: Client }): Promise<string[]> {
  const marker = `marker ${++flushes}`;
  server.sendMessage(peer.client, marker);
  await until(() => received(peer).includes(marker), `the marker at client ${peer.client.id}`);
  const messages = received(peer);
  return messages.slice(0, messages.indexOf(marker));
}

/** Waits until each peer has received at least `count` messages. */
async function eachReceived(peers: Array<{ inbox: WsPeer['inbox'] }>, count: number): Promise<void> {
  await until(() => peers.every((peer) => peer.inbox.length >= count), `${count} message(s) at each client`);
}

/** Resolves with the error code of a TCP connection attempt to `port` (`'connected'` if it succeeds). */
async function tryConnect(port: number): Promise<string> {
  return within(
    new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    }),
    `a connection attempt to port ${port}`,
  );
}

// ─── across servers ─────────────────────────────────────────────────────────────────────────────────────────

describe('sendMessageToAll across servers joined by an adapter', () => {
  test('a text broadcast reaches the clients of both servers, as text', LIMIT, async (t) => {
    const [a, b] = await joinedServers(t, 2);
    const peers = [await connectWs(t, a!), await connectWs(t, b!), await connectWs(t, b!)];
    a!.server.sendMessageToAll('héllo, wörld 🌍');
    await eachReceived(peers, 1);
    for (const peer of peers) {
      assert.deepEqual(peer.inbox.map((m) => m.isBinary), [false]);
      assert.equal(peer.inbox[0]!.data.toString('utf8'), 'héllo, wörld 🌍');
    }
  });

  test('a binary broadcast reaches the clients of both servers as binary, byte-exact (70,000 bytes and empty)', LIMIT, async (t) => {
    const [a, b] = await joinedServers(t, 2);
    const peers = [await connectWs(t, a!), await connectWs(t, b!)];
    const bytes = pseudoRandomBytes(70_000, 7);
    // A view in the middle of a larger buffer: only its own bytes go out.
    const backing = Buffer.concat([Buffer.from('before'), bytes, Buffer.from('after')]);
    a!.server.sendMessageToAll(backing.subarray(6, 6 + bytes.length));
    a!.server.sendMessageToAll(new Uint8Array(0));
    await eachReceived(peers, 2);
    for (const peer of peers) {
      assert.deepEqual(peer.inbox.map((m) => m.isBinary), [true, true]);
      assert.ok(peer.inbox[0]!.data.equals(bytes), 'the binary message differs');
      assert.equal(peer.inbox[1]!.data.length, 0);
    }
  });

  test('a client excluded as a Client gets nothing; the other server\'s client with the same id does get it', LIMIT, async (t) => {
    const bus = new Bus();
    const [a, b] = await joinedServers(t, 2, bus);
    const [a1, a2] = [await connectWs(t, a!), await connectWs(t, a!)];
    const [b1, b2] = [await connectWs(t, b!), await connectWs(t, b!)];
    assert.deepEqual([a1.client.id, b1.client.id], [1, 1], 'the premise: ids are per server');
    assert.equal(a!.server.sendMessageToAll('not for a1', a1.client), 1);
    await eachReceived([a2, b1, b2], 1);
    await settle(bus);
    assert.deepEqual(await receivedBeforeMarker(a!.server, a1), []);
    for (const peer of [a2, b1, b2]) assert.deepEqual(received(peer), ['not for a1']);
    assert.deepEqual(bus.published, [{ origin: a!.server.serverId, message: 'not for a1', exclude: [1] }], 'ids travel, not Clients');
  });

  test('a client excluded by its id gets nothing; the other server\'s client with that id does get it', LIMIT, async (t) => {
    const bus = new Bus();
    const [a, b] = await joinedServers(t, 2, bus);
    const [a1, a2] = [await connectWs(t, a!), await connectWs(t, a!)];
    const b1 = await connectWs(t, b!);
    assert.equal(b1.client.id, a1.client.id, 'the premise: ids are per server');
    a!.server.sendMessageToAll(Buffer.from([1, 2, 3]), a1.client.id);
    await eachReceived([a2, b1], 1);
    await settle(bus);
    assert.deepEqual(await receivedBeforeMarker(a!.server, a1), []);
    assert.deepEqual(received(a2), ['<010203>']);
    assert.deepEqual(received(b1), ['<010203>']);
  });

  test('an array of Clients and ids excludes each of them on the origin only', LIMIT, async (t) => {
    const bus = new Bus();
    const [a, b] = await joinedServers(t, 2, bus);
    const [a1, a2, a3] = [await connectWs(t, a!), await connectWs(t, a!), await connectWs(t, a!)];
    const [b1, b2, b3] = [await connectWs(t, b!), await connectWs(t, b!), await connectWs(t, b!)];
    assert.equal(a!.server.sendMessageToAll('for a3 and all of b', [a1.client, a2.client.id]), 1);
    await eachReceived([a3, b1, b2, b3], 1);
    await settle(bus);
    assert.deepEqual(await receivedBeforeMarker(a!.server, a1), []);
    assert.deepEqual(await receivedBeforeMarker(a!.server, a2), []);
    for (const peer of [a3, b1, b2, b3]) assert.deepEqual(received(peer), ['for a3 and all of b']);
    assert.deepEqual([...bus.published[0]!.exclude].sort(), [1, 2]);
  });

  test('any iterable excludes: a Set of ids', LIMIT, async (t) => {
    const bus = new Bus();
    const [a, b] = await joinedServers(t, 2, bus);
    const [a1, a2] = [await connectWs(t, a!), await connectWs(t, a!)];
    const b2 = [await connectWs(t, b!), await connectWs(t, b!)][1]!;
    a!.server.sendMessageToAll('not for 2', new Set([a2.client.id]));
    await eachReceived([a1, b2], 1);
    await settle(bus);
    assert.deepEqual(await receivedBeforeMarker(a!.server, a2), []);
    assert.deepEqual(received(b2), ['not for 2']);
  });

  test('a server never delivers its own broadcast again, even when the bus echoes it back to it', LIMIT, async (t) => {
    const bus = new Bus({ echo: true });
    const [a, b] = await joinedServers(t, 2, bus);
    const a1 = await connectWs(t, a!);
    const b1 = await connectWs(t, b!);
    a!.server.sendMessageToAll('once');
    a!.server.sendMessageToAll(Buffer.from('bytes once'));
    await eachReceived([a1, b1], 2);
    await settle(bus);
    assert.deepEqual(await receivedBeforeMarker(a!.server, a1), ['once', `<${Buffer.from('bytes once').toString('hex')}>`]);
    assert.equal(a!.server.stats.broadcastsReceived, 0, 'its own echoes are not counted as received');
    assert.equal(b!.server.stats.broadcastsReceived, 2);
  });

  test('a received broadcast is not published again: two servers, one publish', LIMIT, async (t) => {
    const bus = new Bus({ echo: true });
    const [a, b] = await joinedServers(t, 2, bus);
    const b1 = await connectWs(t, b!);
    a!.server.sendMessageToAll('ping');
    await eachReceived([b1], 1);
    await settle(bus);
    assert.deepEqual(bus.published, [{ origin: a!.server.serverId, message: 'ping', exclude: [] }]);
    assert.deepEqual([a!.adapter.calls, b!.adapter.calls], [['start', 'publish'], ['start']]);
    assert.deepEqual(await receivedBeforeMarker(b!.server, b1), ['ping']);
  });

  test('a received broadcast is not published again: three servers, one publish each, each delivered once', LIMIT, async (t) => {
    const bus = new Bus({ echo: true });
    const [a, b, c] = await joinedServers(t, 3, bus);
    const [a1, b1, c1] = [await connectWs(t, a!), await connectWs(t, b!), await connectWs(t, c!)];
    a!.server.sendMessageToAll('from a');
    b!.server.sendMessageToAll('from b');
    await eachReceived([a1, b1, c1], 2);
    await settle(bus);
    assert.deepEqual(
      bus.published.map((broadcast) => broadcast.message),
      ['from a', 'from b'],
    );
    assert.deepEqual((await receivedBeforeMarker(c!.server, c1)).sort(), ['from a', 'from b']);
    assert.deepEqual((await receivedBeforeMarker(a!.server, a1)).sort(), ['from a', 'from b']);
    assert.deepEqual((await receivedBeforeMarker(b!.server, b1)).sort(), ['from a', 'from b']);
  });

  test('500 numbered messages published by one server arrive in order, text and binary alike, at the other\'s client', LIMIT, async (t) => {
    const bus = new Bus();
    const [a, b] = await joinedServers(t, 2, bus);
    const b1 = await connectWs(t, b!);
    const expected: string[] = [];
    for (let i = 0; i < 500; i++) {
      if (i % 2 === 0) {
        a!.server.sendMessageToAll(`#${i}`);
        expected.push(`#${i}`);
      } else {
        const bytes = Buffer.alloc(4);
        bytes.writeUInt32BE(i);
        a!.server.sendMessageToAll(bytes);
        bytes.fill(0xee); // the caller reuses its buffer: what was published must not change
        expected.push(`<${(i >>> 0).toString(16).padStart(8, '0')}>`);
      }
    }
    await eachReceived([b1], 500);
    assert.deepEqual(received(b1), expected);
  });

  test('broadcastsPublished counts every publish, even with no client; broadcastsReceived counts other servers\' only', LIMIT, async (t) => {
    const bus = new Bus({ echo: true });
    const [a, b, c] = await joinedServers(t, 3, bus);
    for (let i = 0; i < 3; i++) a!.server.sendMessageToAll(`a${i}`);
    for (let i = 0; i < 2; i++) b!.server.sendMessageToAll(`b${i}`);
    await settle(bus);
    const counters = (h: Harness): [number, number] => [h.server.stats.broadcastsPublished, h.server.stats.broadcastsReceived];
    assert.deepEqual([counters(a!), counters(b!), counters(c!)], [[3, 2], [2, 3], [0, 5]]);
  });

  test('without an adapter, sendMessageToAll publishes nothing and the broadcast counters stay at zero', LIMIT, async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const peer = await connectWs(t, h);
    assert.equal(h.server.sendMessageToAll('local only'), 1);
    await eachReceived([peer], 1);
    assert.deepEqual([h.server.stats.broadcastsPublished, h.server.stats.broadcastsReceived], [0, 0]);
  });

  test('the return value counts only this server\'s clients it was sent to', LIMIT, async (t) => {
    const bus = new Bus();
    const [a, b, empty] = await joinedServers(t, 3, bus);
    const [a1, a2] = [await connectWs(t, a!), await connectWs(t, a!)];
    const bPeers = [await connectWs(t, b!), await connectWs(t, b!), await connectWs(t, b!)];
    assert.equal(a!.server.sendMessageToAll('to all'), 2);
    assert.equal(a!.server.sendMessageToAll('not to a1', a1.client), 1);
    assert.equal(empty!.server.sendMessageToAll('from a server without clients'), 0);
    await eachReceived([a2, ...bPeers], 3);
    for (const peer of bPeers) assert.deepEqual(received(peer), ['to all', 'not to a1', 'from a server without clients']);
  });

  test('an exclude of a wrong type throws a TypeError, and nothing is sent or published', LIMIT, async (t) => {
    const bus = new Bus();
    const [a, b] = await joinedServers(t, 2, bus);
    const a1 = await connectWs(t, a!);
    const b1 = await connectWs(t, b!);
    const wrong: unknown[] = ['1', null, true, 1.5, Number.NaN, {}, { id: 1 }, [1, 'two'], new Set([a1.client, '3'])];
    for (const exclude of wrong) {
      assert.throws(
        () => a!.server.sendMessageToAll('never', exclude as number),
        (error: unknown) => error instanceof TypeError && /exclude/i.test(error.message),
        `exclude ${String(exclude)}`,
      );
    }
    await settle(bus);
    assert.deepEqual(bus.published, []);
    assert.equal(a!.server.stats.broadcastsPublished, 0);
    assert.deepEqual(await receivedBeforeMarker(a!.server, a1), []);
    assert.deepEqual(await receivedBeforeMarker(b!.server, b1), []);
  });

  test('a publish that throws is logged; this server\'s clients still get the broadcast and the server goes on', LIMIT, async (t) => {
    const logger = recordingLogger();
    const adapter: BroadcastAdapter = {
      start() {},
      publish() {
        throw new Error('the bus is down');
      },
      close() {},
    };
    const h = await startServer(t, { adapter, logger }, { echo: false });
    const first = await connectWs(t, h);
    assert.equal(h.server.sendMessageToAll('still local'), 1);
    await eachReceived([first], 1);
    assert.deepEqual(received(first), ['still local']);
    assert.ok(logger.lines.error.some((line) => line.includes('the bus is down')), `error lines: ${JSON.stringify(logger.lines.error)}`);
    assert.equal(h.server.stats.broadcastsPublished, 0, 'a publish that threw is not counted');
    const second = await connectWs(t, h);
    assert.equal(h.server.sendMessageToAll('and again'), 2);
    await eachReceived([first], 2);
    await eachReceived([second], 1);
    assert.deepEqual(received(first), ['still local', 'and again']);
    assert.deepEqual(received(second), ['and again']);
  });

  test('a delivery that is not a broadcast is logged and dropped', LIMIT, async (t) => {
    const logger = recordingLogger();
    const bus = new Bus();
    const adapter = bus.join();
    const h = await startServer(t, { adapter, logger }, { echo: false });
    const peer = await connectWs(t, h);
    for (const junk of [null, {}, { origin: 7, message: 'x', exclude: [] }, { origin: 'b', message: 42, exclude: [] }]) {
      adapter.context!.deliver(junk as unknown as Broadcast);
    }
    assert.equal(logger.lines.error.length, 4, `error lines: ${JSON.stringify(logger.lines.error)}`);
    assert.equal(h.server.stats.broadcastsReceived, 0);
    assert.deepEqual(await receivedBeforeMarker(h.server, peer), []);
  });
});

// ─── the adapter's life ─────────────────────────────────────────────────────────────────────────────────────

describe('the adapter follows the server\'s life', () => {
  test('an adapter whose start rejects makes runForever() reject with its error, and nothing listens', LIMIT, async (t) => {
    const failure = new Error('no bus today');
    const calls: string[] = [];
    const adapter: BroadcastAdapter = {
      start: async () => {
        calls.push('start');
        throw failure;
      },
      publish: () => void calls.push('publish'),
      close: () => void calls.push('close'),
    };
    const port = await freePort();
    const { server } = await startServer(t, { port, adapter }, { run: false });
    await assert.rejects(within(server.runForever(), 'runForever()'), (error: unknown) => error === failure);
    assert.equal(await tryConnect(port), 'ECONNREFUSED');
    await server.shutdownGracefully();
    assert.deepEqual(calls, ['start'], 'an adapter that never started is not closed');
  });

  test('after a failed start, the next runForever() starts the adapter again and listens', LIMIT, async (t) => {
    const bus = new Bus();
    const adapter = bus.join();
    const start = adapter.start.bind(adapter);
    let attempts = 0;
    adapter.start = async (context) => {
      start(context);
      if (++attempts === 1) throw new Error('not yet');
    };
    const { server } = await startServer(t, { adapter }, { run: false });
    await assert.rejects(within(server.runForever(), 'the first runForever()'), /not yet/);
    await within(server.runForever(), 'the second runForever()');
    const ws = await openWs(t, `ws://127.0.0.1:${server.port}/`);
    const closed = once(ws, 'close');
    await server.shutdownGracefully();
    await within(closed, 'the client to see the close');
    assert.deepEqual(adapter.calls, ['start', 'start', 'close']);
  });

  test('start once and close once per run, close after the clients left: a broadcast from client-left still goes out', LIMIT, async (t) => {
    const bus = new Bus();
    const [, b] = await joinedServers(t, 2, bus);
    const b1 = await connectWs(t, b!);
    let clientsAtClose = -1;
    const adapter = bus.join({ onClose: () => (clientsAtClose = a.server.clients.length) });
    const a = await startServer(t, { adapter }, { echo: false });
    a.server.setFnClientLeft((client, server) => server.sendMessageToAll(`client ${client.id} left`));
    const [a1, a2] = [await connectWs(t, a), await connectWs(t, a)];
    await within(a.server.shutdownGracefully(), 'the graceful shutdown');
    assert.deepEqual([(await a1.closed).code, (await a2.closed).code], [1001, 1001]);
    assert.deepEqual(adapter.calls, ['start', 'publish', 'publish', 'close']);
    assert.equal(clientsAtClose, 0, 'close() came after the clients had gone');
    await eachReceived([b1], 2);
    assert.deepEqual(received(b1).sort(), ['client 1 left', 'client 2 left']);
    await a.server.shutdownAbruptly();
    await a.server.shutdownGracefully();
    assert.deepEqual(adapter.calls, ['start', 'publish', 'publish', 'close'], 'a second shutdown closes nothing again');
  });

  test('shutdownAbruptly also closes the adapter once, after the clients left, and client-left broadcasts go out', LIMIT, async (t) => {
    const bus = new Bus();
    const [, b] = await joinedServers(t, 2, bus);
    const b1 = await connectWs(t, b!);
    let clientsAtClose = -1;
    const adapter = bus.join({ onClose: () => (clientsAtClose = a.server.clients.length) });
    const a = await startServer(t, { adapter }, { echo: false });
    a.server.setFnClientLeft((client, server) => server.sendMessageToAll(`client ${client.id} left`));
    await connectWs(t, a);
    await within(a.server.shutdownAbruptly(), 'the abrupt shutdown');
    assert.deepEqual(adapter.calls, ['start', 'publish', 'close']);
    assert.equal(clientsAtClose, 0, 'close() came after the clients had gone');
    await eachReceived([b1], 1);
    assert.deepEqual(received(b1), ['client 1 left']);
    await a.server.shutdownAbruptly();
    assert.deepEqual(adapter.calls, ['start', 'publish', 'close']);
  });

  test('each run starts and closes the adapter once more', LIMIT, async (t) => {
    const adapter = new Bus().join();
    const { server } = await startServer(t, { adapter }, { run: false });
    for (let run = 0; run < 3; run++) {
      await within(server.runForever(), 'runForever()');
      await within(server.shutdownGracefully(), 'shutdownGracefully()');
    }
    assert.deepEqual(adapter.calls, ['start', 'close', 'start', 'close', 'start', 'close']);
  });

  test('a delivery after close is ignored', LIMIT, async (t) => {
    const bus = new Bus();
    const [a, b] = await joinedServers(t, 2, bus);
    await within(b!.server.shutdownAbruptly(), 'the shutdown');
    assert.deepEqual(b!.adapter.calls, ['start', 'close']);
    // An adapter whose close does not stop a delivery already under way.
    b!.adapter.context!.deliver({ origin: a!.server.serverId, message: 'too late', exclude: [] });
    await settle(bus);
    assert.equal(b!.server.stats.broadcastsReceived, 0);
    assert.deepEqual(b!.adapter.calls, ['start', 'close'], 'and not published again');
  });

  test('a server that only takes upgrades from an app (handleUpgrade, no runForever) starts the adapter at the first upgrade', LIMIT, async (t) => {
    const bus = new Bus();
    const adapter = bus.join();
    const attached = await startBehindApp(t, { adapter }, { echo: false });
    const [b] = await joinedServers(t, 1, bus);
    const b1 = await connectWs(t, b!);
    assert.deepEqual(adapter.calls, [], 'nothing starts it before an upgrade');
    const first = await connectWs(t, attached, {}, { port: attached.port });
    const second = await connectWs(t, attached, {}, { port: attached.port });
    assert.deepEqual(adapter.calls, ['start'], 'started once, at the first upgrade');
    b!.server.sendMessageToAll('from b');
    assert.equal(attached.server.sendMessageToAll('from the attached server', first.client), 1);
    await eachReceived([first, second, b1], 1);
    await settle(bus);
    assert.deepEqual(await receivedBeforeMarker(attached.server, first), ['from b']);
    assert.deepEqual((await receivedBeforeMarker(attached.server, second)).sort(), ['from b', 'from the attached server']);
    assert.deepEqual(received(b1).sort(), ['from b', 'from the attached server']);
    await within(attached.server.shutdownAbruptly(), 'the shutdown');
    assert.deepEqual(adapter.calls, ['start', 'publish', 'close']);
  });

  test('a server that only takes upgrades closes its adapter after the clients left, even abruptly', LIMIT, async (t) => {
    const bus = new Bus();
    let clientsAtClose = -1;
    const adapter = bus.join({ onClose: () => (clientsAtClose = attached.server.clients.length) });
    const attached = await startBehindApp(t, { adapter }, { echo: false });
    attached.server.setFnClientLeft((client, server) => server.sendMessageToAll(`client ${client.id} left`));
    const [b] = await joinedServers(t, 1, bus);
    const b1 = await connectWs(t, b!);
    await connectWs(t, attached, {}, { port: attached.port });
    await within(attached.server.shutdownAbruptly(), 'the shutdown');
    assert.equal(clientsAtClose, 0, 'close() came after the clients had gone');
    assert.deepEqual(adapter.calls, ['start', 'publish', 'close']);
    await eachReceived([b1], 1);
    assert.deepEqual(received(b1), ['client 1 left']);
  });

  test('a lazy start that fails is logged, and the server\'s own clients still get its broadcasts', LIMIT, async (t) => {
    const logger = recordingLogger();
    const adapter: BroadcastAdapter = {
      start: () => Promise.reject(new Error('no bus for the app')),
      publish: () => {},
      close: () => {},
    };
    const attached = await startBehindApp(t, { adapter, logger }, { echo: false });
    const peer = await connectWs(t, attached, {}, { port: attached.port });
    await until(() => logger.lines.error.some((line) => line.includes('no bus for the app')), 'the start failure to be logged');
    assert.equal(attached.server.sendMessageToAll('local'), 1);
    await eachReceived([peer], 1);
    assert.deepEqual(received(peer), ['local']);
  });
});

// ─── options ────────────────────────────────────────────────────────────────────────────────────────────────

describe('the adapter and serverId options', () => {
  test('an adapter without start, publish or close is refused with a TypeError', () => {
    const noop = (): void => {};
    assertOptionError({ adapter: { publish: noop, close: noop } }, TypeError, /adapter/);
    assertOptionError({ adapter: { start: noop, close: noop } }, TypeError, /adapter/);
    assertOptionError({ adapter: { start: noop, publish: noop } }, TypeError, /adapter/);
    assertOptionError({ adapter: { start: noop, publish: 'yes', close: noop } }, TypeError, /adapter/);
    assertOptionError({ adapter: null }, TypeError, /adapter/);
    assertOptionError({ adapter: 'redis' }, TypeError, /adapter/);
  });

  test('an empty or non-string serverId is refused with a TypeError', () => {
    assertOptionError({ serverId: '' }, TypeError, /serverId/);
    assertOptionError({ serverId: 7 }, TypeError, /serverId/);
    assertOptionError({ serverId: null }, TypeError, /serverId/);
  });

  test('serverId defaults to a random UUID, different for each server', () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const ids = Array.from({ length: 5 }, () => new WebsocketServer({ logger: SILENT }).serverId);
    for (const id of ids) assert.match(id, uuid);
    assert.equal(new Set(ids).size, ids.length);
  });

  test('the serverId option is the server\'s serverId, its adapter\'s context.serverId and its broadcasts\' origin', LIMIT, async (t) => {
    const bus = new Bus();
    const adapter = bus.join();
    const h = await startServer(t, { adapter, serverId: 'node-a' });
    assert.equal(h.server.serverId, 'node-a');
    assert.equal(adapter.context?.serverId, 'node-a');
    h.server.sendMessageToAll('hi');
    assert.equal(bus.published[0]?.origin, 'node-a');
  });
});

// ─── the wire format ────────────────────────────────────────────────────────────────────────────────────────

describe('encodeBroadcast and decodeBroadcast', () => {
  /** Decoding `bytes` fails with the codec's own RangeError, not one from reading past the end. */
  function assertNotABroadcast(bytes: Uint8Array, what: string): void {
    assert.throws(
      () => decodeBroadcast(bytes),
      (error: unknown) => error instanceof RangeError && /^Cannot decode a broadcast: .+\.$/.test(error.message),
      what,
    );
  }

  /** Decodes and compares with the original, message kind included. */
  function assertRoundTrip(broadcast: Broadcast): void {
    const decoded = decodeBroadcast(encodeBroadcast(broadcast));
    assert.equal(decoded.origin, broadcast.origin);
    assert.deepEqual(decoded.exclude, broadcast.exclude);
    if (typeof broadcast.message === 'string') {
      assert.equal(typeof decoded.message, 'string', 'text stays text');
      assert.equal(decoded.message, broadcast.message);
    } else {
      assert.ok(decoded.message instanceof Uint8Array, 'binary stays binary');
      assert.ok(Buffer.from(decoded.message).equals(Buffer.from(broadcast.message)), 'the bytes differ');
    }
    assert.equal(decoded.topic, broadcast.topic);
    assert.equal('topic' in decoded, broadcast.topic !== undefined, 'a broadcast without a topic decodes without one');
    assert.equal(broadcastOrigin(encodeBroadcast(broadcast)), broadcast.origin);
  }

  test('text round-trips: ASCII, multi-byte UTF-8 (2, 3 and 4 bytes) and empty', () => {
    assertRoundTrip({ origin: 'a', message: 'hello', exclude: [] });
    assertRoundTrip({ origin: 'a', message: 'é € 𝄞 🌍 — naïve', exclude: [3] });
    assertRoundTrip({ origin: 'a', message: '', exclude: [] });
  });

  test('binary round-trips: empty, 64 KiB, and a view into a larger buffer', () => {
    assertRoundTrip({ origin: 'a', message: new Uint8Array(0), exclude: [] });
    assertRoundTrip({ origin: 'a', message: pseudoRandomBytes(64 * 1024, 3), exclude: [1, 2] });
    assertRoundTrip({ origin: 'a', message: viewAtOffset(Buffer.from('only these')), exclude: [] });
  });

  test('many exclusions round-trip, up to the largest safe integer', () => {
    const exclude = Array.from({ length: 10_000 }, (_, i) => i * 7 + 1);
    exclude.push(Number.MAX_SAFE_INTEGER, 0);
    assertRoundTrip({ origin: 'a', message: 'x', exclude });
  });

  test('an origin of 65,535 bytes (and a multi-byte one) round-trips; 65,536 bytes cannot be encoded', () => {
    assertRoundTrip({ origin: 'o'.repeat(0xffff), message: 'x', exclude: [1] });
    assertRoundTrip({ origin: 'nœud-🌍', message: Buffer.from([0]), exclude: [] });
    assert.throws(() => encodeBroadcast({ origin: 'o'.repeat(0x10000), message: 'x', exclude: [] }), RangeError);
  });

  test('decoding works on a view that does not start at the beginning of its buffer', () => {
    const encoded = encodeBroadcast({ origin: 'server-b', message: Buffer.from([9, 8, 7]), exclude: [4] });
    const view = viewAtOffset(encoded);
    assert.equal(broadcastOrigin(view), 'server-b');
    const decoded = decodeBroadcast(view);
    assert.deepEqual([decoded.origin, decoded.exclude, Buffer.from(decoded.message as Uint8Array).toString('hex')], ['server-b', [4], '090807']);
  });

  test('broadcastOrigin reads the origin alone, and refuses what is not an encoded broadcast', () => {
    const encoded = encodeBroadcast({ origin: 'server-a', message: 'hello', exclude: [1, 2] });
    assert.equal(broadcastOrigin(encoded), 'server-a');
    const refused = (error: unknown): boolean => error instanceof RangeError && /^Cannot read the origin of a broadcast: .+\.$/.test(error.message);
    assert.throws(() => broadcastOrigin(Buffer.alloc(0)), refused);
    assert.throws(() => broadcastOrigin(Buffer.from([3, ...encoded.subarray(1)])), refused);
    for (let cut = 0; cut < 8 + 'server-a'.length; cut++) {
      assert.throws(() => broadcastOrigin(encoded.subarray(0, cut)), refused, `cut at ${cut}`);
    }
  });

  const wrongHeaderBytes = [
    { title: 'a wrong format version', field: 'version', offset: 0, values: [0, 3, 255] },
    { title: 'an unknown kind', field: 'kind', offset: 1, values: [0, 3, 255] },
  ];
  for (const { title, field, offset, values } of wrongHeaderBytes) {
    test(`${title} is refused with a RangeError`, () => {
      const encoded = encodeBroadcast({ origin: 'a', message: 'x', exclude: [] });
      for (const value of values) {
        const bytes = Buffer.from(encoded);
        bytes[offset] = value;
        assertNotABroadcast(bytes, `${field} ${value}`);
      }
    });
  }

  test('every truncation before the message ends is refused with a RangeError', () => {
    // With an empty message every proper prefix lacks header bytes: none may decode.
    for (const message of ['', new Uint8Array(0)]) {
      const encoded = encodeBroadcast({ origin: 'server-a', message, exclude: [1, 2, 3] });
      for (let cut = 0; cut < encoded.length; cut++) {
        assertNotABroadcast(encoded.subarray(0, cut), `cut at ${cut} of ${encoded.length}`);
      }
      assert.doesNotThrow(() => decodeBroadcast(encoded));
    }
    // Cutting a text inside a multi-byte character leaves invalid UTF-8.
    const text = encodeBroadcast({ origin: 'a', message: '🌍', exclude: [] });
    for (let cut = text.length - 3; cut < text.length; cut++) {
      assertNotABroadcast(text.subarray(0, cut), `cut at ${cut} inside the character`);
    }
  });

  test('a count of excluded ids larger than the bytes that follow is refused without allocating for it', () => {
    const bytes = Buffer.from(encodeBroadcast({ origin: 'a', message: '', exclude: [] }));
    for (const count of [1, 0x10000, 0xffffffff]) {
      bytes.writeUInt32BE(count, 5);
      assertNotABroadcast(bytes, `count ${count}`);
    }
  });

  test('a broadcast without a topic is still format version 1, byte for byte as before topics', () => {
    const encoded = encodeBroadcast({ origin: 'a', message: 'hi', exclude: [1] });
    assert.equal(encoded.toString('hex'), '0101' + '0001' + '61' + '00000001' + '3ff0000000000000' + '6869');
  });

  test('a topic round-trips as format version 2: ASCII, multi-byte, 65,535 bytes; text and binary', () => {
    assertRoundTrip({ origin: 'a', message: 'to the room', exclude: [2], topic: 'room-1' });
    assertRoundTrip({ origin: 'a', message: Buffer.from([1, 2]), exclude: [], topic: 'salle-été-🌍' });
    assertRoundTrip({ origin: 'a', message: '', exclude: [], topic: 't'.repeat(0xffff) });
    const encoded = encodeBroadcast({ origin: 'a', message: 'hi', exclude: [1], topic: 'r' });
    assert.equal(encoded.toString('hex'), '0201' + '0001' + '61' + '0001' + '72' + '00000001' + '3ff0000000000000' + '6869');
  });

  test('an empty topic, or one over 65,535 bytes, cannot be encoded', () => {
    assert.throws(() => encodeBroadcast({ origin: 'a', message: 'x', exclude: [], topic: '' }), /its topic is empty/);
    assert.throws(() => encodeBroadcast({ origin: 'a', message: 'x', exclude: [], topic: 'é'.repeat(0x8000) }), /longer than 65,535 bytes/);
  });

  test('a version 2 broadcast with an empty, truncated or non-UTF-8 topic is refused; every truncation is', () => {
    const encoded = encodeBroadcast({ origin: 'a', message: '', exclude: [4], topic: 'room' });
    for (let cut = 0; cut < encoded.length; cut++) assertNotABroadcast(encoded.subarray(0, cut), `cut at ${cut}`);
    const empty = Buffer.from(encoded);
    empty.writeUInt16BE(0, 5);
    assertNotABroadcast(empty, 'topic length 0');
    const tooLong = Buffer.from(encoded);
    tooLong.writeUInt16BE(0xffff, 5);
    assertNotABroadcast(tooLong, 'a topic longer than the bytes');
    const invalid = Buffer.from(encoded);
    invalid[7] = 0xff;
    assertNotABroadcast(invalid, 'a topic that is not UTF-8');
    // Version 1 bytes read as version 2 never decode as a topic by accident: their id count is no topic.
    const v1 = Buffer.from(encodeBroadcast({ origin: 'a', message: '', exclude: [] }));
    v1[0] = 2;
    assertNotABroadcast(v1, 'version 1 bytes marked 2');
  });

  test('text that is not valid UTF-8 is refused with a RangeError; the same bytes as binary decode', () => {
    const header = encodeBroadcast({ origin: 'a', message: '', exclude: [] });
    for (const invalid of [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x61, 0xe2, 0x82]]) {
      const bytes = Buffer.concat([header, Buffer.from(invalid)]);
      assertNotABroadcast(bytes, `text ${Buffer.from(invalid).toString('hex')}`);
      bytes[1] = 2;
      assert.ok(decodeBroadcast(bytes).message instanceof Uint8Array);
    }
  });
});
