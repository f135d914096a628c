// ClusterAdapter and relayClusterBroadcasts in a real node:cluster: two workers share one port, a broadcast on
// one reaches the clients of both, and SIGTERM to the primary ends every process by itself. The cluster is the
// fixture ./support/cluster-node.ts (its protocol is described at its top), spawned anew for each test.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type WebSocket from 'ws';
import { ClusterAdapter } from '../../adapters/cluster.ts';
import type { AdapterContext } from '../../websocket-server.ts';
import { openWs, pseudoRandomBytes, startServer } from '../support/harness.ts';
import { LIMIT, until, within } from '../support/wait.ts';

const FIXTURE = fileURLToPath(new URL('../support/cluster-node.js', import.meta.url));

interface WorkerInfo {
  id: number;
  pid: number;
  port: number;
}

/** A running cluster: its primary, the workers it reported and every event line it wrote. */
interface Cluster {
  readonly primary: ChildProcess;
  readonly port: number;
  readonly workers: WorkerInfo[];
  readonly events: Array<Record<string, unknown>>;
  /** Settles when the primary has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What the primary and the workers wrote to stderr. */
  stderr(): string;
}

/** Spawns the fixture and waits until both workers listen; every process it started is gone after the test. */
async function startCluster(t: TestContext, env?: Record<string, string>): Promise<Cluster> {
  const primary = spawn(process.execPath, [FIXTURE, '--workers', '2'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(env && { env: { ...process.env, ...env } }),
  });
  const events: Array<Record<string, unknown>> = [];
  let stderr = '';
  primary.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    primary.once('exit', (code, signal) => resolve({ code, signal })),
  );
  createInterface({ input: primary.stdout! }).on('line', (line) => events.push(JSON.parse(line) as Record<string, unknown>));
  t.after(async () => {
    // Only if a test failed half-way: the workers (told by the events which are still running), then the primary.
    const gone = new Set(events.filter((e) => e['event'] === 'worker-exit').map((e) => e['pid']));
    const ready = events.find((e) => e['event'] === 'ready');
    if (primary.exitCode === null && primary.signalCode === null) {
      for (const worker of (ready?.['workers'] as WorkerInfo[] | undefined) ?? []) {
        if (!gone.has(worker.pid)) killQuietly(worker.pid);
      }
      primary.kill('SIGKILL');
      await within(exited, 'the primary to be killed');
    }
  });
  await until(
    () => events.some((e) => e['event'] === 'ready') || primary.exitCode !== null,
    `the cluster to be ready (stderr: ${stderr})`,
    8_000,
  );
  const ready = events.find((e) => e['event'] === 'ready');
  assert.ok(ready, `the cluster ended before it was ready: ${JSON.stringify(events)} ${stderr}`);
  const workers = ready['workers'] as WorkerInfo[];
  assert.equal(workers.length, 2);
  assert.equal(workers[0]!.port, workers[1]!.port, 'the workers share one port');
  return { primary, port: workers[0]!.port, workers, events, exited, stderr: () => stderr };
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** A `ws` client of the cluster, knowing which worker it landed on. */
interface Peer {
  readonly ws: WebSocket;
  readonly worker: number;
  readonly clientId: number;
  /** What it received after learning its worker, in order. */
  readonly inbox: Array<{ data: Buffer; isBinary: boolean }>;
  readonly closed: Promise<number>;
}

/** Connects a client and asks it which worker it is on (`whoami`); the answer is not kept in its inbox. */
async function connectPeer(t: TestContext, port: number): Promise<Peer> {
  const ws = await openWs(t, `ws://127.0.0.1:${port}/`);
  const closed = once(ws, 'close').then(([code]) => code as number);
  const inbox: Peer['inbox'] = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => inbox.push({ data, isBinary }));
  ws.send('whoami');
  await until(() => inbox.length > 0, 'the answer to whoami');
  const { worker, client } = JSON.parse(inbox.shift()!.data.toString('utf8')) as { worker: number; client: number };
  return { ws, worker, clientId: client, inbox, closed };
}

/**
 * Connects clients until each worker has at least `perWorker` of them (the primary deals connections round
 * robin, so this takes few attempts; it gives up after 40). Returns them by worker id; extra ones are kept.
 */
