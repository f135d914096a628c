// sendStream and sendFile: a message of unknown size sent as fragments (RFC 6455 §5.4). The raw client shows
// the exact frames; `ws` shows that an independent peer reassembles them.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import type { Sendable } from '../websocket-server.ts';
import { closePayload, Op } from './support/frames.ts';
import type { ServerFrame } from './support/frames.ts';
import { RSV1 } from './support/deflate.ts';
import {
  assertPlainFrame,
  assertRawEchoes,
  connectRawClient,
  connectWs,
  pseudoRandomBytes,
  receivedCount,
  startServer,
} from './support/harness.ts';
import type { RawClient } from './support/raw-client.ts';
import { LIMIT, SETTLE_MS, until, within } from './support/wait.ts';

const KIB = 1024;
const MIB = 1024 * KIB;

/** Asserts one fragment: opcode, FIN, RSV 0 (streamed messages are never compressed), unmasked, exact payload. */
function assertFragment(frame: ServerFrame, opcode: number, fin: boolean, payload: Buffer | string): void {
  const expected = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  assert.equal(frame.opcode, opcode, 'opcode');
  assert.equal(frame.fin, fin, 'FIN');
  assert.equal(frame.rsv, 0, 'RSV bits');
  assert.equal(frame.masked, false);
  assert.ok(frame.payload.equals(expected), `payload ${JSON.stringify(frame.payload.toString('latin1').slice(0, 40))}`);
}

/** Reads data frames up to and including the final one; control frames met on the way are returned apart. */
async function readMessage(raw: RawClient): Promise<{ data: ServerFrame[]; control: ServerFrame[] }> {
  const data: ServerFrame[] = [];
  const control: ServerFrame[] = [];
  for (let i = 0; i < 10_000; i++) {
    const frame = await raw.nextFrame();
    if (frame.opcode >= 0x8) {
      control.push(frame);
      continue;
    }
    data.push(frame);
    if (frame.fin) return { data, control };
  }
  throw new Error('No final frame within 10,000 frames.');
}

/** A source whose next chunk waits until `release()` is called. */
function gated(before: Sendable[], after: Sendable[]): { source: AsyncGenerator<Sendable>; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  async function* source(): AsyncGenerator<Sendable> {
    for (const chunk of before) yield chunk;
    await gate;
    for (const chunk of after) yield chunk;
  }
  return { source: source(), release };
}

/** A temporary directory for one test, removed after it. */
async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'websocket-server-stream-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// ── framing ─────────────────────────────────────────────────────────────────────────────────────────────────

