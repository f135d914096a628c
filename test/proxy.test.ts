// Client addresses behind proxies: `trustProxy` (X-Forwarded-For, RFC 7239 Forwarded) and the PROXY protocol v1/v2
// (HAProxy's proxy-protocol.txt) on our own listener. Every request is written by hand on a real TCP connection to
// 127.0.0.1, so the headers a proxy (or a client pretending to be one) sends are exactly those of the test.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import * as net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClientAddress, WebsocketServerOptions } from '../websocket-server.ts';
import { handshakeRequest, rawRequest } from './support/raw-client.ts';
import { assertOptionError, recordingLogger, startBehindApp, startServer, type Harness } from './support/harness.ts';
import { LIMIT, until, within } from './support/wait.ts';

const SPOOFED = '6.6.6.6';

/** A handshake request with extra header lines appended as they are (a name may repeat). */
function requestWithLines(...lines: string[]): string {
  return `${handshakeRequest().slice(0, -2)}${lines.map((line) => `${line}\r\n`).join('')}\r\n`;
}

/** Sends `request` (after `prefix`, e.g. a PROXY header) to a server made with `options`; the address it saw. */
async function addressSeen(
  t: TestContext,
  options: WebsocketServerOptions,
  request: string,
  prefix: Buffer = Buffer.alloc(0),
): Promise<ClientAddress & { h: Harness }> {
  const h = await startServer(t, options);
  const reply = await rawRequest(h.server.port, Buffer.concat([prefix, Buffer.from(request, 'latin1')]));
  assert.equal(reply.status, 101, `the handshake is accepted: ${reply.status} ${reply.body}`);
  await until(() => h.joined.length === 1, 'new-client');
  const client = h.joined[0]!;
  assert.deepEqual(
    { host: client.request.remoteAddress, port: client.request.remotePort },
    { ...client.address },
    'request.remoteAddress and client.address agree',
  );
  return { ...client.address, h };
}

/** Writes the chunks (with a pause between them) and waits for the server to close; what it sent meanwhile. */
async function closedWithoutAnswer(port: number, chunks: readonly Buffer[], pauseMs = 0): Promise<Buffer> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.on('error', () => undefined);
  const closed = once(socket, 'close');
  for (const chunk of chunks) {
    if (socket.destroyed) break;
    socket.write(chunk);
    if (pauseMs > 0) await sleep(pauseMs);
  }
  await within(closed, 'the server to close the connection');
  return Buffer.concat(received);
}

const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A PROXY v2 header: `command` 0 LOCAL / 1 PROXY, `family` the family and transport byte, then the body. */
function proxyV2(command: number, family: number, body: Buffer, version = 2): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(body.length);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([(version << 4) | command, family]), length, body]);
}

function ports(source: number, destination: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt16BE(source, 0);
  bytes.writeUInt16BE(destination, 2);
  return bytes;
}

/** TCP over IPv4 (0x11): source, destination, ports, then the TLVs. */
function v2Tcp4(source: number[], port: number, tlvs = Buffer.alloc(0)): Buffer {
  return proxyV2(1, 0x11, Buffer.concat([Buffer.from(source), Buffer.from([127, 0, 0, 1]), ports(port, 80), tlvs]));
}

/** TCP over IPv6 (0x21): 16-byte source and destination, ports. */
function v2Tcp6(source: Buffer, port: number): Buffer {
  const destination = Buffer.alloc(16);
  destination[15] = 1;
  return proxyV2(1, 0x21, Buffer.concat([source, destination, ports(port, 443)]));
}

/** 2001:db8::5 as bytes. */
const DOC_IPV6 = Buffer.from('20010db8000000000000000000000005', 'hex');
/** ::ffff:10.0.0.5 as bytes. */
const MAPPED_IPV4 = Buffer.from('00000000000000000000ffff0a000005', 'hex');

const v1 = (line: string): Buffer => Buffer.from(`${line}\r\n`, 'latin1');

