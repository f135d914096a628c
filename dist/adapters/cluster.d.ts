/**
 * Broadcasts across the workers of `node:cluster` on one machine, with no dependency: a {@link ClusterAdapter} in
 * each worker's server, {@link relayClusterBroadcasts} in the primary. Imports only `node:` built-ins, the core
 * (`websocket-server.ts`, which does not import this file) and `./wire.ts`.
 *
 * @module
 */
import { type AdapterContext, type Broadcast, type BroadcastAdapter, type Logger } from '../websocket-server.ts';
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
export declare class ClusterAdapter implements BroadcastAdapter {
    #private;
    /**
     * @param options.channel Servers in a worker share broadcasts only with servers on the same channel in the
     * other workers: one per kind of server when a worker runs several. Default `'default'`.
     * @param options.maxPendingBytes Most bytes of broadcasts handed to the IPC channel and not yet written (a
     * primary that does not read): past it, broadcasts are not shared, only sent to this worker's clients.
     * Default 64 MiB.
     */
    constructor(options?: {
        channel?: string;
        maxPendingBytes?: number;
    });
    /** Broadcasts not shared because the IPC channel to the primary was backed up (or gone), since start. */
    get dropped(): number;
    /** Broadcasts received from the other workers, since start. */
    get received(): number;
    start({ deliver, log }: AdapterContext): void;
    publish(broadcast: Broadcast): void;
    /** Asks the primary for the broadcasts to `topic`: this worker's server has a subscriber to it now. */
    subscribe(topic: string): void;
    /** Tells the primary that this worker's server has no subscriber to `topic` any more. */
    unsubscribe(topic: string): void;
    /**
     * Stops receiving. The worker's IPC channel stays open (it belongs to `node:cluster`): to let the worker end
     * after `shutdownGracefully()`, call `cluster.worker.disconnect()` or `process.exit()`.
     */
    close(): void;
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
export declare function relayClusterBroadcasts(options?: {
    maxPendingBytes?: number;
    logger?: Logger;
}): () => void;
