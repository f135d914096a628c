// Regression tests for published WebSocket-server advisories: each group names the advisory (or advisory class)
// it guards against, and each test asserts what would break if that protection were lost. Everything runs
// against 127.0.0.1; every loop is bounded; no assertion is about speed (the ReDoS group relies only on a
// generous timeout, with its server in a child process so that a stuck regular expression cannot stall this one).
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type WebSocket from 'ws';
import type { HandshakeRequest, Sendable, WebsocketServerOptions } from '../websocket-server.ts';
import { compress, decompress, RSV1 } from './support/deflate.ts';
import { buildFrame, closePayload, Op, type ClientFrame, type ServerFrame } from './support/frames.ts';
import {
  assertPlainFrame,
  assertRawEchoes,
  assertServerStillServes,
  connectRawClient,
  newWs,
  openRaw,
  openWs,
  startServer,
} from './support/harness.ts';
import { handshakeRequest, rawRequest, type HttpReply } from './support/raw-client.ts';
import { LIMIT, until, within } from './support/wait.ts';

const KIB = 1024;
const MIB = 1024 * 1024;
/** For the few tests that push megabytes through a socket: generous, never a claim about speed. */
const LONG = { timeout: 60_000 };

// ── small helpers of this file ──────────────────────────────────────────────────────────────────────────────

/** A full garbage collection, when one can be asked for (`--expose-gc`, or the V8 flag set at run time). */
const collectGarbage: (() => void) | undefined = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc === 'function') return gc as () => void;
  } catch {
    // not available: the limits below are then more generous
  }
  return undefined;
})();

/**
 * How much retained memory a server may add while holding one message in progress: tight when garbage can be
 * collected before measuring, generous when it cannot (the measure then includes uncollected garbage).
 */
const RETAINED_LIMIT = collectGarbage === undefined ? 32 * MIB : 8 * MIB;

/** This process's JavaScript and Buffer memory (the servers under test run in it). */
function memoryNow(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external + usage.arrayBuffers;
}

/** Memory after a full collection: what is retained, not what is garbage. */
function retainedMemory(): number {
  collectGarbage?.();
  collectGarbage?.();
  return memoryNow();
}

/** Samples memory every few milliseconds until stopped; `stop()` returns the highest sample. */
function sampleMemoryPeak(): { stop(): number } {
  let peak = memoryNow();
  const timer = setInterval(() => {
    peak = Math.max(peak, memoryNow());
  }, 2);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, memoryNow());
    },
  };
}

/** A one-line description of a server frame, for assertion messages. */
function describeFrame(frame: ServerFrame): string {
  if (frame.opcode === Op.CLOSE) {
    return `a Close frame (${frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 'no code'} ${frame.payload.subarray(2).toString('utf8')})`;
  }
  return `a frame with opcode ${frame.opcode}, FIN ${frame.fin}, ${frame.payload.length} bytes`;
}

/**
 * Writes `batch` up to `times` times, waiting for 'drain' when the socket is full, and stopping early when the
 * server ends the connection or stops reading for 5 s. Returns how many batches were written.
 */
async function writeBatches(socket: net.Socket, batch: Buffer, times: number, afterEach?: (written: number) => Promise<void>): Promise<number> {
  let ended = false;
  const markEnded = (): void => {
    ended = true;
  };
  socket.once('end', markEnded);
  socket.once('close', markEnded);
  try {
    for (let written = 0; written < times; written++) {
      if (ended || socket.destroyed || !socket.writable) return written;
      if (!socket.write(batch)) {
        const drained = await within(drainOrEnd(socket), 'the socket to drain', 5_000).then(
          () => true,
          () => false,
        );
        if (!drained) return written + 1;
      }
      await afterEach?.(written + 1);
    }
    return times;
  } finally {
    socket.off('end', markEnded);
    socket.off('close', markEnded);
  }
}

/** Resolves on the socket's next 'drain', 'end' or 'close', removing its listeners then. */
function drainOrEnd(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('end', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('end', done);
    socket.on('close', done);
  });
}

/** `count` copies of one client frame, as one buffer. */
function repeatedFrames(frame: ClientFrame, count: number): Buffer {
  const one = buildFrame(frame);
  const out = Buffer.allocUnsafe(one.length * count);
  for (let i = 0; i < count; i++) one.copy(out, i * one.length);
  return out;
}

/** A handshake request (see `handshakeRequest`) with extra header lines inserted as is before its end. */
function withHeaderLines(request: string, lines: readonly string[]): string {
  return `${request.slice(0, -2)}${lines.map((line) => `${line}\r\n`).join('')}\r\n`;
}

/** A plain TCP socket to 127.0.0.1:port that records what it receives and when the server ends it. */
function openTcp(t: TestContext, port: number): { socket: net.Socket; received: () => string; closed: Promise<void> } {
  const socket = net.connect({ host: '127.0.0.1', port });
  t.after(() => socket.destroy());
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => {
    socket.once('end', () => resolve());
    socket.once('close', () => resolve());
  });
  return { socket, received: () => Buffer.concat(chunks).toString('latin1'), closed };
}

// ── 1. Header count and size (ws CVE-2024-37890) ────────────────────────────────────────────────────────────

