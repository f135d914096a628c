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
import { Buffer, isUtf8 } from 'node:buffer';
/**
 * First byte of an encoded broadcast: the format's version, so that a change of format is detected. Version 1
 * carries no topic; version 2 (issue 14) adds one. A broadcast without a topic is still written as version 1, so
 * that servers of both versions can share `sendMessageToAll` during a rolling upgrade.
 */
const FORMAT_WITHOUT_TOPIC = 1;
const FORMAT_WITH_TOPIC = 2;
const BROADCAST_KIND_TEXT = 1;
const BROADCAST_KIND_BINARY = 2;
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
export function encodeBroadcast(broadcast) {
    const { origin, message, exclude, topic } = broadcast;
    const originBytes = Buffer.from(origin, 'utf8');
    if (originBytes.length > 0xffff)
        throw new RangeError('Cannot encode a broadcast: its origin is longer than 65,535 bytes.');
    const topicBytes = topic === undefined ? undefined : Buffer.from(topic, 'utf8');
    if (topicBytes !== undefined && (topicBytes.length === 0 || topicBytes.length > 0xffff)) {
        throw new RangeError(`Cannot encode a broadcast: its topic is ${topicBytes.length === 0 ? 'empty' : 'longer than 65,535 bytes'}.`);
    }
    const text = typeof message === 'string';
    const payloadLength = text ? Buffer.byteLength(message, 'utf8') : message.length;
    const topicLength = topicBytes === undefined ? 0 : 2 + topicBytes.length;
    const headerLength = 8 + originBytes.length + topicLength + 8 * exclude.length;
    const bytes = Buffer.allocUnsafe(headerLength + payloadLength);
    bytes[0] = topicBytes === undefined ? FORMAT_WITHOUT_TOPIC : FORMAT_WITH_TOPIC;
    bytes[1] = text ? BROADCAST_KIND_TEXT : BROADCAST_KIND_BINARY;
    bytes.writeUInt16BE(originBytes.length, 2);
    originBytes.copy(bytes, 4);
    let offset = 4 + originBytes.length;
    if (topicBytes !== undefined) {
        offset = bytes.writeUInt16BE(topicBytes.length, offset);
        offset += topicBytes.copy(bytes, offset);
    }
    bytes.writeUInt32BE(exclude.length, offset);
    offset += 4;
    for (const id of exclude)
        offset = bytes.writeDoubleBE(id, offset);
    if (text)
        bytes.write(message, offset, 'utf8');
    else
        bytes.set(message, offset);
    return bytes;
}
/**
 * The origin of an encoded broadcast, read without decoding the rest: lets an adapter skip its own server's
 * broadcasts cheaply.
 * @throws {RangeError} when the bytes are not an encoded broadcast.
 */
export function broadcastOrigin(bytes) {
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const originEnd = checkBroadcastHead(view, (why) => {
        throw new RangeError(`Cannot read the origin of a broadcast: ${why}.`);
    });
    return view.toString('utf8', 4, originEnd);
}
/** Checks an encoded broadcast's version and that it holds its origin and id count; returns where the origin ends. */
function checkBroadcastHead(view, fail) {
    if (view.length < 8)
        fail(`${view.length} bytes are too few`);
    if (view[0] !== FORMAT_WITHOUT_TOPIC && view[0] !== FORMAT_WITH_TOPIC) {
        fail(`format version ${view[0]} is neither ${FORMAT_WITHOUT_TOPIC} nor ${FORMAT_WITH_TOPIC}`);
    }
    const originEnd = 4 + view.readUInt16BE(2);
    if (view.length < originEnd + 4)
        fail('it ends inside its origin');
    return originEnd;
}
/** Reads the topic of a version 2 broadcast at `offset`; returns it and where it ends. */
function readTopic(view, offset, fail) {
    if (view.length < offset + 2)
        fail('it ends inside its topic');
    const length = view.readUInt16BE(offset);
    const end = offset + 2 + length;
    if (length === 0)
        fail('its topic is empty');
    if (view.length < end + 4)
        fail('it ends inside its topic');
    if (!isUtf8(view.subarray(offset + 2, end)))
        fail('its topic is not valid UTF-8');
    return { topic: view.toString('utf8', offset + 2, end), end };
}
/**
 * Decodes what {@link encodeBroadcast} made. A binary message is a view of `bytes`.
 * @throws {RangeError} when the bytes are not an encoded broadcast (wrong version, truncated, text not UTF-8).
 */
export function decodeBroadcast(bytes) {
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const fail = (why) => {
        throw new RangeError(`Cannot decode a broadcast: ${why}.`);
    };
    let offset = checkBroadcastHead(view, fail);
    const kind = view[1];
    if (kind !== BROADCAST_KIND_TEXT && kind !== BROADCAST_KIND_BINARY)
        fail(`kind ${kind} is neither text (1) nor binary (2)`);
    if (!isUtf8(view.subarray(4, offset)))
        fail('its origin is not valid UTF-8');
    const origin = view.toString('utf8', 4, offset);
    let topic;
    if (view[0] === FORMAT_WITH_TOPIC)
        ({ topic, end: offset } = readTopic(view, offset, fail));
    const count = view.readUInt32BE(offset);
    offset += 4;
    if (view.length < offset + 8 * count)
        fail('it ends inside its excluded ids');
    const exclude = new Array(count);
    for (let i = 0; i < count; i++, offset += 8) {
        const id = view.readDoubleBE(offset);
        if (!Number.isSafeInteger(id))
            fail(`excluded id ${id} is not an integer`);
        exclude[i] = id;
    }
    const payload = view.subarray(offset);
    let message = payload;
    if (kind === BROADCAST_KIND_TEXT) {
        if (!isUtf8(payload))
            fail('its text is not valid UTF-8');
        message = payload.toString('utf8');
    }
    return topic === undefined ? { origin, message, exclude } : { origin, message, exclude, topic };
}
/** Default `maxPendingBytes` of the adapters: what a transport may hold unsent before broadcasts are dropped. */
export const DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024;
/**
 * Bytes handed to a transport (an IPC channel, a Redis connection) and not yet written: past its limit, new
 * broadcasts are dropped rather than queued, so that a stuck peer costs bounded memory, as `slowClientPolicy`
 * does for a client. Logs once when it starts dropping and once when it has drained, with the count.
 * @internal
 */