describe('RFC 6455 §5.4: sendStream sends one message as fragments', () => {
  test('string chunks go as TEXT, then CONTINUATION frames, FIN on the last only, with no empty trailing frame', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    await within(client.handler.sendStream(['ab', 'cd', 'ef']), 'the stream');
    assertFragment(await raw.nextFrame(), Op.TEXT, false, 'ab');
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, false, 'cd');
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, true, 'ef');
    client.handler.send('after');
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'after');
  });

  test('Uint8Array chunks from an async generator go as BINARY, then CONTINUATION frames', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    async function* source(): AsyncGenerator<Uint8Array> {
      yield Uint8Array.of(1, 2);
      yield Uint8Array.of(3);
      yield Uint8Array.of(4, 5, 6);
    }
    await within(client.handler.sendStream(source()), 'the stream');
    assertFragment(await raw.nextFrame(), Op.BINARY, false, Buffer.from([1, 2]));
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, false, Buffer.from([3]));
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, true, Buffer.from([4, 5, 6]));
  });

  test('a single chunk goes as one final frame, not as a fragment', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    await within(client.handler.sendStream(['only']), 'the stream');
    assertFragment(await raw.nextFrame(), Op.TEXT, true, 'only');
  });

  test('empty chunks send nothing: ["a", "", "b", ""] goes as two frames, the second final', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    await within(client.handler.sendStream(['a', '', 'b', '']), 'the stream');
    assertFragment(await raw.nextFrame(), Op.TEXT, false, 'a');
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, true, 'b');
    client.handler.send('after');
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'after');
  });

  for (const [what, source, options, opcode] of [
    ['an empty source with binary: true', [], { binary: true }, Op.BINARY],
    ['an empty source with binary: false', [], { binary: false }, Op.TEXT],
    ['a source of one empty string', [''], {}, Op.TEXT],
    ['a source of empty byte arrays', [new Uint8Array(0), new Uint8Array(0)], {}, Op.BINARY],
  ] as const) {
    test(`${what} sends one empty final frame`, LIMIT, async (t) => {
      const h = await startServer(t);
      const { raw, client } = await connectRawClient(t, h);
      await within(client.handler.sendStream(source, options), 'the stream');
      assertFragment(await raw.nextFrame(), opcode, true, '');
      client.handler.send('after');
      assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'after');
    });
  }

  test('options.binary decides the type: strings with binary: true go as BINARY, bytes with binary: false as TEXT', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    await within(client.handler.sendStream(['é', 'x'], { binary: true }), 'the binary stream');
    assertFragment(await raw.nextFrame(), Op.BINARY, false, Buffer.from('é'));
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, true, 'x');
    await within(client.handler.sendStream([Buffer.from('he'), Buffer.from('llo')], { binary: false }), 'the text stream');
    assertFragment(await raw.nextFrame(), Op.TEXT, false, 'he');
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, true, 'llo');
  });

  test('a Readable stream is a source, through server.sendStream as well', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    const chunks = [Buffer.from('one'), Buffer.from('two'), Buffer.from('three')];
    await within(h.server.sendStream(client, Readable.from(chunks)), 'the stream');
    assertFragment(await raw.nextFrame(), Op.BINARY, false, 'one');
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, false, 'two');
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, true, 'three');
  });

  test('streamed messages are never compressed, even with permessage-deflate and threshold 0', LIMIT, async (t) => {
    const h = await startServer(t, { perMessageDeflate: { threshold: 0 } });
    const { raw, client } = await connectRawClient(t, h, { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate' } });
    assert.equal(client.handler.extensions, 'permessage-deflate');
    const chunk = 'z'.repeat(10 * KIB);
    await within(client.handler.sendStream([chunk, chunk, chunk]), 'the stream');
    const { data } = await readMessage(raw);
    assert.deepEqual(data.map((f) => [f.opcode, f.fin, f.rsv]), [[Op.TEXT, false, 0], [Op.CONTINUATION, false, 0], [Op.CONTINUATION, true, 0]]);
    for (const frame of data) assert.equal(frame.payload.toString(), chunk);
    // A plain send on the same connection is compressed: the extension is in force.
    client.handler.send(chunk);
    assert.equal((await raw.nextFrame()).rsv, RSV1);
  });

  test('stats count a streamed message once, and all its frame bytes', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    await within(client.handler.sendStream(['abc', 'de']), 'the stream');
    await raw.nextFrame();
    await raw.nextFrame();
    assert.equal(h.server.stats.messagesOut, 1);
    assert.equal(h.server.stats.bytesOut, 2 + 3 + 2 + 2);
  });
});

// ── with ws ────────────────────────────────────────────────────────────────────────────────────────────────

describe('sendStream with ws as the peer', () => {
  test('ws receives 5 MB streamed from an async generator as one binary message, byte-exact', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const whole = pseudoRandomBytes(5_000_000, 3);
    async function* source(): AsyncGenerator<Buffer> {
      for (let at = 0; at < whole.length; at += 64 * KIB) yield whole.subarray(at, at + 64 * KIB);
    }
    await within(h.server.sendStream(peer.client, source()), 'the stream', 8_000);
    await receivedCount(peer, 1, 8_000);
    assert.equal(peer.inbox.length, 1);
    assert.equal(peer.inbox[0]!.isBinary, true);
    assert.ok(peer.inbox[0]!.data.equals(whole), 'the reassembled message differs');
  });

  test('a text stream split inside a multi-byte character reaches ws as the whole text', LIMIT, async (t) => {
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    const bytes = Buffer.from('naïve – 𝄞 done');
    const chunks = Array.from(bytes, (byte) => Uint8Array.of(byte));
    await within(peer.client.handler.sendStream(chunks, { binary: false }), 'the stream');
    await receivedCount(peer, 1);
    assert.equal(peer.inbox[0]!.isBinary, false);
    assert.equal(peer.inbox[0]!.data.toString('utf8'), 'naïve – 𝄞 done');
  });
});

// ── ordering ───────────────────────────────────────────────────────────────────────────────────────────────

