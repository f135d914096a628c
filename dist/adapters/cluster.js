/**
 * Broadcasts across the workers of `node:cluster` on one machine, with no dependency: a {@link ClusterAdapter} in
 * each worker's server, {@link relayClusterBroadcasts} in the primary. Imports only `node:` built-ins, the core
 * (`websocket-server.ts`, which does not import this file) and `./wire.ts`.
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import cluster, {} from 'node:cluster';
import { LevelLogger } from '../websocket-server.js';
import { checkMaxPendingBytes, decodeBroadcast, describeType, SendBacklog, TickBatcher } from './wire.js';
/** Marks our messages among the application's own on the cluster's IPC channel. */
const CLUSTER_MESSAGE_TAG = 'websocket-server:broadcast';
function isClusterMessage(message) {
    return typeof message === 'object' && message !== null && typeof message[CLUSTER_MESSAGE_TAG] === 'string';
}
/**
 * Shares broadcasts among the workers of `node:cluster` on one machine: give one to the server of each worker
 * (`adapter: new ClusterAdapter()`) and call {@link relayClusterBroadcasts} once in the primary. Broadcasts
 * travel worker → primary → every other worker over the IPC channels `node:cluster` already has, in order; a
 * broadcast to a topic (`server.publish`) only to the workers whose server has a subscriber to it.
 *
 * @example
 * ```ts
 * import cluster from 'node:cluster';
 * import { availableParallelism } from 'node:os';
 * import { WebsocketServer } from 'websocket-server';
 * import { ClusterAdapter, relayClusterBroadcasts } from 'websocket-server/adapters/cluster';
 *
 * if (cluster.isPrimary) {
 *   relayClusterBroadcasts(); // before forking
 *   for (let i = 0; i < availableParallelism(); i++) cluster.fork();
 * } else {
 *   const server = new WebsocketServer({ port: 13254, adapter: new ClusterAdapter() });
 *   server.setFnMessageReceived((client, server, message) => server.sendMessageToAll(message, client));
 *   await server.runForever(); // the workers share the port
 *   process.once('SIGTERM', async () => {
 *     await server.shutdownGracefully();
 *     cluster.worker!.disconnect(); // the IPC channel would keep the worker alive
 *   });
 * }
 * ```
 */