describe('a flood of header fields (ws CVE-2024-37890)', () => {
  // ws CVE-2024-37890: a request with more header fields than the HTTP server keeps crashed the ws server.
  test('101 header fields are refused with 431, 100 are accepted, and the server still serves', LIMIT, async (t) => {
    const h = await startServer(t);
    const fillers = (n: number): Record<string, string> =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-Filler-${i}`, 'v']));
    // handshakeRequest sends 5 fields of its own.
    const over = await rawRequest(h.server.port, handshakeRequest({ headers: fillers(96) }));
    assert.equal(over.status, 431, `101 fields: ${over.status} ${over.body}`);
    assert.equal(over.closed, true, 'the refused connection is closed');
    const atLimit = await rawRequest(h.server.port, handshakeRequest({ headers: fillers(95) }));
    assert.equal(atLimit.status, 101, `100 fields: ${atLimit.status} ${atLimit.body}`);
    await assertServerStillServes(t, h);
  });

  // ws CVE-2024-37890: the same flood in tiny fields, far under maxHeaderSize, must still be refused by count.
  test('10,000 tiny header fields under a 128 KiB maxHeaderSize are refused with 431 by their count', LIMIT, async (t) => {
    const h = await startServer(t, { maxHeaderSize: 128 * KIB });
    const lines = Array.from({ length: 10_000 }, () => 'a: b');
    const reply = await rawRequest(h.server.port, withHeaderLines(handshakeRequest(), lines));
    assert.equal(reply.status, 431, `${reply.status} ${reply.body}`);
    assert.equal(h.joined.length, 0);
    await assertServerStillServes(t, h);
  });

  test('a request head over maxHeaderSize (16 KiB by default) is refused with 431, one under it is accepted', LIMIT, async (t) => {
    const h = await startServer(t);
    const base = handshakeRequest().length;
    const filler = (size: number): Record<string, string> => ({ 'X-Filler': 'a'.repeat(size) });
    // 'X-Filler: ' + value + CRLF is the value's length plus 12.
    const under = await rawRequest(h.server.port, handshakeRequest({ headers: filler(16 * KIB - base - 12 - 64) }));
    assert.equal(under.status, 101, `just under 16 KiB: ${under.status} ${under.body}`);
    const over = await rawRequest(h.server.port, handshakeRequest({ headers: filler(16 * KIB) }));
    assert.equal(over.status, 431, `over 16 KiB: ${over.status} ${over.body}`);
    // Sent in many pieces, a head that never ends is refused once it passes the limit, not buffered forever.
    const endless = Array.from({ length: 40 }, (_, i) => (i === 0 ? handshakeRequest().slice(0, -2) : `X-More-${i}: ${'b'.repeat(1000)}\r\n`));
    const trickled = await rawRequest(h.server.port, endless, { chunkDelayMs: 1 });
    assert.equal(trickled.status, 431, `a head that keeps growing: ${trickled.status} ${trickled.body}`);
    assert.equal(trickled.closed, true);
    await assertServerStillServes(t, h);
  });

  // ws CVE-2024-37890 itself: node:http keeps at most maxHeadersCount fields, so the Sec-WebSocket-Key can be
  // dropped before the upgrade handler sees it; ws then dereferenced the missing header and crashed.
  test('attached to a node:http server whose maxHeadersCount drops the Sec-WebSocket-Key, the upgrade is refused without a crash', LIMIT, async (t) => {
    const app = createHttpServer((_request, response) => response.end('page'));
    app.maxHeadersCount = 50;
    t.after(() => {
      app.closeAllConnections();
      app.close();
    });
    const recorder = await startServer(t, { server: app }, { run: false });
    const started = recorder.server.runForever();
    app.listen(0, '127.0.0.1');
    await within(started, 'runForever() to resolve once the app listens');
    const port = recorder.server.port;
    const request = [
      'GET / HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      ...Array.from({ length: 60 }, (_, i) => `X-Filler-${i}: v`),
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
      '',
      '',
    ].join('\r\n');
    const reply = await rawRequest(port, request);
    assert.ok([400, 426, 431].includes(reply.status), `answered ${reply.status} ${reply.statusText} ${reply.body}`);
    assert.equal(recorder.joined.length, 0);
    await openWs(t, `ws://127.0.0.1:${port}/`);
  });
});

// ── 2. ReDoS in Sec-WebSocket-Protocol / Sec-WebSocket-Extensions ───────────────────────────────────────────

/**
 * Starts an echo server in a child process (so that a regular expression stuck for minutes blocks that process,
 * not this one and its timers) and resolves with its port. The child is killed after the test.
 */
async function startChildServer(t: TestContext, options: WebsocketServerOptions): Promise<number> {
  const code = [
    "const { WebsocketServer } = await import(process.env.ADVISORY_SERVER_MODULE);",
    'const quiet = { debug() {}, info() {}, warn() {}, error() {} };',
    "const server = new WebsocketServer({ host: '127.0.0.1', port: 0, logger: quiet, ...JSON.parse(process.env.ADVISORY_SERVER_OPTIONS) });",
    'server.setFnMessageReceived((client, self, message) => self.sendMessage(client, message));',
    'await server.runForever();',
    "process.stdout.write(`${server.port}\\n`);",
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
    env: {
      ...process.env,
      ADVISORY_SERVER_MODULE: new URL('../websocket-server.js', import.meta.url).href,
      ADVISORY_SERVER_OPTIONS: JSON.stringify(options),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    child.kill('SIGKILL');
  });
  let output = '';
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  return within(
    new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const match = /^(\d+)\n/.exec(output);
        if (match) resolve(Number(match[1]));
      });
      child.once('exit', (status) => reject(new Error(`The server process exited (${status}): ${errors}`)));
    }),
    'the server process to listen',
  );
}

/** `pattern` repeated and cut to exactly `length` characters. */
function filled(pattern: string, length: number): string {
  return pattern.repeat(Math.ceil(length / pattern.length)).slice(0, length);
}

