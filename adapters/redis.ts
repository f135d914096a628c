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

import { createClient, type RedisClientOptions } from 'redis';
import type { AdapterContext, Broadcast, BroadcastAdapter } from '../websocket-server.ts';
import { broadcastOrigin, checkMaxPendingBytes, decodeBroadcast, joinBroadcasts, SendBacklog, splitBroadcasts, TickBatcher } from './wire.ts';

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

type RedisConnection = ReturnType<typeof createClient>;

const DEFAULTS = {
  url: 'redis://127.0.0.1:6379',
  channel: 'websocket-server:broadcast',
  maxReconnectDelay: 2_000,
  startTimeout: 5_000,
} as const;

/** First wait before reconnecting, doubled after each failed attempt up to `maxReconnectDelay`. */
const FIRST_RECONNECT_DELAY = 50;

/**
 * Shares broadcasts among servers through Redis pub/sub. One adapter per server: it holds two connections to
 * Redis (one publishes; the other, in subscriber mode, can do nothing else).
 */
export class RedisAdapter implements BroadcastAdapter {
  readonly #url: string;
  readonly #channel: string;
  readonly #maxReconnectDelay: number;
  readonly #startTimeout: number;
  readonly #clientOptions: RedisClientOptions;
  readonly #maxPendingBytes: number;
  #backlog: SendBacklog | undefined;
  #publisher: RedisConnection | undefined;
  #subscriber: RedisConnection | undefined;
  #context: AdapterContext | undefined;
  /** Whether Redis was unreachable, since the last warning: one warning per outage, not one per attempt. */
  #unreachable = false;
  /** Broadcasts not published because Redis was unreachable, since the warning. */
  #droppedWhileUnreachable = 0;
  #published = 0;
  #received = 0;
  #dropped = 0;
  /** The broadcasts published in this tick, sent at its end: one PUBLISH per run of broadcasts to one channel. */
  readonly #batcher = new TickBatcher((batch, topics) => this.#publishTick(batch, topics));
  /** The topics this server has subscribers to: their channels are subscribed to while Redis is reachable. */
  readonly #topics = new Set<string>();
  /** The one listener of every channel subscribed to. */
  readonly #onMessage = (message: Buffer): void => this.#receive(message);