describe('trustProxy: X-Forwarded-For', () => {
  test('without trustProxy a spoofed X-Forwarded-For is ignored: the address is the TCP peer', LIMIT, async (t) => {
    const seen = await addressSeen(t, {}, requestWithLines(`X-Forwarded-For: ${SPOOFED}`));
    assert.equal(seen.host, '127.0.0.1');
    assert.notEqual(seen.port, 0);
  });

  test('a peer not in the trusted list is its own address, whatever X-Forwarded-For it sends', LIMIT, async (t) => {
    const seen = await addressSeen(t, { trustProxy: ['10.0.0.0/8', '::1'] }, requestWithLines(`X-Forwarded-For: ${SPOOFED}`));
    assert.equal(seen.host, '127.0.0.1');
  });

  test('behind one trusted hop, the client is the address that hop appended, port unknown (0)', LIMIT, async (t) => {
    const seen = await addressSeen(t, { trustProxy: 1 }, requestWithLines('X-Forwarded-For: 203.0.113.7'));
    assert.deepEqual({ host: seen.host, port: seen.port }, { host: '203.0.113.7', port: 0 });
  });

  test('what the client wrote before the trusted hops is never read (hop counts)', LIMIT, async (t) => {
    const one = await addressSeen(t, { trustProxy: 1 }, requestWithLines(`X-Forwarded-For: ${SPOOFED}, 203.0.113.7`));
    assert.equal(one.host, '203.0.113.7');
    const two = await addressSeen(t, { trustProxy: 2 }, requestWithLines(`X-Forwarded-For: ${SPOOFED}, 203.0.113.7, 10.0.0.2`));
    assert.equal(two.host, '203.0.113.7');
  });

  test('more trusted hops than the header has nodes: the leftmost node is the client', LIMIT, async (t) => {
    const seen = await addressSeen(t, { trustProxy: 3 }, requestWithLines('X-Forwarded-For: 203.0.113.7'));
    assert.equal(seen.host, '203.0.113.7');
  });

  test('with a list, the walk stops at the first node that is not a trusted proxy', LIMIT, async (t) => {
    const seen = await addressSeen(
      t,
      { trustProxy: ['127.0.0.1', '10.0.0.0/8'] },
      requestWithLines(`X-Forwarded-For: ${SPOOFED}, 198.51.100.9, 10.1.2.3`),
    );
    assert.equal(seen.host, '198.51.100.9');
  });

  test('several X-Forwarded-For lines are one list (RFC 9110 §5.3), the last line nearest', LIMIT, async (t) => {
    const seen = await addressSeen(t, { trustProxy: 1 }, requestWithLines(`X-Forwarded-For: ${SPOOFED}`, 'X-Forwarded-For: 203.0.113.7'));
    assert.equal(seen.host, '203.0.113.7');
  });

  test('ports and bracketed IPv6 nodes are read, IPv6 with its port', LIMIT, async (t) => {
    const v4 = await addressSeen(t, { trustProxy: 1 }, requestWithLines('X-Forwarded-For: 203.0.113.7:5555'));
    assert.deepEqual({ host: v4.host, port: v4.port }, { host: '203.0.113.7', port: 5555 });
    const v6 = await addressSeen(t, { trustProxy: 1 }, requestWithLines('X-Forwarded-For: [2001:db8::7]:4711'));
    assert.deepEqual({ host: v6.host, port: v6.port }, { host: '2001:db8::7', port: 4711 });
    const bare = await addressSeen(t, { trustProxy: 1 }, requestWithLines('X-Forwarded-For: 2001:db8::7'));
    assert.equal(bare.host, '2001:db8::7');
  });

  test('a malformed node from a trusted proxy: the proxy\'s own address, a warning, and the client connects', LIMIT, async (t) => {
    const logger = recordingLogger();
    const seen = await addressSeen(t, { trustProxy: 1, logger }, requestWithLines('X-Forwarded-For: not-an-address'));
    assert.equal(seen.host, '127.0.0.1');
    assert.equal(logger.lines.warn.length, 1);
    assert.match(logger.lines.warn[0]!, /not-an-address/);
  });

  test('a malformed node the trusted hops do not reach is never read', LIMIT, async (t) => {
    const logger = recordingLogger();
    const seen = await addressSeen(t, { trustProxy: 1, logger }, requestWithLines('X-Forwarded-For: <garbage>, 203.0.113.7'));
    assert.equal(seen.host, '203.0.113.7');
    assert.deepEqual(logger.lines.warn, []);
  });

  test('trustProxy works on an attached server too (handleUpgrade)', LIMIT, async (t) => {
    const h = await startBehindApp(t, { trustProxy: ['127.0.0.1'] });
    const reply = await rawRequest(h.port, requestWithLines(`X-Forwarded-For: ${SPOOFED}, 203.0.113.7`));
    assert.equal(reply.status, 101);
    await until(() => h.joined.length === 1, 'new-client');
    assert.equal(h.joined[0]!.address.host, '203.0.113.7');
  });
});

