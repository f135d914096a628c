// The chat demo beyond one process, as a user starts it: `server.ts --cluster` (the workers share one port) and
// two `server.ts --redis URL` on different ports. Independent `ws` clients check that the chat is one chat.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type WebSocket from 'ws';
import { runScript, workersListening } from '../support/demo.ts';
import { newWs } from '../support/harness.ts';
import { startRedis } from '../support/redis-server.ts';
import { until, within } from '../support/wait.ts';

const demoScript = fileURLToPath(new URL('../../server.js', import.meta.url)); // build/server.js

/** A chat page stand-in: what it received, text events parsed, files as byte counts. */
interface ChatClient {
  readonly socket: WebSocket;
  /** Its name in the chat, from the welcome event: `id@w<worker>` or `id@<port>`. */
  readonly name: string;
  readonly events: Array<Record<string, unknown>>;
  readonly files: Buffer[];
  readonly closed: Promise<number>;
}

async function joinChat(t: TestContext, port: number): Promise<ChatClient> {
  const socket = newWs(t, `ws://127.0.0.1:${port}/`);
  const events: Array<Record<string, unknown>> = [];
  const files: Buffer[] = [];
  socket.on('message', (data: Buffer, isBinary) => {
    if (isBinary) files.push(data);
    else events.push(JSON.parse(data.toString('utf8')) as Record<string, unknown>);
  });
  const closed = once(socket, 'close').then(([code]) => code as number);
  await within(once(socket, 'open'), 'the chat to accept a client');
  await until(() => events.some((event) => event['type'] === 'welcome'), 'the welcome event');
  const name = String(events.find((event) => event['type'] === 'welcome')!['id']);
  return { socket, name, events, files, closed };
}

const said = (client: ChatClient, text: string): boolean =>
  client.events.some((event) => event['type'] === 'message' && event['text'] === text);

test('npm run start:cluster: clients of two workers sharing one port chat as one, files included', { timeout: 30_000 }, async (t) => {
  const demo = await runScript(t, demoScript, ['--cluster', '--workers', '2', '--port', '0']);
  await workersListening(demo, 2);
  // The kernel and the primary hand connections to the workers in turn: a few connections reach both.
  const clients: ChatClient[] = [];
  t.after(() => {
    for (const client of clients) client.socket.terminate();
  });
  const onWorker = (worker: string): ChatClient | undefined => clients.find((client) => client.name.endsWith(`@${worker}`));
  for (let attempt = 0; attempt < 40 && !(onWorker('w1') && onWorker('w2')); attempt++) clients.push(await joinChat(t, demo.port));
  const one = onWorker('w1');
  const two = onWorker('w2');
  assert.ok(one && two, `clients reached both workers (${clients.map((client) => client.name).join(', ')})`);

  one.socket.send('hello across workers');
  await until(() => said(two, 'hello across workers'), 'the line on the other worker');
  const line = two.events.find((event) => event['text'] === 'hello across workers')!;
  assert.equal(line['from'], one.name);

  const file = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 31) & 0xff));
  two.socket.send(file);
  await until(() => one.files.length === 1, 'the file on the first worker');
  assert.ok(one.files[0]!.equals(file), 'the file arrives byte for byte');
  assert.ok(one.events.some((event) => event['type'] === 'file' && event['from'] === two.name && event['size'] === file.length));
  // Nobody gets their own line or file back.
  assert.equal(said(one, 'hello across workers'), false);
  assert.equal(two.files.length, 0);

  assert.equal(await demo.stop('SIGTERM'), 0, 'the primary ends with 0 once its workers have');
  for (const client of clients) assert.equal(await within(client.closed, 'the close'), 1001);
});

test('npm run start:cluster: a worker that crashes is replaced, and the chat goes on across the new one', { timeout: 30_000 }, async (t) => {
  const demo = await runScript(t, demoScript, ['--cluster', '--workers', '2', '--port', '0']);
  await workersListening(demo, 2);
  const clients: ChatClient[] = [];
  t.after(() => {
    for (const client of clients) client.socket.terminate();
  });
  clients.push(await joinChat(t, demo.port));
  const victim = clients[0]!;
  const worker = /@(w\d+)$/.exec(victim.name)![1]!;
  const pid = Number(new RegExp(`worker ${worker.slice(1)} \\(pid (\\d+)\\)`).exec(demo.output())?.[1]);
  assert.ok(pid > 0, `the demo printed the pid of ${worker}`);
  process.kill(pid, 'SIGKILL');
  assert.notEqual(await within(victim.closed, 'the crashed worker to drop its client'), 1000);
  await until(() => /worker \d+ ended \(SIGKILL\)/.test(demo.output()), 'the primary to notice');
  await until(() => /worker 3 \(pid \d+\): Chat demo/.test(demo.output()), 'a third worker to take its place');

  const onWorker = (name: string): ChatClient | undefined => clients.find((client) => client.name.endsWith(`@${name}`));
  const survivor = worker === 'w1' ? 'w2' : 'w1';
  for (let attempt = 0; attempt < 40 && !(onWorker(survivor) && onWorker('w3')); attempt++) clients.push(await joinChat(t, demo.port));
  const fresh = onWorker('w3');
  const old = onWorker(survivor);
  assert.ok(fresh && old, `clients reached the new worker and the survivor (${clients.map((client) => client.name).join(', ')})`);
  fresh.socket.send('hello from the new worker');
  await until(() => said(old, 'hello from the new worker'), 'the line on the surviving worker');
  assert.equal(await demo.stop('SIGTERM'), 0);
});

test('two server.ts --redis on different ports chat as one; a restart of Redis is survived', { timeout: 30_000 }, async (t) => {
  const redis = await startRedis(t);
  const first = await runScript(t, demoScript, ['--port', '0', '--redis', redis.url]);
  const second = await runScript(t, demoScript, ['--port', '0', '--redis', redis.url]);
  const alice = await joinChat(t, first.port);
  const bob = await joinChat(t, second.port);
  t.after(() => {
    alice.socket.terminate();
    bob.socket.terminate();
  });
  assert.equal(alice.name, `1@${first.port}`);
  assert.equal(bob.name, `1@${second.port}`, 'each server numbers its own clients');
  await until(() => alice.events.some((event) => event['type'] === 'joined' && event['id'] === bob.name), 'the join on the other server');

  alice.socket.send('one');
  await until(() => said(bob, 'one'), 'a line through Redis');

  await redis.crash();
  await until(() => /Redis at .* is unreachable/.test(first.output()), 'the unreachable warning');
  await redis.restart();
  // The demo's client reconnects by itself (backing off up to 2 s): a probe crosses once it has.
  let crossed = false;
  for (let probe = 1; probe <= 100 && !crossed; probe++) {
    alice.socket.send(`probe ${probe}`);
    crossed = await until(() => said(bob, `probe ${probe}`), 'a probe', 100).then(
      () => true,
      () => false,
    );
  }
  assert.ok(crossed, 'a line crosses the restarted Redis within 10 s');
  assert.match(first.output(), /Redis at .* is reachable again/);

  assert.equal(await first.stop('SIGTERM'), 0);
  assert.equal(await second.stop('SIGTERM'), 0);
  assert.equal((await redis.clients()).length, 0, 'the demo servers left no connection to Redis');
});
