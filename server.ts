/**
 * The demo: a chat room, like the example of Python's python-websocket-server.
 *
 * One port serves both the page (`client.html` at `/`) and the WebSocket endpoint, so a newcomer runs
 * `npm start` and opens http://127.0.0.1:13254/ in two browser tabs.
 *
 *   npm start                              # port 13254 on 127.0.0.1
 *   npm start -- --port 8080 --host 0.0.0.0
 *   PORT=8080 HOST=0.0.0.0 npm start
 *   node --experimental-strip-types server.ts   # Node >= 22.6, no build step
 *
 * Beyond one process (a broadcast reaches the clients of every process):
 *   npm run start:cluster                  # one worker per core, sharing the port (node:cluster)
 *   npm start -- --cluster --workers 2
 *   npm start -- --port 13254 --redis redis://127.0.0.1:6379   # and, in another terminal,
 *   npm start -- --port 13255 --redis redis://127.0.0.1:6379   # a second server: the two chat as one
 *
 * What travels on the WebSocket:
 * - from a page to the server: a text message is a chat line; a binary message is a file;
 * - from the server to the pages: text messages are JSON events, each with a `type` and a readable `text`:
 *   `welcome` (to a new client: its `id`, `maxMessageSize`), `joined` and `left` (`id`), `message` (`from`,
 *   `text`), and `file` (`from`, `size`), which is followed at once by the file itself as a binary message.
 *   Text is relayed as text and files as binary, to every client but the sender.
 *   A client is named by its id; when several servers share the chat, by `id@server` (the worker, or the port).
 */
import cluster from 'node:cluster';
import { readFileSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { ClusterAdapter, relayClusterBroadcasts } from './adapters/cluster.ts';
import { WebsocketServer, type BroadcastAdapter, type Client, type Message } from './websocket-server.ts';

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string', default: process.env['PORT'] ?? '13254' },
    host: { type: 'string', default: process.env['HOST'] ?? '127.0.0.1' },
    cluster: { type: 'boolean', default: false },
    workers: { type: 'string', default: String(availableParallelism()) },
    redis: { type: 'string' },
  },
});
const port = Number(flags.port);
const host = flags.host ?? '127.0.0.1';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`Cannot start the demo: --port must be a number from 0 to 65535, not '${flags.port}'.`);
  process.exit(2);
}
const workers = Number(flags.workers);
if (flags.cluster && (!Number.isInteger(workers) || workers < 1 || workers > 1024)) {
  console.error(`Cannot start the demo: --workers must be a number from 1 to 1024, not '${flags.workers}'.`);
  process.exit(2);
}


/**
 * The primary of `--cluster`: forks the workers, which share the port, relays their broadcasts to each other,
 * starts a new worker for one that crashed, and on a stop signal stops the workers and ends when they have.
 */
function runPrimary(count: number): void {
  relayClusterBroadcasts();
  let stopping = false;
  const crashes: number[] = [];
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`worker ${worker.id} ended (${signal ?? `exit code ${code}`})`);
    // A worker that keeps crashing at start would otherwise be restarted in a tight loop.
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && crashes[0]! < now - 60_000) crashes.shift();
    if (crashes.length > 10) {
      console.error('Cannot keep the chat up: more than 10 workers ended within a minute; stopping.');
      stopAll();
      return;
    }
    cluster.fork();
  });
  function stopAll(): void {
    if (stopping) return;
    stopping = true;
    // Each worker closes its clients with 1001; the primary ends once they all have.
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  }
  process.on('SIGINT', stopAll);
  process.on('SIGTERM', stopAll);
  console.info(`Chat demo: ${count} workers (pid ${process.pid} is the primary)`);
  for (let i = 0; i < count; i++) cluster.fork();
}

/** The page sits beside this file, or one folder up when this file runs compiled from `build/`. */
function findPage(): Buffer {
  for (const candidate of ['./client.html', '../client.html']) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(url)) return readFileSync(url);
  }
  throw new Error('Cannot start the demo: client.html was not found next to server.ts.');
}

