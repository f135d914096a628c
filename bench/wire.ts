// The load generator's side of the wire, built once per run so that sending costs a write and checking costs a
// memcmp: the handshake request, masked client frames, the exact bytes a server must send back, and a checker
// that compares the received stream with them without parsing it.
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';

/** The sample key of RFC 6455 §1.3 and its accept value: every handshake of the benchmark uses them. */
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = Buffer.from('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
const HEAD_END = Buffer.from('\r\n\r\n');
const STATUS_101 = Buffer.from('HTTP/1.1 101 ');

/** The opening handshake's request (RFC 6455 §4.1) for `path` on 127.0.0.1:`port`. */
export function handshakeRequest(port: number, path: string): Buffer {
  return Buffer.from(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
}

/**
 * Reads a 101 response from the start of `received`. Returns the bytes after the head (the start of the frame
 * stream), `undefined` while the head is incomplete; throws for any answer other than a correct 101.
 */
export function parseHandshakeResponse(received: Buffer): Buffer | undefined {
  const end = received.indexOf(HEAD_END);
  if (end < 0) {
    if (received.length > 16 * 1024) throw new Error('The handshake response head is over 16 KiB.');
    return undefined;
  }
  const head = received.subarray(0, end);
  if (!head.subarray(0, STATUS_101.length).equals(STATUS_101) || head.indexOf(ACCEPT) < 0) {
    throw new Error(`The handshake was not accepted: ${JSON.stringify(head.toString('latin1').split('\r\n')[0])}.`);
  }
  return received.subarray(end + HEAD_END.length);
}

/** The payload of every message of a run: pseudo-random bytes, or UTF-8 text with some multi-byte characters. */
export function payload(size: number, binary: boolean): Buffer {
  if (binary) {
    const bytes = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 131 + 7) & 0xff;
    return bytes;
  }
  // One sentence with 2- and 3-byte characters, repeated, then ASCII up to the exact size.
  const sentence = Buffer.from('Größe und Geschwindigkeit — 速度 — measured, not guessed. ');
  const text = Buffer.allocUnsafe(size);
  let offset = 0;
  while (offset + sentence.length <= size) offset += sentence.copy(text, offset);
  text.fill(0x2e, offset); // '.'
  return text;
}

/** A frame header (RFC 6455 §5.2) for an unfragmented message of `length` bytes, masked or not. */
function header(opcode: number, length: number, masked: boolean): Buffer {
  const maskBit = masked ? 0x80 : 0;
  if (length < 126) return Buffer.from([0x80 | opcode, maskBit | length]);
  if (length < 0x10000) {
    const head = Buffer.from([0x80 | opcode, maskBit | 126, 0, 0]);
    head.writeUInt16BE(length, 2);
    return head;
  }
  const head = Buffer.alloc(10);
  head[0] = 0x80 | opcode;
  head[1] = maskBit | 127;
  head.writeUIntBE(length, 4, 6);
  return head;
}

/** The frame a client sends (masked, RFC 6455 §5.3), with a fresh random masking key. */
export function clientFrame(data: Buffer, binary: boolean): Buffer {
  const mask = randomBytes(4);
  const masked = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) masked[i] = data[i]! ^ mask[i & 3]!;
  return Buffer.concat([header(binary ? 2 : 1, data.length, true), mask, masked]);
}

/** The frame a server must send for this message: unmasked, unfragmented, no extension. */
export function serverFrame(data: Buffer, binary: boolean): Buffer {
  return Buffer.concat([header(binary ? 2 : 1, data.length, false), data]);
}

/** `count` copies of `frame`, back to back: a window of messages goes out in one write. */
export function repeat(frame: Buffer, count: number): Buffer {
  const out = Buffer.allocUnsafe(frame.length * count);
  for (let i = 0; i < count; i++) frame.copy(out, i * frame.length);
  return out;
}

/** What a server must send on one connection: the same frame over and over. Built once, shared by connections. */
export class ExpectedStream {
  readonly frameLength: number;
  /** Whole frames back to back, at least 256 KiB (one socket read) plus one frame long. */
  readonly bytes: Buffer;

  constructor(frame: Buffer) {
    this.frameLength = frame.length;
    this.bytes = repeat(frame, Math.max(2, Math.ceil((256 * 1024) / frame.length) + 1));
  }
}

/**
 * Checks one connection's received stream against an {@link ExpectedStream} and counts the frames. Each chunk is
 * compared with the expected bytes at the same position (`Buffer.compare` on ranges: a memcmp, no copy, no
 * parsing), so every byte is checked and a chunk costs a few JavaScript operations whatever it holds.
 */
export class FrameStreamChecker {
  readonly #expected: ExpectedStream;
  /** Where the next received byte falls within a frame. */
  #position = 0;

  constructor(expected: ExpectedStream) {
    this.#expected = expected;
  }

  /** Checks the first `received` bytes of `chunk`; returns how many frames they completed. Throws at a difference. */
  feed(chunk: Buffer, received: number): number {
    const { frameLength, bytes } = this.#expected;
    const start = this.#position;
    let offset = 0;
    let position = start;
    while (offset < received) {
      const length = Math.min(received - offset, bytes.length - position);
      if (chunk.compare(bytes, position, position + length, offset, offset + length) !== 0) {
        throw new Error(`The server sent other bytes than the expected frame of ${frameLength} bytes (at its byte ${position % frameLength}).`);
      }
      offset += length;
      position += length;
      if (position === bytes.length) position = 0;
    }
    this.#position = position % frameLength;
    return Math.floor((start + received) / frameLength);
  }
}