describe('pathological Sec-WebSocket-Protocol and Sec-WebSocket-Extensions values (ReDoS)', () => {
  // Advisory class: ReDoS in header parsing (e.g. ws's Sec-WebSocket-Protocol / extension parsers, CWE-1333).
  // A quadratic or exponential regular expression takes minutes on 64 KiB of these shapes; each is answered
  // here within the test's timeout, and the server still serves.
  const options: WebsocketServerOptions = { maxHeaderSize: 128 * KIB, subprotocols: ['chat'], perMessageDeflate: true };
  const SIZE = 64 * KIB;
  const cases: Array<{ name: string; header: string; value: () => string; expect: (reply: HttpReply) => void }> = [
    {
      name: 'a subprotocol list of 64 KiB of commas, spaces and tabs is refused with 400',
      header: 'Sec-WebSocket-Protocol',
      value: () => `,${filled(', \t,,\t ', SIZE)},`,
      expect: (reply) => assert.equal(reply.status, 400),
    },
    {
      name: "'chat' followed by 64 KiB of empty list elements is accepted with the subprotocol chat",
      header: 'Sec-WebSocket-Protocol',
      value: () => `chat${filled(',\t ,', SIZE)},`,
      expect: (reply) => {
        assert.equal(reply.status, 101);
        assert.equal(reply.headers['sec-websocket-protocol'], 'chat');
      },
    },
    {
      name: 'two tokens separated by 64 KiB of spaces and tabs are refused with 400',
      header: 'Sec-WebSocket-Protocol',
      value: () => `a${filled(' \t', SIZE)}b`,
      expect: (reply) => assert.equal(reply.status, 400),
    },
    {
      name: "9,000 distinct subprotocols before 'chat' are answered with chat",
      header: 'Sec-WebSocket-Protocol',
      value: () => `${Array.from({ length: 9_000 }, (_, i) => `p${i}`).join(',')},chat`,
      expect: (reply) => {
        assert.equal(reply.status, 101);
        assert.equal(reply.headers['sec-websocket-protocol'], 'chat');
      },
    },
    {
      name: 'an extension list of 64 KiB of commas, spaces and tabs is answered 400, or 101 without an extension',
      header: 'Sec-WebSocket-Extensions',
      value: () => `,${filled(', \t,,\t ', SIZE)},`,
      expect: (reply) => {
        assert.ok(reply.status === 400 || reply.status === 101, `status ${reply.status}`);
        assert.equal(reply.headers['sec-websocket-extensions'], undefined);
      },
    },
    {
      name: "'permessage-deflate; a' then 64 KiB of spaces and tabs then '!' is refused with 400",
      header: 'Sec-WebSocket-Extensions',
      value: () => `permessage-deflate; a${filled(' \t', SIZE)}!`,
      expect: (reply) => assert.equal(reply.status, 400),
    },
    {
      name: "'a;b' then 64 KiB of spaces then 'x' is refused with 400",
      header: 'Sec-WebSocket-Extensions',
      value: () => `a;b${' '.repeat(SIZE)}x`,
      expect: (reply) => assert.equal(reply.status, 400),
    },
    {
      name: "'permessage-deflate; a=' then 64 KiB of spaces and tabs then '=' is refused with 400",
      header: 'Sec-WebSocket-Extensions',
      value: () => `permessage-deflate; a=${filled(' \t', SIZE)}=`,
      expect: (reply) => assert.equal(reply.status, 400),
    },
    {
      name: 'an unterminated quoted string of 64 KiB of backslash pairs and quotes is refused with 400',
      header: 'Sec-WebSocket-Extensions',
      value: () => `permessage-deflate; a="${filled('\\\\\\"', SIZE)}`,
      expect: (reply) => assert.equal(reply.status, 400),
    },
    {
      name: 'thousands of quoted parameters each holding an escaped quote, ending with a stray byte, are refused with 400',
      header: 'Sec-WebSocket-Extensions',
      value: () => `permessage-deflate${filled('; a="\\";b=', SIZE)}"!`,
      expect: (reply) => assert.equal(reply.status, 400),
    },
    {
      name: "a valid offer with 64 KiB of whitespace before its parameter is accepted with permessage-deflate",
      header: 'Sec-WebSocket-Extensions',
      value: () => `permessage-deflate;${filled(' \t', SIZE)}client_max_window_bits`,
      expect: (reply) => {
        assert.equal(reply.status, 101);
        assert.match(reply.headers['sec-websocket-extensions'] ?? '', /^permessage-deflate\b/);
      },
    },
    {
      name: 'a valid offer whose unknown parameter holds a 64 KiB quoted string is declined: 101 without an extension',
      header: 'Sec-WebSocket-Extensions',
      value: () => `permessage-deflate; a="${filled(' \t,;=x', SIZE)}"`,
      expect: (reply) => {
        assert.equal(reply.status, 101);
        assert.equal(reply.headers['sec-websocket-extensions'], undefined);
      },
    },
  ];
  for (const { name, header, value, expect } of cases) {
    test(`${name}, within the test's timeout, and the server still serves`, LIMIT, async (t) => {
      const port = await startChildServer(t, options);
      const reply = await rawRequest(port, handshakeRequest({ headers: { [header]: value() } }), { timeoutMs: 8_000 });
      expect(reply);
      const raw = await openRaw(t, port);
      await assertRawEchoes(raw);
    });
  }
});

// ── 3. Prototype keys (prototype pollution / "__proto__" advisories) ────────────────────────────────────────

