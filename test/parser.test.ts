// Unit tests of the incremental frame parser (RFC 6455 §5, §7.4, §8.1, §10.4), driven without sockets.
//
// Every fixture is parsed as one chunk, split into two chunks at every byte offset (a bounded set of offsets for
// large inputs) and fed one byte at a time; all runs must produce exactly the same events (§5.4: "receivers must
// not depend on the presence of specific frame boundaries"). Rules that depend on *when* an event happens (1009
// decided from the header, UTF-8 failing fast, stop()) are checked step by step after each push.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import {
  FrameParser,
  InvalidPayloadError,
  MessageTooBigError,
  ProtocolError,
} from '../websocket-server.ts';
import type { FrameParserHandler, WebSocketError } from '../websocket-server.ts';
import { buildFrame, closePayload, Op } from './support/frames.ts';
import type { ClientFrame } from './support/frames.ts';

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// Events: what the parser reports to its handler
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

type Event =
  | readonly ['text', string]
  | readonly ['binary', Buffer]
  | readonly ['ping', Buffer]
  | readonly ['pong', Buffer]
  | readonly ['close', number, string]
  | readonly ['error', number]
  /** An error object whose class does not match its close code, or that has no stable `code`. */
  | readonly ['malformed error object', string];

/** Expected-event builders. */
const on = {
  text: (text: string): Event => ['text', text],
  binary: (data: Buffer | string): Event => ['binary', Buffer.from(data)],
  ping: (data: Buffer | string = ''): Event => ['ping', Buffer.from(data)],
  pong: (data: Buffer | string = ''): Event => ['pong', Buffer.from(data)],
  close: (code: number, reason = ''): Event => ['close', code, reason],
  error: (closeCode: 1002 | 1007 | 1009): Event => ['error', closeCode],
};

const ERROR_CLASS_BY_CLOSE_CODE = new Map<number, abstract new (...args: never[]) => WebSocketError>([
  [1002, ProtocolError],
  [1007, InvalidPayloadError],
  [1009, MessageTooBigError],
]);

/** A plain-object handler that records every call, keeping payload buffers by reference (so reuse shows). */
function recordingHandler(events: Event[]): FrameParserHandler {
  return {
    onText(text) {
      events.push(['text', text]);
    },
    onBinary(data) {
      events.push(['binary', data]);
    },
    onPing(payload) {
      events.push(['ping', payload]);
    },
    onPong(payload) {
      events.push(['pong', payload]);
    },
    onClose(code, reason) {
      events.push(['close', code, reason]);
    },
    onProtocolError(error) {
      const expectedClass = ERROR_CLASS_BY_CLOSE_CODE.get(error.closeCode);
      const wellFormed =
        expectedClass !== undefined && error instanceof expectedClass && typeof error.code === 'string' && error.code !== '';
      events.push(
        wellFormed
          ? ['error', error.closeCode]
          : ['malformed error object', `${error.name} closeCode=${error.closeCode} code=${String(error.code)}`],
      );
    },
  };
}

function sameEvent(actual: Event, expected: Event): boolean {
  if (actual.length !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Buffer.isBuffer(e)) {
      if (!Buffer.isBuffer(a) || !a.equals(e)) return false;
    } else if (a !== e) {
      return false;
    }
  }
  return true;
}

function describeValue(value: unknown): string {
  if (value instanceof Uint8Array) {
    const kind = Buffer.isBuffer(value) ? 'Buffer' : value.constructor.name;
    const hex = Buffer.from(value.subarray(0, 24)).toString('hex');
    return `<${kind} ${value.length} bytes ${hex}${value.length > 24 ? '…' : ''}>`;
  }
  if (typeof value === 'string') {
    return value.length > 60 ? `${JSON.stringify(value.slice(0, 60))}… (${value.length} chars)` : JSON.stringify(value);
  }
  return String(value);
}

function describeEvents(events: readonly Event[]): string {
  return `[${events.map((event) => `[${event.map(describeValue).join(', ')}]`).join(', ')}]`;
}

function assertEvents(actual: readonly Event[], expected: readonly Event[], how: string): void {
  const same = actual.length === expected.length && actual.every((event, i) => sameEvent(event, expected[i]!));
  if (!same) {
    assert.fail(`${how}:\n  expected ${describeEvents(expected)}\n  got      ${describeEvents(actual)}`);
  }
}

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// Running fixtures under every chunking
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;
/** Inputs up to this size are split at every offset; larger ones at a bounded set (the run is quadratic). */
const EXHAUSTIVE_SPLIT_LIMIT = 4096;
const TEST_OPTIONS = { timeout: 10_000 } as const;

interface Fixture {
  readonly name: string;
  readonly input: Buffer;
  readonly expected: readonly Event[];
  readonly maxMessageSize?: number;
}

function fixture(
  name: string,
  input: Buffer | readonly ClientFrame[],
  expected: readonly Event[],
  maxMessageSize?: number,
): Fixture {
  const bytes = Buffer.isBuffer(input) ? input : frames(...input);
  return maxMessageSize === undefined
    ? { name, input: bytes, expected }
    : { name, input: bytes, expected, maxMessageSize };
}

/** mulberry32: a small deterministic PRNG, so every run splits at the same "random" offsets. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function range(from: number, toExclusive: number): number[] {
  return Array.from({ length: Math.max(0, toExclusive - from) }, (_, i) => from + i);
}

/** Offsets (0..length inclusive: the ends push an empty chunk) at which a fixture is split in two. */
function splitOffsets(length: number): number[] {
  if (length <= EXHAUSTIVE_SPLIT_LIMIT) return range(0, length + 1);
  // Every offset inside the first header (≤ 14 bytes) and well past it, as many as 64 MiB of parsing allows.
  const offsets = new Set<number>(range(0, Math.max(33, Math.min(512, Math.floor(2 ** 26 / length)))));
  for (const boundary of [126, 65536, 2 ** 20]) for (const offset of range(boundary - 16, boundary + 17)) offsets.add(offset);
  for (const offset of range(length - 32, length + 1)) offsets.add(offset);
  const random = seededRandom(0x5eed ^ length);
  for (let i = 0; i < 50; i++) offsets.add(Math.floor(random() * (length + 1)));
  return [...offsets].filter((offset) => offset >= 0 && offset <= length).sort((a, b) => a - b);
}

/**
 * A private copy of `bytes` (a parser may unmask in place) whose `byteOffset` is `byteOffset`,
 * so word-at-a-time unmasking over an unaligned view shows.
 */
function freshCopy(bytes: Buffer, byteOffset = 0): Buffer {
  const copy = Buffer.alloc(bytes.length + byteOffset).subarray(byteOffset);
  bytes.copy(copy);
  return copy;
}

