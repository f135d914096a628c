// Run as a process of its own by test/observe.test.ts: what an application sees when its diagnostics_channel
// subscriber throws. It subscribes a throwing function to message-in, records the process's 'uncaughtException'
// events, has a `ws` client send two messages to an echoing server, and prints what came back and what was thrown,
// as one line of JSON. Bounded: the whole run must end within 5 s, else it exits with status 2.
import { subscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import WebSocket from 'ws';
import { DiagnosticsChannel, WebsocketServer } from '../../websocket-server.ts';
import { SILENT } from './wait.ts';

const deadline = setTimeout(() => process.exit(2), 5_000);
const uncaught: string[] = [];
process.on('uncaughtException', (error) => uncaught.push(error.message));
subscribe(DiagnosticsChannel.MESSAGE_IN, () => {
  throw new Error('the subscriber is broken');
});

const server = new WebsocketServer({ logger: SILENT });
server.setFnMessageReceived((client, self, message) => self.sendMessage(client, message));
await server.runForever();
const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
await once(ws, 'open');
const echoes: string[] = [];
for (const text of ['one', 'two']) {
  ws.send(text);
  const [data] = (await once(ws, 'message')) as [Buffer];
  echoes.push(data.toString());
}
ws.close(1000);
await once(ws, 'close');
await server.shutdownGracefully();
clearTimeout(deadline);
process.stdout.write(`${JSON.stringify({ echoes, uncaught })}\n`);