async function peersOnEachWorker(t: TestContext, cluster: Cluster, perWorker: number): Promise<Map<number, Peer[]>> {
  const byWorker = new Map<number, Peer[]>(cluster.workers.map((w) => [w.id, []]));
  const enough = (): boolean => [...byWorker.values()].every((peers) => peers.length >= perWorker);
  for (let attempt = 0; attempt < 40 && !enough(); attempt++) {
    const peer = await connectPeer(t, cluster.port);
    byWorker.get(peer.worker)!.push(peer);
  }
  assert.ok(enough(), `40 connections did not give each worker ${perWorker}: ${[...byWorker].map(([w, p]) => `${w}:${p.length}`)}`);
  return byWorker;
}

/** The messages a peer received, text as is and binary as `<hex>`. */
function received(peer: Peer): string[] {
  return peer.inbox.map(({ data, isBinary }) => (isBinary ? `<${data.toString('hex')}>` : data.toString('utf8')));
}

/** Sends a control text (`whoami`, `stats`) and resolves with its JSON answer, taken out of the inbox. */
async function ask<T>(peer: Peer, control: string): Promise<T> {
  const before = peer.inbox.length;
  peer.ws.send(control);
  await until(() => peer.inbox.length > before, `the answer to ${control}`);
  return JSON.parse(peer.inbox.splice(before, 1)[0]!.data.toString('utf8')) as T;
}

async function eachReceived(peers: Peer[], count: number): Promise<void> {
  await until(() => peers.every((peer) => peer.inbox.length >= count), `${count} message(s) at each client`);
}