export class ClusterAdapter {
    #channel;
    #listener;
    #log;
    #warnedDisconnected = false;
    /** The broadcasts published in this tick, sent as one IPC message at its end. */
    #batcher = new TickBatcher((batch, topics) => this.#send(batch, topics));
    #maxPendingBytes;
    #backlog;
    #received = 0;
    /** The topics this worker's server has subscribers to, as told to the primary. */
    #topics = new Set();
    /**
     * @param options.channel Servers in a worker share broadcasts only with servers on the same channel in the
     * other workers: one per kind of server when a worker runs several. Default `'default'`.
     * @param options.maxPendingBytes Most bytes of broadcasts handed to the IPC channel and not yet written (a
     * primary that does not read): past it, broadcasts are not shared, only sent to this worker's clients.
     * Default 64 MiB.
     */
    constructor(options = {}) {
        const channel = options.channel ?? 'default';
        if (typeof channel !== 'string' || channel === '') {
            throw new TypeError(`Cannot create the cluster adapter: 'channel' must be a non-empty string, not ${describeType(channel)}.`);
        }
        this.#channel = channel;
        this.#maxPendingBytes = checkMaxPendingBytes('the cluster adapter', options.maxPendingBytes);
    }
    /** Broadcasts not shared because the IPC channel to the primary was backed up (or gone), since start. */
    get dropped() {
        return this.#backlog?.dropped ?? 0;
    }
    /** Broadcasts received from the other workers, since start. */
    get received() {
        return this.#received;
    }
    start({ deliver, log }) {
        if (!cluster.isWorker || typeof process.send !== 'function') {
            throw new Error('Cannot start the cluster adapter: this process is not a worker of node:cluster.');
        }
        this.#log = log;
        this.#backlog = new SendBacklog(this.#maxPendingBytes, 'the IPC channel to the primary', log);
        const channel = this.#channel;
        const listener = (message) => {
            if (!isClusterMessage(message) || message[CLUSTER_MESSAGE_TAG] !== channel || !('data' in message))
                return;
            if (!Array.isArray(message.data)) {
                log('error', 'the cluster adapter dropped an IPC message that carries no broadcasts');
                return;
            }
            for (const data of message.data) {
                let broadcast;
                try {
                    broadcast = decodeBroadcast(clusterPayloadBytes(data));
                }
                catch (error) {
                    log('error', `the cluster adapter dropped a broadcast: ${error instanceof Error ? error.message : String(error)}`);
                    continue;
                }
                this.#received++;
                deliver(broadcast);
            }
        };
        this.#listener = listener;
        process.on('message', listener);
    }
    publish(broadcast) {
        if (!process.connected) {
            // The primary is gone (it exited or disconnected this worker): this server's own clients still got it.
            if (!this.#warnedDisconnected)
                this.#log?.('warning', 'the cluster adapter lost the primary: broadcasts now reach only this worker');
            this.#warnedDisconnected = true;
            if (this.#backlog !== undefined)
                this.#backlog.dropped++;
            return;
        }
        this.#batcher.add(broadcast);
    }
    /** Asks the primary for the broadcasts to `topic`: this worker's server has a subscriber to it now. */
    subscribe(topic) {
        if (this.#listener === undefined || this.#topics.has(topic))
            return;
        this.#topics.add(topic);
        this.#tellInterest({ [CLUSTER_MESSAGE_TAG]: this.#channel, subscribe: topic });
    }
    /** Tells the primary that this worker's server has no subscriber to `topic` any more. */
    unsubscribe(topic) {
        if (!this.#topics.delete(topic))
            return;
        this.#tellInterest({ [CLUSTER_MESSAGE_TAG]: this.#channel, unsubscribe: topic });
    }
    #tellInterest(envelope) {
        // Without the primary there is nobody to tell; a worker that loses it gets nothing from the others anyway.
        if (process.connected)
            process.send(envelope);
    }
    #send(batch, topics) {
        const backlog = this.#backlog;
        if (!process.connected || backlog === undefined)
            return;
        let bytes = 0;
        for (const encoded of batch)
            bytes += encoded.length;
        if (!backlog.admit(bytes, batch.length))
            return;
        const envelope = topics.every((topic) => topic === undefined)
            ? { [CLUSTER_MESSAGE_TAG]: this.#channel, data: batch }
            : { [CLUSTER_MESSAGE_TAG]: this.#channel, data: batch, topics: topics.map((topic) => topic ?? null) };
        process.send(envelope, undefined, {}, () => backlog.settle(bytes));
    }
    /**
     * Stops receiving. The worker's IPC channel stays open (it belongs to `node:cluster`): to let the worker end
     * after `shutdownGracefully()`, call `cluster.worker.disconnect()` or `process.exit()`.
     */
    close() {
        this.#batcher.flush();
        for (const topic of [...this.#topics])
            this.unsubscribe(topic);
        if (this.#listener !== undefined)
            process.off('message', this.#listener);
        this.#listener = undefined;
    }
}
/** The encoded broadcast in an envelope, as whichever serialization the cluster uses delivered it. */
function clusterPayloadBytes(data) {
    if (data instanceof Uint8Array)
        return data;
    if (typeof data === 'object' && data !== null && data.type === 'Buffer' && Array.isArray(data.data))
        return Buffer.from(data.data);
    throw new RangeError('Cannot decode a broadcast: the IPC message carries no bytes');
}
/**
 * In the primary of `node:cluster`: passes each broadcast a worker's {@link ClusterAdapter} publishes on to every
 * other worker. Call it once, before forking: it also sets `serialization: 'advanced'`, so that binary messages
 * cross as bytes (the default JSON serialization would turn each byte into a number in text).
 * @param options.maxPendingBytes Most bytes of broadcasts handed to one worker's IPC channel and not yet written
 * (a worker that does not read): past it, that worker misses broadcasts until it catches up. Default 64 MiB.
 * @param options.logger Where the primary's warnings go (a backed-up worker). Default: standard error.
 * @returns a function that stops relaying.
 */
export function relayClusterBroadcasts(options = {}) {
    if (!cluster.isPrimary)
        throw new Error('Cannot relay cluster broadcasts: this process is not the primary of node:cluster.');
    const maxPendingBytes = checkMaxPendingBytes('the cluster relay', options.maxPendingBytes);
    const log = new LevelLogger(options.logger, 'warning');
    cluster.setupPrimary({ serialization: 'advanced' });
    const backlogs = new WeakMap();
    const interest = new TopicInterest();
    const relay = (from, message) => {
        if (!isClusterMessage(message))
            return;
        if (!('data' in message)) {
            interest.update(from, message);
            return;
        }
        if (!Array.isArray(message.data))
            return;
        for (const worker of Object.values(cluster.workers ?? {})) {
            if (worker === undefined || worker === from || !worker.isConnected())
                continue;
            // Forwarded as received, or with only the broadcasts of topics it wants: the primary never decodes one.
            const forwarded = interest.filter(worker, message);
            if (forwarded === undefined)
                continue;
            let backlog = backlogs.get(worker);
            if (backlog === undefined) {
                backlog = new SendBacklog(maxPendingBytes, `the IPC channel to worker ${worker.id}`, (level, line) => log.log(level, line));
                backlogs.set(worker, backlog);
            }
            const bytes = envelopeBytes(forwarded);
            if (!backlog.admit(bytes, forwarded.data.length))
                continue;
            const admitted = backlog;
            worker.send(forwarded, undefined, () => admitted.settle(bytes));
        }
    };
    cluster.on('message', relay);
    return () => {
        cluster.off('message', relay);
    };
}
/** The bytes of the broadcasts an envelope carries. */
function envelopeBytes(envelope) {
    let bytes = 0;
    for (const data of envelope.data)
        bytes += data instanceof Uint8Array ? data.length : Array.isArray(data.data) ? data.data.length : 0;
    return bytes;
}
/** In the primary: the topics each worker's servers have subscribers to, by adapter channel. */
class TopicInterest {
    #byWorker = new WeakMap();
    /** A worker's subscribe or unsubscribe message. */
    update(worker, message) {
        const channel = message[CLUSTER_MESSAGE_TAG];
        let channels = this.#byWorker.get(worker);
        if (typeof message.subscribe === 'string') {
            if (channels === undefined)
                this.#byWorker.set(worker, (channels = new Map()));
            let topics = channels.get(channel);
            if (topics === undefined)
                channels.set(channel, (topics = new Set()));
            topics.add(message.subscribe);
        }
        else if (typeof message.unsubscribe === 'string') {
            const topics = channels?.get(channel);
            topics?.delete(message.unsubscribe);
            if (topics?.size === 0)
                channels.delete(channel);
        }
    }
    /**
     * What of `envelope` goes to `worker`: all of it when it carries no topic the worker lacks, the broadcasts
     * without a topic or of the worker's topics otherwise (in order), `undefined` when none.
     */
    filter(worker, envelope) {
        const topics = envelope.topics;
        if (!Array.isArray(topics))
            return envelope;
        const wanted = this.#byWorker.get(worker)?.get(envelope[CLUSTER_MESSAGE_TAG]);
        const keep = (topic) => topic === null || wanted?.has(topic) === true;
        if (topics.every(keep))
            return envelope;
        const data = [];
        const kept = [];
        for (let i = 0; i < envelope.data.length; i++) {
            const topic = topics[i] ?? null;
            if (!keep(topic))
                continue;
            data.push(envelope.data[i]);
            kept.push(topic);
        }
        return data.length === 0 ? undefined : { [CLUSTER_MESSAGE_TAG]: envelope[CLUSTER_MESSAGE_TAG], data, topics: kept };
    }
}
