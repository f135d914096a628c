// The `ws` server, as the benchmark runs it, with the same handlers as ours: echo on every path, and a message
// from a client whose path is /sender goes to every connected client (the loop of ws's README).
// Run with WS_NO_BUFFER_UTIL=1 it is plain `ws` (JavaScript unmasking); without, `ws` loads `bufferutil`.
//
// Topics (the publish scenarios): ws has none, so this is the room map a user writes: a Map from topic to the Set
// of its sockets, a socket added when it connects at /topic/<n> and removed when it closes, and a publish that
// sends to each with `socket.send`, which frames the message again for every socket. (ws exports
// `WebSocket.Sender.frame`, which could frame once, but documents no way to write a frame to a socket: that
// takes its private `_socket`, and bypasses its send queue.)
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { boundPort, serveControl } from './control.ts';
import { Publisher, topicOfPath } from './topics.ts';

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
});

let errors = 0;
function countError(): void {
  errors++;
}

/** Each topic's subscribers; a topic is removed with its last subscriber. */
const rooms = new Map<string, Set<WebSocket>>();

function joinRoom(socket: WebSocket, topic: string): void {
  let room = rooms.get(topic);
  if (room === undefined) rooms.set(topic, (room = new Set()));
  room.add(socket);
  socket.once('close', () => {
    room.delete(socket);
    if (room.size === 0) rooms.delete(topic);
  });
}

function publish(topic: string, data: RawData, isBinary: boolean): void {
  const room = rooms.get(topic);
  if (room === undefined) return;
  for (const client of room) {
    if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
  }
}

wss.on('connection', (socket, request) => {
  socket.on('error', countError);
  const path = request.url ?? '/';
  const topic = topicOfPath(path);
  const publisher = Publisher.ofPath(path);
  if (topic !== undefined) {
    joinRoom(socket, topic);
  } else if (publisher !== undefined) {
    socket.on('message', (data: RawData, isBinary: boolean) => publish(publisher.next(), data, isBinary));
  } else if (path === '/sender') {
    socket.on('message', (data: RawData, isBinary: boolean) => {
      for (const client of wss.clients) {
        if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
      }
    });
  } else {
    socket.on('message', (data: RawData, isBinary: boolean) => socket.send(data, { binary: isBinary }));
  }
});

await new Promise<void>((resolve, reject) => {
  wss.once('listening', resolve);
  wss.once('error', reject);
});

serveControl(process.env['WS_NO_BUFFER_UTIL'] ? 'ws' : 'ws-bufferutil', boundPort(wss.address()), { bufferutil: usesBufferutil() }, {
  clients: () => wss.clients.size,
  errors: () => errors,
});

/**
 * Whether ws unmasks with bufferutil: ws's lib/buffer-util.js (not exported, so loaded by its path) replaces its
 * JavaScript `unmask` with one that calls `bufferUtil.unmask` when the addon loads and WS_NO_BUFFER_UTIL is unset.
 */
function usesBufferutil(): boolean {
  const require = createRequire(import.meta.url);
  const bufferUtil = require(join(dirname(require.resolve('ws')), 'lib', 'buffer-util.js')) as { unmask: (...args: unknown[]) => void };
  return bufferUtil.unmask.toString().includes('bufferUtil.unmask');
}