describe('ClusterAdapter across the workers of node:cluster', () => {
  test('text and binary from a client reach the clients of both workers byte-exact, and not the sender', LIMIT, async (t) => {
    const cluster = await startCluster(t);
    const byWorker = await peersOnEachWorker(t, cluster, 1);
    const [w1, w2] = cluster.workers.map((w) => byWorker.get(w.id)!);
    const sender = w1![0]!;
    const others = [...w1!.slice(1), ...w2!];
    const bytes = pseudoRandomBytes(100_000, 11);
    sender.ws.send('héllo, wörld 🌍');
    sender.ws.send(bytes);
    sender.ws.send(Buffer.alloc(0));
    await eachReceived(others, 3);
    for (const peer of others) {
      assert.deepEqual(peer.inbox.map((m) => m.isBinary), [false, true, true], `kinds at a client of worker ${peer.worker}`);
      assert.equal(peer.inbox[0]!.data.toString('utf8'), 'héllo, wörld 🌍');
      assert.ok(peer.inbox[1]!.data.equals(bytes), `the binary message differs at a client of worker ${peer.worker}`);
      assert.equal(peer.inbox[2]!.data.length, 0);
    }
    // A marker from the other worker travels the same IPC path as an echo of the sender's broadcasts would:
    // whatever the sender got before it is everything it got.
    w2![0]!.ws.send('marker');
    await until(() => received(sender).includes('marker'), 'the marker at the sender');
    assert.deepEqual(received(sender), ['marker'], 'the sender got its own messages back');
  });

  test("with node:cluster's default JSON serialization too, text and binary cross byte-exact", LIMIT, async (t) => {
    const cluster = await startCluster(t, { SERIALIZATION: 'json' });
    const byWorker = await peersOnEachWorker(t, cluster, 1);
    const sender = byWorker.get(cluster.workers[0]!.id)![0]!;
    const remote = byWorker.get(cluster.workers[1]!.id)![0]!;
    const bytes = pseudoRandomBytes(10_000, 12);
    sender.ws.send('ünïcode ✓');
    sender.ws.send(bytes);
    await eachReceived([remote], 2);
    assert.deepEqual(remote.inbox.map((m) => m.isBinary), [false, true]);
    assert.equal(remote.inbox[0]!.data.toString('utf8'), 'ünïcode ✓');
    assert.ok(remote.inbox[1]!.data.equals(bytes), 'the binary message arrives byte-exact through JSON');
  });

  test('a client on the same worker as the sender gets the broadcast too', LIMIT, async (t) => {
    const cluster = await startCluster(t);
    const byWorker = await peersOnEachWorker(t, cluster, 2);
    const [sender, neighbour] = byWorker.get(cluster.workers[0]!.id)!;
    const remote = byWorker.get(cluster.workers[1]!.id)![0]!;
    assert.equal(neighbour!.worker, sender!.worker, 'the premise: both on one worker');
    sender!.ws.send('to my neighbour and beyond');
    await eachReceived([neighbour!, remote], 1);
    assert.deepEqual(received(neighbour!), ['to my neighbour and beyond']);
    assert.deepEqual(received(remote), ['to my neighbour and beyond']);
  });

  test('500 numbered messages from one client arrive in order on both workers, and are counted once each', LIMIT, async (t) => {
    const cluster = await startCluster(t);
    const byWorker = await peersOnEachWorker(t, cluster, 2);
    const [sender, neighbour] = byWorker.get(cluster.workers[0]!.id)!;
    const remote = byWorker.get(cluster.workers[1]!.id)![0]!;
    const expected: string[] = [];
    for (let i = 0; i < 500; i++) {
      if (i % 2 === 0) {
        sender!.ws.send(`#${i}`);
        expected.push(`#${i}`);
      } else {
        const bytes = Buffer.alloc(4);
        bytes.writeUInt32BE(i);
        sender!.ws.send(bytes);
        expected.push(`<${bytes.toString('hex')}>`);
      }
    }
    await eachReceived([neighbour!, remote], 500);
    assert.deepEqual(received(remote), expected, 'order on the other worker');
    assert.deepEqual(received(neighbour!), expected, 'order on the same worker');
    type Counters = { broadcastsPublished: number; broadcastsReceived: number; adapterReceived: number };
    assert.deepEqual(await ask<Counters>(sender!, 'stats'), { broadcastsPublished: 500, broadcastsReceived: 0, adapterReceived: 0 });
    assert.deepEqual(await ask<Counters>(remote, 'stats'), { broadcastsPublished: 0, broadcastsReceived: 500, adapterReceived: 500 });
  });

  test('SIGTERM to the primary closes every client with 1001, and every process exits by itself with code 0', LIMIT, async (t) => {
    const cluster = await startCluster(t);
    const byWorker = await peersOnEachWorker(t, cluster, 1);
    const peers = [...byWorker.values()].flat();
    // The adapters have carried a broadcast each way before the shutdown.
    const [first, second] = cluster.workers.map((w) => byWorker.get(w.id)![0]!);
    first!.ws.send('from the first worker');
    second!.ws.send('from the second worker');
    await until(() => received(second!).includes('from the first worker') && received(first!).includes('from the second worker'), 'a broadcast each way');
    cluster.primary.kill('SIGTERM');
    const codes = await within(Promise.all(peers.map((peer) => peer.closed)), 'every client to be closed');
    assert.deepEqual(codes, peers.map(() => 1001));
    assert.deepEqual(await within(cluster.exited, `the primary to exit (stderr: ${cluster.stderr()})`, 8_000), { code: 0, signal: null });
    const exits = cluster.events.filter((e) => e['event'] === 'worker-exit');
    assert.deepEqual(
      exits.map((e) => [e['pid'], e['code'], e['signal']]).sort(),
      cluster.workers.map((w) => [w.pid, 0, null]).sort(),
      'each worker exited by itself with code 0',
    );
    for (const worker of cluster.workers) {
      assert.throws(() => process.kill(worker.pid, 0), { code: 'ESRCH' }, `worker ${worker.id} is gone`);
    }
    assert.equal(cluster.stderr(), '', 'nothing was logged at warning or above');
  });
});