/** Largest file (or line) a page may send; the page checks it before sending. */
const MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/** One chat server: the page and the WebSocket endpoint on one port, its broadcasts shared by `--cluster`/`--redis`. */
async function runChat(): Promise<void> {
  const page = findPage();
  const http = createServer((request, response) => servePage(page, request, response));
  let adapter: BroadcastAdapter | undefined;
  if (cluster.isWorker) {
    adapter = new ClusterAdapter();
  } else if (flags.redis !== undefined) {
    // Loaded only when asked for: the `redis` package is needed for --redis alone.
    const { RedisAdapter } = await import('./adapters/redis.ts');
    adapter = new RedisAdapter({ url: flags.redis });
  }
  // Browsers offer permessage-deflate: chat text compresses well, so accept it.
  const chat = new WebsocketServer({
    server: http,
    loglevel: 'info',
    logger: console,
    maxMessageSize: MAX_MESSAGE_SIZE,
    perMessageDeflate: true,
    ...(adapter && { adapter }),
    // Readable in the log lines of the cluster's workers; elsewhere the default, a UUID, is unique across hosts.
    ...(cluster.isWorker && { serverId: `worker-${cluster.worker!.id}` }),
  });
  /** Where this server is in a chat shared by several: its worker, or its port; nothing when alone. */
  const serverName = (): string | undefined =>
    cluster.isWorker ? `w${cluster.worker!.id}` : adapter !== undefined ? String(chat.port) : undefined;
  const nameOf = (client: Client): string => {
    const server = serverName();
    return server === undefined ? String(client.id) : `${client.id}@${server}`;
  };

  // Every event goes through sendMessageToAll, so that with an adapter it reaches the other servers' clients too.
  const announce = (event: Record<string, unknown>, except?: Client): void => {
    chat.sendMessageToAll(JSON.stringify(event), except);
  };

  chat.setFnNewClient((client, server) => {
    const name = nameOf(client);
    const welcome = { type: 'welcome', id: name, maxMessageSize: MAX_MESSAGE_SIZE, text: `You are client ${name}.` };
    server.sendMessage(client, JSON.stringify(welcome));
    announce({ type: 'joined', id: name, text: `Hey all, client ${name} has joined us.` });
  });

  chat.setFnMessageReceived((client, server, message: Message) => {
    const name = nameOf(client);
    if (typeof message === 'string') {
      console.info(`client ${name} said: ${message.length > 200 ? `${message.slice(0, 200)}…` : message}`);
      announce({ type: 'message', from: name, text: message }, client);
      return;
    }
    console.info(`client ${name} sent a file of ${message.length} bytes`);
    announce({ type: 'file', from: name, size: message.length, text: `client ${name} sent a file` }, client);
    server.sendMessageToAll(message, client);
  });

  chat.setFnClientLeft((client) => {
    const name = nameOf(client);
    announce({ type: 'left', id: name, text: `Client ${name} left.` });
  });

  http.once('error', (error) => {
    console.error(`Cannot start the demo on ${host}:${port}: ${error.message}`);
    process.exit(1);
  });
  http.listen(port, host);
  await chat.runForever();
  const shown = host.includes(':') ? `[${host}]` : host;
  const where = cluster.isWorker ? `worker ${cluster.worker!.id} (pid ${process.pid}): ` : '';
  console.info(`${where}Chat demo: open http://${shown}:${chat.port}/ in two tabs (WebSocket endpoint ws://${shown}:${chat.port}/)`);

  /** Ctrl-C or a stop signal: close every chat with 1001 (Going Away), then stop serving. */
  let stopping = false;
  const stop = (): void => {
    if (stopping) {
      // A second Ctrl-C: do not wait. (A worker gets Ctrl-C and its primary's SIGTERM: the primary decides.)
      if (!cluster.isWorker) process.exit(1);
      return;
    }
    stopping = true;
    console.info('Shutting down: closing every connection with 1001');
    http.close();
    chat.shutdownGracefully(1001, 'the server is shutting down').then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** Plain HTTP on the same port: the page at `/`, nothing else. */
function servePage(page: Buffer, request: IncomingMessage, response: ServerResponse): void {
  const path = (request.url ?? '/').split('?')[0];
  if (path !== '/' && path !== '/client.html') {
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found: the chat page is at /\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('Use GET.\n');
    return;
  }
  response.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': page.length,
    'Cache-Control': 'no-store',
  });
  response.end(request.method === 'HEAD' ? undefined : page);
}

// Last, once every constant above is defined.
if (flags.cluster && cluster.isPrimary) {
  runPrimary(workers);
} else {
  await runChat();
}