describe('prototype keys in header names, extension parameters, cookies and query keys', () => {
  // Advisory class: prototype pollution via attacker-chosen object keys (CWE-1321), e.g. a '__proto__' header
  // or parameter written into a plain object; also crashes when 'constructor' / 'hasOwnProperty' shadow methods.
  const KEYS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty'] as const;

  test('header fields, cookies and query keys named after prototype keys reach setFnAuthenticate as plain own values', LIMIT, async (t) => {
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const h = await startServer(t, { perMessageDeflate: true });
    const seen: HandshakeRequest[] = [];
    h.server.setFnAuthenticate((request) => {
      seen.push(request);
      return true;
    });
    const request = withHeaderLines(
      handshakeRequest({ path: '/?__proto__=q1&constructor=q2&prototype=q3&hasOwnProperty=q4' }),
      [
        ...KEYS.map((key) => `${key}: h-${key}`),
        'Cookie: __proto__=c1; constructor=c2; prototype=c3; hasOwnProperty=c4; session=abc',
      ],
    );
    const reply = await rawRequest(h.server.port, request);
    assert.equal(reply.status, 101, `${reply.status} ${reply.body}`);
    assert.equal(seen.length, 1);
    const { headers, cookies, query } = seen[0]!;
    for (const key of KEYS) {
      assert.ok(Object.hasOwn(headers, key.toLowerCase()), `headers has its own '${key.toLowerCase()}'`);
      assert.equal(headers[key.toLowerCase()], `h-${key}`);
      assert.ok(Object.hasOwn(cookies, key), `cookies has its own '${key}'`);
    }
    assert.deepEqual(
      KEYS.map((key) => cookies[key]),
      ['c1', 'c2', 'c3', 'c4'],
    );
    assert.equal(cookies['session'], 'abc');
    assert.deepEqual(
      KEYS.map((key) => query.get(key)),
      ['q1', 'q2', 'q3', 'q4'],
    );
    // Nothing leaked into Object.prototype, and plain objects still behave.
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBefore);
    const plain: Record<string, unknown> = {};
    assert.equal(plain['h-__proto__'], undefined);
    assert.equal(Object.getPrototypeOf(plain), Object.prototype);
    assert.equal(typeof plain.hasOwnProperty, 'function');
    assert.equal(plain.constructor, Object);
    assert.deepEqual(h.errors, []);
  });

  test('extension parameters named after prototype keys make the server decline that offer, never fail', LIMIT, async (t) => {
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();
    const h = await startServer(t, { perMessageDeflate: true });
    const declined = [
      'permessage-deflate; __proto__=1',
      'permessage-deflate; constructor',
      'permessage-deflate; prototype="x"',
      'permessage-deflate; hasOwnProperty=1; toString',
      'permessage-deflate; __proto__; __proto__',
      '__proto__, constructor; prototype=1',
    ];
    for (const offer of declined) {
      const reply = await rawRequest(h.server.port, handshakeRequest({ headers: { 'Sec-WebSocket-Extensions': offer } }));
      assert.equal(reply.status, 101, `${offer}: ${reply.status} ${reply.body}`);
      assert.equal(reply.headers['sec-websocket-extensions'], undefined, `${offer}: the offer is declined`);
    }
    const nextGood = await rawRequest(
      h.server.port,
      handshakeRequest({ headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; __proto__=1, permessage-deflate' } }),
    );
    assert.equal(nextGood.status, 101);
    assert.equal(nextGood.headers['sec-websocket-extensions'], 'permessage-deflate', 'the second, valid offer is accepted');
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBefore);
    assert.deepEqual(h.errors, []);
    await assertServerStillServes(t, h);
  });
});

// ── 4. Frame lengths ───────────────────────────────────────────────────────────────────────────────────────

describe('frame lengths that must fail the connection (RFC 6455 §5.2), end to end', () => {
  // Advisory class: unchecked 64-bit frame lengths (huge allocations, integer overflow, e.g. CVE-2016-10542-style
  // denial of service in ws and other servers) and length-encoding confusion between parsers.
  // test/conformance.test.ts covers the top bit with a small length and two non-minimal lengths; these are the
  // extremes, each followed in the same write by a valid frame that must never be delivered.
  const cases: Array<{ name: string; frame: Buffer; code: number }> = [
    {
      name: 'a 64-bit length with every bit set (top bit set, 2^64-1) fails with 1002 from its header alone',
      frame: buildFrame({ opcode: Op.BINARY, lengthBits: 64, length64High: 0xffff_ffff, declaredLength: 0xffff_ffff }),
      code: 1002,
    },
    {
      name: 'a 64-bit length of exactly 2^63 (only the top bit set) fails with 1002',
      frame: buildFrame({ opcode: Op.TEXT, lengthBits: 64, length64High: 0x8000_0000, declaredLength: 0 }),
      code: 1002,
    },
    {
      name: 'an empty payload announced with a 16-bit length fails with 1002',
      frame: buildFrame({ opcode: Op.BINARY, lengthBits: 16 }),
      code: 1002,
    },
    {
      name: 'a 125-byte payload announced with a 16-bit length fails with 1002',
      frame: buildFrame({ opcode: Op.BINARY, payload: Buffer.alloc(125, 7), lengthBits: 16 }),
      code: 1002,
    },
    {
      name: 'an empty payload announced with a 64-bit length fails with 1002',
      frame: buildFrame({ opcode: Op.TEXT, lengthBits: 64 }),
      code: 1002,
    },
    {
      name: 'a 65,535-byte payload announced with a 64-bit length fails with 1002',
      frame: buildFrame({ opcode: Op.BINARY, payload: Buffer.alloc(65_535, 9), lengthBits: 64 }),
      code: 1002,
    },
    {
      name: 'a 64-bit length of 2^63-1 (top bit clear) fails with 1009 before any payload is buffered',
      frame: buildFrame({ opcode: Op.BINARY, lengthBits: 64, length64High: 0x7fff_ffff, declaredLength: 0xffff_ffff }),
      code: 1009,
    },
  ];
  for (const { name, frame, code } of cases) {
    test(name, LIMIT, async (t) => {
      const h = await startServer(t);
      const { raw, client } = await connectRawClient(t, h);
      raw.sendRaw(Buffer.concat([frame, buildFrame({ opcode: Op.TEXT, payload: 'must not be delivered' })]));
      const close = await raw.closeFrame();
      assert.equal(close.code, code);
      assert.deepEqual(close.before.map(describeFrame), [], 'nothing before the Close frame');
      assert.equal(client.handler.closeCode, code);
      assert.deepEqual(h.messages, []);
      raw.destroy();
      await until(() => h.left.includes(client), 'client-left');
      assert.equal(h.server.stats.closeCodes[String(code)], 1);
      await assertServerStillServes(t, h);
    });
  }
});

// ── 5. A million zero-byte continuation frames (ws CVE-2026-48779) ──────────────────────────────────────────