describe('RFC 6455 §5.4: nothing is interleaved with a streamed message', () => {
  test('a message sent during a stream is queued and arrives after its final frame', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    const { source, release } = gated(['part1-', 'part2-'], ['part3']);
    const streaming = client.handler.sendStream(source);
    // part1 goes out once part2 shows it is not the last; part2 is held until the source goes on.
    assertFragment(await raw.nextFrame(), Op.TEXT, false, 'part1-');
    assert.equal(client.handler.send('during'), 'queued');
    assert.equal(h.server.sendMessageToAll(Buffer.from('broadcast')), 1);
    assert.equal(client.handler.ping('ping'), true, 'pings may go between fragments');
    release();
    await within(streaming, 'the stream');
    const { data: rest, control } = await readMessage(raw);
    assert.equal(rest.length, 2);
    assertFragment(rest[0]!, Op.CONTINUATION, false, 'part2-');
    assertFragment(rest[1]!, Op.CONTINUATION, true, 'part3');
    const after: ServerFrame[] = [];
    while (after.filter((f) => f.opcode < 0x8).length < 2) {
      const frame = await raw.nextFrame();
      (frame.opcode >= 0x8 ? control : after).push(frame);
    }
    assertPlainFrame(after[0]!, Op.TEXT, 'during');
    assertPlainFrame(after[1]!, Op.BINARY, Buffer.from('broadcast'));
    assert.deepEqual(control.map((f) => [f.opcode, f.payload.toString()]), [[Op.PING, 'ping']]);
  });

  test('a second stream started during the first goes after the first one ends', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    const first = gated(['a1', 'a2'], ['a3']);
    const one = client.handler.sendStream(first.source);
    const two = client.handler.sendStream(['b1', 'b2']);
    assertFragment(await raw.nextFrame(), Op.TEXT, false, 'a1');
    await assert.rejects(raw.nextFrame(SETTLE_MS), /Timed out/, 'nothing else goes while the first stream waits');
    first.release();
    await within(Promise.all([one, two]), 'both streams');
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, false, 'a2');
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, true, 'a3');
    assertFragment(await raw.nextFrame(), Op.TEXT, false, 'b1');
    assertFragment(await raw.nextFrame(), Op.CONTINUATION, true, 'b2');
  });
});

// ── failures ───────────────────────────────────────────────────────────────────────────────────────────────

describe('sendStream failures', () => {
  test('a source that throws after a fragment went out rejects, and the connection is closed with 1011', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    const failure = new Error('the source failed');
    async function* source(): AsyncGenerator<string> {
      yield 'a';
      yield 'b';
      throw failure;
    }
    await assert.rejects(within(client.handler.sendStream(source()), 'the stream'), (error: unknown) => error === failure);
    const close = await raw.closeFrame();
    assert.equal(close.code, 1011);
    assert.equal(close.before.length, 1, 'only the fragment sent before the failure');
    assertFragment(close.before[0]!, Op.TEXT, false, 'a');
    assert.equal(client.handler.send('too late'), 'dropped');
    raw.sendFrame({ opcode: Op.CLOSE, payload: closePayload(1011) });
    await raw.ended();
    raw.socket.end(); // §7.1.1: the client ends TCP after the server did
    await until(() => h.left.includes(client), 'client-left');
    assert.equal(client.handler.closeCode, 1011);
  });

  for (const [when, chunks] of [
    ['before yielding anything', []],
    // One chunk is held back until the next shows it is not the last: nothing has been sent yet.
    ['after one chunk, which was not sent yet', ['held']],
  ] as const) {
    test(`a source that throws ${when} rejects, nothing is sent, and the connection still echoes`, LIMIT, async (t) => {
      const h = await startServer(t);
      const { raw, client } = await connectRawClient(t, h);
      async function* source(): AsyncGenerator<string> {
        yield* chunks;
        throw new Error('the source failed');
      }
      await assert.rejects(within(client.handler.sendStream(source()), 'the stream'), /the source failed/);
      assert.equal(client.handler.state, 'open');
      await assertRawEchoes(raw, 'still echoing');
      assert.deepEqual(h.errors, [], 'no connection error');
    });
  }

  test('a message queued behind a stream that failed before sending anything is still sent', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    const { source, release } = gated([], []);
    async function* failing(): AsyncGenerator<Sendable> {
      yield* source;
      throw new Error('the source failed');
    }
    const streaming = client.handler.sendStream(failing());
    assert.equal(client.handler.send('queued behind'), 'queued');
    release();
    await assert.rejects(within(streaming, 'the stream'), /the source failed/);
    assertPlainFrame(await raw.nextFrame(), Op.TEXT, 'queued behind');
  });

  test('sendStream on a closing or closed connection rejects', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    client.handler.close(1000);
    await assert.rejects(client.handler.sendStream(['x']), Error);
    assert.equal((await raw.closeFrame()).code, 1000);
    raw.destroy();
    await until(() => h.left.includes(client), 'client-left');
    await assert.rejects(client.handler.sendStream(['x']), Error);
    await assert.rejects(h.server.sendStream(client, ['x']), Error);
  });

  test('a stream whose connection closes midway rejects', LIMIT, async (t) => {
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    const { source, release } = gated(['a', 'b'], ['c', 'd']);
    // Handled from the start: the rejection may come as soon as the connection closes.
    const outcome = client.handler.sendStream(source).then(() => 'resolved', (error: unknown) => error);
    assertFragment(await raw.nextFrame(), Op.TEXT, false, 'a');
    raw.destroy();
    await until(() => h.left.includes(client), 'client-left');
    release();
    assert.ok((await within(outcome, 'the stream to settle')) instanceof Error, 'the stream rejects');
  });
});