describe('trustProxy: Forwarded (RFC 7239)', () => {
  test('for= of the nearest element, with other parameters beside it (§4)', LIMIT, async (t) => {
    const seen = await addressSeen(
      t,
      { trustProxy: 1 },
      requestWithLines(`Forwarded: for=${SPOOFED}, for=192.0.2.60;proto=http;by=203.0.113.43`),
    );
    assert.equal(seen.host, '192.0.2.60');
  });

  test('a quoted IPv6 node with a port (§6), and the parameter name in any case', LIMIT, async (t) => {
    const seen = await addressSeen(t, { trustProxy: 1 }, requestWithLines('Forwarded: For="[2001:db8:cafe::17]:4711"'));
    assert.deepEqual({ host: seen.host, port: seen.port }, { host: '2001:db8:cafe::17', port: 4711 });
  });

  test('several Forwarded lines are one list, the last nearest; a spoofed one before is not reached', LIMIT, async (t) => {
    const seen = await addressSeen(t, { trustProxy: 1 }, requestWithLines(`Forwarded: for=${SPOOFED}`, 'Forwarded: for=192.0.2.60'));
    assert.equal(seen.host, '192.0.2.60');
  });

  test('an obfuscated or unknown node (§6.2, §6.3): the address of the proxy that hid it', LIMIT, async (t) => {
    for (const node of ['_hidden', 'unknown', '"_SEVKISEK"']) {
      const logger = recordingLogger();
      const seen = await addressSeen(t, { trustProxy: 2, logger }, requestWithLines(`Forwarded: for=192.0.2.60, for=${node}`));
      assert.equal(seen.host, '127.0.0.1', node);
      assert.deepEqual(logger.lines.warn, [], `${node} is valid, not worth a warning`);
    }
  });

  test('an obfuscated port is no port', LIMIT, async (t) => {
    const seen = await addressSeen(t, { trustProxy: 1 }, requestWithLines('Forwarded: for="192.0.2.60:_port"'));
    assert.deepEqual({ host: seen.host, port: seen.port }, { host: '192.0.2.60', port: 0 });
  });

  test('a malformed Forwarded header from a trusted proxy: the proxy\'s own address and a warning', LIMIT, async (t) => {
    for (const header of ['for="192.0.2.60', 'for=192.0.2.60;for=192.0.2.61', 'for=[2001:db8::1]', 'for 192.0.2.60']) {
      const logger = recordingLogger();
      const seen = await addressSeen(t, { trustProxy: 1, logger }, requestWithLines(`Forwarded: ${header}`));
      assert.equal(seen.host, '127.0.0.1', header);
      assert.equal(logger.lines.warn.length, 1, header);
    }
  });

  test('both headers naming the same client: it is used, with the port Forwarded gives', LIMIT, async (t) => {
    const seen = await addressSeen(
      t,
      { trustProxy: 1 },
      requestWithLines('X-Forwarded-For: 192.0.2.60', 'Forwarded: for="192.0.2.60:1234"'),
    );
    assert.deepEqual({ host: seen.host, port: seen.port }, { host: '192.0.2.60', port: 1234 });
  });

  test('both headers naming different clients (one spoofed): neither wins, the proxy\'s own address', LIMIT, async (t) => {
    for (const lines of [
      ['X-Forwarded-For: 192.0.2.60', `Forwarded: for=${SPOOFED}`],
      [`X-Forwarded-For: ${SPOOFED}`, 'Forwarded: for=192.0.2.60'],
    ]) {
      const logger = recordingLogger();
      const seen = await addressSeen(t, { trustProxy: 1, logger }, requestWithLines(...lines));
      assert.equal(seen.host, '127.0.0.1', lines.join(' / '));
      assert.match(logger.lines.warn[0] ?? '', /different clients/);
    }
  });
});