describe('a million zero-byte continuation frames (ws CVE-2026-48779)', () => {
  // ws CVE-2026-48779: each empty CONTINUATION frame cost the receiver an entry (and CPU), so a message of
  // a million of them exhausted memory. It must instead be delivered intact, in bounded memory.
  test('"a", 1,000,000 empty non-final continuations, then "b": the message "ab" is delivered intact in bounded memory', LONG, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    const FRAMES_PER_WRITE = 10_000;
    const WRITES = 100;
    const batch = repeatedFrames({ opcode: Op.CONTINUATION, fin: false }, FRAMES_PER_WRITE);
    const first = buildFrame({ opcode: Op.TEXT, fin: false, payload: 'a' });
    const baseline = retainedMemory();
    const bytesInBefore = h.server.stats.bytesIn;
    raw.sendRaw(first);
    let midway = 0;
    const written = await writeBatches(raw.socket, batch, WRITES, async (count) => {
      if (count !== WRITES / 2) return;
      // Halfway through the message: all that was sent has been parsed; measure what the server keeps.
      const expected = bytesInBefore + first.length + count * batch.length;
      await until(() => h.server.stats.bytesIn >= expected || raw.socket.destroyed, 'the server to read the first half', 20_000);
      midway = retainedMemory() - baseline;
    });
    if (written < WRITES) {
      const close = await raw.closeFrame(1_000).then(
        (frame) => `Close ${frame.code} ${JSON.stringify(frame.reason)}`,
        (error: Error) => error.message,
      );
      assert.fail(`the server ended the connection before all the continuation frames were sent: ${close}`);
    }
    raw.sendFrame({ opcode: Op.CONTINUATION, fin: true, payload: 'b' });
    const echo = await raw.nextFrame(30_000);
    assert.equal(echo.opcode, Op.TEXT, `expected the echo of "ab", got ${describeFrame(echo)}`);
    assertPlainFrame(echo, Op.TEXT, 'ab');
    assert.deepEqual(
      h.messages.map(({ message }) => message),
      ['ab'],
    );
    assert.equal(client.handler.state, 'open');
    const after = retainedMemory() - baseline;
    // Half a million fragments kept as one Buffer each (about 100 bytes apiece) would pass this limit many times.
    assert.ok(midway < RETAINED_LIMIT, `the server retained ${(midway / MIB).toFixed(1)} MiB halfway through the message`);
    assert.ok(after < RETAINED_LIMIT, `the server retained ${(after / MIB).toFixed(1)} MiB after the message`);
    await assertRawEchoes(raw, 'and goes on');
    await assertServerStillServes(t, h);
  });
});

// ── 6. Deflate bomb ────────────────────────────────────────────────────────────────────────────────────────

describe('a permessage-deflate bomb (RFC 7692 §8.1; ws CVE-2016-10542 class)', () => {
  // Advisory class: decompression bombs (zip bombs over permessage-deflate, e.g. the ws, Faye and
  // websocket-driver advisories on unbounded inflate): a small compressed message must not inflate past
  // maxMessageSize in memory.
  test('a few dozen KiB that inflate to 64 MiB close the connection with 1009, in bounded memory', LONG, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true, maxMessageSize: 1 * MIB });
    const { raw, client } = await connectRawClient(t, h, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    assert.match(raw.handshake.headers['sec-websocket-extensions'] ?? '', /^permessage-deflate/);
    let bomb: Buffer | undefined = compress(Buffer.alloc(64 * MIB));
    assert.ok(bomb.length < 128 * KIB, `the bomb is ${bomb.length} bytes`);
    const frame = buildFrame({ opcode: Op.BINARY, rsv: RSV1, payload: bomb });
    bomb = undefined;
    const baseline = retainedMemory();
    const peak = sampleMemoryPeak();
    raw.sendRaw(frame);
    let close: Awaited<ReturnType<typeof raw.closeFrame>>;
    try {
      close = await raw.closeFrame(30_000);
    } finally {
      const growth = peak.stop() - baseline;
      assert.ok(growth < 32 * MIB, `memory grew by ${(growth / MIB).toFixed(1)} MiB while inflating`);
    }
    assert.equal(close.code, 1009);
    assert.deepEqual(h.messages, []);
    assert.equal(client.handler.closeCode, 1009);
    await assertServerStillServes(t, h);
  });
});

// ── 7. permessage-deflate parameters out of range, repeated or malformed ───────────────────────────────────

describe('permessage-deflate offers with bad parameters (RFC 7692 §7)', () => {
  // Advisory class: crashes on malformed extension parameters (e.g. ws's "Invalid value for parameter"
  // exceptions thrown from the handshake, and parsers that call parseInt on '1e1' or '08').
  const declined = [
    'permessage-deflate; server_max_window_bits=7',
    'permessage-deflate; server_max_window_bits=16',
    'permessage-deflate; server_max_window_bits=08',
    'permessage-deflate; server_max_window_bits=1e1',
    'permessage-deflate; server_max_window_bits=-9',
    'permessage-deflate; server_max_window_bits=99999999999999999999',
    'permessage-deflate; server_max_window_bits',
    'permessage-deflate; client_max_window_bits=0',
    'permessage-deflate; client_max_window_bits=1.5',
    'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
    'permessage-deflate; server_no_context_takeover=1',
    'permessage-deflate; client_no_context_takeover="true"',
  ];
  test('each bad offer is declined with 101 and no extension, never 500', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    const answers: string[] = [];
    for (const offer of declined) {
      const reply = await rawRequest(h.server.port, handshakeRequest({ headers: { 'Sec-WebSocket-Extensions': offer } }));
      answers.push(`${offer} -> ${reply.status} ${reply.headers['sec-websocket-extensions'] ?? '(none)'}`);
    }
    assert.deepEqual(answers, declined.map((offer) => `${offer} -> 101 (none)`));
    await assertServerStillServes(t, h);
  });

  test('a bad offer followed by a good one: the bad one is declined and the good one accepted', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true });
    for (const bad of declined) {
      const offer = `${bad}, permessage-deflate; client_max_window_bits`;
      const reply = await rawRequest(h.server.port, handshakeRequest({ headers: { 'Sec-WebSocket-Extensions': offer } }));
      assert.equal(reply.status, 101, `${offer}: ${reply.status} ${reply.body}`);
      assert.match(reply.headers['sec-websocket-extensions'] ?? '(none)', /^permessage-deflate; client_max_window_bits=\d+$/, offer);
    }
    await assertServerStillServes(t, h);
  });
});