function* oneByteAtATime(bytes: Buffer): Generator<Buffer> {
  for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1);
}

/**
 * A fixture's runs are synchronous, so node:test's timeout cannot interrupt them: the runs check this budget
 * themselves (it is the test timeout, enforced cooperatively, not a speed assertion).
 */
const FIXTURE_BUDGET_MS = 9_000;

function parseChunks(chunks: Iterable<Buffer>, maxMessageSize: number, deadline = Infinity): Event[] {
  const events: Event[] = [];
  const parser = new FrameParser(recordingHandler(events), { maxMessageSize });
  let pushed = 0;
  for (const chunk of chunks) {
    parser.push(chunk);
    if (++pushed % 1024 === 0 && performance.now() > deadline) {
      assert.fail(`gave up after ${pushed} pushes: the test's ${FIXTURE_BUDGET_MS} ms budget ran out`);
    }
  }
  return events;
}

/** Frames sent after a close or a failure: a valid text, a ping and an unmasked (invalid) frame. */
const TRAILING_FRAMES = Buffer.concat([
  buildFrame({ opcode: Op.TEXT, payload: 'too late' }),
  buildFrame({ opcode: Op.PING, payload: 'too late' }),
  buildFrame({ opcode: Op.TEXT, payload: 'unmasked', masked: false }),
]);

/**
 * A single push can hide quadratic work (e.g. a chunk queue that shifts a huge array) that no timer in this
 * thread can interrupt. So a large input fed one byte at a time is parsed in a worker running this same file,
 * which is terminated when the budget runs out.
 */
const FEED_JOB_KIND = 'parser.test: feed one byte at a time';

interface FeedJob {
  readonly kind: typeof FEED_JOB_KIND;
  readonly input: Uint8Array;
  readonly maxMessageSize: number;
}

function isFeedJob(data: unknown): data is FeedJob {
  return typeof data === 'object' && data !== null && (data as { kind?: unknown }).kind === FEED_JOB_KIND;
}

const runningAsFeedWorker = !isMainThread && isFeedJob(workerData);

/** `describe`, except in the feed worker, which registers no tests. */
function section(name: string, body: () => void): void {
  if (!runningAsFeedWorker) void describe(name, body);
}

async function parseOneByteAtATimeInWorker(input: Buffer, maxMessageSize: number, deadline: number): Promise<Event[]> {
  const job: FeedJob = { kind: FEED_JOB_KIND, input: new Uint8Array(input), maxMessageSize };
  const worker = new Worker(new URL(import.meta.url), { workerData: job });
  worker.unref();
  let timer: NodeJS.Timeout | undefined;
  try {
    const events = await new Promise<unknown[][]>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no result within the test's ${FIXTURE_BUDGET_MS} ms budget (the parser is stuck or too slow)`)),
        Math.max(0, deadline - performance.now()),
      );
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the worker exited with code ${code} before answering`)));
    });
    // Structured cloning turned each Buffer into a plain Uint8Array.
    return events.map((event) => event.map((item) => (item instanceof Uint8Array ? Buffer.from(item.buffer, item.byteOffset, item.length) : item)) as unknown as Event);
  } finally {
    clearTimeout(timer);
    await worker.terminate();
  }
}

/** Runs one fixture as one chunk, split in two at every offset and one byte at a time. */
async function assertFixture({ input, expected, maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE }: Fixture): Promise<void> {
  const deadline = performance.now() + FIXTURE_BUDGET_MS;
  const check = (chunks: Iterable<Buffer>, how: string): void => {
    if (performance.now() > deadline) assert.fail(`gave up before running ${how}: the test's ${FIXTURE_BUDGET_MS} ms budget ran out`);
    let events: Event[];
    try {
      events = parseChunks(chunks, maxMessageSize, deadline);
    } catch (error) {
      assert.fail(`${how}: push() threw ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
    assertEvents(events, expected, how);
  };
  const inWorkers: { how: string; events: Promise<Event[]> }[] = [];
  const feedOneByteAtATime = (bytes: Buffer, how: string): void => {
    if (bytes.length > EXHAUSTIVE_SPLIT_LIMIT) {
      inWorkers.push({ how, events: parseOneByteAtATimeInWorker(bytes, maxMessageSize, deadline) });
    } else {
      check(oneByteAtATime(freshCopy(bytes)), how);
    }
  };
  // §5.5.1 / §7.1.7: once the input ends in a close or a failure, nothing after it may produce an event.
  const last = expected[expected.length - 1];
  const endsTheStream = last !== undefined && (last[0] === 'close' || last[0] === 'error');
  const withTrailer = Buffer.concat([input, TRAILING_FRAMES]);
  try {
    feedOneByteAtATime(input, 'fed one byte at a time');
    if (endsTheStream) feedOneByteAtATime(withTrailer, 'one byte at a time followed by more frames');
    for (const byteOffset of [0, 1, 2, 3]) check([freshCopy(input, byteOffset)], `as one chunk at byteOffset ${byteOffset}`);
    for (const at of splitOffsets(input.length)) {
      const copy = freshCopy(input);
      check([copy.subarray(0, at), copy.subarray(at)], `split into two chunks at byte ${at} of ${input.length}`);
    }
    if (endsTheStream) check([freshCopy(withTrailer)], 'as one chunk followed by more frames');
  } finally {
    // Settle every worker before leaving, so none outlives its test and no rejection goes unhandled.
    const results = await Promise.allSettled(inWorkers.map(({ events }) => events));
    results.forEach((result, i) => {
      const { how } = inWorkers[i]!;
      if (result.status === 'rejected') assert.fail(`${how}: ${String(result.reason)}`);
      assertEvents(result.value, expected, how);
    });
  }
}

function fixtureTests(fixtures: readonly Fixture[]): void {
  for (const f of fixtures) test(f.name, TEST_OPTIONS, () => assertFixture(f));
}

/** One push (then the complete event list expected so far), or a call to stop(). */
type Step =
  | { readonly push: Buffer; readonly expect: readonly Event[]; readonly byteOffset?: number }
  | { readonly stop: true };

function runSteps(steps: readonly Step[], maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE): void {
  const events: Event[] = [];
  const parser = new FrameParser(recordingHandler(events), { maxMessageSize });
  steps.forEach((step, i) => {
    if ('stop' in step) {
      parser.stop();
      return;
    }
    parser.push(freshCopy(step.push, step.byteOffset ?? 0));
    assertEvents(events, step.expect, `after push #${i + 1} (${step.push.length} bytes)`);
  });
}

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// Input builders
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

type FrameOptions = Omit<ClientFrame, 'opcode' | 'payload'>;
type Payload = Buffer | string;

