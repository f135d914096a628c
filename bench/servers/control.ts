// The control channel every server process of the benchmark speaks: it reports its port once listening, then
// answers the orchestrator's requests (memory after GC, connected clients) over Node's IPC channel.
// It exits when the orchestrator goes away, so no server outlives a benchmark. (A worker of `ours-cluster` speaks
// it with its primary, servers/cluster.ts, over the cluster's IPC channel, which also carries broadcasts.)
import { setTimeout as delay } from 'node:timers/promises';
import type { NativeInfo, ServerGroupInfo, ServerKind, ServerMessage, ServerRequest } from '../protocol.ts';

/** What a server process tells about itself. */
export interface ServerProbe {
  clients(): number | Promise<number>;
  errors(): number | Promise<number>;
}

/** Whether an IPC message is a request of the orchestrator (a cluster worker also receives broadcasts). */
function isServerRequest(message: unknown): message is ServerRequest {
  if (typeof message !== 'object' || message === null) return false;
  const { id, type } = message as Record<string, unknown>;
  return typeof id === 'number' && (type === 'memory' || type === 'clients');
}

/** Reports `port` to the parent and answers its requests until it disconnects. */
export function serveControl(kind: ServerKind, port: number, native: NativeInfo, probe: ServerProbe, group?: ServerGroupInfo): void {
  if (process.send === undefined) throw new Error(`The ${kind} bench server must be started by bench/run.js: it has no IPC channel.`);
  process.on('disconnect', () => process.exit(0));
  process.on('message', (request: unknown) => {
    if (!isServerRequest(request)) return;
    void answer(request, probe).then((reply) => process.send?.(reply));
  });
  send(group === undefined ? { type: 'ready', port, kind, native } : { type: 'ready', port, kind, native, group });
}

function send(message: ServerMessage): void {
  process.send?.(message);
}

async function answer(request: ServerRequest, probe: ServerProbe): Promise<ServerMessage> {
  switch (request.type) {
    case 'memory': {
      await collectGarbage();
      const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
      return { id: request.id, type: 'memory', rss, heapTotal, heapUsed, external, arrayBuffers };
    }
    case 'clients':
      return { id: request.id, type: 'clients', count: await probe.clients(), errors: await probe.errors() };
  }
}

/** Full collections until the heap stops shrinking (at most a few), with pauses for the sweeper threads. */
export async function collectGarbage(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('The bench server needs --expose-gc to measure memory.');
  let previous = Infinity;
  for (let round = 0; round < 6; round++) {
    gc();
    await delay(40);
    const used = process.memoryUsage().heapUsed;
    if (used >= previous - 1024) break;
    previous = used;
  }
}

/** The port a `node:net` server listens on. */
export function boundPort(address: ReturnType<import('node:net').Server['address']>): number {
  if (address === null || typeof address === 'string') throw new Error('The bench server is not listening on a TCP port.');
  return address.port;
}
