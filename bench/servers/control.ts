// The control channel every server process of the benchmark speaks: it reports its port once listening, then
// answers the orchestrator's requests (memory after GC, connected clients) over Node's IPC channel.
// It exits when the orchestrator goes away, so no server outlives a benchmark.
import { setTimeout as delay } from 'node:timers/promises';
import type { NativeInfo, ServerKind, ServerMessage, ServerRequest } from '../protocol.ts';

/** What a server process tells about itself. */
export interface ServerProbe {
  clients(): number;
  errors(): number;
}

/** Reports `port` to the parent and answers its requests until it disconnects. */
export function serveControl(kind: ServerKind, port: number, native: NativeInfo, probe: ServerProbe): void {
  if (process.send === undefined) throw new Error(`The ${kind} bench server must be started by bench/run.js: it has no IPC channel.`);
  process.on('disconnect', () => process.exit(0));
  process.on('message', (request: ServerRequest) => {
    void answer(request, probe).then((reply) => process.send?.(reply));
  });
  send({ type: 'ready', port, kind, native });
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
      return { id: request.id, type: 'clients', count: probe.clients(), errors: probe.errors() };
  }
}

/** Full collections until the heap stops shrinking (at most a few), with pauses for the sweeper threads. */
async function collectGarbage(): Promise<void> {
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