const textFrame = (payload: Payload, options: FrameOptions = {}): ClientFrame => ({ opcode: Op.TEXT, payload, ...options });
const binaryFrame = (payload: Payload, options: FrameOptions = {}): ClientFrame => ({ opcode: Op.BINARY, payload, ...options });
const continuation = (payload: Payload, options: FrameOptions = {}): ClientFrame => ({ opcode: Op.CONTINUATION, payload, ...options });
const pingFrame = (payload: Payload = '', options: FrameOptions = {}): ClientFrame => ({ opcode: Op.PING, payload, ...options });
const pongFrame = (payload: Payload = '', options: FrameOptions = {}): ClientFrame => ({ opcode: Op.PONG, payload, ...options });
const closeFrame = (payload: Payload = Buffer.alloc(0), options: FrameOptions = {}): ClientFrame => ({ opcode: Op.CLOSE, payload, ...options });
const NOT_FINAL = { fin: false } as const;

function frames(...parts: readonly ClientFrame[]): Buffer {
  return Buffer.concat(parts.map(buildFrame));
}

function bytes(...values: number[]): Buffer {
  return Buffer.from(values);
}

/** Deterministic bytes covering every value, so unmasking and copying bugs show. */
function patternBytes(length: number, seed = 1): Buffer {
  const random = seededRandom(seed);
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

function asciiText(length: number): string {
  const sentence = 'The quick brown fox jumps over the lazy dog 0123456789. ';
  return sentence.repeat(Math.ceil(length / sentence.length)).slice(0, length);
}

function lengthEncoding(length: number): string {
  return length < 126 ? '7-bit length' : length < 65536 ? '16-bit length' : '64-bit length';
}

/** The header of a frame (everything before the payload): the frame minus its payload's bytes. */
function headerOf(frame: ClientFrame): Buffer {
  const whole = buildFrame(frame);
  const payloadLength = frame.payload === undefined ? 0 : Buffer.byteLength(frame.payload);
  return whole.subarray(0, whole.length - payloadLength);
}

/** Many frames of every kind, with the events they must produce, in order. */
function manyFrames(count: number): { input: Buffer; expected: Event[] } {
  const parts: ClientFrame[] = [];
  const expected: Event[] = [];
  for (let i = 0; i < count; i++) {
    const maskKey = patternBytes(4, i + 7);
    switch (i % 5) {
      case 0:
        parts.push(textFrame(`message ${i} κόσμε`, { maskKey }));
        expected.push(on.text(`message ${i} κόσμε`));
        break;
      case 1: {
        const data = patternBytes(i % 13, i);
        parts.push(binaryFrame(data, { maskKey }));
        expected.push(on.binary(data));
        break;
      }
      case 2:
        parts.push(pingFrame(`ping ${i}`, { maskKey }));
        expected.push(on.ping(`ping ${i}`));
        break;
      case 3:
        parts.push(
          textFrame(`frag-${i}-`, { fin: false, maskKey }),
          pongFrame(`pong ${i}`),
          continuation('€', { maskKey }),
        );
        expected.push(on.pong(`pong ${i}`), on.text(`frag-${i}-€`));
        break;
      default:
        parts.push(binaryFrame(Buffer.alloc(0), { maskKey }));
        expected.push(on.binary(Buffer.alloc(0)));
    }
  }
  return { input: frames(...parts), expected };
}

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// §5.2 Base framing protocol
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

const PAYLOAD_LENGTHS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 125, 126, 127, 128, 1000, 65535, 65536, 2 ** 20 + 1];

section('§5.2 Base framing protocol: payload lengths', () => {
  fixtureTests(
    PAYLOAD_LENGTHS.map((length) => {
      const data = patternBytes(length, length + 1);
      return fixture(
        `a binary frame with a ${length}-byte payload (${lengthEncoding(length)}) is delivered byte-exact`,
        [binaryFrame(data)],
        [on.binary(data)],
      );
    }),
  );
  fixtureTests(
    [0, 1, 125, 126, 127, 65535, 65536].map((length) =>
      fixture(
        `a text frame with a ${length}-byte payload (${lengthEncoding(length)}) is delivered`,
        [textFrame(asciiText(length))],
        [on.text(asciiText(length))],
      ),
    ),
  );
  fixtureTests([
    fixture(
      'a 64-bit length of 2^32 (top bit clear) is read as 4 GiB and fails with 1009 from the header alone',
      [binaryFrame('', { lengthBits: 64, length64High: 1, declaredLength: 0 })],
      [on.error(1009)],
    ),
  ]);
});

section('§5.2 Base framing protocol: length encoding', () => {
  fixtureTests([
    fixture(
      'a 64-bit length with its most significant bit set fails with 1002',
      [binaryFrame('abc', { lengthBits: 64, length64High: 0x80000000, declaredLength: 3 })],
      [on.error(1002)],
    ),
    fixture(
      'a 64-bit length with every high bit set fails with 1002',
      [binaryFrame('abc', { lengthBits: 64, length64High: 0xffffffff, declaredLength: 3 })],
      [on.error(1002)],
    ),
    fixture('a 16-bit length encoding 5 bytes (not minimal) fails with 1002', [textFrame('hello', { lengthBits: 16 })], [on.error(1002)]),
    fixture('a 16-bit length encoding 0 bytes (not minimal) fails with 1002', [binaryFrame('', { lengthBits: 16 })], [on.error(1002)]),
    fixture('a 16-bit length encoding 125 bytes (not minimal) fails with 1002', [binaryFrame(patternBytes(125), { lengthBits: 16 })], [on.error(1002)]),
    fixture('a 64-bit length encoding 200 bytes (not minimal) fails with 1002', [binaryFrame(patternBytes(200), { lengthBits: 64 })], [on.error(1002)]),
    fixture('a 64-bit length encoding 5 bytes (not minimal) fails with 1002', [textFrame('hello', { lengthBits: 64 })], [on.error(1002)]),
    fixture('a 64-bit length encoding 65535 bytes (not minimal) fails with 1002', [binaryFrame(patternBytes(65535), { lengthBits: 64 })], [on.error(1002)]),
    fixture(
      'a non-minimal length on a ping fails with 1002',
      [pingFrame('hi', { lengthBits: 16 })],
      [on.error(1002)],
    ),
  ]);
});

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// §5.1, §5.3 Client-to-server masking
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

