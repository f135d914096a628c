// The reference for memory per connection: a bare `node:net` server. It answers a client's first bytes with a
// fixed 101 response (so the load generator's handshake completes) and then ignores the socket.
import { createServer, type Socket } from 'node:net';
import { boundPort, serveControl } from './control.ts';

// The answer to the load generator's fixed key, "dGhlIHNhbXBsZSBub25jZQ==" (RFC 6455 §1.3).
const RESPONSE = Buffer.from(
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
);

let errors = 0;
function countError(): void {
  errors++;
}
function answerHandshake(this: Socket): void {
  this.write(RESPONSE);
}
function forget(): void {
  connections--;
}

let connections = 0;
const server = createServer((socket) => {
  connections++;
  socket.once('data', answerHandshake);
  socket.on('error', countError);
  socket.once('close', forget);
});

await new Promise<void>((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});

serveControl('net', boundPort(server.address()), { bufferutil: false }, {
  clients: () => connections,
  errors: () => errors,
});
