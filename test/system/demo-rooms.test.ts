// The chat demo's rooms across processes, with `ws` clients: the workers of `server.ts --cluster` share their rooms;
// and, through a redis-server of the test's own, a demo server takes the snapshots of rooms that other servers
// publish (see "Who is in which room" in server.ts) only within its bounds. The other servers here are forgers: a
// RedisAdapter of the test's own publishes snapshots under any origin it likes, so that 65 servers cost nothing.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { RedisAdapter } from '../../adapters/redis.ts';
import { joinChat, runScript, workersListening, type ChatPeer } from '../support/demo.ts';
import { startRedis, type TestRedis } from '../support/redis-server.ts';
import { until } from '../support/wait.ts';

const demoScript = fileURLToPath(new URL('../../server.js', import.meta.url)); // build/server.js
/** The topic the demo's servers publish their snapshots on. */
const DIRECTORY_TOPIC = 'directory:';

/** The last `rooms` event a client received, as [name, count] pairs, and its `more`. */
function lastRooms(peer: ChatPeer): { rooms: Array<[string, number]>; more: number } {
  const event = peer.all({ type: 'rooms' }).at(-1);
  const rooms = (event?.['rooms'] ?? []) as Array<{ name: string; count: number }>;
  return { rooms: rooms.map(({ name, count }) => [name, count]), more: Number(event?.['more'] ?? 0) };
}

/** Waits until the client's last `rooms` event satisfies `condition`. */
async function roomsUntil(peer: ChatPeer, what: string, condition: (rooms: Map<string, number>, more: number) => boolean, ms = 5_000): Promise<void> {
  await until(() => {
    const { rooms, more } = lastRooms(peer);
    return condition(new Map(rooms), more);
  }, `${what} (last rooms: ${JSON.stringify(lastRooms(peer)).slice(0, 300)})`, ms);
}

test('the workers of server.ts --cluster share their rooms: a line and a file cross to members only', { timeout: 30_000 }, async (t) => {
  const demo = await runScript(t, demoScript, ['--cluster', '--workers', '2', '--port', '0']);
  await workersListening(demo, 2);
  // The kernel and the primary hand connections to the workers in turn: a few connections reach both, twice.
  const clients: ChatPeer[] = [];
  const on = (worker: string): ChatPeer[] => clients.filter((client) => client.name.endsWith(`@${worker}`));
  for (let attempt = 0; attempt < 40 && !(on('w1').length >= 2 && on('w2').length >= 2); attempt++) clients.push(await joinChat(t, demo.port));
  const [alice, carol] = on('w1');
  const [bob, dave] = on('w2');
  assert.ok(alice && bob && carol && dave, `two clients on each worker (${clients.map((client) => client.name).join(', ')})`);

  for (const [peer, room] of [[alice, 'garden'], [bob, 'garden'], [carol, 'attic'], [dave, 'attic']] as const) {
    const from = peer.events.length;
    peer.send({ type: 'join', room });
    await peer.next({ type: 'joined', room, id: peer.name }, from);
  }
  // Each worker counts the other's members too.
  for (const peer of [alice, bob, carol, dave]) {
    await roomsUntil(peer, 'two in each room', (rooms) => rooms.get('garden') === 2 && rooms.get('attic') === 2 && rooms.get('lobby') === clients.length);
  }
  const members = await bob.next({ type: 'members', room: 'garden', count: 2 });
  assert.deepEqual(new Set(members['members'] as string[]), new Set([alice.name, bob.name]));

  alice.send({ type: 'say', room: 'garden', text: 'across the workers' });
  await bob.next({ type: 'message', room: 'garden', from: alice.name, text: 'across the workers' });
  bob.send({ type: 'file', room: 'garden', name: 'plan.pdf', mime: 'application/pdf' });
  bob.socket.send(Buffer.from('%PDF-1.7'));
  await alice.next({ type: 'file', room: 'garden', from: bob.name, name: 'plan.pdf', mime: 'application/pdf', size: 8 });
  await until(() => alice.files.length === 1, 'the file on the first worker');
  // Fences: a lobby line of each sender, after which nothing of theirs for the garden can still come.
  for (const sender of [alice, bob]) {
    sender.send({ type: 'say', room: 'lobby', text: `fence from ${sender.name}` });
    for (const outsider of [carol, dave]) await outsider.next({ type: 'message', text: `fence from ${sender.name}` });
  }
  for (const outsider of [carol, dave]) {
    assert.equal(outsider.all({ room: 'garden' }).filter((event) => event['type'] !== 'rooms').length, 0, `${outsider.name} got nothing of the garden`);
    assert.equal(outsider.files.length, 0);
  }
  assert.equal(await demo.stop('SIGTERM'), 0);
});

/** A RedisAdapter of the test's own, which publishes snapshots of rooms as if from any server. */
async function startForger(t: TestContext, redis: TestRedis): Promise<(origin: string, snapshot: unknown) => void> {
  const adapter = new RedisAdapter({ url: redis.url });
  await adapter.start({ serverId: 'forger', deliver() {}, log() {} });
  t.after(() => adapter.close());
  return (origin, snapshot) => {
    const message = typeof snapshot === 'string' ? snapshot : JSON.stringify(snapshot);
    adapter.publish({ origin, message, exclude: [], topic: DIRECTORY_TOPIC });
  };
}

