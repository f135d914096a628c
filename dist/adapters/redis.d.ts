/**
 * Broadcasts across hosts through Redis pub/sub: a {@link BroadcastAdapter} for `websocket-server`.
 *
 * Every server given a `RedisAdapter` on the same Redis and channel publishes its `sendMessageToAll` there and
 * sends what the others publish to its own clients, so that servers on several hosts (or ports) behave for
 * broadcast like one. Built on the official `redis` client from npm, an optional peer dependency of this
 * package: install it beside the server (`npm install redis`). The core file, `websocket-server.ts`, does not
 * import this one and stays free of dependencies.
 *
 * Topics (`server.publish`) travel on a channel of their own, `<channel>:topic:<topic>`, which a server subscribes
 * to only while it has a subscriber to the topic: Redis sends a server nothing for the rooms none of its clients
 * is in, however many rooms the other servers have. (Plain channels rather than Redis 7's sharded pub/sub: they
 * work with every Redis and every deployment; in a Redis Cluster, sharded pub/sub would spread the topics over
 * the shards, which this adapter does not do yet.)
 *
 * What it guarantees, and what not (Redis pub/sub is at most once):
 * - broadcasts of one server reach every other server in the order they were published (one connection
 *   publishes, one receives, and Redis keeps the order of both), topics included, for a server subscribed to
 *   them; a server receives a topic's broadcasts from the moment Redis has its subscription, not before;
 * - while Redis is unreachable, each server's broadcasts still reach its own clients; those published meanwhile
 *   are not delivered to the other servers, ever (a server that missed a minute of chat gets the next line, not
 *   a flood of old ones). The adapter logs a warning when Redis becomes unreachable, with the count of dropped
 *   broadcasts when it is back, and the `redis` client reconnects by itself (exponential backoff).
 *
 * @example
 * ```ts
 * import { WebsocketServer } from 'websocket-server';
 * import { RedisAdapter } from 'websocket-server/adapters/redis';
 *
 * const server = new WebsocketServer({ port: 13254, adapter: new RedisAdapter({ url: 'redis://127.0.0.1:6379' }) });
 * server.setFnMessageReceived((client, server, message) => server.sendMessageToAll(message, client));
 * await server.runForever();
 * ```
 *
 * @module
 */
import { type RedisClientOptions } from 'redis';
import type { AdapterContext, Broadcast, BroadcastAdapter } from '../websocket-server.ts';
/** Options of {@link RedisAdapter}. Every one is optional. */
export interface RedisAdapterOptions {
    /** Where Redis is: `redis[s]://[[user][:password]@]host[:port][/db]`. Default `'redis://127.0.0.1:6379'`. */
    url?: string;
    /** The pub/sub channel: servers on the same channel share broadcasts. Default `'websocket-server:broadcast'`. */
    channel?: string;
    /** Longest wait between two attempts to reach Redis, in milliseconds. Default 2,000. */
    maxReconnectDelay?: number;
    /**
     * Most bytes of broadcasts sent to Redis and not yet acknowledged (a Redis that stalls): past it, broadcasts
     * are not shared, only sent to this server's clients, until Redis catches up. Default 64 MiB.
     */
    maxPendingBytes?: number;
    /**
     * Longest wait of `runForever()` for Redis at start, in milliseconds. If Redis is not reached by then, the
     * server starts anyway (its broadcasts reach its own clients) and the adapter keeps trying. Default 5,000.
     */
    startTimeout?: number;
    /**
     * Further options of the `redis` client's `createClient` (credentials, TLS in `socket`, …), for both of its
     * connections. `url`, `disableOfflineQueue` and `socket.reconnectStrategy` are the adapter's own.
     */
    clientOptions?: RedisClientOptions;
}
/**
 * Shares broadcasts among servers through Redis pub/sub. One adapter per server: it holds two connections to
 * Redis (one publishes; the other, in subscriber mode, can do nothing else).
 */
export declare class RedisAdapter implements BroadcastAdapter {
    #private;
    /**
     * @throws {TypeError} for an option of the wrong type, {@link RangeError} for one out of range.
     */
    constructor(options?: RedisAdapterOptions);
    /** Counts since start: broadcasts published to Redis, received from other servers, dropped while unreachable. */
    get stats(): {
        readonly published: number;
        readonly received: number;
        readonly dropped: number;
        readonly reachable: boolean;
    };
    /**
     * Connects both connections and subscribes. Resolves once subscribed, or after `startTimeout` if Redis cannot
     * be reached (the connections keep trying in the background).
     */
    start(context: AdapterContext): Promise<void>;
    publish(broadcast: Broadcast): void;
    /** This server has a subscriber to `topic` now: its channel is subscribed to. */
    subscribe(topic: string): void;
    /** This server has no subscriber to `topic` any more: its channel is unsubscribed from. */
    unsubscribe(topic: string): void;
    /**
     * Unsubscribes and closes both connections (pending publishes are sent first). While Redis is unreachable, the
     * client's wait before its next attempt is not cancelled: the process may take up to `maxReconnectDelay` more
     * to end by itself.
     */
    close(): Promise<void>;
}