// ── 8. Uninitialised memory in sends (the ws `send(number)` disclosure class) ──────────────────────────────

describe('sending views and bytes never discloses other memory (ws Buffer(number) disclosure class)', () => {
  // Advisory class: ws < 1.0.1 sent `new Buffer(number)` (uninitialised memory) when given a number; more
  // generally a view must be sent as exactly its bytes, never its whole underlying buffer nor unset bytes.
  /** A 64-byte buffer full of 0xEE around the bytes a view covers, so that any leak shows. */
  function arena(): ArrayBuffer {
    const buffer = new ArrayBuffer(64);
    new Uint8Array(buffer).fill(0xee);
    return buffer;
  }
  function fillPattern(view: { buffer: ArrayBufferLike; byteOffset: number; byteLength: number }): void {
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 37 + 11) & 0xff;
  }
  const views: Array<{ name: string; make: () => ArrayBufferView }> = [
    { name: 'a Uint8Array subarray at byteOffset 3', make: () => new Uint8Array(arena()).subarray(3, 13) },
    { name: 'a Uint16Array at byteOffset 4', make: () => new Uint16Array(arena(), 4, 5) },
    { name: 'an Int32Array at byteOffset 8', make: () => new Int32Array(arena(), 8, 3) },
    { name: 'a Float64Array at byteOffset 16', make: () => new Float64Array(arena(), 16, 2) },
    { name: 'a BigInt64Array at byteOffset 24', make: () => new BigInt64Array(arena(), 24, 2) },
    { name: 'a DataView over bytes 5 to 12 of a larger ArrayBuffer', make: () => new DataView(arena(), 5, 7) },
    {
      name: 'a 160 KB Float64Array at byteOffset 8 of a larger ArrayBuffer (sent without copying)',
      make: () => {
        const buffer = new ArrayBuffer(200_000);
        new Uint8Array(buffer).fill(0xee);
        return new Float64Array(buffer, 8, 20_000);
      },
    },
  ];
  for (const { name, make } of views) {
    test(`${name} goes as a binary message of exactly its bytes`, LIMIT, async (t) => {
      const h = await startServer(t, {}, { echo: false });
      const { raw, client } = await connectRawClient(t, h);
      const view = make();
      fillPattern(view);
      const expected = Buffer.from(Buffer.from(view.buffer, view.byteOffset, view.byteLength));
      h.server.sendMessage(client, view as unknown as Sendable);
      const frame = await raw.nextFrame();
      assertPlainFrame(frame, Op.BINARY, expected);
    });
  }

  test('an ArrayBuffer goes as a binary message of exactly its bytes', LIMIT, async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const { raw, client } = await connectRawClient(t, h);
    const buffer = new ArrayBuffer(9);
    fillPattern({ buffer, byteOffset: 0, byteLength: 9 });
    h.server.sendMessage(client, buffer as unknown as Sendable);
    assertPlainFrame(await raw.nextFrame(), Op.BINARY, Buffer.from(new Uint8Array(buffer)));
  });

  test('with permessage-deflate, a 4,000-byte Uint16Array view is compressed from exactly its bytes', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: true }, { echo: false });
    const { raw, client } = await connectRawClient(t, h, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    const buffer = new ArrayBuffer(8_000);
    new Uint8Array(buffer).fill(0xee);
    const view = new Uint16Array(buffer, 2_000, 2_000);
    fillPattern(view);
    const expected = Buffer.from(Buffer.from(buffer, 2_000, 4_000));
    h.server.sendMessage(client, view as unknown as Sendable);
    const frame = await raw.nextFrame();
    assert.equal(frame.opcode, Op.BINARY, describeFrame(frame));
    const payload = frame.rsv === RSV1 ? decompress(frame.payload) : frame.payload;
    assert.ok(payload.equals(expected), `${payload.length} bytes, not the view's ${expected.length}`);
  });

  test('a number, a plain object, null and undefined are refused with a TypeError and nothing is sent', LIMIT, async (t) => {
    const h = await startServer(t, {}, { echo: false });
    const { raw, client } = await connectRawClient(t, h);
    for (const value of [1024, { length: 10 }, null, undefined]) {
      assert.throws(() => h.server.sendMessage(client, value as unknown as Sendable), TypeError, `sending ${String(value)}`);
    }
    assert.equal(client.handler.state, 'open');
    h.server.sendMessage(client, 'marker');
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'marker');
  });

  const reasons: Array<{ name: string; make: () => Uint8Array | DataView; bytes: Buffer }> = [
    {
      name: 'a Uint8Array subarray',
      make: () => {
        const all = Buffer.concat([Buffer.alloc(7, 0xee), Buffer.from('bye — ünïcødé'), Buffer.alloc(5, 0xee)]);
        return new Uint8Array(all.buffer, all.byteOffset + 7, all.length - 12);
      },
      bytes: Buffer.from('bye — ünïcødé'),
    },
    {
      name: 'a DataView over part of a larger buffer',
      make: () => {
        const all = Buffer.concat([Buffer.alloc(3, 0xee), Buffer.from('going away: ✓'), Buffer.alloc(9, 0xee)]);
        return new DataView(all.buffer, all.byteOffset + 3, all.length - 12);
      },
      bytes: Buffer.from('going away: ✓'),
    },
  ];
  for (const { name, make, bytes } of reasons) {
    test(`close(4000, reason) with ${name} of valid UTF-8 sends exactly those bytes`, LIMIT, async (t) => {
      const h = await startServer(t, {}, { echo: false });
      const { raw, client } = await connectRawClient(t, h);
      client.handler.close(4000, make() as unknown as string);
      const frame = await raw.nextFrame();
      assert.equal(frame.opcode, Op.CLOSE, describeFrame(frame));
      assert.ok(frame.payload.equals(closePayload(4000, bytes)), `close payload ${frame.payload.toString('hex')}`);
    });
  }

  test('close() with a reason of invalid UTF-8 bytes, or of 124 bytes, throws and leaves the connection open', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    const invalid = [
      Uint8Array.of(0x61, 0xff, 0xfe),
      new DataView(Uint8Array.of(0xee, 0xc3, 0x28, 0xee).buffer, 1, 2),
      new Uint8Array(124).fill(0x61),
      Uint8Array.of(0xed, 0xa0, 0x80), // an encoded surrogate
    ];
    for (const reason of invalid) {
      assert.throws(
        () => client.handler.close(4000, reason as unknown as string),
        (error: unknown) => error instanceof RangeError || error instanceof TypeError,
      );
    }
    assert.throws(() => client.handler.close(4000, 'x'.repeat(124)), RangeError);
    assert.equal(client.handler.state, 'open');
    await assertRawEchoes(raw);
  });
});

