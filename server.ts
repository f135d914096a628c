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
 * What travels on the WebSocket:
 * - from a page to the server: a text message is a chat line; a binary message is a file;
 * - from the server to the pages: text messages are JSON events, each with a `type` and a readable `text`:
 *   `welcome` (to a new client: its `id`, `maxMessageSize`), `joined` and `left` (`id`), `message` (`from`,
 *   `text`), and `file` (`from`, `size`), which is followed at once by the file itself as a binary message.
 *   Text is relayed as text and files as binary, to every client but the sender.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { WebsocketServer, type Client, type Message } from './websocket-server.ts';

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string', default: process.env['PORT'] ?? '13254' },
    host: { type: 'string', default: process.env['HOST'] ?? '127.0.0.1' },
  },
});
const port = Number(flags.port);
const host = flags.host ?? '127.0.0.1';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`Cannot start the demo: --port must be a number from 0 to 65535, not '${flags.port}'.`);
  process.exit(2);
}

/** The page sits beside this file, or one folder up when this file runs compiled from `build/`. */
function findPage(): Buffer {
  for (const candidate of ['./client.html', '../client.html']) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(url)) return readFileSync(url);
  }
  throw new Error('Cannot start the demo: client.html was not found next to server.ts.');
}
const page = findPage();

/** Largest file (or line) a page may send; the page checks it before sending. */
const MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
// Browsers offer permessage-deflate: chat text compresses well, so accept it.
const chat = new WebsocketServer({ loglevel: 'info', logger: console, maxMessageSize: MAX_MESSAGE_SIZE, perMessageDeflate: true });

/** Sends one JSON event as a text message to every client but `except`. */
function announce(event: Record<string, unknown>, except?: Client): void {
  const text = JSON.stringify(event);
  for (const client of chat.clients) if (client !== except) chat.sendMessage(client, text);
}

chat.setFnNewClient((client, server) => {
  const welcome = { type: 'welcome', id: client.id, maxMessageSize: MAX_MESSAGE_SIZE, text: `You are client ${client.id}.` };
  server.sendMessage(client, JSON.stringify(welcome));
  announce({ type: 'joined', id: client.id, text: `Hey all, client ${client.id} has joined us.` });
});

chat.setFnMessageReceived((client, _server, message: Message) => {
  if (typeof message === 'string') {
    console.info(`client ${client.id} said: ${message.length > 200 ? `${message.slice(0, 200)}…` : message}`);
    announce({ type: 'message', from: client.id, text: message }, client);
    return;
  }
  console.info(`client ${client.id} sent a file of ${message.length} bytes`);
  for (const other of chat.clients) {
    if (other === client) continue;
    chat.sendMessage(other, JSON.stringify({ type: 'file', from: client.id, size: message.length, text: `client ${client.id} sent a file` }));
    chat.sendMessage(other, message);
  }
});

chat.setFnClientLeft((client) => {
  announce({ type: 'left', id: client.id, text: `Client ${client.id} left.` });
});

/** Plain HTTP on the same port: the page at `/`, nothing else. */
function servePage(request: IncomingMessage, response: ServerResponse): void {
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

const http = createServer(servePage);
http.on('upgrade', (request, socket, head) => chat.handleUpgrade(request, socket, head));
http.once('error', (error) => {
  console.error(`Cannot start the demo on ${host}:${port}: ${error.message}`);
  process.exit(1);
});
http.listen(port, host, () => {
  const address = http.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  const shown = host.includes(':') ? `[${host}]` : host;
  console.info(`Chat demo: open http://${shown}:${bound}/ in two tabs (WebSocket endpoint ws://${shown}:${bound}/)`);
});

/** Ctrl-C or a stop signal: close every chat with 1001 (Going Away), then stop serving. */
let stopping = false;
function stop(): void {
  if (stopping) process.exit(1); // a second Ctrl-C: do not wait
  stopping = true;
  console.info('Shutting down: closing every connection with 1001');
  http.close();
  chat.shutdownGracefully(1001, 'the server is shutting down').then(
    () => process.exit(0),
    () => process.exit(1),
  );
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
