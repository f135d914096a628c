// One server of the Redis tests, run as its own process (test/system/redis.test.ts starts two or more of them):
//
//   node build/test/support/redis-node.js <redis url> <server id> [start timeout in ms]
//
// A WebsocketServer on a free port of 127.0.0.1 with `new RedisAdapter({ url, maxReconnectDelay: 200 })`, its
// connections to Redis named `redis-node:<server id>` so that a test can count them in `CLIENT LIST`. It prints
// `{"port":N,"serverId":"…"}` on stdout once it listens, and logs at info to stderr (the test reads the adapter's
// warnings there). SIGTERM (or SIGINT) shuts it down with `shutdownGracefully()`, after which it must exit by
// itself: nothing calls process.exit, so a process still running then has leaked a handle.
//
// A data message (binary, or text not starting with "ctl:") is broadcast with `sendMessageToAll(message, sender)`:
// to every client of every server but its sender. A text message starting with "ctl:" is a command to this
// server and is never broadcast:
//   ctl:whoami          replies to the sender only: ctl:{"id":<the sender's client id>,"serverId":"…"}
//   ctl:stats           replies to the sender only: ctl:{"server":<server.stats>,"adapter":<adapter.stats>}
//   ctl:burst N LABEL   the server broadcasts the N texts "LABEL:0" … "LABEL:<N-1>" itself, to every client of
//                       every server (the sender included); no reply
//   ctl:spread N SIZE   the server broadcasts N binary messages of SIZE bytes (the first 4 bytes: the index,
//                       big-endian), each in a turn of the event loop of its own (so each is a PUBLISH of its
//                       own), then replies ctl:{"spread":N} to the sender
//   ctl:join TOPIC      server.subscribe(sender, TOPIC); replies ctl:{"joined":TOPIC}
//   ctl:leave TOPIC     server.unsubscribe(sender, TOPIC); replies ctl:{"left":TOPIC}
//   ctl:publish TOPIC TEXT   server.publish(TOPIC, TEXT, sender); no reply
// The environment variable MAX_PENDING_BYTES, when set, is the adapter's maxPendingBytes.
import { RedisAdapter } from '../../adapters/redis.ts';
import { WebsocketServer, type Client } from '../../websocket-server.ts';

/** Text messages starting with this are commands (and their replies), never broadcast. */
export const CONTROL = 'ctl:';

const [url, serverId, startTimeout] = process.argv.slice(2);
if (url === undefined || serverId === undefined) {
  process.stderr.write('usage: node redis-node.js <redis url> <server id> [start timeout in ms]\n');
  process.exit(2);
}

const adapter = new RedisAdapter({
  url,
  maxReconnectDelay: 200,
  ...(startTimeout === undefined ? {} : { startTimeout: Number(startTimeout) }),
  ...(process.env['MAX_PENDING_BYTES'] === undefined ? {} : { maxPendingBytes: Number(process.env['MAX_PENDING_BYTES']) }),
  clientOptions: { name: `redis-node:${serverId}` },
});
const server = new WebsocketServer({ port: 0, loglevel: 'info', adapter, serverId });

function reply(client: Client, value: unknown): void {
  server.sendMessage(client, CONTROL + JSON.stringify(value));
}

function command(client: Client, text: string): void {
  const [name, ...args] = text.slice(CONTROL.length).split(' ');
  switch (name) {
    case 'whoami':
      reply(client, { id: client.id, serverId });
      return;
    case 'stats':
      reply(client, { server: server.stats, adapter: adapter.stats });
      return;
    case 'burst': {
      const count = Number(args[0]);
      for (let i = 0; i < count; i++) server.sendMessageToAll(`${args[1]}:${i}`);
      return;
    }
    case 'spread': {
      const count = Number(args[0]);
      const size = Number(args[1]);
      const next = (i: number): void => {
        if (i === count) {
          reply(client, { spread: count });
          return;
        }
        const message = Buffer.alloc(size, i & 0xff);
        message.writeUInt32BE(i, 0);
        server.sendMessageToAll(message);
        setImmediate(next, i + 1);
      };
      next(0);
      return;
    }
    case 'join':
      server.subscribe(client, args[0]!);
      reply(client, { joined: args[0] });
      return;
    case 'leave':
      server.unsubscribe(client, args[0]!);
      reply(client, { left: args[0] });
      return;
    case 'publish':
      server.publish(args[0]!, args.slice(1).join(' '), client);
      return;
    default:
      reply(client, { error: `unknown command ${JSON.stringify(text)}` });
  }
}

server.setFnMessageReceived((client, s, message) => {
  if (typeof message === 'string' && message.startsWith(CONTROL)) command(client, message);
  else s.sendMessageToAll(message, client);
});
server.setFnError((error, client) => {
  const of = client === null ? '' : ` of client ${client.id}`;
  process.stderr.write(`redis-node ${serverId}: error${of}: ${error.message}\n`);
});

function shutDown(signal: string): void {
  process.stderr.write(`redis-node ${serverId}: ${signal}, shutting down\n`);
  server.shutdownGracefully().then(
    () => process.stderr.write(`redis-node ${serverId}: shut down\n`),
    (error: unknown) => {
      process.stderr.write(`redis-node ${serverId}: the shutdown failed: ${String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
process.once('SIGTERM', shutDown);
process.once('SIGINT', shutDown);

await server.runForever();
process.stdout.write(`${JSON.stringify({ port: server.port, serverId })}\n`);