// ── 9. Cross-site WebSocket hijacking ──────────────────────────────────────────────────────────────────────

describe('cross-site WebSocket hijacking (CSWSH, RFC 6455 §10.2)', () => {
  // Advisory class: CSWSH (CWE-1385), e.g. the many advisories where a server authenticated a cross-origin
  // handshake by its cookies.
  test('a foreign Origin with a session cookie is refused with 403 before setFnAuthenticate; the allowed one connects', LIMIT, async (t) => {
    const h = await startServer(t, { origins: ['https://good.example'] });
    const authenticated: HandshakeRequest[] = [];
    h.server.setFnAuthenticate((request) => {
      authenticated.push(request);
      return true;
    });
    const foreign = [
      'https://evil.example',
      'https://good.example.evil.example',
      'https://evil.example/https://good.example',
      'null',
      'https://good.example, https://evil.example',
    ];
    for (const origin of foreign) {
      const reply = await rawRequest(h.server.port, handshakeRequest({ headers: { Origin: origin, Cookie: 'session=abc' } }));
      assert.equal(reply.status, 403, `Origin ${origin}: ${reply.status}`);
    }
    // The same header sent twice is one list (RFC 9110 §5.3): it is not the allowed origin either.
    const twice = withHeaderLines(handshakeRequest({ headers: { Cookie: 'session=abc' } }), [
      'Origin: https://good.example',
      'Origin: https://evil.example',
    ]);
    assert.equal((await rawRequest(h.server.port, twice)).status, 403, 'two Origin fields');
    assert.equal(authenticated.length, 0, 'setFnAuthenticate was never called for a foreign origin');
    assert.equal(h.joined.length, 0);

    const good = await rawRequest(h.server.port, handshakeRequest({ headers: { Origin: 'https://good.example', Cookie: 'session=abc' } }));
    assert.equal(good.status, 101);
    assert.equal(authenticated.length, 1);
    assert.equal(authenticated[0]!.cookies['session'], 'abc');
  });
});

// ── 10. Slowloris ──────────────────────────────────────────────────────────────────────────────────────────

let credentials: { dir: string; key: string; cert: string } | undefined;