/** A demo server joined through Redis, and a client of it. */
async function demoWithClient(t: TestContext, redis: TestRedis): Promise<ChatPeer> {
  const demo = await runScript(t, demoScript, ['--port', '0', '--redis', redis.url]);
  // The demo subscribes to the snapshots once its adapter has started, before it prints its address; but Redis may
  // confirm a subscription later than the client asks: wait until Redis has it.
  for (let attempt = 0; attempt < 200; attempt++) {
    const numsub = (await redis.command('PUBSUB', 'NUMSUB', `websocket-server:broadcast:topic:${DIRECTORY_TOPIC}`)).trim().split('\n');
    if (Number(numsub.at(-1)) === 1) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return joinChat(t, demo.port);
}

const roomsOf = (prefix: string, count: number, members: (i: number) => number): unknown[] =>
  Array.from({ length: count }, (_, i) => [`${prefix}-${String(i).padStart(2, '0')}`, members(i), []]);

test('a demo server lists the rooms of other servers: at most 64 rooms taken per server, 100 rooms listed, the largest first', { timeout: 30_000 }, async (t) => {
  const redis = await startRedis(t);
  const alice = await demoWithClient(t, redis);
  const forge = await startForger(t, redis);
  // 70 rooms of 3 members from one server (64 taken), 64 rooms of 2 from another, and the lobby: 129 rooms. The
  // names sort the other way round from the sizes.
  forge('server-a', { rooms: roomsOf('z', 70, () => 3) });
  forge('server-b', { rooms: roomsOf('m', 64, () => 2) });
  await roomsUntil(alice, '100 rooms listed and 29 more', (rooms, more) => rooms.size === 100 && more === 29);
  const { rooms } = lastRooms(alice);
  const names = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);
  assert.deepEqual(rooms.map(([name]) => name), [...names('z', 64), ...names('m', 36)], 'the largest first, then by name');
  assert.ok(rooms.every(([name, count]) => count === (name.startsWith('z') ? 3 : 2)));
});

test('a demo server keeps the snapshots of 64 other servers at most', { timeout: 30_000 }, async (t) => {
  const redis = await startRedis(t);
  const alice = await demoWithClient(t, redis);
  const forge = await startForger(t, redis);
  for (let i = 1; i <= 65; i++) forge(`server-${i}`, { rooms: [[`peer-${i}`, 1, [`1@server-${i}`]]] });
  // A later snapshot of a server it keeps: once it shows, the 65th server's came before it.
  forge('server-1', { rooms: [[`peer-1`, 1, ['1@server-1']], ['fence', 1, ['1@server-1']]] });
  await roomsUntil(alice, 'the fence', (rooms) => rooms.has('fence'));
  const names = new Set(lastRooms(alice).rooms.map(([name]) => name));
  assert.equal(names.has('peer-64'), true);
  assert.equal(names.has('peer-65'), false, 'the 65th server is not kept');
  assert.equal(names.size, 64 + 2, "64 servers' rooms, the fence and the lobby");
  // A server that says goodbye is forgotten, which makes room for another.
  forge('server-2', { rooms: [], bye: true });
  forge('server-65', { rooms: [['peer-65', 1, ['1@server-65']]] });
  await roomsUntil(alice, 'the 65th server, now kept', (rooms) => rooms.has('peer-65') && !rooms.has('peer-2'));
});

test('a snapshot is checked entry by entry: bad rooms, counts and names are dropped, 50 names listed per room', { timeout: 30_000 }, async (t) => {
  const redis = await startRedis(t);
  const alice = await demoWithClient(t, redis);
  const forge = await startForger(t, redis);
  alice.send({ type: 'join', room: 'big' });
  await alice.next({ type: 'joined', room: 'big', id: alice.name });
  forge('server-x', 'not a snapshot {');
  forge('server-x', { rooms: 'many' });
  const names = [42, 'n'.repeat(65), ...Array.from({ length: 78 }, (_, i) => `${i}@x`)];
  forge('server-x', {
    rooms: [['Bad Room', 1, []], ['zero', 0, []], ['half', 1.5, []], 'str', ['no-list', 1, 'a'], ['fine', 2, ['1@x', '2@x']], ['big', 80, names]],
  });
  await roomsUntil(alice, 'the valid rooms only', (rooms) => rooms.size === 3);
  assert.deepEqual(lastRooms(alice).rooms, [['big', 81], ['fine', 2], ['lobby', 1]]);
  const members = await alice.next({ type: 'members', room: 'big', count: 81 });
  const listed = members['members'] as string[];
  assert.equal(listed.length, 50, 'at most 50 names listed');
  assert.deepEqual(listed.slice(0, 3), [alice.name, '0@x', '1@x'], "this server's members first; names that are not short strings dropped");
});

test("a demo server forgets another's rooms when it says goodbye, or when it has been silent for 15 s", { timeout: 60_000 }, async (t) => {
  const redis = await startRedis(t);
  const alice = await demoWithClient(t, redis);
  const forge = await startForger(t, redis);
  forge('leaving', { rooms: [['leaving-room', 1, ['1@leaving']]] });
  forge('silent', { rooms: [['silent-room', 1, ['1@silent']]] });
  await roomsUntil(alice, 'both rooms', (rooms) => rooms.has('leaving-room') && rooms.has('silent-room'));
  forge('leaving', { rooms: [], bye: true });
  await roomsUntil(alice, 'the goodbye', (rooms) => !rooms.has('leaving-room'));
  assert.equal(new Map(lastRooms(alice).rooms).has('silent-room'), true, 'the silent one is still listed');
  // Forgotten between 15 and 20 s after it was last heard from (the demo looks every 5 s).
  await roomsUntil(alice, 'the silent server to be forgotten', (rooms) => !rooms.has('silent-room'), 30_000);
  assert.deepEqual(lastRooms(alice).rooms, [['lobby', 1]], 'then only the lobby');
});
