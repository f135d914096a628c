// Attaching to the application's HTTP server (the options server and path) instead of listening, and path on
// the server's own listener.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { HandshakeError } from '../websocket-server.ts';
import { connectRaw, handshakeRequest, rawRequest } from './support/raw-client.ts';
import { assertOptionError, echo, openWs, refusedWs, startServer } from './support/harness.ts';
import { LIMIT, until, within } from './support/wait.ts';

/** An HTTP app (not listening yet) that serves a page at every path; closed when the test ends. */
function httpApp(t: TestContext): Server {
  const app = createHttpServer((request, response) => {
    const body = `page ${request.url}`;
    response.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) }).end(body);
  });
  t.after(() => {
    // Not awaited: upgraded connections end with the WebSocket server's own cleanup.
    app.closeAllConnections();
    app.close();
  });
  return app;
}

async function listen(app: Server): Promise<number> {
  app.listen(0, '127.0.0.1');
  await within(once(app, 'listening'), 'the app to listen');
  const address = app.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

/** GET `path` as plain HTTP; resolves with the status and body. */
async function getPage(port: number, path = '/'): Promise<{ status: number; body: string }> {
  const reply = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  return { status: reply.status, body: reply.body };
}

describe('the server option', () => {
  test('runForever() resolves once the app listens; the app serves its page and ws connects to /ws on the same port', LIMIT, async (t) => {
    const app = httpApp(t);
    const { server, joined } = await startServer(t, { server: app, path: '/ws' }, { run: false });
    let started = false;
    const starting = server.runForever().then(() => (started = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(started, false, 'runForever() waits for the app to listen');
    const port = await listen(app);
    await within(starting, 'runForever()');
    assert.equal(server.port, port);
    assert.equal(server.host, '127.0.0.1');
    assert.deepEqual(await getPage(port, '/'), { status: 200, body: 'page /' });
    const ws = await openWs(t, `ws://127.0.0.1:${port}/ws?token=1`);
    assert.equal(await echo(ws, 'attached'), 'attached');
    await until(() => joined.length === 1, 'new-client');
    assert.equal(joined[0]!.handler.request.path, '/ws');
  });

  test('runForever() on an app that already listens resolves at once', LIMIT, async (t) => {
    const app = httpApp(t);
    const port = await listen(app);
    const { server } = await startServer(t, { server: app });
    assert.equal(server.port, port);
    const ws = await openWs(t, `ws://127.0.0.1:${port}/any/path`);
    assert.equal(await echo(ws, 'no path option: every path'), 'no path option: every path');
  });

  test('an upgrade to another path gets 404 when the app has no upgrade listener of its own', LIMIT, async (t) => {
    const app = httpApp(t);
    const port = await listen(app);
    const { errors } = await startServer(t, { server: app, path: '/ws' });
    const reply = await rawRequest(port, handshakeRequest({ path: '/other' }));
    assert.equal(reply.status, 404);
    assert.equal(reply.closed, true);
    assert.ok(errors[0]?.error instanceof HandshakeError);
    assert.equal((errors[0].error as HandshakeError).code, 'WS_ERR_HANDSHAKE_NOT_FOUND');
    const ws = await refusedWs(t, `ws://127.0.0.1:${port}/ws/deeper`);
    assert.equal(ws.status, 404, 'the match is exact, not a prefix');
  });

  test("an upgrade to another path reaches the app's own upgrade listener, untouched", LIMIT, async (t) => {
    const app = httpApp(t);
    const seen: string[] = [];
    app.on('upgrade', (request, socket: Socket) => {
      if (request.url === '/ws') return; // the WebSocket server's
      seen.push(request.url ?? '');
      socket.end('HTTP/1.1 418 I\'m a teapot\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    });
    const port = await listen(app);
    const { joined, errors } = await startServer(t, { server: app, path: '/ws' });
    const reply = await rawRequest(port, handshakeRequest({ path: '/other' }));
    assert.equal(reply.status, 418);
    assert.deepEqual(seen, ['/other']);
    assert.deepEqual(errors, []);
    const ws = await openWs(t, `ws://127.0.0.1:${port}/ws`);
    assert.equal(await echo(ws, 'ours'), 'ours');
    assert.equal(joined.length, 1);
  });

  test('shutdownGracefully() closes the clients with 1001 and detaches, and the app keeps serving', LIMIT, async (t) => {
    const app = httpApp(t);
    const upgradeListeners = app.listenerCount('upgrade');
    const { server, left } = await startServer(t, { server: app, path: '/ws' }, { run: false });
    const starting = server.runForever();
    const port = await listen(app);
    await within(starting, 'runForever()');
    assert.equal(app.listenerCount('upgrade'), upgradeListeners + 1);
    const ws = await openWs(t, `ws://127.0.0.1:${port}/ws`);
    const closed = once(ws, 'close');
    await within(server.shutdownGracefully(), 'shutdownGracefully()');
    const [code] = (await within(closed, 'the close event')) as [number];
    assert.equal(code, 1001);
    assert.equal(left.length, 1);
    assert.equal(app.listenerCount('upgrade'), upgradeListeners);
    assert.equal(app.listening, true);
    assert.deepEqual(await getPage(port, '/after'), { status: 200, body: 'page /after' });
  });

  test("a client that ends its TCP connection (FIN) after the server's Close is gone at once, not after closeTimeout (node:http accepts half-open)", LIMIT, async (t) => {
    const app = httpApp(t);
    // closeTimeout far beyond the test's limit: the shutdown can only finish in time if the FIN ends the connection.
    const { server, left } = await startServer(t, { server: app, path: '/ws', closeTimeout: 60_000 }, { run: false });
    const starting = server.runForever();
    const port = await listen(app);
    await within(starting, 'runForever()');
    const client = await connectRaw(port, { path: '/ws' });
    t.after(() => client.socket.destroy());
    await until(() => server.clients.length === 1, 'the client to join');
    const stopping = server.shutdownGracefully();
    assert.equal((await client.closeFrame()).code, 1001);
    client.socket.end(); // FIN, no Close frame back
    await within(client.ended(), 'the server to end its side too');
    await within(stopping, 'shutdownGracefully()');
    assert.equal(left.length, 1);
  });

  test('shutdownAbruptly() detaches too; runForever() attaches again afterwards', LIMIT, async (t) => {
    const app = httpApp(t);
    const port = await listen(app);
    const { server } = await startServer(t, { server: app });
    await openWs(t, `ws://127.0.0.1:${port}/`);
    await within(server.shutdownAbruptly(), 'shutdownAbruptly()');
    assert.equal(app.listenerCount('upgrade'), 0);
    assert.deepEqual(await getPage(port), { status: 200, body: 'page /' });
    await within(server.runForever(), 'runForever() again');
    const ws = await openWs(t, `ws://127.0.0.1:${port}/`);
    assert.equal(await echo(ws, 'again'), 'again');
  });

  test('runForever() rejects with the error of an app that fails to listen, and detaches', LIMIT, async (t) => {
    const blocker = createNetServer();
    blocker.listen(0, '127.0.0.1');
    await within(once(blocker, 'listening'), 'the blocker');
    t.after(() => blocker.close());
    const taken = (blocker.address() as { port: number }).port;
    const app = httpApp(t);
    const { server } = await startServer(t, { server: app }, { run: false });
    const starting = server.runForever();
    app.listen(taken, '127.0.0.1');
    await assert.rejects(within(starting, 'runForever() to reject'), { code: 'EADDRINUSE' });
    assert.equal(app.listenerCount('upgrade'), 0);
  });

  test('a shutdown before the app listens makes runForever() reject once it does, and leaves no listener', LIMIT, async (t) => {
    const app = httpApp(t);
    const { server } = await startServer(t, { server: app }, { run: false });
    const starting = server.runForever();
    await server.shutdownAbruptly();
    assert.equal(app.listenerCount('upgrade'), 0);
    await listen(app);
    await assert.rejects(within(starting, 'runForever() to reject'), /shut down while starting/);
    assert.equal(app.listenerCount('upgrade'), 0);
  });

  test('a second runForever() while attached rejects', LIMIT, async (t) => {
    const app = httpApp(t);
    await listen(app);
    const { server } = await startServer(t, { server: app });
    await assert.rejects(server.runForever(), /already running/);
    assert.equal(app.listenerCount('upgrade'), 1);
  });
});

describe('the path option on the own listener', () => {
  test('the path is served (with any query); other paths get 404', LIMIT, async (t) => {
    const { server, joined } = await startServer(t, { path: '/ws' });
    const ws = await openWs(t, `ws://127.0.0.1:${server.port}/ws?room=2`);
    assert.equal(await echo(ws, 'on /ws'), 'on /ws');
    for (const path of ['/', '/other', '/ws/', '/WS', '/wsx']) {
      const reply = await rawRequest(server.port, handshakeRequest({ path }));
      assert.equal(reply.status, 404, path);
      assert.match(reply.body, /no WebSocket endpoint at this path/);
    }
    assert.equal(joined.length, 1);
  });

  test('404 comes before the other checks: a POST to another path is 404, to the path 405', LIMIT, async (t) => {
    const { server } = await startServer(t, { path: '/ws' });
    assert.equal((await rawRequest(server.port, handshakeRequest({ method: 'POST', path: '/x' }))).status, 404);
    assert.equal((await rawRequest(server.port, handshakeRequest({ method: 'POST', path: '/ws' }))).status, 405);
  });

  test('handleUpgrade() applies the path too', LIMIT, async (t) => {
    const app = httpApp(t);
    const { server } = await startServer(t, { path: '/ws' }, { run: false });
    app.on('upgrade', (request, socket, head) => server.handleUpgrade(request, socket, head));
    const port = await listen(app);
    assert.equal((await rawRequest(port, handshakeRequest({ path: '/nope' }))).status, 404);
    const ws = await openWs(t, `ws://127.0.0.1:${port}/ws`);
    assert.equal(await echo(ws, 'via handleUpgrade'), 'via handleUpgrade');
  });
});

describe('attach options', () => {
  const app = createHttpServer();
  const bad: Array<[string, Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp]> = [
    ['server: a plain object', { server: {} }, TypeError, /'server' must be a node:http or node:https Server/],
    ['server: a net.Server', { server: createNetServer() }, TypeError, /'server' must be a node:http or node:https Server/],
    ['server with port', { server: app, port: 8080 }, TypeError, /'port' cannot be given with 'server'/],
    ['server with host', { server: app, host: '0.0.0.0' }, TypeError, /'host' cannot be given with 'server'/],
    ['server with key and cert', { server: app, key: '-----BEGIN', cert: '-----BEGIN' }, TypeError, /'key' cannot be given with 'server'/],
    ['path: 5', { path: 5 }, TypeError, /'path' must be a string/],
    ['path: ws', { path: 'ws' }, RangeError, /'path' must begin with '\/'/],
    ['path: /ws?x=1', { path: '/ws?x=1' }, RangeError, /no query/],
    ['path: /a b', { path: '/a b' }, RangeError, /'path' must begin with '\/'/],
  ];
  for (const [what, options, ErrorClass, message] of bad) {
    test(`${what} throws a ${ErrorClass.name}`, LIMIT, () => assertOptionError(options, ErrorClass, message));
  }
});