export class SendBacklog {
    #limit;
    #what;
    #log;
    #bytes = 0;
    #dropping = false;
    #droppedWhileFull = 0;
    /** Broadcasts dropped since the backlog was made. */
    dropped = 0;
    constructor(limit, what, log) {
        this.#limit = limit;
        this.#what = what;
        this.#log = log;
    }
    /** Whether `bytes` more may be handed over; if not, `count` broadcasts are counted as dropped. */
    admit(bytes, count) {
        // One batch over the limit on an empty backlog still goes: a limit below one message must not drop them all.
        if (this.#bytes > 0 && this.#bytes + bytes > this.#limit) {
            this.dropped += count;
            this.#droppedWhileFull += count;
            if (!this.#dropping) {
                this.#dropping = true;
                this.#log('warning', `${this.#what} holds ${this.#bytes} bytes not yet sent: dropping broadcasts for it until it drains`);
            }
            return false;
        }
        this.#bytes += bytes;
        return true;
    }
    /** `bytes` that were admitted have been written (or failed). */
    settle(bytes) {
        this.#bytes -= bytes;
        if (this.#dropping && this.#bytes <= this.#limit / 2) {
            this.#dropping = false;
            this.#log('warning', `${this.#what} has drained; ${this.#droppedWhileFull} broadcast(s) were dropped meanwhile`);
            this.#droppedWhileFull = 0;
        }
    }
}
/** The `maxPendingBytes` option of an adapter, checked, or its default. @internal */
export function checkMaxPendingBytes(what, value) {
    if (value === undefined)
        return DEFAULT_MAX_PENDING_BYTES;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`Cannot create ${what}: 'maxPendingBytes' must be a positive integer, not ${describeType(value)}.`);
    }
    return value;
}
/**
 * First byte of a batch: an encoded broadcast begins with its format version, never 0. A batch is this byte,
 * then each encoded broadcast as its length (4 bytes, big-endian) and its bytes.
 */
const BATCH_MARKER = 0;
/**
 * The encoded broadcasts of one tick as one message, for a transport that carries one buffer per message: one
 * alone as it is, several in a batch. {@link splitBroadcasts} takes them apart.
 * @internal
 */
export function joinBroadcasts(broadcasts) {
    if (broadcasts.length === 1)
        return broadcasts[0];
    let length = 1;
    for (const encoded of broadcasts)
        length += 4 + encoded.length;
    const batch = Buffer.allocUnsafe(length);
    batch[0] = BATCH_MARKER;
    let offset = 1;
    for (const encoded of broadcasts) {
        offset = batch.writeUInt32BE(encoded.length, offset);
        offset += encoded.copy(batch, offset);
    }
    return batch;
}
/**
 * The encoded broadcasts of a message that {@link joinBroadcasts} made, as views of it.
 * @throws {RangeError} when a batch is truncated.
 * @internal
 */
export function splitBroadcasts(message) {
    if (message[0] !== BATCH_MARKER)
        return [message];
    const broadcasts = [];
    let offset = 1;
    while (offset < message.length) {
        if (offset + 4 > message.length)
            throw new RangeError('Cannot decode a batch of broadcasts: it ends inside a length.');
        const length = message.readUInt32BE(offset);
        offset += 4;
        if (offset + length > message.length)
            throw new RangeError('Cannot decode a batch of broadcasts: it ends inside a broadcast.');
        broadcasts.push(message.subarray(offset, offset + length));
        offset += length;
    }
    return broadcasts;
}
/**
 * Gathers the broadcasts an adapter publishes in one tick and hands them to its transport together at the end of
 * the tick: a burst of broadcasts crosses as one message (one IPC message, one PUBLISH), and the other servers
 * send it on within one tick of theirs, so that their writes to each client are corked together too.
 * @internal
 */
export class TickBatcher {
    #send;
    #pending = [];
    #topics = [];
    /**
     * @param send Given the encoded broadcasts of a tick, in the order they were published, never an empty list;
     * and the topic of each (`undefined` for none), for a transport that routes by topic.
     */
    constructor(send) {
        this.#send = send;
    }
    /**
     * Encodes `broadcast` now (the publisher may reuse its buffer once this returns) and queues it for the tick's end.
     * @throws {RangeError} from {@link encodeBroadcast}: nothing is queued then.
     */
    add(broadcast) {
        const encoded = encodeBroadcast(broadcast);
        this.#topics.push(broadcast.topic);
        if (this.#pending.push(encoded) === 1)
            process.nextTick(this.flush);
    }
    /** Hands over what this tick queued now rather than at its end (an adapter that closes). */
    flush = () => {
        const batch = this.#pending;
        if (batch.length === 0)
            return;
        const topics = this.#topics;
        this.#pending = [];
        this.#topics = [];
        this.#send(batch, topics);
    };
}
/** How a value of the wrong type reads in an error message. @internal */
export function describeType(value) {
    if (value === null)
        return 'null';
    if (Array.isArray(value))
        return 'an array';
    return typeof value === 'object' ? `an object (${value.constructor?.name ?? 'no prototype'})` : `${typeof value} ${String(value)}`;
}