describe('topics across the workers of node:cluster', () => {
  type Counters = { broadcastsPublished: number; broadcastsReceived: number; adapterReceived: number };

  /** Sends `join:<topic>` (or `leave:`) and waits for its answer, which is taken out of the inbox. */
  async function control(peer: Peer, command: string): Promise<void> {
    const before = peer.inbox.length;
    peer.ws.send(command);
    await until(() => peer.inbox.length > before, `the answer to ${command}`);
    const answer = peer.inbox.splice(before, 1)[0]!.data.toString('utf8');
    assert.equal(answer, command.replace(/^join:/, 'joined:').replace(/^leave:/, 'left:'));
  }

  /**
   * Waits until the primary routes `topic` to the member's worker: the subscription crosses another IPC channel
   * than the publishes do, so the publisher probes (bounded) until one arrives; the probes are then forgotten.
   */
  async function routed(member: Peer, publisher: Peer, topic: string): Promise<void> {
    const timer = setInterval(() => publisher.ws.send(`publish:${topic}:probe`), 20);
    try {
      await until(() => member.inbox.length > 0, `the first probe of ${topic} at the member`);
    } finally {
      clearInterval(timer);
    }
    await delay(100); // probes still in flight arrive meanwhile
    member.inbox.length = 0;
  }

  test("a publish on one worker reaches the room's clients on the other; a worker without subscribers is sent nothing for it", LIMIT, async (t) => {
    const cluster = await startCluster(t);
    const byWorker = await peersOnEachWorker(t, cluster, 2);
    const [member, outsider] = byWorker.get(cluster.workers[0]!.id)!;
    const [publisher, bystander] = byWorker.get(cluster.workers[1]!.id)!;
    await control(member!, 'join:room');
    await routed(member!, publisher!, 'room');
    const probes = (await ask<Counters>(member!, 'stats')).adapterReceived;
    publisher!.ws.send('publish:room:hello room');
    await eachReceived([member!], 1);
    assert.deepEqual(received(member!), ['hello room']);
    // The member's worker publishes to a topic nobody on the other worker is in: the primary sends it nothing.
    member!.ws.send('publish:lonely:nobody');
    bystander!.ws.send('marker'); // a plain broadcast: it reaches every client of both workers
    await eachReceived([member!, outsider!, publisher!], 1);
    await until(() => received(member!).includes('marker'), 'the marker at the member');
    const before = await ask<Counters>(publisher!, 'stats');
    assert.equal(before.adapterReceived, 0, 'the publisher\'s worker got nothing from the other worker: lonely had no subscriber there');
    const memberStats = await ask<Counters>(member!, 'stats');
    assert.equal(memberStats.adapterReceived, probes + 2, 'the member\'s worker got the publish to room and the marker');
    assert.deepEqual(received(outsider!), ['marker'], 'a client of the member\'s worker outside the room gets only the marker');
    assert.deepEqual(received(bystander!), [], 'the sender of the marker gets nothing');
  });

  test('after its last subscriber leaves, a worker is sent no more of the topic', LIMIT, async (t) => {
    const cluster = await startCluster(t);
    const byWorker = await peersOnEachWorker(t, cluster, 1);
    const member = byWorker.get(cluster.workers[0]!.id)![0]!;
    const publisher = byWorker.get(cluster.workers[1]!.id)![0]!;
    await control(member, 'join:room');
    await routed(member, publisher, 'room');
    publisher.ws.send('publish:room:one');
    await eachReceived([member], 1);
    const before = (await ask<Counters>(member, 'stats')).adapterReceived;
    await control(member, 'leave:room');
    // The unsubscription reaches the primary over the member's channel; the marker goes the same way back.
    member.ws.send('marker-from-member');
    await until(() => received(publisher).includes('marker-from-member'), 'the marker at the publisher');
    publisher.ws.send('publish:room:two');
    publisher.ws.send('after'); // a plain broadcast, sent after the publish on the same path
    await until(() => received(member).includes('after'), 'the plain broadcast at the former member');
    assert.deepEqual(received(member), ['one', 'after']);
    assert.equal((await ask<Counters>(member, 'stats')).adapterReceived, before + 1, 'the primary did not forward "two"');
  });
});

describe('ClusterAdapter outside a cluster worker', () => {
  const context: AdapterContext = { serverId: 'test', deliver() {}, log() {} };

  test('start() outside a worker of node:cluster throws', () => {
    assert.throws(() => new ClusterAdapter().start(context), (error: unknown) => error instanceof Error && /not a worker/.test(error.message));
  });

  test('a server with a ClusterAdapter outside a worker fails to start: runForever() rejects', LIMIT, async (t) => {
    const { server } = await startServer(t, { adapter: new ClusterAdapter() }, { run: false });
    await assert.rejects(within(server.runForever(), 'runForever()'), /not a worker/);
    assert.equal(server.port, 0, 'it never listened');
  });

  test('an empty or non-string channel is refused with a TypeError', () => {
    assert.throws(() => new ClusterAdapter({ channel: '' }), TypeError);
    assert.throws(() => new ClusterAdapter({ channel: 7 as unknown as string }), TypeError);
  });
});

