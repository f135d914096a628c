// Handshake context: what setFnAuthenticate may answer (AuthenticateResult), the client record's request,
// data and protocol, HandshakeRequest.cookies and .origin, and the origins option (RFC 6455 §10.2).
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import {
  HandshakeError,
  WebsocketServer,
  type AuthenticateResult,
  type HandshakeRequest,
} from '../websocket-server.ts';
import { handshakeRequest, rawRequest } from './support/raw-client.ts';
import { assertOptionError, echo, openRaw, openWs, refusedWs, startServer } from './support/harness.ts';
import { LIMIT, SILENT, until } from './support/wait.ts';

const url = (port: number, path = '/'): string => `ws://127.0.0.1:${port}${path}`;

describe('setFnAuthenticate results', () => {
  test('{ data } accepts and attaches the very object to the client record', LIMIT, async (t) => {
    const recorder = await startServer(t);
    const user = { name: 'ann', roles: ['admin'] };
    recorder.server.setFnAuthenticate(() => ({ data: user }));
    const ws = await openWs(t, url(recorder.server.port));
    await until(() => recorder.joined.length === 1, 'new-client');
    assert.equal(recorder.joined[0]!.data, user);
    assert.equal(await echo(ws, 'with data'), 'with data');
  });

  test('a promise of { data } accepts too, and { data: undefined } is an accept without data', LIMIT, async (t) => {
    const recorder = await startServer(t);
    let next: AuthenticateResult = { data: 42 };
    recorder.server.setFnAuthenticate(async () => next);
    await openWs(t, url(recorder.server.port));
    next = { data: undefined };
    await openWs(t, url(recorder.server.port));
    await until(() => recorder.joined.length === 2, 'two clients');
    assert.equal(recorder.joined[0]!.data, 42);
    assert.equal(recorder.joined[1]!.data, undefined);
  });

  test('true accepts with data undefined', LIMIT, async (t) => {
    const recorder = await startServer(t);
    recorder.server.setFnAuthenticate(() => true);
    await openWs(t, url(recorder.server.port));
    await until(() => recorder.joined.length === 1, 'new-client');
    assert.equal(recorder.joined[0]!.data, undefined);
  });

  test('false refuses with 403', LIMIT, async (t) => {
    const recorder = await startServer(t);
    recorder.server.setFnAuthenticate(() => false);
    assert.equal((await refusedWs(t, url(recorder.server.port))).status, 403);
  });

  test('{ status: 401, headers } refuses with 401 and WWW-Authenticate, reported as a HandshakeError', LIMIT, async (t) => {
    const recorder = await startServer(t);
    recorder.server.setFnAuthenticate(() => ({ status: 401, headers: { 'WWW-Authenticate': 'Bearer realm="chat"' } }));
    const reply = await rawRequest(recorder.server.port, handshakeRequest());
    assert.equal(reply.status, 401);
    assert.equal(reply.statusText, 'Unauthorized');
    assert.equal(reply.headers['www-authenticate'], 'Bearer realm="chat"');
    assert.equal(reply.headers['connection'], 'close');
    assert.equal(reply.closed, true);
    assert.equal(recorder.joined.length, 0);
    const [reported] = recorder.errors;
    assert.ok(reported?.error instanceof HandshakeError);
    assert.equal(reported.error.status, 401);
    assert.equal(reported.error.code, 'WS_ERR_HANDSHAKE_REFUSED');
    assert.deepEqual(reported.error.headers, { 'WWW-Authenticate': 'Bearer realm="chat"' });
  });

  test('a promise of { status: 429, message } refuses with 429 and the message as the body', LIMIT, async (t) => {
    const recorder = await startServer(t);
    recorder.server.setFnAuthenticate(async () => ({ status: 429, headers: { 'Retry-After': '30' }, message: 'Slow down.' }));
    const refusal = await refusedWs(t, url(recorder.server.port));
    assert.equal(refusal.status, 429);
    assert.equal(refusal.headers['retry-after'], '30');
    assert.equal(refusal.body, 'Slow down.\n');
  });

  test('a 5xx status is allowed: { status: 503 }', LIMIT, async (t) => {
    const recorder = await startServer(t);
    recorder.server.setFnAuthenticate(() => ({ status: 503 }));
    assert.equal((await refusedWs(t, url(recorder.server.port))).status, 503);
  });

  const invalid: Array<[string, unknown, RegExp]> = [
    ['a 2xx status', { status: 200 }, /status 200: a refusal needs a status from 400 to 599/],
    ['a 101 status', { status: 101 }, /status 101/],
    ['a status that is not an integer', { status: '401' }, /status 401/],
    ['a header with a line break (response splitting)', { status: 401, headers: { 'X-A': 'a\r\nSet-Cookie: x=1' } }, /'X-A'/],
    ['a header name that is not a token', { status: 401, headers: { 'Bad Name': 'x' } }, /'Bad Name'/],
    ['a Content-Length header, which the response sets itself', { status: 401, headers: { 'Content-Length': '0' } }, /'Content-Length'/],
    ['an object with neither data nor status', { user: 'ann' }, /return true, false, \{ data \} or \{ status \}/],
  ];
  for (const [what, verdict, message] of invalid) {
    test(`${what} answers 500 and reports the mistake to the error callback`, LIMIT, async (t) => {
      const recorder = await startServer(t);
      recorder.server.setFnAuthenticate(() => verdict as AuthenticateResult);
      const reply = await rawRequest(recorder.server.port, handshakeRequest());
      assert.equal(reply.status, 500);
      assert.equal(reply.headers['set-cookie'], undefined);
      assert.equal(recorder.joined.length, 0);
      assert.equal(recorder.errors.length, 1);
      assert.match(recorder.errors[0]!.error.message, message);
      assert.ok(!(recorder.errors[0]!.error instanceof HandshakeError));
    });
  }
});