// ── sendFile ───────────────────────────────────────────────────────────────────────────────────────────────

describe('sendFile', () => {
  test('sends a file byte-exact as one binary message: BINARY, then CONTINUATION frames, FIN on the last only', LIMIT, async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'data.bin');
    const content = pseudoRandomBytes(300_000, 17);
    await writeFile(path, content);
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    await within(client.handler.sendFile(path), 'sendFile');
    const { data } = await readMessage(raw);
    assert.ok(data.length >= 2, `a 300 kB file goes as several fragments (${data.length})`);
    assert.equal(data[0]!.opcode, Op.BINARY);
    for (const frame of data.slice(1)) assert.equal(frame.opcode, Op.CONTINUATION);
    assert.deepEqual(data.map((f) => f.fin), [...data.slice(1).map(() => false), true]);
    assert.ok(data.every((f) => f.rsv === 0 && f.payload.length > 0), 'no empty or compressed fragment');
    assert.ok(Buffer.concat(data.map((f) => f.payload)).equals(content), 'the file arrived byte-exact');
  });

  test('server.sendFile to a ws client: the message equals the file', LIMIT, async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'big.bin');
    const content = pseudoRandomBytes(2 * MIB, 19);
    await writeFile(path, content);
    const h = await startServer(t);
    const peer = await connectWs(t, h);
    await within(h.server.sendFile(peer.client, path), 'sendFile');
    await receivedCount(peer, 1);
    assert.equal(peer.inbox[0]!.isBinary, true);
    assert.ok(peer.inbox[0]!.data.equals(content));
  });

  test('an empty file sends one empty final binary frame', LIMIT, async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'empty.bin');
    await writeFile(path, Buffer.alloc(0));
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    await within(client.handler.sendFile(path), 'sendFile');
    assertFragment(await raw.nextFrame(), Op.BINARY, true, '');
  });

  for (const [what, name] of [['a missing file', 'missing.bin'], ['a directory', 'sub']] as const) {
    test(`${what} rejects before anything is sent, and the connection still echoes`, LIMIT, async (t) => {
      const dir = await tempDir(t);
      await mkdir(join(dir, 'sub'));
      const h = await startServer(t);
      const { raw, client } = await connectRawClient(t, h);
      await assert.rejects(within(client.handler.sendFile(join(dir, name)), 'sendFile'), Error);
      await assert.rejects(within(h.server.sendFile(client, join(dir, name)), 'server.sendFile'), Error);
      assert.equal(client.handler.state, 'open');
      await assertRawEchoes(raw, 'nothing was sent before');
    });
  }

  test('sendFile on a closed connection rejects, and leaves no file open', LIMIT, async (t) => {
    const dir = await tempDir(t);
    const path = join(dir, 'data.bin');
    await writeFile(path, pseudoRandomBytes(1000));
    const h = await startServer(t);
    const { raw, client } = await connectRawClient(t, h);
    raw.destroy();
    await until(() => h.left.includes(client), 'client-left');
    // Open descriptors are counted in /proc, which Linux (where CI runs) always has.
    assert.ok(existsSync('/proc/self/fd'), 'this test counts open files in /proc/self/fd (Linux)');
    const openFiles = (): number => readdirSync('/proc/self/fd').length;
    await delay(SETTLE_MS);
    const before = openFiles();
    for (let i = 0; i < 20; i++) await assert.rejects(client.handler.sendFile(path), Error);
    // A little slack for sockets of earlier tests closing meanwhile; a leak shows as +20.
    const leaked = openFiles() - before;
    assert.ok(leaked <= 2, `${leaked} file descriptors left open by 20 refused sendFile calls`);
  });
});
