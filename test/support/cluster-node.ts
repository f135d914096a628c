// A node:cluster of workers sharing one port, each with a WebsocketServer joined by a ClusterAdapter: the
// process that test/long/cluster.test.ts spawns (compiled to build/test/support/cluster-node.js).
//
//   node build/test/support/cluster-node.js [--workers 2]
//
// The primary calls relayClusterBroadcasts(), forks the workers, and writes one JSON line per event to stdout:
//   {"event":"ready","workers":[{"id":1,"pid":1234,"port":40001},...]}   once every worker listens
//   {"event":"worker-exit","id":1,"pid":1234,"code":0,"signal":null}      for each worker that exits
// On SIGTERM it sends SIGTERM to every worker and waits: once they have all exited it has nothing left to do and
// ends by itself, with code 0 if every worker exited with 0, else 1.
//
// Each worker runs a server on 127.0.0.1, port 0: in a cluster, workers that listen on port 0 share one port
// (the primary picks it at the first listen). What a client sends:
//   the text "whoami"  answered to that client only: {"worker":<cluster worker id>,"pid":<pid>,"client":<client id>}
//   the text "stats"   answered to that client only: {"broadcastsPublished":n,"broadcastsReceived":n,"adapterReceived":n}
//                      (adapterReceived: what the worker's ClusterAdapter got from the primary)
//   "join:<topic>"     server.subscribe(client, topic), answered "joined:<topic>"
//   "leave:<topic>"    server.unsubscribe(client, topic), answered "left:<topic>"
//   "publish:<topic>:<text>"  server.publish(topic, text, client)
//   anything else      server.sendMessageToAll(message, client): every client of every worker but the sender
// The environment variable MAX_PENDING_BYTES, when set, is the maxPendingBytes of the relay and of the workers'
// adapters (their warnings go to stderr). SERIALIZATION=json forks the workers with node:cluster's default
// serialization instead of the relay's 'advanced'.
// On SIGTERM a worker shuts its server down gracefully (its clients see 1001), then disconnects from the primary,
// as node:cluster workers end; it never calls process.exit, so it exits only if nothing else keeps it alive.
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { ClusterAdapter, relayClusterBroadcasts } from '../../adapters/cluster.ts';
import { WebsocketServer } from '../../websocket-server.ts';

/** The tag of the IPC message a worker sends the primary once it listens. */
const READY = 'cluster-node:ready';

interface WorkerInfo {
  id: number;
  pid: number;
  port: number;
}

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function runPrimary(): void {
  const { values } = parseArgs({ options: { workers: { type: 'string', default: '2' } } });
  const count = Number(values.workers);
  relayClusterBroadcasts(maxPendingBytes === undefined ? {} : { maxPendingBytes: Number(maxPendingBytes) });
  // As when the workers are forked before relayClusterBroadcasts() set 'advanced': the adapters must cope.
  if (process.env['SERIALIZATION'] === 'json') cluster.setupPrimary({ serialization: 'json' });
  const ready: WorkerInfo[] = [];
  let failed = false;
  cluster.on('message', (worker, message: unknown) => {
    if (typeof message !== 'object' || message === null || !(READY in message)) return;
    ready.push({ id: worker.id, pid: worker.process.pid ?? -1, port: (message as Record<string, number>)[READY]! });
    if (ready.length === count) emit({ event: 'ready', workers: ready.sort((a, b) => a.id - b.id) });
  });
  cluster.on('exit', (worker, code, signal) => {
    if (code !== 0) failed = true;
    emit({ event: 'worker-exit', id: worker.id, pid: worker.process.pid, code, signal });
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exitCode = failed ? 1 : 0;
  });
  process.once('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  });
  for (let i = 0; i < count; i++) cluster.fork();
}

const maxPendingBytes = process.env['MAX_PENDING_BYTES'];

async function runWorker(): Promise<void> {
  const adapter = new ClusterAdapter(maxPendingBytes === undefined ? {} : { maxPendingBytes: Number(maxPendingBytes) });
  const server = new WebsocketServer({ port: 0, host: '127.0.0.1', adapter, loglevel: 'warning' });
  server.setFnMessageReceived((client, self, message) => {
    const text = typeof message === 'string' ? message : '';
    if (message === 'whoami') {
      self.sendMessage(client, JSON.stringify({ worker: cluster.worker!.id, pid: process.pid, client: client.id }));
    } else if (message === 'stats') {
      const { broadcastsPublished, broadcastsReceived } = self.stats;
      self.sendMessage(client, JSON.stringify({ broadcastsPublished, broadcastsReceived, adapterReceived: adapter.received }));
    } else if (text.startsWith('join:')) {
      self.subscribe(client, text.slice(5));
      self.sendMessage(client, `joined:${text.slice(5)}`);
    } else if (text.startsWith('leave:')) {
      self.unsubscribe(client, text.slice(6));
      self.sendMessage(client, `left:${text.slice(6)}`);
    } else if (text.startsWith('publish:')) {
      const [topic = '', ...rest] = text.slice(8).split(':');
      self.publish(topic, rest.join(':'), client);
    } else {
      self.sendMessageToAll(message, client);
    }
  });
  process.once('SIGTERM', () => {
    void server.shutdownGracefully().then(() => cluster.worker!.disconnect());
  });
  await server.runForever();
  process.send!({ [READY]: server.port });
}

if (cluster.isPrimary) runPrimary();
else await runWorker();
