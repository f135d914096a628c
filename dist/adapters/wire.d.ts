/**
 * The broadcast wire format of `websocket-server`'s adapters, and what they share to carry it: a broadcast as
 * bytes and back, several as one message, the per-tick batching of what a server publishes, and the bounded
 * backlog of bytes handed to a transport and not yet written.
 *
 * For adapters whose transport carries bytes (`adapters/cluster.ts` over IPC, `adapters/redis.ts` over Redis
 * pub/sub, or your own over a socket). Imports only `node:` built-ins and the core, `websocket-server.ts`, which
 * does not import this file: a server without an adapter loads none of it.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import type { Broadcast } from '../websocket-server.ts';
/**
 * Encodes a broadcast into one buffer, for adapters whose transport carries bytes (Redis, a socket).
 * Layout: version (1 byte), kind (1: text, 2: binary), origin length (2 bytes) and origin (UTF-8); with version
 * 2 only, topic length (2 bytes, at least 1) and topic (UTF-8); then the count of excluded ids (4 bytes) and each
 * id (8-byte float), then the message (text as UTF-8) to the end: the transport must keep each encoded
 * broadcast whole, as Redis pub/sub and IPC do. Integers big-endian.
 * @throws {RangeError} when the origin or the topic is longer than 65,535 bytes of UTF-8, or the topic is empty.
 *
 * @example
 * ```ts
 * const bytes = encodeBroadcast({ origin: 'server-a', message: 'hello', exclude: [3], topic: 'room-1' });
 * decodeBroadcast(bytes); // { origin: 'server-a', message: 'hello', exclude: [3], topic: 'room-1' }
 * ```
 */
export declare function encodeBroadcast(broadcast: Broadcast): Buffer;
/**
 * The origin of an encoded broadcast, read without decoding the rest: lets an adapter skip its own server's
 * broadcasts cheaply.
 * @throws {RangeError} when the bytes are not an encoded broadcast.
 */
export declare function broadcastOrigin(bytes: Uint8Array): string;
/**
 * Decodes what {@link encodeBroadcast} made. A binary message is a view of `bytes`.
 * @throws {RangeError} when the bytes are not an encoded broadcast (wrong version, truncated, text not UTF-8).
 */
export declare function decodeBroadcast(bytes: Uint8Array): Broadcast;
/** Default `maxPendingBytes` of the adapters: what a transport may hold unsent before broadcasts are dropped. */
export declare const DEFAULT_MAX_PENDING_BYTES: number;