describe('trustProxy: options', () => {
  test('invalid values are refused at construction', () => {
    assertOptionError({ trustProxy: true }, TypeError, /trustProxy.*true would trust/);
    assertOptionError({ trustProxy: 'loopback' }, TypeError, /trustProxy/);
    assertOptionError({ trustProxy: -1 }, RangeError, /trustProxy/);
    assertOptionError({ trustProxy: 1.5 }, RangeError, /trustProxy/);
    assertOptionError({ trustProxy: ['10.0.0.0/33'] }, RangeError, /10\.0\.0\.0\/33/);
    assertOptionError({ trustProxy: ['2001:db8::/129'] }, RangeError, /2001:db8::\/129/);
    assertOptionError({ trustProxy: ['proxy.example'] }, RangeError, /proxy\.example/);
    assertOptionError({ trustProxy: ['10.0.0.1/'] }, RangeError, /10\.0\.0\.1\//);
    assertOptionError({ trustProxy: [''] }, TypeError, /trustProxy/);
  });

  test('0 hops and an empty list trust nobody', LIMIT, async (t) => {
    for (const trustProxy of [0, []]) {
      const seen = await addressSeen(t, { trustProxy }, requestWithLines(`X-Forwarded-For: ${SPOOFED}`));
      assert.equal(seen.host, '127.0.0.1');
    }
  });

  test('an IPv4 range matches IPv4-mapped IPv6 peers, an IPv6 range IPv6 peers (via PROXY TCP6)', LIMIT, async (t) => {
    const options = { proxyProtocol: true, trustProxy: ['10.0.0.0/8', '2001:db8::/32'] };
    const mapped = await addressSeen(t, options, requestWithLines('X-Forwarded-For: 203.0.113.7'), v2Tcp6(MAPPED_IPV4, 1000));
    assert.equal(mapped.host, '203.0.113.7');
    const v6 = await addressSeen(t, options, requestWithLines('X-Forwarded-For: 203.0.113.8'), v2Tcp6(DOC_IPV6, 1000));
    assert.equal(v6.host, '203.0.113.8');
    const outside = await addressSeen(
      t,
      { proxyProtocol: true, trustProxy: ['10.0.0.0/8', '2001:db9::/32'] },
      requestWithLines(`X-Forwarded-For: ${SPOOFED}`),
      v2Tcp6(DOC_IPV6, 1000),
    );
    assert.equal(outside.host, '2001:db8::5');
    const mappedEntry = await addressSeen(
      t,
      { proxyProtocol: true, trustProxy: ['::ffff:10.0.0.0/104'] },
      requestWithLines('X-Forwarded-For: 203.0.113.9'),
      v1('PROXY TCP4 10.9.9.9 127.0.0.1 1000 80'),
    );
    assert.equal(mappedEntry.host, '203.0.113.9');
  });
});

describe('proxyProtocol: accepted headers', () => {
  test('v1 TCP4 gives the client address and port; the upgrade follows in the same packet', LIMIT, async (t) => {
    const seen = await addressSeen(t, { proxyProtocol: true }, handshakeRequest(), v1('PROXY TCP4 192.0.2.10 127.0.0.1 56324 80'));
    assert.deepEqual({ host: seen.host, port: seen.port }, { host: '192.0.2.10', port: 56324 });
    assert.deepEqual(seen.h.server.stats.handshakeFailures, {});
  });

  test('v1 TCP6', LIMIT, async (t) => {
    const seen = await addressSeen(t, { proxyProtocol: true }, handshakeRequest(), v1('PROXY TCP6 2001:db8::5 ::1 4000 443'));
    assert.deepEqual({ host: seen.host, port: seen.port }, { host: '2001:db8::5', port: 4000 });
  });

  test('v1 UNKNOWN (with or without addresses): the peer\'s own address', LIMIT, async (t) => {
    for (const line of ['PROXY UNKNOWN', 'PROXY UNKNOWN ffff::1 ffff::2 1 2']) {
      const seen = await addressSeen(t, { proxyProtocol: true }, handshakeRequest(), v1(line));
      assert.equal(seen.host, '127.0.0.1', line);
      assert.notEqual(seen.port, 0);
    }
  });

  test('v2 TCP4, its TLVs skipped', LIMIT, async (t) => {
    const tlvs = Buffer.from([0xea, 0x00, 0x05, ...Buffer.from('vpc-1'), 0x04, 0x00, 0x00]);
    const seen = await addressSeen(t, { proxyProtocol: true }, handshakeRequest(), v2Tcp4([198, 51, 100, 22], 40000, tlvs));
    assert.deepEqual({ host: seen.host, port: seen.port }, { host: '198.51.100.22', port: 40000 });
  });

  test('v2 TCP6, written as sockets write IPv6 (and IPv4-mapped) addresses', LIMIT, async (t) => {
    const seen = await addressSeen(t, { proxyProtocol: true }, handshakeRequest(), v2Tcp6(DOC_IPV6, 1234));
    assert.deepEqual({ host: seen.host, port: seen.port }, { host: '2001:db8::5', port: 1234 });
    const mapped = await addressSeen(t, { proxyProtocol: true }, handshakeRequest(), v2Tcp6(MAPPED_IPV4, 1234));
    assert.equal(mapped.host, '::ffff:10.0.0.5');
  });

  test('v2 LOCAL (a health check of the proxy): the peer\'s own address, the body skipped', LIMIT, async (t) => {
    const body = Buffer.concat([Buffer.from([192, 0, 2, 1, 127, 0, 0, 1]), ports(1, 2)]);
    const seen = await addressSeen(t, { proxyProtocol: true }, handshakeRequest(), proxyV2(0, 0x11, body));
    assert.equal(seen.host, '127.0.0.1');
    const unspec = await addressSeen(t, { proxyProtocol: true }, handshakeRequest(), proxyV2(1, 0x00, Buffer.alloc(0)));
    assert.equal(unspec.host, '127.0.0.1');
  });

  test('the header and the request split byte by byte across TCP writes', LIMIT, async (t) => {
    const cases: Array<[Buffer, string]> = [
      [v1('PROXY TCP4 192.0.2.10 127.0.0.1 56324 80'), '192.0.2.10'],
      [v2Tcp4([192, 0, 2, 11], 5), '192.0.2.11'],
    ];
    for (const [header, client] of cases) {
      const h = await startServer(t, { proxyProtocol: true });
      const bytes = Buffer.concat([header, Buffer.from(handshakeRequest(), 'latin1')]);
      const reply = await rawRequest(h.server.port, [...bytes].map((byte) => Buffer.from([byte])), { chunkDelayMs: 1 });
      assert.equal(reply.status, 101);
      await until(() => h.joined.length === 1, 'new-client');
      assert.equal(h.joined[0]!.address.host, client);
    }
  });

  test('frames sent right after the upgrade, in the same packet as the PROXY header, are received', LIMIT, async (t) => {
    const h = await startServer(t, { proxyProtocol: true });
    const masked = Buffer.from([0x81, 0x82, 1, 2, 3, 4, 'h'.charCodeAt(0) ^ 1, 'i'.charCodeAt(0) ^ 2]);
    const socket = net.connect({ host: '127.0.0.1', port: h.server.port });
    t.after(() => socket.destroy());
    socket.write(Buffer.concat([v1('PROXY TCP4 192.0.2.10 127.0.0.1 1 80'), Buffer.from(handshakeRequest(), 'latin1'), masked]));
    await until(() => h.messages.length === 1, 'the message');
    assert.equal(h.messages[0]!.message, 'hi');
  });

  test('trustProxy reads X-Forwarded-For when the PROXY header names a trusted proxy, not otherwise', LIMIT, async (t) => {
    const options = { proxyProtocol: true, trustProxy: ['192.0.2.0/24'] };
    const trusted = await addressSeen(t, options, requestWithLines('X-Forwarded-For: 203.0.113.7'), v1('PROXY TCP4 192.0.2.10 127.0.0.1 1 80'));
    assert.equal(trusted.host, '203.0.113.7');
    const spoofed = await addressSeen(t, options, requestWithLines(`X-Forwarded-For: ${SPOOFED}`), v1('PROXY TCP4 198.51.100.1 127.0.0.1 1 80'));
    assert.equal(spoofed.host, '198.51.100.1');
  });
});

describe('proxyProtocol: refused connections', () => {
  const INVALID = 'WS_ERR_HANDSHAKE_PROXY_HEADER_INVALID';
  const TOO_LONG = 'WS_ERR_HANDSHAKE_PROXY_HEADER_TOO_LONG';

  /** Each input closes the connection without a byte of answer, counted under `code`, with a log line. */
  async function assertDropped(t: TestContext, inputs: ReadonlyArray<Buffer | Buffer[]>, code: string, options: WebsocketServerOptions = {}): Promise<void> {
    const logger = recordingLogger();
    const h = await startServer(t, { proxyProtocol: true, logger, loglevel: 'info', ...options });
    for (const input of inputs) {
      const answer = await closedWithoutAnswer(h.server.port, Array.isArray(input) ? input : [input], 1);
      assert.equal(answer.length, 0, `no answer to ${JSON.stringify(input.toString())}`);
    }
    assert.deepEqual(h.server.stats.handshakeFailures, { [code]: inputs.length });
    assert.equal(h.joined.length, 0);
    assert.equal(logger.lines.warn.length, 1, 'the first is a warning');
    assert.match(logger.lines.warn[0]!, /Check: .*(proxy|PROXY)/, 'with what to check, as every refusal warning');
    assert.equal(logger.lines.info.filter((line) => line.includes('closed a connection')).length, inputs.length - 1);
    assert.equal(h.errors.length, inputs.length, 'each is reported to setFnError');
  }

  test('a plain HTTP request without the header (the client went around the proxy)', LIMIT, async (t) => {
    await assertDropped(t, [Buffer.from(handshakeRequest(), 'latin1')], INVALID);
  });

  test('garbage is refused at its first byte that fits neither signature, even byte by byte', LIMIT, async (t) => {
    const probe = Buffer.from('PROXX TCP4 192.0.2.1 127.0.0.1 1 2\r\n');
    // Only the first five bytes are sent: the sixth write never comes, the server closes on the fifth.
    await assertDropped(t, [[...probe.subarray(0, 5)].map((byte) => Buffer.from([byte]))], INVALID);
  });

  test('malformed v1 lines', LIMIT, async (t) => {
    await assertDropped(
      t,
      [
        v1('PROXY TCP5 192.0.2.1 127.0.0.1 1 2'),
        v1('PROXY TCP4 192.0.2.1 127.0.0.1 1'),
        v1('PROXY TCP4 192.0.2.1 127.0.0.1 65536 2'),
        v1('PROXY TCP4 192.0.2.1 127.0.0.1 01 2'),
        v1('PROXY TCP4 2001:db8::1 127.0.0.1 1 2'),
        v1('PROXY TCP6 192.0.2.1 ::1 1 2'),
        v1('PROXY  TCP4 192.0.2.1 127.0.0.1 1 2'),
        Buffer.from('PROXY TCP4 192.0.2.1 127.0.0.1 1 2\n'),
      ],
      INVALID,
    );
  });

  test('malformed v2 headers: version, command, transport, addresses too short', LIMIT, async (t) => {
    const body = Buffer.concat([Buffer.from([192, 0, 2, 1, 127, 0, 0, 1]), ports(1, 2)]);
    await assertDropped(
      t,
      [
        proxyV2(1, 0x11, body, 1),
        proxyV2(2, 0x11, body),
        proxyV2(1, 0x12, body),
        proxyV2(1, 0x11, body.subarray(0, 11)),
        proxyV2(1, 0x21, Buffer.alloc(35)),
        proxyV2(1, 0x41, body),
      ],
      INVALID,
    );
  });

  test('a v1 header longer than 107 bytes is refused once 107 bytes came without its end', LIMIT, async (t) => {
    const long = Buffer.from(`PROXY UNKNOWN ${'x'.repeat(93)}`);
    assert.equal(long.length, 107);
    await assertDropped(t, [long], TOO_LONG);
  });

  test('a v1 UNKNOWN header of exactly 107 bytes is accepted', LIMIT, async (t) => {
    const header = v1(`PROXY UNKNOWN ${'x'.repeat(91)}`);
    assert.equal(header.length, 107);
    const seen = await addressSeen(t, { proxyProtocol: true }, handshakeRequest(), header);
    assert.equal(seen.host, '127.0.0.1');
  });

  test('a v2 header announcing more than 4096 bytes is refused from its 16 bytes, the rest never sent', LIMIT, async (t) => {
    const head = proxyV2(1, 0x11, Buffer.alloc(4097)).subarray(0, 16);
    await assertDropped(t, [head], TOO_LONG);
  });

  test('a v2 header of 4096 bytes of TLVs is accepted', LIMIT, async (t) => {
    const tlvs = Buffer.concat([Buffer.from([0xee, 0x0f, 0xf1]), Buffer.alloc(4081)]);
    const header = v2Tcp4([192, 0, 2, 77], 9, tlvs);
    assert.equal(header.length, 16 + 4096);
    const seen = await addressSeen(t, { proxyProtocol: true }, handshakeRequest(), header);
    assert.equal(seen.host, '192.0.2.77');
  });

  test('a header that does not arrive within proxyProtocolTimeout, though handshakeTimeout is long', LIMIT, async (t) => {
    const logger = recordingLogger();
    const h = await startServer(t, { proxyProtocol: true, proxyProtocolTimeout: 100, handshakeTimeout: 60_000, logger });
    // Nothing, then half a header: each is closed by the PROXY timer, well before handshakeTimeout.
    assert.equal((await closedWithoutAnswer(h.server.port, [])).length, 0);
    assert.equal((await closedWithoutAnswer(h.server.port, [Buffer.from('PROXY TCP4 19')])).length, 0);
    assert.deepEqual(h.server.stats.handshakeFailures, { WS_ERR_HANDSHAKE_PROXY_HEADER_TIMEOUT: 2 });
    assert.match(logger.lines.warn[0] ?? '', /proxyProtocolTimeout/);
  });

  test('after the header, the request head has what is left of handshakeTimeout (408)', LIMIT, async (t) => {
    const h = await startServer(t, { proxyProtocol: true, handshakeTimeout: 200 });
    const reply = await rawRequest(h.server.port, v1('PROXY TCP4 192.0.2.10 127.0.0.1 1 80'));
    assert.equal(reply.status, 408);
    assert.deepEqual(h.server.stats.handshakeFailures, { WS_ERR_HANDSHAKE_HANDSHAKE_TIMEOUT: 1 });
  });
});

describe('proxyProtocol: options', () => {
  test('refused with an attached server, with TLS, and its timeout without it', () => {
    assertOptionError({ proxyProtocol: true, server: createHttpServer() }, TypeError, /proxyProtocol.*server/);
    assertOptionError({ proxyProtocol: true, key: '-----BEGIN x', cert: '-----BEGIN y' }, TypeError, /proxyProtocol.*key/);
    assertOptionError({ proxyProtocolTimeout: 1000 }, TypeError, /proxyProtocolTimeout.*proxyProtocol/);
    assertOptionError({ proxyProtocol: 'yes' }, TypeError, /proxyProtocol/);
    assertOptionError({ proxyProtocol: true, proxyProtocolTimeout: 0 }, RangeError, /proxyProtocolTimeout/);
  });

  test('without proxyProtocol a PROXY header is not read: the request is malformed (400)', LIMIT, async (t) => {
    const h = await startServer(t);
    const reply = await rawRequest(h.server.port, Buffer.concat([v1('PROXY TCP4 192.0.2.10 127.0.0.1 1 80'), Buffer.from(handshakeRequest())]));
    assert.equal(reply.status, 400);
  });
});
