// Subprotocols (RFC 6455 §1.9, §4.1 item 10, §4.2.2 /subprotocol/): the subprotocols and requireSubprotocol
// options, the 101's Sec-WebSocket-Protocol, client.protocol and client.handler.protocol.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HandshakeError, type HandshakeRequest, type SubprotocolChooser } from '../websocket-server.ts';
import { handshakeRequest, rawRequest } from './support/raw-client.ts';
import { assertOptionError, echo, openRaw, openWs, refusedWs, startServer } from './support/harness.ts';
import { LIMIT, until } from './support/wait.ts';

const url = (port: number): string => `ws://127.0.0.1:${port}/`;

describe('a list of subprotocols', () => {
  test('the server picks the first of its own list that the client offers, and both sides see it', LIMIT, async (t) => {
    const { server, joined } = await startServer(t, { subprotocols: ['b', 'a'] });
    const ws = await openWs(t, url(server.port), ['a', 'b']);
    assert.equal(ws.protocol, 'b');
    await until(() => joined.length === 1, 'new-client');
    assert.equal(joined[0]!.protocol, 'b');
    assert.equal(joined[0]!.handler.protocol, 'b');
    assert.equal(await echo(ws, 'in b'), 'in b');
  });

  test('the 101 carries exactly one Sec-WebSocket-Protocol with the chosen name', LIMIT, async (t) => {
    const { server } = await startServer(t, { subprotocols: ['chat.v2', 'chat.v1'] });
    const raw = await openRaw(t, server.port, { headers: { 'Sec-WebSocket-Protocol': 'chat.v1, chat.v2' } });
    assert.equal(raw.handshake.status, 101);
    assert.equal(raw.handshake.headers['sec-websocket-protocol'], 'chat.v2');
  });

  test('repeated Sec-WebSocket-Protocol fields are one list (§11.3.4)', LIMIT, async (t) => {
    const { server } = await startServer(t, { subprotocols: ['second'] });
    const request = handshakeRequest({ headers: { 'Sec-WebSocket-Protocol': 'first' } }).replace(
      '\r\n\r\n',
      '\r\nSec-WebSocket-Protocol: second\r\n\r\n',
    );
    const reply = await rawRequest(server.port, request);
    assert.equal(reply.status, 101);
    assert.equal(reply.headers['sec-websocket-protocol'], 'second');
  });

  test('names are compared exactly: "Chat" does not match "chat"', LIMIT, async (t) => {
    const { server } = await startServer(t, { subprotocols: ['chat'] });
    const reply = await rawRequest(server.port, handshakeRequest({ headers: { 'Sec-WebSocket-Protocol': 'Chat' } }));
    assert.equal(reply.status, 101);
    assert.equal(reply.headers['sec-websocket-protocol'], undefined);
  });

  test('no match: the client connects without the header, and protocol is the empty string', LIMIT, async (t) => {
    const { server, joined } = await startServer(t, { subprotocols: ['x'] });
    const raw = await openRaw(t, server.port, { headers: { 'Sec-WebSocket-Protocol': 'a, b' } });
    assert.equal(raw.handshake.status, 101);
    assert.equal(raw.handshake.headers['sec-websocket-protocol'], undefined);
    await until(() => joined.length === 1, 'new-client');
    assert.equal(joined[0]!.protocol, '');
    assert.equal(joined[0]!.handler.protocol, '');
  });

  test('a client that offers none connects with protocol the empty string', LIMIT, async (t) => {
    const { server, joined } = await startServer(t, { subprotocols: ['x'] });
    const ws = await openWs(t, url(server.port));
    assert.equal(ws.protocol, '');
    await until(() => joined.length === 1, 'new-client');
    assert.equal(joined[0]!.protocol, '');
  });

  test('without the option, an offer is ignored: no header, protocol the empty string', LIMIT, async (t) => {
    const { server, joined } = await startServer(t);
    const reply = await rawRequest(server.port, handshakeRequest({ headers: { 'Sec-WebSocket-Protocol': 'chat' } }));
    assert.equal(reply.status, 101);
    assert.equal(reply.headers['sec-websocket-protocol'], undefined);
    await until(() => joined.length === 1, 'new-client');
    assert.equal(joined[0]!.protocol, '');
  });
});

describe('requireSubprotocol', () => {
  test('no match is refused with 400 and reported as a HandshakeError', LIMIT, async (t) => {
    const { server, joined, errors } = await startServer(t, { subprotocols: ['x'], requireSubprotocol: true });
    const refusal = await refusedWs(t, url(server.port), ['a', 'b']);
    assert.equal(refusal.status, 400);
    assert.match(refusal.body, /subprotocol/);
    assert.equal(joined.length, 0);
    const [reported] = errors;
    assert.ok(reported?.error instanceof HandshakeError);
    assert.equal(reported.error.status, 400);
    assert.equal(reported.error.code, 'WS_ERR_HANDSHAKE_SUBPROTOCOL_REQUIRED');
    assert.equal(reported.client, null);
  });

  test('a client that offers none is refused with 400', LIMIT, async (t) => {
    const { server } = await startServer(t, { subprotocols: ['x'], requireSubprotocol: true });
    assert.equal((await refusedWs(t, url(server.port))).status, 400);
  });

  test('a match is accepted', LIMIT, async (t) => {
    const { server } = await startServer(t, { subprotocols: ['x'], requireSubprotocol: true });
    const ws = await openWs(t, url(server.port), ['y', 'x']);
    assert.equal(ws.protocol, 'x');
  });
});