section('§5.1 / §5.3 Client-to-server masking', () => {
  const unmasked = { masked: false } as const;
  fixtureTests([
    fixture('an unmasked text frame fails with 1002', [textFrame('Hello', unmasked)], [on.error(1002)]),
    fixture('an unmasked empty text frame fails with 1002', [textFrame('', unmasked)], [on.error(1002)]),
    fixture('an unmasked binary frame fails with 1002', [binaryFrame(patternBytes(200), unmasked)], [on.error(1002)]),
    fixture('an unmasked ping fails with 1002', [pingFrame('p', unmasked)], [on.error(1002)]),
    fixture('an unmasked pong fails with 1002', [pongFrame('p', unmasked)], [on.error(1002)]),
    fixture('an unmasked close frame fails with 1002', [closeFrame(closePayload(1000), unmasked)], [on.error(1002)]),
    fixture(
      'an unmasked continuation of a masked first fragment fails with 1002',
      [textFrame('ab', NOT_FINAL), continuation('cd', unmasked)],
      [on.error(1002)],
    ),
    fixture(
      'an unmasked frame after a valid one fails with 1002 after delivering the valid one',
      [textFrame('ok'), textFrame('bad', unmasked)],
      [on.text('ok'), on.error(1002)],
    ),
    fixture(
      'a frame masked with the all-zero key is still masked and is delivered',
      [binaryFrame(patternBytes(33), { maskKey: bytes(0, 0, 0, 0) })],
      [on.binary(patternBytes(33))],
    ),
    fixture(
      'a frame masked with the key FF FF FF FF is unmasked byte-exact',
      [binaryFrame(patternBytes(37, 3), { maskKey: bytes(0xff, 0xff, 0xff, 0xff) })],
      [on.binary(patternBytes(37, 3))],
    ),
    fixture(
      'each frame is unmasked with its own key, restarting at key byte 0',
      [
        binaryFrame(patternBytes(7, 4), { fin: false, maskKey: bytes(1, 2, 3, 4) }),
        continuation(patternBytes(5, 5), { fin: false, maskKey: bytes(0xa0, 0xb1, 0xc2, 0xd3) }),
        continuation(patternBytes(6, 6), { maskKey: bytes(9, 8, 7, 6) }),
        textFrame('abc', { maskKey: bytes(0x10, 0x20, 0x30, 0x40) }),
      ],
      [on.binary(Buffer.concat([patternBytes(7, 4), patternBytes(5, 5), patternBytes(6, 6)])), on.text('abc')],
    ),
  ]);
});

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// §5.2, §5.8 Reserved bits and opcodes
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

section('§5.2 / §5.8 Extensibility: reserved bits and opcodes', () => {
  fixtureTests([
    ...(
      [
        ['RSV1', 4],
        ['RSV2', 2],
        ['RSV3', 1],
        ['RSV1, RSV2 and RSV3', 7],
      ] as const
    ).map(([bits, rsv]) =>
      fixture(`a text frame with ${bits} set fails with 1002 (no extension negotiated)`, [textFrame('hi', { rsv })], [on.error(1002)]),
    ),
    fixture('a ping with RSV1 set fails with 1002', [pingFrame('hi', { rsv: 4 })], [on.error(1002)]),
    fixture('a close frame with RSV2 set fails with 1002', [closeFrame(closePayload(1000), { rsv: 2 })], [on.error(1002)]),
    fixture(
      'a continuation frame with RSV3 set fails with 1002',
      [textFrame('ab', NOT_FINAL), continuation('cd', { rsv: 1 })],
      [on.error(1002)],
    ),
    ...[3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf].map((opcode) =>
      fixture(
        `a frame with the reserved opcode 0x${opcode.toString(16).toUpperCase()} fails with 1002`,
        [{ opcode, payload: 'x' }],
        [on.error(1002)],
      ),
    ),
    fixture('a non-final frame with the reserved opcode 0x3 fails with 1002', [{ opcode: 3, payload: 'x', fin: false }], [on.error(1002)]),
    fixture(
      'a frame with the reserved opcode 0xB between fragments fails with 1002',
      [textFrame('ab', NOT_FINAL), { opcode: 0xb, payload: '' }, continuation('cd')],
      [on.error(1002)],
    ),
  ]);
});

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// §5.4 Fragmentation
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

section('§5.4 Fragmentation', () => {
  const part1 = patternBytes(10, 11);
  const part2 = patternBytes(7, 12);
  const part3 = patternBytes(13, 13);
  const big1 = patternBytes(100, 21);
  const big2 = patternBytes(300, 22);
  const big3 = patternBytes(70000, 23);
  const oneBytePieces = patternBytes(50, 31);
  fixtureTests([
    fixture(
      'a text message in three fragments is delivered once, joined',
      [textFrame('Hel', NOT_FINAL), continuation('lo, ', NOT_FINAL), continuation('world')],
      [on.text('Hello, world')],
    ),
    fixture(
      'a binary message in three fragments is delivered once, joined byte-exact',
      [binaryFrame(part1, NOT_FINAL), continuation(part2, NOT_FINAL), continuation(part3)],
      [on.binary(Buffer.concat([part1, part2, part3]))],
    ),
    fixture(
      'a ping and a pong between text fragments are delivered before the message',
      [textFrame('Hel', NOT_FINAL), pingFrame('p1'), continuation('lo', NOT_FINAL), pongFrame('p2'), continuation('!')],
      [on.ping('p1'), on.pong('p2'), on.text('Hello!')],
    ),
    fixture(
      'a ping between binary fragments is delivered before the message',
      [binaryFrame(part1, NOT_FINAL), pingFrame(part2), continuation(part3)],
      [on.ping(part2), on.binary(Buffer.concat([part1, part3]))],
    ),
    fixture(
      'a close frame between fragments is delivered and the unfinished message is dropped',
      [textFrame('ab', NOT_FINAL), closeFrame(closePayload(1000, 'bye')), continuation('cd')],
      [on.close(1000, 'bye')],
    ),
    fixture('a final continuation frame without a started message fails with 1002', [continuation('x')], [on.error(1002)]),
    fixture('a non-final continuation frame without a started message fails with 1002', [continuation('x', NOT_FINAL)], [on.error(1002)]),
    fixture(
      'a continuation frame after a completed message fails with 1002',
      [textFrame('a'), continuation('b')],
      [on.text('a'), on.error(1002)],
    ),
    fixture(
      'a text frame while a fragmented text message is open fails with 1002',
      [textFrame('ab', NOT_FINAL), textFrame('cd')],
      [on.error(1002)],
    ),
    fixture(
      'a binary frame while a fragmented text message is open fails with 1002',
      [textFrame('ab', NOT_FINAL), binaryFrame('cd')],
      [on.error(1002)],
    ),
    fixture(
      'a text frame while a fragmented binary message is open fails with 1002',
      [binaryFrame('ab', NOT_FINAL), textFrame('cd')],
      [on.error(1002)],
    ),
    fixture(
      'a non-final binary frame while a fragmented binary message is open fails with 1002',
      [binaryFrame('ab', NOT_FINAL), binaryFrame('cd', NOT_FINAL), continuation('ef')],
      [on.error(1002)],
    ),
    fixture(
      'empty first, middle and final fragments are accepted',
      [textFrame('', NOT_FINAL), continuation('', NOT_FINAL), continuation('abc', NOT_FINAL), continuation('')],
      [on.text('abc')],
    ),
    fixture(
      'a text message made only of empty fragments is an empty string',
      [textFrame('', NOT_FINAL), continuation('', NOT_FINAL), continuation('')],
      [on.text('')],
    ),
    fixture(
      'a binary message made only of empty fragments is an empty buffer',
      [binaryFrame('', NOT_FINAL), continuation('')],
      [on.binary(Buffer.alloc(0))],
    ),
    fixture(
      'messages after a fragmented message are delivered in order',
      [
        textFrame('one-', NOT_FINAL),
        continuation('two'),
        binaryFrame(part1),
        binaryFrame(part2, NOT_FINAL),
        continuation(part3),
        textFrame('last'),
      ],
      [on.text('one-two'), on.binary(part1), on.binary(Buffer.concat([part2, part3])), on.text('last')],
    ),
    fixture(
      'fragments with 7-, 16- and 64-bit lengths join byte-exact',
      [binaryFrame(big1, NOT_FINAL), continuation(big2, NOT_FINAL), continuation(big3)],
      [on.binary(Buffer.concat([big1, big2, big3]))],
    ),
    fixture(
      'a binary message of fifty one-byte fragments joins byte-exact',
      [
        binaryFrame(oneBytePieces.subarray(0, 1), NOT_FINAL),
        ...range(1, 49).map((i) => continuation(oneBytePieces.subarray(i, i + 1), NOT_FINAL)),
        continuation(oneBytePieces.subarray(49)),
      ],
      [on.binary(oneBytePieces)],
    ),
    fixture(
      'an invalid (unmasked) ping between fragments fails with 1002',
      [textFrame('ab', NOT_FINAL), pingFrame('p', { masked: false }), continuation('cd')],
      [on.error(1002)],
    ),
  ]);
});

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// §5.5 Control frames, §5.5.2 Ping, §5.5.3 Pong
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