describe('the cluster relay under a stuck worker', () => {
  test('past maxPendingBytes a stopped worker misses broadcasts instead of costing the primary memory; it catches up after', LIMIT, async (t) => {
    const cluster = await startCluster(t, { MAX_PENDING_BYTES: String(256 * 1024) });
    const byWorker = await peersOnEachWorker(t, cluster, 1);
    const [first, second] = cluster.workers;
    const sender = byWorker.get(first!.id)![0]!;
    const stuck = byWorker.get(second!.id)![0]!;
    t.after(() => {
      try {
        process.kill(second!.pid, 'SIGCONT');
      } catch {
        // already gone
      }
    });

    process.kill(second!.pid, 'SIGSTOP');
    const count = 40;
    for (let i = 0; i < count; i++) {
      const message = Buffer.alloc(64 * 1024, i);
      message.writeUInt32BE(i, 0);
      sender.ws.send(message);
      // One message per read of the worker: each crosses as an IPC message of its own.
      await delay(5);
    }
    await until(() => /IPC channel to worker \d+ holds \d+ bytes not yet sent: dropping broadcasts/.test(cluster.stderr()), 'the primary to start dropping');

    process.kill(second!.pid, 'SIGCONT');
    await until(() => /IPC channel to worker \d+ has drained; \d+ broadcast\(s\) were dropped/.test(cluster.stderr()), 'the backlog to drain');
    const dropped = Number(/has drained; (\d+) broadcast/.exec(cluster.stderr())![1]);
    assert.ok(dropped > 0 && dropped < count, `dropped ${dropped} of ${count}`);
    await until(() => stuck.inbox.length === count - dropped, `the stopped worker's client to get the ${count - dropped} relayed broadcasts`);
    const indexes = stuck.inbox.map(({ data }) => data.readUInt32BE(0));
    assert.deepEqual(indexes, [...indexes].sort((x, y) => x - y), 'in order, with gaps');
    assert.ok(indexes.length * 64 * 1024 <= 256 * 1024 + 64 * 1024 + 512 * 1024, `at most the limit (and what the pipe held) was queued: ${indexes.length}`);

    // And it is in the chat again.
    sender.ws.send('back');
    await until(() => received(stuck).at(-1) === 'back', 'a broadcast after the catch-up');
  });

  test('a worker whose primary is stopped keeps serving its own clients, drops past maxPendingBytes, and shares again after', LIMIT, async (t) => {
    const cluster = await startCluster(t, { MAX_PENDING_BYTES: String(256 * 1024) });
    const byWorker = await peersOnEachWorker(t, cluster, 2);
    const [first, second] = cluster.workers;
    const [sender, neighbour] = byWorker.get(first!.id)!;
    const remote = byWorker.get(second!.id)![0]!;
    const primaryPid = cluster.primary.pid!;
    t.after(() => {
      try {
        process.kill(primaryPid, 'SIGCONT');
      } catch {
        // already gone
      }
    });

    process.kill(primaryPid, 'SIGSTOP');
    const count = 40;
    for (let i = 0; i < count; i++) {
      const message = Buffer.alloc(64 * 1024, i);
      message.writeUInt32BE(i, 0);
      sender!.ws.send(message);
      await delay(5);
    }
    // The sender's own worker delivers every one of them at once: the stopped primary holds up only the sharing.
    await until(() => neighbour!.inbox.length === count, "every broadcast at the sender's worker");
    await until(() => /IPC channel to the primary holds \d+ bytes not yet sent: dropping broadcasts/.test(cluster.stderr()), 'the worker to start dropping');

    process.kill(primaryPid, 'SIGCONT');
    await until(() => /IPC channel to the primary has drained; \d+ broadcast\(s\) were dropped/.test(cluster.stderr()), 'the backlog to drain');
    const dropped = Number(/primary has drained; (\d+) broadcast/.exec(cluster.stderr())![1]);
    assert.ok(dropped > 0 && dropped < count, `dropped ${dropped} of ${count}`);
    await until(() => remote.inbox.length === count - dropped, `the other worker's client to get the ${count - dropped} shared broadcasts`);
    sender!.ws.send('back');
    await until(() => received(remote).at(-1) === 'back', 'a broadcast after the catch-up');
  });
});
