// `ours-cluster`: our server as two workers of `node:cluster` that share broadcasts, the deployment the
// README shows (ClusterAdapter in each worker, relayClusterBroadcasts in the primary). This script is the
// primary: it relays, forks two workers running servers/ours.js with BENCH_ADAPTER=cluster, and reports to the
// orchestrator once both listen, with the port of each and their pids (their CPU time is the server's too).
//
// Each worker listens on a port of its own, not on one shared port: the load generator must know which
// process each receiver is on, to split them evenly and to time the deliveries on the other process. (The
// connections still pass through the primary at accept, as with a shared port: node:cluster's round-robin.)
// The workers inherit the primary's CPU placement (taskset), so the whole server has the same core as `ours`.
import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { relayClusterBroadcasts } from 'websocket-server/adapters/cluster';
import { freePort } from '../ports.ts';
import type { ServerMessage, ServerReply, ServerRequest } from '../protocol.ts';
import { serveControl } from './control.ts';

const WORKERS = 2;
/** Forks of one worker tried when its port, free a moment ago, was taken before it could listen. */
const ATTEMPTS = 3;
const START_LIMIT_MS = 15_000;

if (!cluster.isPrimary) throw new Error('servers/cluster.js is the primary: the workers run servers/ours.js.');

relayClusterBroadcasts();
cluster.setupPrimary({ exec: fileURLToPath(new URL('./ours.js', import.meta.url)), silent: false });

// However the primary ends, its workers end with it (each by its own pid). They also exit by themselves when
// the primary's IPC channel closes (node:cluster, and serveControl's 'disconnect').
process.on('exit', () => {
  for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
});
process.once('disconnect', () => process.exit(0)); // the orchestrator is gone, maybe while the workers start

/** Forks a worker on a free port and resolves once it reports that it listens. */
async function startWorker(index: number): Promise<{ worker: Worker; port: number }> {
  let lastError = '';
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const port = await freePort();
    const worker = cluster.fork({ BENCH_ADAPTER: 'cluster', BENCH_PORT: String(port) });
    const outcome = await new Promise<number | string>((resolve) => {
      const done = (result: number | string): void => {
        clearTimeout(timer);
        worker.off('message', ready); // (it would otherwise see every broadcast the worker publishes)
        worker.off('exit', exited);
        resolve(result);
      };
      const ready = (message: ServerMessage): void => {
        if (message.type === 'ready') done(message.port);
      };
      const exited = (code: number, signal: string | null): void => done(`worker ${index} exited (${signal ?? code}) before listening`);
      const timer = setTimeout(() => done(`worker ${index} did not listen within ${START_LIMIT_MS} ms`), START_LIMIT_MS);
      worker.on('message', ready);
      worker.once('exit', exited);
    });
    if (typeof outcome === 'number') return { worker, port: outcome };
    lastError = outcome;
    worker.process.kill('SIGKILL');
  }
  throw new Error(`${lastError} (${ATTEMPTS} attempts)`);
}

const workers = await Promise.all(Array.from({ length: WORKERS }, (_, index) => startWorker(index)));

// Once running, a worker that dies ends the run: the primary exits, and the orchestrator sees it.
for (const { worker } of workers) {
  worker.once('exit', (code, signal) => {
    console.error(`ours-cluster: a worker exited (${signal ?? code}) during the run`);
    process.exit(1);
  });
}

// The orchestrator's 'clients' request, answered with the sum over the workers (each answers as a server). Its
// 'memory' request is answered by the primary alone: the memory scenario does not run the two-process servers.
let nextId = 1;
function ask(worker: Worker, type: ServerRequest['type']): Promise<ServerReply> {
  const id = nextId++;
  return new Promise((resolve) => {
    const listener = (message: unknown): void => {
      if (typeof message === 'object' && message !== null && (message as ServerReply).id === id && (message as ServerReply).type === type) {
        worker.off('message', listener);
        resolve(message as ServerReply);
      }
    };
    worker.on('message', listener);
    worker.send({ id, type } satisfies ServerRequest);
  });
}
async function sum(field: 'count' | 'errors'): Promise<number> {
  const replies = await Promise.all(workers.map(({ worker }) => ask(worker, 'clients')));
  return replies.reduce((total, reply) => total + (reply.type === 'clients' ? reply[field] : 0), 0);
}

serveControl('ours-cluster', workers[0]!.port, { bufferutil: false }, {
  clients: () => sum('count'),
  errors: () => sum('errors'),
}, {
  ports: workers.map(({ port }) => port),
  pids: workers.map(({ worker }) => worker.process.pid!),
});