  /**
   * @throws {TypeError} for an option of the wrong type, {@link RangeError} for one out of range.
   */
  constructor(options: RedisAdapterOptions = {}) {
    const resolved: Record<keyof typeof DEFAULTS, unknown> = { ...DEFAULTS };
    for (const name of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      if (options[name] !== undefined) resolved[name] = options[name];
    }
    if (typeof resolved.url !== 'string' || !/^rediss?:\/\//.test(resolved.url)) {
      throw new TypeError(`Cannot create the Redis adapter: 'url' must be a redis:// or rediss:// URL, not ${String(resolved.url)}.`);
    }
    if (typeof resolved.channel !== 'string' || resolved.channel === '') {
      throw new TypeError(`Cannot create the Redis adapter: 'channel' must be a non-empty string.`);
    }
    for (const name of ['maxReconnectDelay', 'startTimeout'] as const) {
      const value: unknown = resolved[name];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
        throw new RangeError(`Cannot create the Redis adapter: '${name}' must be an integer from 1 to 2147483647, not ${String(value)}.`);
      }
    }
    this.#url = resolved.url;
    this.#channel = resolved.channel;
    this.#maxReconnectDelay = resolved.maxReconnectDelay as number;
    this.#startTimeout = resolved.startTimeout as number;
    this.#clientOptions = options.clientOptions ?? {};
    this.#maxPendingBytes = checkMaxPendingBytes('the Redis adapter', options.maxPendingBytes);
  }

  /** Counts since start: broadcasts published to Redis, received from other servers, dropped while unreachable. */
  get stats(): { readonly published: number; readonly received: number; readonly dropped: number; readonly reachable: boolean } {
    return {
      published: this.#published,
      received: this.#received,
      dropped: this.#dropped + (this.#backlog?.dropped ?? 0),
      reachable: this.#isReachable(),
    };
  }

  /**
   * Connects both connections and subscribes. Resolves once subscribed, or after `startTimeout` if Redis cannot
   * be reached (the connections keep trying in the background).
   */
  async start(context: AdapterContext): Promise<void> {
    if (this.#publisher !== undefined) throw new Error('Cannot start the Redis adapter: it is already started.');
    this.#context = context;
    this.#backlog = new SendBacklog(this.#maxPendingBytes, `the connection to Redis at ${this.#safeUrl()}`, context.log);
    const options: RedisClientOptions = {
      ...this.#clientOptions,
      url: this.#url,
      // A broadcast published while Redis is away is dropped, not queued: the queue would grow without bound
      // during an outage and then flood every server with stale messages.
      disableOfflineQueue: true,
      socket: {
        ...this.#clientOptions.socket,
        reconnectStrategy: (retries: number) => Math.min(FIRST_RECONNECT_DELAY * 2 ** Math.min(retries, 16), this.#maxReconnectDelay),
      } as NonNullable<RedisClientOptions['socket']>,
    };
    const publisher = createClient(options);
    const subscriber = publisher.duplicate();
    this.#publisher = publisher;
    this.#subscriber = subscriber;
    for (const connection of [publisher, subscriber]) {
      // Without an 'error' listener, the client's connection errors would be thrown as uncaught exceptions.
      connection.on('error', (error: unknown) => this.#wentUnreachable(error));
      connection.on('ready', () => this.#maybeBack());
    }
    subscriber.on('ready', () => this.#syncTopics());
    const subscribed = (async () => {
      await Promise.all([publisher.connect(), subscriber.connect()]);
      await subscriber.subscribe(this.#channel, this.#onMessage, true);
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#startTimeout);
    });
    try {
      const outcome = await Promise.race([subscribed.then(() => 'subscribed' as const), timedOut]);
      if (outcome === 'timeout') {
        context.log('warning', `Redis at ${this.#safeUrl()} not reached within ${this.#startTimeout} ms: starting anyway, broadcasts reach this server's clients only until it is`);
        subscribed.catch((error: unknown) => {
          // After close() the client gives up its pending connection: nothing to report then.
          if (this.#subscriber === subscriber) context.log('error', `the Redis adapter could not subscribe: ${describe(error)}`);
        });
      } else {
        context.log('info', `Redis adapter subscribed to '${this.#channel}' at ${this.#safeUrl()}`);
      }
    } catch (error) {
      // Not a connection failure (those are retried): a configuration the client refuses. Fail the start.
      await this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  publish(broadcast: Broadcast): void {
    if (this.#publisher === undefined) return;
    this.#batcher.add(broadcast);
  }

  /** This server has a subscriber to `topic` now: its channel is subscribed to. */
  subscribe(topic: string): void {
    if (this.#topics.has(topic)) return;
    this.#topics.add(topic);
    this.#subscribeTopics([topic]);
  }

  /** This server has no subscriber to `topic` any more: its channel is unsubscribed from. */
  unsubscribe(topic: string): void {
    if (!this.#topics.delete(topic)) return;
    const subscriber = this.#subscriber;
    if (subscriber?.isReady !== true) return; // left at the next 'ready' (see #syncTopics)
    subscriber.unsubscribe(this.#topicChannel(topic), this.#onMessage, true).catch((error: unknown) => {
      this.#context?.log('warning', `the Redis adapter could not unsubscribe from topic '${topic}': ${describe(error)}`);
    });
  }

  /** Subscribes to the channels of `topics` now if Redis is reachable (a channel already subscribed to costs nothing). */
  #subscribeTopics(topics: readonly string[]): void {
    const subscriber = this.#subscriber;
    if (topics.length === 0 || subscriber?.isReady !== true) return;
    subscriber.subscribe(topics.map((topic) => this.#topicChannel(topic)), this.#onMessage, true).catch((error: unknown) => {
      // Asked for again at the next 'ready'.
      this.#context?.log('warning', `the Redis adapter could not subscribe to ${topics.length} topic(s): ${describe(error)}`);
    });
  }

  /**
   * At each (re)connection: the client has subscribed again by itself to the channels Redis had confirmed before;
   * those of topics left meanwhile are left now, and those of topics joined meanwhile are asked for.
   */
  #syncTopics(): void {
    const subscriber = this.#subscriber;
    if (subscriber?.isReady !== true) return;
    const prefix = this.#topicChannel('');
    const stale = [...subscriber.getPubSubListeners('CHANNELS').keys()].filter(
      (channel) => channel.startsWith(prefix) && !this.#topics.has(channel.slice(prefix.length)),
    );
    if (stale.length > 0) {
      subscriber.unsubscribe(stale, this.#onMessage, true).catch((error: unknown) => {
        this.#context?.log('warning', `the Redis adapter could not unsubscribe from ${stale.length} topic(s): ${describe(error)}`);
      });
    }
    this.#subscribeTopics([...this.#topics]);
  }

  #topicChannel(topic: string): string {
    return `${this.#channel}:topic:${topic}`;
  }

  /** Publishes the broadcasts of a tick, in order: one PUBLISH per run of broadcasts to the same channel. */
  #publishTick(batch: Buffer[], topics: (string | undefined)[]): void {
    let start = 0;
    for (let i = 1; i <= batch.length; i++) {
      if (i < batch.length && topics[i] === topics[start]) continue;
      const topic = topics[start];
      this.#publishBatch(batch.slice(start, i), topic === undefined ? this.#channel : this.#topicChannel(topic));
      start = i;
    }
  }

  /** Publishes broadcasts to one channel: one alone as it is, several in a batch. */
  #publishBatch(batch: Buffer[], channel: string): void {
    const publisher = this.#publisher;
    if (publisher === undefined) return;
    if (!publisher.isReady) {
      this.#lostToOutage(batch.length, undefined);
      return;
    }
    const payload = joinBroadcasts(batch);
    const backlog = this.#backlog!;
    if (!backlog.admit(payload.length, batch.length)) return;
    this.#published += batch.length;
    publisher.publish(channel, payload).then(
      () => backlog.settle(payload.length),
      (error: unknown) => {
        // The connection dropped with the command in flight: counted as lost, the outage is logged once.
        backlog.settle(payload.length);
        this.#published -= batch.length;
        this.#lostToOutage(batch.length, error);
      },
    );
  }

  /** `count` broadcasts were not shared because Redis was unreachable: counted, and the outage logged once. */
  #lostToOutage(count: number, error: unknown): void {
    this.#dropped += count;
    this.#droppedWhileUnreachable += count;
    this.#wentUnreachable(error);
  }

  /**
   * Unsubscribes and closes both connections (pending publishes are sent first). While Redis is unreachable, the
   * client's wait before its next attempt is not cancelled: the process may take up to `maxReconnectDelay` more
   * to end by itself.
   */
  async close(): Promise<void> {
    this.#batcher.flush();
    // A later start is told again of the topics the server has then.
    this.#topics.clear();
    const connections = [this.#subscriber, this.#publisher];
    this.#publisher = undefined;
    this.#subscriber = undefined;
    await Promise.all(
      connections.map(async (connection) => {
        if (connection === undefined) return;
        connection.removeAllListeners('ready');
        try {
          if (connection.isReady) await connection.close();
          else connection.destroy();
        } catch {
          connection.destroy();
        }
      }),
    );
  }

  #receive(bytes: Buffer): void {
    const context = this.#context;
    if (context === undefined) return;
    try {
      const broadcasts = splitBroadcasts(bytes);
      // Redis sends every subscriber every message, ours too: skip them before decoding their payload. A batch
      // comes from one server: its first broadcast tells whose it is.
      if (broadcasts.length === 0 || broadcastOrigin(broadcasts[0]!) === context.serverId) return;
      for (const encoded of broadcasts) {
        const broadcast = decodeBroadcast(encoded);
        this.#received++;
        context.deliver(broadcast);
      }
    } catch (error) {
      context.log('error', `the Redis adapter dropped a message from Redis: ${describe(error)}`);
    }
  }

  #isReachable(): boolean {
    return this.#publisher?.isReady === true && this.#subscriber?.isReady === true;
  }

  #wentUnreachable(error: unknown): void {
    if (this.#unreachable || this.#publisher === undefined) return;
    this.#unreachable = true;
    this.#context?.log(
      'warning',
      `Redis at ${this.#safeUrl()} is unreachable${error === undefined ? '' : ` (${describe(error)})`}: broadcasts reach this server's clients only; reconnecting`,
    );
  }

  #maybeBack(): void {
    if (!this.#unreachable || !this.#isReachable()) return;
    this.#unreachable = false;
    const dropped = this.#droppedWhileUnreachable;
    this.#droppedWhileUnreachable = 0;
    this.#context?.log('warning', `Redis at ${this.#safeUrl()} is reachable again; ${dropped} broadcast(s) were not shared meanwhile`);
  }

  /** The URL without its password, for log lines. */
  #safeUrl(): string {
    try {
      const url = new URL(this.#url);
      if (url.password !== '') url.password = '***';
      return url.toString();
    } catch {
      return 'the configured URL';
    }
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return code === undefined ? error.message || error.name : `${String(code)} ${error.message}`;
  }
  return String(error);
}
