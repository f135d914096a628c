// Our server, as the benchmark runs it: imported by its package name, the way users do, so it runs the built
// dist/websocket-server.js. Echo on every path; a message from a client whose path is /sender goes to everyone.
// Topics (the publish scenarios): a client whose path is /topic/<n> is subscribed to topic n when it connects, and
// the messages of a client whose path is /publish/<T> are published to topics 0, 1, …, T - 1 in turn.
//
// The same script is each process of the two-process servers, told by its environment (set by the orchestrator
// or by servers/cluster.ts): BENCH_ADAPTER=cluster in a worker of `ours-cluster` (a ClusterAdapter), or
// BENCH_ADAPTER=redis://127.0.0.1:PORT in a process of `ours-redis` (a RedisAdapter on the run's redis-server);
// BENCH_PORT is the port to listen on (default 0, any free port). Nothing else differs: same options (but the log
// level, which lets an adapter's warnings through), same handlers, so that what the cross-process runs add to a
// broadcast or a publish is the adapter's work.
import { WebsocketServer, type BroadcastAdapter } from 'websocket-server';
import { ClusterAdapter } from 'websocket-server/adapters/cluster';
import { serveControl } from './control.ts';
import { Publisher, topicOfPath } from './topics.ts';

// Gone with the orchestrator (or the cluster's primary) even while starting: the Redis adapter's start waits
// for Redis, and serveControl, which also does this, only runs once the server listens.
process.once('disconnect', () => process.exit(0));

const adapterSetting = process.env['BENCH_ADAPTER'];
let adapter: BroadcastAdapter | undefined;
if (adapterSetting === 'cluster') {
  adapter = new ClusterAdapter();
} else if (adapterSetting !== undefined && adapterSetting.startsWith('redis://')) {
  // Loaded only here: the single-process server does not load the redis client at all.
  const { RedisAdapter } = await import('websocket-server/adapters/redis');
  // The bench's redis-server is up before this process starts: give up at once if it is not reached.
  adapter = new RedisAdapter({ url: adapterSetting, startTimeout: 5_000 });
} else if (adapterSetting !== undefined && adapterSetting !== '') {
  throw new Error(`BENCH_ADAPTER must be 'cluster' or a redis:// URL, not ${adapterSetting}.`);
}

// client.data: the publisher's turn over the topics, on the client at /publish/<T>; undefined on the others.
const server = new WebsocketServer<Publisher | undefined>({
  port: Number(process.env['BENCH_PORT'] ?? 0),
  host: '127.0.0.1',
  // With an adapter, its warnings (a broadcast dropped, Redis unreachable) explain a failed run (see run.ts).
  loglevel: adapter === undefined ? 'critical' : 'warning',
  maxMessageSize: 16 * 1024 * 1024,
  // A broadcast must reach every receiver: queue for a receiver that is behind rather than close or drop.
  slowClientPolicy: 'queue',
  maxBufferedAmount: 1024 * 1024 * 1024,
  ...(adapter === undefined ? {} : { adapter }),
});

let errors = 0;
server.setFnError(() => errors++);
server.setFnNewClient((client, server) => {
  const topic = topicOfPath(client.request.path);
  if (topic !== undefined) server.subscribe(client, topic);
  else client.data = Publisher.ofPath(client.request.path);
});
server.setFnMessageReceived((client, server, message) => {
  if (client.data !== undefined) server.publish(client.data.next(), message);
  else if (client.request.path === '/sender') server.sendMessageToAll(message);
  else server.sendMessage(client, message);
});

await server.runForever();
if (adapter !== undefined && 'stats' in adapter) {
  // RedisAdapter starts anyway when Redis is not reached (its broadcasts then stay local): not a valid run.
  const stats = (adapter as { stats: { reachable: boolean } }).stats;
  if (!stats.reachable) throw new Error(`Redis at ${adapterSetting} was not reached: this server would broadcast to its own clients only.`);
}
serveControl('ours', server.port, { bufferutil: false }, {
  clients: () => server.clients.length,
  errors: () => errors,
});
