// uWebSockets.js (the `@trufflesuite/uws-js-unofficial` build of uWS.js v20.30.0, whose binaries are on npm), as
// the benchmark runs it, with the same handlers as ours: echo on every path; a message from a client whose path is
// /sender goes to every client, the sender included; topics as in servers/topics.ts, with uWS's own pub/sub: a
// client at /topic/<n> calls `ws.subscribe(n)` when it opens, and a publisher's messages go out with
// `app.publish(topic, message, isBinary)`. The broadcast is uWS's way too: every client subscribes to one topic of
// the server's own, and /sender's messages are `app.publish`ed to it.
//
// Options for a fair comparison with ours and ws: no compression; 16 MiB messages; no idle timeout and no
// automatic Pings (the load generator fails a run on any frame it did not ask for); and a backpressure limit of
// 1 GiB, as ours has (`maxBufferedAmount`), because uWS *skips* a subscriber whose backpressure is over the limit
// (64 KiB by default), where ours queues (`slowClientPolicy: 'queue'`) and ws always buffers.
//
// The package falls back to a JavaScript implementation on top of ws when it has no binary for this Node (one
// per ABI: Node 16, 18 and 20 for this version): that is not uWS, so this server then refuses to start.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import uws from '@trufflesuite/uws-js-unofficial';
import { serveControl } from './control.ts';
import { Publisher, topicOfPath } from './topics.ts';

/** The topic every client is subscribed to: the broadcast of /sender. No client path can name it. */
const EVERYONE = 'everyone/';

/** What a connection keeps from its handshake: its path, and for a publisher its turn over the topics. */
interface Connection {
  path: string;
  publisher: Publisher | undefined;
}

/** The file name of the uWS binary the package loaded; throws when it fell back to its JavaScript implementation. */
function loadedBinary(): string {
  const require = createRequire(import.meta.url);
  const directory = dirname(dirname(require.resolve('@trufflesuite/uws-js-unofficial')));
  const binary = Object.keys(require.cache).find((file) => file.startsWith(directory) && file.endsWith('.node'));
  if (binary === undefined || !String(uws.App).includes('[native code]')) {
    throw new Error(`uWebSockets.js has no binary for Node ${process.version} (ABI ${process.versions.modules}): it fell back to JavaScript, which is not what the benchmark measures.`);
  }
  return binary.slice(binary.lastIndexOf('/') + 1);
}

const binary = loadedBinary();
let clients = 0;

const app = uws.App().ws<Connection>('/*', {
  compression: uws.DISABLED,
  maxPayloadLength: 16 * 1024 * 1024,
  idleTimeout: 0,
  sendPingsAutomatically: false,
  maxBackpressure: 1024 * 1024 * 1024,
  upgrade(res, req, context) {
    const path = req.getUrl();
    res.upgrade<Connection>(
      { path, publisher: Publisher.ofPath(path) },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open(ws) {
    clients++;
    const { path } = ws.getUserData();
    const topic = topicOfPath(path);
    if (topic !== undefined) ws.subscribe(topic);
    else ws.subscribe(EVERYONE);
  },
  message(ws, message, isBinary) {
    const { path, publisher } = ws.getUserData();
    if (publisher !== undefined) app.publish(publisher.next(), message, isBinary);
    else if (path === '/sender') app.publish(EVERYONE, message, isBinary);
    else ws.send(message, isBinary);
  },
  close() {
    clients--;
  },
});

const port = await new Promise<number>((resolve, reject) => {
  app.listen('127.0.0.1', 0, (listenSocket) => {
    if (listenSocket === false) reject(new Error('uWebSockets.js could not listen on 127.0.0.1.'));
    else resolve(uws.us_socket_local_port(listenSocket));
  });
});

// uWS reports no per-connection errors: a connection that fails is closed, which the load generator sees.
serveControl('uws', port, { bufferutil: false, uws: binary }, {
  clients: () => clients,
  errors: () => 0,
});
