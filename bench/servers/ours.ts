// Our server, as the benchmark runs it: imported by its package name, the way users do, so it runs the built
// dist/websocket-server.js. Echo on every path; a message from a client whose path is /sender goes to everyone.
import { WebsocketServer } from 'websocket-server';
import { serveControl } from './control.ts';

const server = new WebsocketServer({
  port: 0,
  host: '127.0.0.1',
  loglevel: 'critical',
  maxMessageSize: 16 * 1024 * 1024,
  // A broadcast must reach every receiver: queue for a receiver that is behind rather than close or drop.
  slowClientPolicy: 'queue',
  maxBufferedAmount: 1024 * 1024 * 1024,
});

let errors = 0;
server.setFnError(() => errors++);
server.setFnMessageReceived((client, server, message) => {
  if (client.request.path === '/sender') server.sendMessageToAll(message);
  else server.sendMessage(client, message);
});

await server.runForever();
serveControl('ours', server.port, { bufferutil: false }, {
  clients: () => server.clients.length,
  errors: () => errors,
});