describe('slow handshakes (Slowloris)', () => {
  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'websocket-server-advisories-'));
    const keyPath = join(dir, 'key.pem');
    const certPath = join(dir, 'cert.pem');
    await promisify(execFile)(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath,
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'],
      { timeout: 20_000 },
    );
    credentials = { dir, key: await readFile(keyPath, 'utf8'), cert: await readFile(certPath, 'utf8') };
  });

  after(async () => {
    if (credentials !== undefined) await rm(credentials.dir, { recursive: true, force: true });
  });

  // Advisory class: Slowloris (CWE-400), e.g. CVE-2007-6750: connections held open by a request sent one byte
  // at a time, on plain and on TLS ports.
  const HANDSHAKE_TIMEOUT = 500;

  test('a request trickled one byte per 100 ms gets 408 and is closed within handshakeTimeout + 1 s', LIMIT, async (t) => {
    const h = await startServer(t, { handshakeTimeout: HANDSHAKE_TIMEOUT });
    const peer = openTcp(t, h.server.port);
    await within(once(peer.socket, 'connect'), 'the connection');
    const rest = handshakeRequest();
    peer.socket.write(rest.slice(0, 8)); // half a request line
    const trickling = (async () => {
      for (let i = 8; i < rest.length && i < 60 && !peer.socket.destroyed && peer.socket.writable; i++) {
        await delay(100);
        if (!peer.socket.destroyed && peer.socket.writable) peer.socket.write(rest[i]!);
      }
    })();
    await within(peer.closed, 'the server to close the trickling connection', HANDSHAKE_TIMEOUT + 1_000);
    assert.match(peer.received(), /^HTTP\/1\.1 408 /);
    peer.socket.destroy();
    await trickling;
    await assertServerStillServes(t, h);
  });

  test('on a TLS port, 50 TCP connections that never start TLS are all closed within handshakeTimeout + 1 s', LIMIT, async (t) => {
    const h = await startServer(t, { key: credentials!.key, cert: credentials!.cert, handshakeTimeout: HANDSHAKE_TIMEOUT });
    const peers = Array.from({ length: 50 }, () => openTcp(t, h.server.port));
    try {
      await within(Promise.all(peers.map((peer) => once(peer.socket, 'connect'))), 'the 50 connections');
      await within(Promise.all(peers.map((peer) => peer.closed)), 'the server to close all 50', HANDSHAKE_TIMEOUT + 1_000);
    } finally {
      // Before the server's shutdown (a t.after hook): it would wait for connections it does not track.
      for (const peer of peers) peer.socket.destroy();
    }
    await openWs(t, `wss://127.0.0.1:${h.server.port}/`, [], { ca: credentials!.cert });
  });

  test('on a TLS port, a TLS record trickled one byte per 100 ms is closed within handshakeTimeout + 1 s', LIMIT, async (t) => {
    const h = await startServer(t, { key: credentials!.key, cert: credentials!.cert, handshakeTimeout: HANDSHAKE_TIMEOUT });
    const peer = openTcp(t, h.server.port);
    await within(once(peer.socket, 'connect'), 'the connection');
    // A handshake record header announcing 16 KiB, then its body one byte at a time: never complete.
    peer.socket.write(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01]));
    const trickling = (async () => {
      for (let i = 0; i < 40 && !peer.socket.destroyed && peer.socket.writable; i++) {
        await delay(100);
        if (!peer.socket.destroyed && peer.socket.writable) peer.socket.write(Buffer.from([0x00]));
      }
    })();
    try {
      await within(peer.closed, 'the server to close the trickling TLS connection', HANDSHAKE_TIMEOUT + 1_000);
    } finally {
      peer.socket.destroy();
      await trickling;
    }
  });

  test('with maxConnections 5, five connections still in their TLS handshake keep a sixth client out', LIMIT, async (t) => {
    const h = await startServer(t, { key: credentials!.key, cert: credentials!.cert, maxConnections: 5, handshakeTimeout: 5_000 });
    const silent = Array.from({ length: 5 }, () => openTcp(t, h.server.port));
    let sixth: WebSocket | undefined;
    try {
      await within(Promise.all(silent.map((peer) => once(peer.socket, 'connect'))), 'the 5 silent connections');
      await delay(100); // for the server to accept them (ordering only, not a measurement)
      const client = newWs(t, `wss://127.0.0.1:${h.server.port}/`, [], { ca: credentials!.cert });
      sixth = client;
      const outcome = await within(
        new Promise<string>((resolve) => {
          client.once('open', () => resolve('opened'));
          client.once('unexpected-response', (_request, response) => resolve(`refused ${response.statusCode}`));
          client.once('error', (error) => resolve(`failed: ${error.message}`));
          client.once('close', () => resolve('closed'));
        }),
        'the sixth client to be answered',
      );
      assert.notEqual(outcome, 'opened', 'the sixth client was let in while 5 TLS handshakes were pending');
      assert.equal(h.joined.length, 0);
    } finally {
      sixth?.terminate();
      for (const peer of silent) peer.socket.destroy();
    }
    await delay(100);
    await openWs(t, `wss://127.0.0.1:${h.server.port}/`, [], { ca: credentials!.cert });
  });
});

// ── 11. Ping, Pong and Close floods ────────────────────────────────────────────────────────────────────────

describe('control frame floods', () => {
  // Advisory class: Ping floods whose Pong answers pile up for a peer that never reads (e.g. the HTTP/2
  // "Ping flood" CVE-2019-9512 and the same issue in WebSocket servers), unsolicited Pongs, and Close storms.
  test('a client that floods Pings and never reads is closed with 1008 once its Pongs pass maxBufferedAmount', LONG, async (t) => {
    const h = await startServer(t, { maxBufferedAmount: 1 * MIB, closeTimeout: 500 });
    const { raw, client } = await connectRawClient(t, h);
    raw.socket.pause(); // never read: the Pongs pile up at the server
    // 125-byte payloads, so that the Pongs outgrow the kernel's socket buffers (empty Pongs are only 2 bytes).
    const PINGS_PER_WRITE = 2_000;
    const batch = repeatedFrames({ opcode: Op.PING, payload: Buffer.alloc(125, 0x70) }, PINGS_PER_WRITE);
    const written = await writeBatches(raw.socket, batch, 100);
    await until(() => h.left.includes(client), `the flooding client to be dropped (after ${written * PINGS_PER_WRITE} Pings)`, 10_000);
    assert.equal(client.handler.closeCode, 1008);
    assert.equal(h.server.stats.closeCodes['1008'], 1);
    await assertServerStillServes(t, h);
  });

  test('100,000 unsolicited Pongs are ignored: the connection stays open and still echoes', LONG, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    const batch = repeatedFrames({ opcode: Op.PONG }, 10_000);
    assert.equal(await writeBatches(raw.socket, batch, 10), 10);
    await assertRawEchoes(raw, 'after the pongs');
    assert.equal(client.handler.state, 'open');
    assert.deepEqual(h.left, []);
  });

  test('several Close frames in one write get exactly one Close frame back, then the TCP connection ends', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    raw.sendRaw(
      Buffer.concat([
        buildFrame({ opcode: Op.CLOSE, payload: closePayload(1000, 'first') }),
        buildFrame({ opcode: Op.CLOSE, payload: closePayload(1001, 'second') }),
        buildFrame({ opcode: Op.CLOSE, payload: closePayload(4000) }),
        buildFrame({ opcode: Op.CLOSE }),
        buildFrame({ opcode: Op.TEXT, payload: 'after close' }),
      ]),
    );
    const close = await raw.closeFrame();
    assert.equal(close.code, 1000);
    assert.deepEqual(close.before.map(describeFrame), []);
    await raw.ended();
    await assert.rejects(raw.nextFrame(1_000), /No next frame/, 'nothing follows the one Close frame');
    assert.equal(client.handler.closeCode, 1000);
    assert.deepEqual(h.messages, []);
    raw.destroy();
    await until(() => h.left.includes(client), 'client-left');
    assert.equal(h.server.stats.closeCodes['1000'], 1);
    await assertServerStillServes(t, h);
  });
});