section('§5.5 Control frames', () => {
  const controls = [
    ['ping', pingFrame, (data: Buffer): Event => on.ping(data)],
    ['pong', pongFrame, (data: Buffer): Event => on.pong(data)],
  ] as const;
  fixtureTests([
    ...controls.flatMap(([name, build, event]) => [
      fixture(`a ${name} with a 125-byte payload is delivered byte-exact`, [build(patternBytes(125, 41))], [event(patternBytes(125, 41))]),
      fixture(`a ${name} with a 126-byte payload (16-bit length) fails with 1002`, [build(patternBytes(126, 42))], [on.error(1002)]),
      fixture(`a ${name} without FIN (fragmented control frame) fails with 1002`, [build('abc', NOT_FINAL)], [on.error(1002)]),
    ]),
    fixture(
      'a close frame with a 125-byte payload (123-byte reason) is delivered',
      [closeFrame(closePayload(1000, 'r'.repeat(123)))],
      [on.close(1000, 'r'.repeat(123))],
    ),
    fixture(
      'a close frame with a 126-byte payload (16-bit length) fails with 1002',
      [closeFrame(closePayload(1000, 'r'.repeat(124)))],
      [on.error(1002)],
    ),
    fixture('a close frame without FIN fails with 1002', [closeFrame(closePayload(1000), NOT_FINAL)], [on.error(1002)]),
    fixture(
      'a non-final ping between fragments fails with 1002',
      [textFrame('ab', NOT_FINAL), pingFrame('p', NOT_FINAL), continuation('cd')],
      [on.error(1002)],
    ),
  ]);
});

section('§5.5.2 Ping and §5.5.3 Pong', () => {
  fixtureTests([
    fixture('an empty ping is delivered with an empty payload', [pingFrame()], [on.ping(Buffer.alloc(0))]),
    fixture('a ping payload is delivered byte-exact', [pingFrame(patternBytes(61, 51))], [on.ping(patternBytes(61, 51))]),
    fixture('an empty unsolicited pong is delivered with an empty payload', [pongFrame()], [on.pong(Buffer.alloc(0))]),
    fixture('an unsolicited pong payload is delivered byte-exact', [pongFrame(patternBytes(9, 52))], [on.pong(patternBytes(9, 52))]),
    fixture(
      'several pings in a row are each delivered in order',
      [pingFrame('1'), pingFrame('22'), pongFrame('333'), pingFrame('')],
      [on.ping('1'), on.ping('22'), on.pong('333'), on.ping('')],
    ),
  ]);
});

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// §5.5.1 Close, §7.4 Status codes
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

const VALID_CLOSE_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];
const INVALID_CLOSE_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535];

section('§5.5.1 Close and §7.4 status codes', () => {
  fixtureTests([
    fixture('a close frame without payload is reported as 1005 with an empty reason', [closeFrame()], [on.close(1005, '')]),
    fixture('a close frame with code 1000 and reason "bye" is reported as (1000, "bye")', [closeFrame(closePayload(1000, 'bye'))], [on.close(1000, 'bye')]),
    fixture('a close frame with code 1000 and no reason has an empty reason', [closeFrame(closePayload(1000))], [on.close(1000, '')]),
    fixture(
      'a close reason with multi-byte UTF-8 is decoded',
      [closeFrame(closePayload(4000, 'κόσμε € 𝄞'))],
      [on.close(4000, 'κόσμε € 𝄞')],
    ),
    ...VALID_CLOSE_CODES.map((code) =>
      fixture(`a close frame with the valid code ${code} is reported with code ${code}`, [closeFrame(closePayload(code, 'why'))], [on.close(code, 'why')]),
    ),
    ...INVALID_CLOSE_CODES.map((code) =>
      fixture(`a close frame with the invalid code ${code} fails with 1002`, [closeFrame(closePayload(code))], [on.error(1002)]),
    ),
    fixture('a close frame with the invalid code 1005 and a reason fails with 1002', [closeFrame(closePayload(1005, 'x'))], [on.error(1002)]),
    fixture('a close frame with a one-byte payload fails with 1002', [closeFrame(bytes(0x03))], [on.error(1002)]),
    fixture('a close reason containing 0xFF fails with 1007', [closeFrame(closePayload(1000, bytes(0x61, 0xff)))], [on.error(1007)]),
    fixture('a close reason ending inside a code point (E2 82) fails with 1007', [closeFrame(closePayload(1000, bytes(0x61, 0xe2, 0x82)))], [on.error(1007)]),
    fixture('a close reason containing a surrogate (ED A0 80) fails with 1007', [closeFrame(closePayload(1000, bytes(0xed, 0xa0, 0x80)))], [on.error(1007)]),
    fixture('a close reason containing an overlong sequence (C0 AF) fails with 1007', [closeFrame(closePayload(1000, bytes(0xc0, 0xaf)))], [on.error(1007)]),
  ]);
});

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// §5.6 Data frames: text is UTF-8 (§8.1)
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

