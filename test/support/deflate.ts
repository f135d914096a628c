// Test-side permessage-deflate (RFC 7692 §7.2), with node:zlib and independent of the library: compressing what
// a raw client sends, and decompressing what the server sends.
import { Buffer } from 'node:buffer';
import { constants, createDeflateRaw, createInflateRaw, deflateRawSync, inflateRawSync } from 'node:zlib';
import type { DeflateRaw, InflateRaw } from 'node:zlib';

/** The empty stored block a sync flush ends with: stripped by the sender, put back by the receiver (§7.2.1, §7.2.2). */
export const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/** The `rsv` value of ./frames.ts for a frame with RSV1 set (a compressed message, RFC 7692 §6). */
export const RSV1 = 4;

/** One message compressed on its own (no context taken over), as §7.2.1 sends it: sync flush, tail removed. */
export function compress(data: Buffer | string, options: { level?: number; windowBits?: number } = {}): Buffer {
  const input = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const output = deflateRawSync(input, { ...options, finishFlush: constants.Z_SYNC_FLUSH });
  if (!output.subarray(-4).equals(DEFLATE_TAIL)) throw new Error('A sync flush did not end with 00 00 ff ff.');
  return output.subarray(0, output.length - 4);
}

/** One compressed message decompressed on its own (no context taken over), as §7.2.2 receives it. */
export function decompress(payload: Buffer): Buffer {
  return inflateRawSync(Buffer.concat([payload, DEFLATE_TAIL]), { finishFlush: constants.Z_SYNC_FLUSH });
}

/** A sender's compressor that keeps its LZ77 window from message to message (context takeover, §7.1.1). */
export class StreamingDeflater {
  readonly #stream: DeflateRaw = createDeflateRaw({ windowBits: 15 });
  #output: Buffer[] = [];

  constructor() {
    this.#stream.on('data', (chunk: Buffer) => this.#output.push(chunk));
  }

  /** The compressed payload of the next message. */
  compress(data: Buffer | string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#stream.once('error', reject);
      this.#stream.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
      this.#stream.flush(constants.Z_SYNC_FLUSH, () => {
        this.#stream.off('error', reject);
        const output = Buffer.concat(this.#output);
        this.#output = [];
        resolve(output.subarray(0, output.length - 4));
      });
    });
  }

  close(): void {
    this.#stream.close();
  }
}

/** A receiver's decompressor that keeps its LZ77 window from message to message (context takeover, §7.1.1). */
export class StreamingInflater {
  readonly #stream: InflateRaw = createInflateRaw({ windowBits: 15 });
  #output: Buffer[] = [];

  constructor() {
    this.#stream.on('data', (chunk: Buffer) => this.#output.push(chunk));
  }

  /** The next message, from its compressed payload. */
  decompress(payload: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#stream.once('error', reject);
      this.#stream.write(Buffer.concat([payload, DEFLATE_TAIL]));
      this.#stream.flush(() => {
        this.#stream.off('error', reject);
        const output = Buffer.concat(this.#output);
        this.#output = [];
        resolve(output);
      });
    });
  }

  close(): void {
    this.#stream.close();
  }
}