describe('the client record', () => {
  test('is { id, handler, address, request, data, protocol }, request being handler.request', LIMIT, async (t) => {
    const recorder = await startServer(t, { subprotocols: ['chat'] });
    recorder.server.setFnAuthenticate(() => ({ data: 'ticket-7' }));
    await openWs(t, url(recorder.server.port, '/room?n=1'), ['chat']);
    await until(() => recorder.joined.length === 1, 'new-client');
    const client = recorder.joined[0]!;
    assert.deepEqual(Object.keys(client), ['id', 'handler', 'address', 'request', 'data', 'protocol']);
    assert.equal(client.request, client.handler.request);
    assert.equal(client.request.path, '/room');
    assert.equal(client.data, 'ticket-7');
    assert.equal(client.protocol, 'chat');
    assert.equal(client, recorder.server.clients[0]);
  });

  test('the request the authenticate function saw is the one on the client', LIMIT, async (t) => {
    const recorder = await startServer(t);
    let seen: HandshakeRequest | undefined;
    recorder.server.setFnAuthenticate((request) => {
      seen = request;
      return true;
    });
    await openWs(t, url(recorder.server.port));
    await until(() => recorder.joined.length === 1, 'new-client');
    assert.equal(recorder.joined[0]!.request, seen);
  });
});

describe('HandshakeRequest.cookies and .origin', () => {
  async function requestWith(t: TestContext, headers: Record<string, string>): Promise<HandshakeRequest> {
    const recorder = await startServer(t);
    const raw = await openRaw(t, recorder.server.port, { headers });
    await until(() => recorder.joined.length === 1, 'new-client');
    return recorder.joined[0]!.request;
  }

  test('cookies is the Cookie header parsed: first of a repeated name wins, quotes removed, values as sent', LIMIT, async (t) => {
    const request = await requestWith(t, { Cookie: 'session=abc123; theme="dark"; session=later; enc=a%20b; flag; =nameless; empty=' });
    assert.deepEqual({ ...request.cookies }, { session: 'abc123', theme: 'dark', enc: 'a%20b', empty: '' });
    assert.equal(request.cookies, request.cookies, 'parsed once');
  });

  test('cookies is empty without a Cookie header, and has no prototype keys', LIMIT, async (t) => {
    const request = await requestWith(t, {});
    assert.deepEqual({ ...request.cookies }, {});
    assert.equal(request.cookies['constructor'], undefined);
    assert.equal(request.cookies['__proto__'], undefined);
  });

  test('a Cookie named __proto__ is an ordinary entry', LIMIT, async (t) => {
    const request = await requestWith(t, { Cookie: '__proto__=x; a=1' });
    assert.equal(request.cookies['__proto__'], 'x');
    assert.equal(request.cookies['a'], '1');
  });

  test('origin is the Origin header, or undefined without one', LIMIT, async (t) => {
    assert.equal((await requestWith(t, { Origin: 'https://app.example' })).origin, 'https://app.example');
    assert.equal((await requestWith(t, {})).origin, undefined);
  });
});

describe('the origins option (§10.2)', () => {
  test('an Origin in the list is accepted, compared case-insensitively', LIMIT, async (t) => {
    const recorder = await startServer(t, { origins: ['https://app.example', 'http://localhost:8080'] });
    for (const origin of ['https://app.example', 'HTTPS://APP.Example', 'http://localhost:8080']) {
      const ws = await openWs(t, url(recorder.server.port), [], { origin });
      assert.equal(await echo(ws, origin), origin);
    }
  });

  test('another Origin is refused with 403 before setFnAuthenticate is asked, and reported', LIMIT, async (t) => {
    const recorder = await startServer(t, { origins: ['https://app.example'] });
    let asked = 0;
    recorder.server.setFnAuthenticate(() => {
      asked++;
      return true;
    });
    for (const origin of ['https://evil.example', 'https://app.example.evil', 'null']) {
      const refusal = await refusedWs(t, url(recorder.server.port), [], { origin });
      assert.equal(refusal.status, 403, origin);
      assert.match(refusal.body, /Origin/);
    }
    assert.equal(asked, 0);
    assert.equal(recorder.joined.length, 0);
    assert.deepEqual(
      recorder.errors.map(({ error }) => (error as HandshakeError).code),
      Array(3).fill('WS_ERR_HANDSHAKE_ORIGIN_NOT_ALLOWED'),
    );
  });

  test('a request without Origin (not a browser) passes the check and goes on to setFnAuthenticate', LIMIT, async (t) => {
    const recorder = await startServer(t, { origins: ['https://app.example'] });
    let asked = 0;
    recorder.server.setFnAuthenticate(() => ++asked > 0);
    const ws = await openWs(t, url(recorder.server.port));
    assert.equal(await echo(ws, 'no origin'), 'no origin');
    assert.equal(asked, 1);
  });

  test('an empty list refuses every request that has an Origin', LIMIT, async (t) => {
    const recorder = await startServer(t, { origins: [] });
    assert.equal((await refusedWs(t, url(recorder.server.port), [], { origin: 'http://127.0.0.1' })).status, 403);
    await openWs(t, url(recorder.server.port));
  });

  test('origins must be an array of non-empty strings', LIMIT, () => {
    assertOptionError({ origins: 'https://app.example' }, TypeError, /'origins' must be an array of non-empty strings/);
    assertOptionError({ origins: [''] }, TypeError, /'origins'/);
    assertOptionError({ origins: [5] }, TypeError, /'origins'/);
    assert.doesNotThrow(() => new WebsocketServer({ logger: SILENT, origins: ['null'] }));
  });
});