const INVALID_UTF8: readonly (readonly [string, Buffer])[] = [
  ['the byte 0xFF', bytes(0xff)],
  ['the byte 0xFE', bytes(0xfe)],
  ['a lone continuation byte 0x80', bytes(0x80)],
  ['the overlong sequence C0 AF', bytes(0xc0, 0xaf)],
  ['the overlong sequence C1 BF', bytes(0xc1, 0xbf)],
  ['the overlong sequence E0 80 AF', bytes(0xe0, 0x80, 0xaf)],
  ['the overlong sequence F0 80 80 AF', bytes(0xf0, 0x80, 0x80, 0xaf)],
  ['the surrogate ED A0 80 (U+D800)', bytes(0xed, 0xa0, 0x80)],
  ['the surrogate ED BF BF (U+DFFF)', bytes(0xed, 0xbf, 0xbf)],
  ['F4 90 80 80, a code point above U+10FFFF', bytes(0xf4, 0x90, 0x80, 0x80)],
  ['the lead byte F5', bytes(0xf5, 0x80, 0x80, 0x80)],
  ['a 3-byte sequence interrupted by ASCII (E2 82 41)', bytes(0xe2, 0x82, 0x41)],
  ['a 3-byte sequence truncated at the end of the message (E2 82)', bytes(0xe2, 0x82)],
  ['a 4-byte sequence truncated at the end of the message (F0 9D 84)', bytes(0xf0, 0x9d, 0x84)],
  ['a lone lead byte at the end of the message (C3)', bytes(0xc3)],
];

const G_CLEF = Buffer.from('𝄞'); // F0 9D 84 9E
const EURO = Buffer.from('€'); // E2 82 AC
const KOSME = Buffer.from('κόσμε');
const BOUNDARY_CODE_POINTS = String.fromCodePoint(
  0x0, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff,
);
const LONG_MULTIBYTE_TEXT = 'κόσμε € 𝄞 abc '.repeat(3000); // 75 KB of 1- to 4-byte sequences
const LONG_MULTIBYTE_TEXT_BYTES = Buffer.from(LONG_MULTIBYTE_TEXT);

section('§5.6 Data frames: text must be valid UTF-8 (§8.1)', () => {
  fixtureTests([
    fixture('a text message with 2-byte sequences ("κόσμε") is delivered', [textFrame('κόσμε')], [on.text('κόσμε')]),
    fixture('a text message with a 3-byte sequence ("€") is delivered', [textFrame('€')], [on.text('€')]),
    fixture('a text message with a 4-byte sequence ("𝄞") is delivered', [textFrame('𝄞')], [on.text('𝄞')]),
    fixture(
      'a text message with the boundary code points U+0000 … U+10FFFF is delivered',
      [textFrame(BOUNDARY_CODE_POINTS)],
      [on.text(BOUNDARY_CODE_POINTS)],
    ),
    fixture(
      'a long text message of mixed 1- to 4-byte sequences is delivered',
      [textFrame(LONG_MULTIBYTE_TEXT)],
      [on.text(LONG_MULTIBYTE_TEXT)],
    ),
    fixture(
      'a long multi-byte text in three fragments cut inside a 2-byte and a 4-byte code point is delivered',
      [
        textFrame(LONG_MULTIBYTE_TEXT_BYTES.subarray(0, 20001), NOT_FINAL),
        continuation(LONG_MULTIBYTE_TEXT_BYTES.subarray(20001, 40001), NOT_FINAL),
        continuation(LONG_MULTIBYTE_TEXT_BYTES.subarray(40001)),
      ],
      [on.text(LONG_MULTIBYTE_TEXT)],
    ),
    fixture(
      'a 4-byte code point split across two fragments (F0 9D | 84 9E) is delivered',
      [textFrame(G_CLEF.subarray(0, 2), NOT_FINAL), continuation(G_CLEF.subarray(2))],
      [on.text('𝄞')],
    ),
    fixture(
      'a 4-byte code point split across two fragments (F0 | 9D 84 9E) is delivered',
      [textFrame(G_CLEF.subarray(0, 1), NOT_FINAL), continuation(G_CLEF.subarray(1))],
      [on.text('𝄞')],
    ),
    fixture(
      'a 4-byte code point split across four fragments is delivered',
      [
        textFrame(G_CLEF.subarray(0, 1), NOT_FINAL),
        continuation(G_CLEF.subarray(1, 2), NOT_FINAL),
        continuation(G_CLEF.subarray(2, 3), NOT_FINAL),
        continuation(G_CLEF.subarray(3)),
      ],
      [on.text('𝄞')],
    ),
    fixture(
      'a 3-byte code point split across fragments with a ping between is delivered',
      [textFrame(EURO.subarray(0, 2), NOT_FINAL), pingFrame('mid'), continuation(EURO.subarray(2))],
      [on.ping('mid'), on.text('€')],
    ),
    fixture(
      '"κόσμε" sent one byte per fragment is delivered',
      [
        textFrame(KOSME.subarray(0, 1), NOT_FINAL),
        ...range(1, KOSME.length - 1).map((i) => continuation(KOSME.subarray(i, i + 1), NOT_FINAL)),
        continuation(KOSME.subarray(KOSME.length - 1)),
      ],
      [on.text('κόσμε')],
    ),
    ...INVALID_UTF8.map(([what, invalid]) =>
      fixture(`a text message containing ${what} fails with 1007`, [textFrame(Buffer.concat([Buffer.from('ok '), invalid]))], [on.error(1007)]),
    ),
    fixture(
      'a text message whose final fragment contains 0xFF fails with 1007',
      [textFrame('abc', NOT_FINAL), continuation(bytes(0xff))],
      [on.error(1007)],
    ),
    fixture(
      'a fragmented text message ending inside a 4-byte code point fails with 1007',
      [textFrame(G_CLEF.subarray(0, 2), NOT_FINAL), continuation(G_CLEF.subarray(2, 3))],
      [on.error(1007)],
    ),
    fixture(
      'a final fragment ending inside a code point fails with 1007',
      [textFrame('abc', NOT_FINAL), continuation(bytes(0x64, 0xe2, 0x82))],
      [on.error(1007)],
    ),
    fixture(
      'a text message ending with an empty final fragment after a partial code point fails with 1007',
      [textFrame(EURO.subarray(0, 2), NOT_FINAL), continuation('')],
      [on.error(1007)],
    ),
    fixture(
      'a 4-byte sequence interrupted by ASCII in the next fragment fails with 1007',
      [textFrame(G_CLEF.subarray(0, 2), NOT_FINAL), continuation('A')],
      [on.error(1007)],
    ),
    fixture(
      'a surrogate split across fragments (ED | A0 80) fails with 1007',
      [textFrame(bytes(0xed), NOT_FINAL), continuation(bytes(0xa0, 0x80))],
      [on.error(1007)],
    ),
    fixture(
      'a first fragment containing 0xFF fails with 1007 although the message never ends',
      [textFrame(bytes(0x61, 0xff, 0x62), NOT_FINAL)],
      [on.error(1007)],
    ),
    fixture(
      'a binary message containing invalid UTF-8 is delivered unchanged',
      [binaryFrame(bytes(0xff, 0xc0, 0xaf, 0xed, 0xa0, 0x80))],
      [on.binary(bytes(0xff, 0xc0, 0xaf, 0xed, 0xa0, 0x80))],
    ),
  ]);

  for (const [what, invalid] of INVALID_UTF8.slice(0, 11)) {
    test(`a first fragment (FIN=0) containing ${what} fails with 1007 before any other fragment arrives`, TEST_OPTIONS, () =>
      runSteps([
        { push: buildFrame(textFrame(Buffer.concat([Buffer.from('ok '), invalid, Buffer.from(' more')]), NOT_FINAL)), expect: [on.error(1007)] },
        { push: buildFrame(continuation('end')), expect: [on.error(1007)] },
      ]),
    );
  }

  test('a middle fragment containing 0xFF fails with 1007 before the final fragment arrives', TEST_OPTIONS, () =>
    runSteps([
      { push: buildFrame(textFrame('abc', NOT_FINAL)), expect: [] },
      { push: buildFrame(continuation(bytes(0x64, 0xff), NOT_FINAL)), expect: [on.error(1007)] },
      { push: buildFrame(continuation('end')), expect: [on.error(1007)] },
    ]),
  );

  test('a first fragment ending in a valid partial code point does not fail early', TEST_OPTIONS, () =>
    runSteps([
      { push: buildFrame(textFrame(G_CLEF.subarray(0, 2), NOT_FINAL)), expect: [] },
      { push: buildFrame(continuation(G_CLEF.subarray(2, 3), NOT_FINAL)), expect: [] },
      { push: buildFrame(continuation(G_CLEF.subarray(3))), expect: [on.text('𝄞')] },
    ]),
  );
});

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// §5.7 Examples (the RFC's own bytes, masked variants)
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