describe('an invalid Sec-WebSocket-Protocol is refused with 400 (§4.1 item 10: 1#token, unique)', () => {
  const invalid: Array<[string, string]> = [
    ['a name with a space', 'a b'],
    ['a name with a separator', 'chat/1'],
    ['a quoted name', '"chat"'],
    ['a duplicate', 'chat, chat'],
    ['an empty value', ''],
    ['only commas', ' , ,'],
  ];
  for (const [what, value] of invalid) {
    test(`${what} (${JSON.stringify(value)}) gets 400, with or without the option`, LIMIT, async (t) => {
      for (const options of [{}, { subprotocols: ['chat'] }]) {
        const { server, joined } = await startServer(t, options);
        const reply = await rawRequest(server.port, handshakeRequest({ headers: { 'Sec-WebSocket-Protocol': value } }));
        assert.equal(reply.status, 400);
        assert.match(reply.body, /Sec-WebSocket-Protocol/);
        assert.equal(joined.length, 0);
      }
    });
  }

  test('empty list elements are ignored (RFC 9110 §5.6.1.2): "a, , b" offers a and b', LIMIT, async (t) => {
    const { server } = await startServer(t, { subprotocols: ['b'] });
    const reply = await rawRequest(server.port, handshakeRequest({ headers: { 'Sec-WebSocket-Protocol': 'a, , b' } }));
    assert.equal(reply.status, 101);
    assert.equal(reply.headers['sec-websocket-protocol'], 'b');
  });
});

describe('a function that chooses', () => {
  test('receives the offered names in order and the request, and its choice is used', LIMIT, async (t) => {
    const calls: Array<{ offered: readonly string[]; request: HandshakeRequest }> = [];
    const choose: SubprotocolChooser = (offered, request) => {
      calls.push({ offered, request });
      return offered[offered.length - 1];
    };
    const { server, joined } = await startServer(t, { subprotocols: choose });
    const ws = await openWs(t, `ws://127.0.0.1:${server.port}/room?id=3`, ['a', 'b', 'c']);
    assert.equal(ws.protocol, 'c');
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0]!.offered, ['a', 'b', 'c']);
    assert.equal(calls[0]!.request.path, '/room');
    await until(() => joined.length === 1, 'new-client');
    assert.equal(joined[0]!.protocol, 'c');
    assert.equal(calls[0]!.request, joined[0]!.handler.request);
  });

  test('undefined or null means none: connected without the header, or 400 with requireSubprotocol', LIMIT, async (t) => {
    for (const answer of [undefined, null]) {
      const open = await startServer(t, { subprotocols: () => answer });
      const accepted = await rawRequest(open.server.port, handshakeRequest({ headers: { 'Sec-WebSocket-Protocol': 'a' } }));
      assert.equal(accepted.status, 101);
      assert.equal(accepted.headers['sec-websocket-protocol'], undefined);
      const strict = await startServer(t, { subprotocols: () => answer, requireSubprotocol: true });
      assert.equal((await refusedWs(t, url(strict.server.port), ['a'])).status, 400);
    }
  });

  test('is not called when the client offers nothing', LIMIT, async (t) => {
    let called = false;
    const { server } = await startServer(t, {
      subprotocols: () => {
        called = true;
        return 'a';
      },
    });
    const ws = await openWs(t, url(server.port));
    assert.equal(ws.protocol, '');
    assert.equal(called, false);
  });

  test('choosing a name the client did not offer answers 500 and is reported to the error callback', LIMIT, async (t) => {
    const { server, joined, errors } = await startServer(t, { subprotocols: () => 'zzz' });
    const refusal = await refusedWs(t, url(server.port), ['a', 'b']);
    assert.equal(refusal.status, 500);
    assert.equal(joined.length, 0);
    assert.equal(errors.length, 1);
    const { error, client } = errors[0]!;
    assert.equal(error.constructor, RangeError);
    assert.match(error.message, /chose 'zzz', which the client did not offer \(it offered a, b\)/);
    assert.equal(client, null);
  });

  test('a throw answers 500 and the thrown error reaches the error callback', LIMIT, async (t) => {
    const boom = new Error('no idea');
    const { server, errors } = await startServer(t, {
      subprotocols: () => {
        throw boom;
      },
    });
    assert.equal((await refusedWs(t, url(server.port), ['a'])).status, 500);
    assert.deepEqual(errors.map((e) => e.error), [boom]);
  });

  test('returning a promise (it must answer synchronously) answers 500 with a TypeError', LIMIT, async (t) => {
    const { server, errors } = await startServer(t, {
      subprotocols: (() => Promise.resolve('a')) as unknown as SubprotocolChooser,
    });
    assert.equal((await refusedWs(t, url(server.port), ['a'])).status, 500);
    assert.equal(errors[0]?.error.constructor, TypeError);
    assert.match(errors[0]!.error.message, /a promise/);
  });
});

describe('subprotocol options', () => {
  const bad: Array<[Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp]> = [
    [{ subprotocols: 'chat' }, TypeError, /'subprotocols' must be an array of names or a function/],
    [{ subprotocols: ['chat', 7] }, TypeError, /'subprotocols' must hold strings/],
    [{ subprotocols: ['chat v1'] }, RangeError, /'chat v1' is not a valid subprotocol name/],
    [{ subprotocols: [''] }, RangeError, /'' is not a valid subprotocol name/],
    [{ requireSubprotocol: 'yes', subprotocols: ['a'] }, TypeError, /'requireSubprotocol' must be a boolean/],
    [{ requireSubprotocol: true }, TypeError, /'requireSubprotocol' needs 'subprotocols'/],
  ];
  for (const [options, ErrorClass, message] of bad) {
    test(`${JSON.stringify(options)} throws a ${ErrorClass.name}`, LIMIT, () => assertOptionError(options, ErrorClass, message));
  }
});
