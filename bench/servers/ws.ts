// The `ws` server, as the benchmark runs it, with the same handlers as ours: echo on every path, and a message
// from a client whose path is /sender goes to every connected client (the loop of ws's README).
// Run with WS_NO_BUFFER_UTIL=1 it is plain `ws` (JavaScript unmasking); without, `ws` loads `bufferutil`.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { boundPort, serveControl } from './control.ts';

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

wss.on('connection', (socket, request) => {
  socket.on('error', countError);
  if (request.url === '/sender') {
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