section('§5.7 Examples', () => {
  fixtureTests([
    fixture(
      'the single-frame masked text message "Hello" is delivered',
      bytes(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
      [on.text('Hello')],
    ),
    fixture(
      'the single-frame unmasked text message "Hello" fails with 1002 (server side)',
      bytes(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f),
      [on.error(1002)],
    ),
    fixture(
      'the fragmented text message "Hel" + "lo", masked, is delivered as "Hello"',
      bytes(0x01, 0x83, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x80, 0x82, 0x37, 0xfa, 0x21, 0x3d, 0x5b, 0x95),
      [on.text('Hello')],
    ),
    fixture(
      'the masked ping "Hello" is delivered',
      bytes(0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
      [on.ping('Hello')],
    ),
    fixture(
      'the masked pong "Hello" is delivered',
      bytes(0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
      [on.pong('Hello')],
    ),
  ]);
});

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// §10.4 Implementation-specific limits: maxMessageSize
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

section('§10.4 Implementation-specific limits: maxMessageSize', () => {
  fixtureTests([
    fixture('a binary message of exactly maxMessageSize bytes is delivered', [binaryFrame(patternBytes(1000, 61))], [on.binary(patternBytes(1000, 61))], 1000),
    fixture('a binary message of maxMessageSize + 1 bytes fails with 1009', [binaryFrame(patternBytes(1001, 62))], [on.error(1009)], 1000),
    fixture('a text message of exactly maxMessageSize bytes (not characters) is delivered', [textFrame('€€€€')], [on.text('€€€€')], 12),
    fixture('a text message of maxMessageSize + 1 bytes fails with 1009', [textFrame('€€€€a')], [on.error(1009)], 12),
    fixture(
      'a message with a 64-bit length over maxMessageSize fails with 1009',
      [binaryFrame(patternBytes(65537, 63))],
      [on.error(1009)],
      65536,
    ),
    fixture(
      'a fragmented message of exactly maxMessageSize bytes is delivered',
      [textFrame('abcd', NOT_FINAL), continuation('efgh', NOT_FINAL), continuation('ij')],
      [on.text('abcdefghij')],
      10,
    ),
    fixture(
      'a fragmented message whose fragments add up to maxMessageSize + 1 fails with 1009',
      [textFrame('abcd', NOT_FINAL), continuation('efgh', NOT_FINAL), continuation('ijk')],
      [on.error(1009)],
      10,
    ),
    fixture(
      'a ping between fragments is delivered and does not count toward maxMessageSize',
      [binaryFrame('abcde', NOT_FINAL), pingFrame('0123456789abcdef'), continuation('fghij')],
      [on.ping('0123456789abcdef'), on.binary('abcdefghij')],
      10,
    ),
    fixture(
      'a ping before the crossing fragment is delivered, then the message fails with 1009',
      [binaryFrame('abcdef', NOT_FINAL), pingFrame('p'), continuation('ghijk')],
      [on.ping('p'), on.error(1009)],
      10,
    ),
    fixture(
      'the size is counted per message: consecutive messages of exactly maxMessageSize are all delivered',
      [binaryFrame('0123456789'), textFrame('abcde', NOT_FINAL), continuation('fghij'), textFrame('klmnopqrst')],
      [on.binary('0123456789'), on.text('abcdefghij'), on.text('klmnopqrst')],
      10,
    ),
  ]);

  const cases = [
    ['a 7-bit length', 10, 11],
    ['a 16-bit length', 1000, 1001],
    ['a 64-bit length', 65536, 65537],
  ] as const;
  for (const [encoding, limit, length] of cases) {
    test(`a frame with ${encoding} of maxMessageSize + 1 fails with 1009 once only its header has been pushed`, TEST_OPTIONS, () =>
      runSteps([{ push: headerOf(binaryFrame(patternBytes(length, 64))), expect: [on.error(1009)] }], limit),
    );
  }

  test('a 16-bit length of 65535 fails with 1009 from the header alone when the limit is 100', TEST_OPTIONS, () =>
    runSteps([{ push: headerOf(textFrame(asciiText(65535))), expect: [on.error(1009)] }], 100),
  );

  test('a fragmented message fails with 1009 at the header of the fragment that crosses maxMessageSize', TEST_OPTIONS, () =>
    runSteps(
      [
        { push: buildFrame(textFrame('abcd', NOT_FINAL)), expect: [] },
        { push: buildFrame(continuation('efgh', NOT_FINAL)), expect: [] },
        { push: headerOf(continuation('ijk')), expect: [on.error(1009)] },
        { push: Buffer.from('ijk'), expect: [on.error(1009)] },
      ],
      10,
    ),
  );
});

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// §5.5.1, §7.1.7 Nothing is processed after a close frame or a failure; stop()
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

section('§5.5.1 / §7.1.7 Input after a close frame or a failure is discarded', () => {
  fixtureTests([
    fixture('a text frame after a close frame produces no event', [closeFrame(closePayload(1000, 'bye')), textFrame('late')], [on.close(1000, 'bye')]),
    fixture(
      'pings, pongs and a second close after a close frame produce no event',
      [closeFrame(), pingFrame('p'), pongFrame('q'), closeFrame(closePayload(1001))],
      [on.close(1005, '')],
    ),
    fixture(
      'an invalid frame after a close frame produces no error',
      [closeFrame(closePayload(1000)), textFrame('x', { masked: false }), { opcode: 0xf, payload: '' }],
      [on.close(1000, '')],
    ),
    fixture('garbage bytes after a close frame produce no error', Buffer.concat([frames(closeFrame(closePayload(1000))), bytes(0xff, 0xff, 0xff, 0xff, 0xff)]), [on.close(1000, '')]),
    fixture('a valid text frame after an unmasked frame produces no event', [textFrame('x', { masked: false }), textFrame('late')], [on.error(1002)]),
    fixture('a valid frame after invalid UTF-8 produces no event', [textFrame(bytes(0xff)), binaryFrame('late'), pingFrame('p')], [on.error(1007)]),
    fixture('a second protocol error after the first one is not reported', [{ opcode: 3, payload: '' }, textFrame(bytes(0xff)), continuation('x')], [on.error(1002)]),
    fixture('a close frame after a failure produces no event', [{ opcode: 0xc, payload: '' }, closeFrame(closePayload(1000))], [on.error(1002)]),
  ]);

  test('stop() before any input makes every push produce nothing', TEST_OPTIONS, () =>
    runSteps([
      { stop: true },
      { push: frames(textFrame('a'), pingFrame('b'), closeFrame()), expect: [] },
      { push: frames(textFrame('x', { masked: false })), expect: [] },
    ]),
  );

  test('stop() between two halves of a frame discards the second half', TEST_OPTIONS, () => {
    const frame = buildFrame(textFrame('hello world'));
    runSteps([
      { push: frame.subarray(0, 9), expect: [] },
      { stop: true },
      { push: frame.subarray(9), expect: [] },
      { push: buildFrame(textFrame('next')), expect: [] },
    ]);
  });

  test('stop() after a delivered frame keeps that event and discards everything after', TEST_OPTIONS, () => {
    const next = buildFrame(binaryFrame(patternBytes(300, 71)));
    runSteps([
      { push: Buffer.concat([buildFrame(textFrame('first')), next.subarray(0, 5)]), expect: [on.text('first')] },
      { stop: true },
      { push: next.subarray(5), expect: [on.text('first')] },
      { push: buildFrame(closeFrame()), expect: [on.text('first')] },
    ]);
  });

  test('stop() called from inside onText discards the rest of the same chunk', TEST_OPTIONS, () => {
    const events: Event[] = [];
    const recorder = recordingHandler(events);
    const parser: FrameParser = new FrameParser(
      {
        ...recorder,
        onText(text) {
          recorder.onText(text);
          parser.stop();
        },
      },
      { maxMessageSize: DEFAULT_MAX_MESSAGE_SIZE },
    );
    parser.push(frames(textFrame('one'), textFrame('two'), pingFrame('three'), textFrame('bad', { masked: false })));
    assertEvents(events, [on.text('one')], 'after pushing four frames in one chunk');
    parser.push(frames(textFrame('later')));
    assertEvents(events, [on.text('one')], 'after pushing another frame');
  });
});

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// §5.4 Chunking: frame boundaries do not depend on TCP chunks; payloads stay byte-exact
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

section('§5.4 Chunk boundaries: many frames per chunk, payloads at unaligned offsets', () => {
  const few = manyFrames(40);
  fixtureTests([fixture('forty frames of every kind in a row produce their events in order', few.input, few.expected)]);

  test('a thousand frames arriving in one chunk produce their events in order', TEST_OPTIONS, () => {
    const many = manyFrames(1000);
    assertEvents(parseChunks([freshCopy(many.input)], DEFAULT_MAX_MESSAGE_SIZE), many.expected, 'as one chunk');
  });

  const previous = patternBytes(11, 81);
  const previousFrame = buildFrame(binaryFrame(previous));
  const lengths = [1, 2, 3, 5, 6, 7, 9, 13, 127, 1001];
  for (const tail of [1, 2, 3]) {
    test(`binary payloads that start ${tail} byte(s) into a chunk, after the tail of the previous frame, are byte-exact`, TEST_OPTIONS, () => {
      for (const length of lengths) {
        const data = patternBytes(length, length * 10 + tail);
        const frame = buildFrame(binaryFrame(data, { maskKey: bytes(0x9c, 0x01, 0xe7, 0x5a) }));
        // The second chunk also sits at byteOffset `tail` of its ArrayBuffer, so both offsets are odd or unaligned.
        runSteps([
          { push: previousFrame.subarray(0, previousFrame.length - tail), expect: [] },
          {
            push: Buffer.concat([previousFrame.subarray(previousFrame.length - tail), frame]),
            byteOffset: tail,
            expect: [on.binary(previous), on.binary(data)],
          },
        ]);
      }
    });
  }

  test('a payload split across three chunks at unaligned offsets is byte-exact', TEST_OPTIONS, () => {
    const data = patternBytes(1003, 91);
    const frame = buildFrame(binaryFrame(data));
    for (const [a, b] of [[7, 9], [8, 13], [9, 10], [11, 600], [400, 1002]] as const) {
      runSteps([
        { push: frame.subarray(0, a), expect: [], byteOffset: 1 },
        { push: frame.subarray(a, b), expect: [], byteOffset: 3 },
        { push: frame.subarray(b), expect: [on.binary(data)], byteOffset: 2 },
      ]);
    }
  });
});

// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// The feed worker (see parseOneByteAtATimeInWorker): parse the job and post the events back
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════

if (runningAsFeedWorker && isFeedJob(workerData)) {
  const { input, maxMessageSize } = workerData;
  parentPort!.postMessage(parseChunks(oneByteAtATime(Buffer.from(input.buffer, input.byteOffset, input.length)), maxMessageSize));
}
