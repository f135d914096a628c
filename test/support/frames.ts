// Test-side frame builder: what a *client* puts on the wire (RFC 6455 §5.2).
// Independent of the library on purpose, so a bug in the library's writer cannot hide a bug in its parser.
import { Buffer } from 'node:buffer';

export interface ClientFrame {
  /** Default true. */
  fin?: boolean;
  /** RSV1..RSV3 as a 3-bit number (RSV1 = 4, RSV2 = 2, RSV3 = 1). Default 0. */
  rsv?: number;
  /** 4-bit opcode. */
  opcode: number;
  /** Default empty. A string is encoded as UTF-8. */
  payload?: Buffer | Uint8Array | string;
  /** Default true (clients must mask, §5.3). `false` sends the payload unmasked. */
  masked?: boolean;
  /** The 4 mask bytes. Default a fixed non-zero key so that unmasking bugs show. */
  maskKey?: Uint8Array;
  /**
   * Force a length encoding: 7 (in the second byte), 16 (126 + 2 bytes) or 64 (127 + 8 bytes).
   * Default: the minimal one, as §5.2 requires of senders.
   */
  lengthBits?: 7 | 16 | 64;
  /** Override the 64-bit length field's high 32 bits (to test the reserved top bit). */
  length64High?: number;
  /** Override the declared payload length (the bytes actually sent are still `payload`). */
  declaredLength?: number;
}

export const Op = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

const DEFAULT_MASK = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);

/** Builds one client-to-server frame as raw bytes. */
export function buildFrame(frame: ClientFrame): Buffer {
  const payload =
    typeof frame.payload === 'string' ? Buffer.from(frame.payload, 'utf8') : Buffer.from(frame.payload ?? []);
  const declared = frame.declaredLength ?? payload.length;
  const masked = frame.masked ?? true;
  const bits = frame.lengthBits ?? (declared < 126 ? 7 : declared < 65536 ? 16 : 64);
  const extra = bits === 7 ? 0 : bits === 16 ? 2 : 8;
  const header = Buffer.alloc(2 + extra + (masked ? 4 : 0));
  header[0] = ((frame.fin ?? true) ? 0x80 : 0) | (((frame.rsv ?? 0) & 7) << 4) | (frame.opcode & 0xf);
  const maskBit = masked ? 0x80 : 0;
  if (bits === 7) {
    header[1] = maskBit | declared;
  } else if (bits === 16) {
    header[1] = maskBit | 126;
    header.writeUInt16BE(declared, 2);
  } else {
    header[1] = maskBit | 127;
    header.writeUInt32BE(frame.length64High ?? Math.floor(declared / 2 ** 32), 2);
    header.writeUInt32BE(declared >>> 0, 6);
  }
  if (!masked) return Buffer.concat([header, payload]);
  const key = frame.maskKey ?? DEFAULT_MASK;
  header.set(key.subarray(0, 4), 2 + extra);
  const body = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ key[i & 3]!;
  return Buffer.concat([header, body]);
}

/** A close frame payload: 2-byte code + UTF-8 reason (or raw bytes). */
export function closePayload(code: number, reason: string | Buffer = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason, 'utf8') : reason;
  const out = Buffer.alloc(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

/** A server-to-client frame as decoded by {@link parseServerFrames}. */
export interface ServerFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/**
 * Decodes complete server frames from the front of `data`.
 * Returns the frames and the number of bytes they used; a trailing partial frame is left unconsumed.
 */
export function parseServerFrames(data: Buffer): { frames: ServerFrame[]; used: number } {
  const frames: ServerFrame[] = [];
  let at = 0;
  for (;;) {
    if (data.length - at < 2) break;
    const b0 = data[at]!;
    const b1 = data[at + 1]!;
    let length = b1 & 0x7f;
    let p = at + 2;
    if (length === 126) {
      if (data.length - p < 2) break;
      length = data.readUInt16BE(p);
      p += 2;
    } else if (length === 127) {
      if (data.length - p < 8) break;
      length = data.readUInt32BE(p) * 2 ** 32 + data.readUInt32BE(p + 4);
      p += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    let key: Buffer | undefined;
    if (masked) {
      if (data.length - p < 4) break;
      key = data.subarray(p, p + 4);
      p += 4;
    }
    if (data.length - p < length) break;
    const payload = Buffer.from(data.subarray(p, p + length));
    if (key) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ key[i & 3]!;
    frames.push({ fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0xf, masked, payload });
    at = p + length;
  }
  return { frames, used: at };
}
