/**
 * websocket-server: a WebSocket server for Node.js in one file, with no runtime dependencies.
 *
 * It speaks RFC 6455 strictly (https://www.rfc-editor.org/rfc/rfc6455) and offers the callback API of the
 * Python `python-websocket-server` package: register callbacks on a {@link WebsocketServer}, then run it.
 * Runs on Node.js >= 20 (compiled with `tsc`) and, as it uses erasable TypeScript only, directly under
 * Node's type stripping.
 * Compiles with TypeScript >= 5.0 and any `target` from es2020 on, as ESM or CommonJS, strict or not.
 *
 * Contents: the numbered banners below, in order.
 *    1. Public types
 *    2. Options: types, defaults and validation
 *    3. Protocol vocabulary and limits (RFC 6455 §5.2, §7.4, §11.7)
 *    4. Errors
 *    5. The server: lifecycle, listening, the client list, callbacks, broadcast, heartbeat, stats
 *    6. The opening handshake (RFC 6455 §4.2): tracking, the request head, the checks, the 101 response
 *    7. The connection (ClientHandler): public API, the closing handshake, the heartbeat, reading
 *    8. Sending (SendQueue): order, admission under maxBufferedAmount, streaming, compression order, write batching
 *    9. The frame parser (RFC 6455 §5), with masking and UTF-8
 *   10. The frame writer (RFC 6455 §5.2): server frames are never masked
 *   11. permessage-deflate (RFC 7692): negotiation, bounded inflate, ordered deflate
 *   12. Small utilities and the logger
 *
 * @example
 * ```ts
 * import { WebsocketServer } from './websocket-server.ts';
 *
 * const server = new WebsocketServer({ port: 13254, host: '127.0.0.1', loglevel: 'info' });
 * server.setFnNewClient((client, server) => server.sendMessageToAll('Hey all, a new client has joined us'));
 * server.setFnMessageReceived((client, server, message) => server.sendMessage(client, message));
 * server.setFnClientLeft((client) => console.log(`client ${client.id} left`));
 * await server.runForever();
 * console.log(`listening on ws://127.0.0.1:${server.port}/`);
 * ```
 *
 * @module
 */
import { Buffer } from 'node:buffer';
import { Server as HttpServer, type IncomingMessage } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { type TlsOptions } from 'node:tls';
/** Log levels, as in Python's `logging`. The server prints nothing below its level. */
export type LogLevel = 'debug' | 'info' | 'warning' | 'error' | 'critical';
/**
 * Where log lines go. `console` fits, and so do most logging libraries (pino, winston, bunyan).
 * `critical` lines go to `error`.
 */
export interface Logger {
    debug(message: string): void;
    info(message: string): void;
    warn(message: string): void;
    error(message: string): void;
}
/**
 * A broadcast as it travels between servers through a {@link BroadcastAdapter}.
 *
 * Client ids are per server: `exclude` names clients of `origin`, so a server that receives another's broadcast
 * sends it to all its own clients.
 */
export interface Broadcast {
    /** The `serverId` of the server that published it. */
    readonly origin: string;
    /** A string is sent as a text message, bytes as a binary message. */
    readonly message: string | Uint8Array;
    /** Ids of the origin's clients that it was not sent to. */
    readonly exclude: readonly number[];
    /**
     * The topic it was published to (`server.publish`): each server sends it to its own subscribers of that
     * topic. Absent for `sendMessageToAll`, which goes to every client.
     */
    readonly topic?: string | undefined;
}
/**
 * Joins servers so that a broadcast on one reaches the clients of all (the `adapter` option). The server calls
 * `start` once when it starts (from `runForever()`, or the first `handleUpgrade()`), `publish` for each
 * `sendMessageToAll` and `publish` before sending to its own clients, and `close` when it shuts down.
 *
 * Topics: a broadcast with a `topic` matters only to servers with a subscriber to it. The server calls
 * `subscribe(topic)` when the topic gets its first local subscriber and `unsubscribe(topic)` when it loses its
 * last (and, once `start` has settled, `subscribe` for each topic that already had subscribers), so that an
 * adapter can keep a server from receiving what none of its clients wants. An adapter without them delivers
 * every broadcast, and the server drops those of topics it has no subscriber to.
 *
 * An adapter must deliver the broadcasts of each publishing server in the order they were published, to every
 * other server. It may also deliver a server's own broadcasts back to it: the server ignores those (an adapter
 * can skip them early by their `origin`, which is `context.serverId`).
 *
 * @example
 * ```ts
 * // Two servers in one process, joined by an EventEmitter: a broadcast on one reaches the clients of both.
 * const bus = new EventEmitter();
 * const adapter = (): BroadcastAdapter => {
 *   let listener: ((broadcast: Broadcast) => void) | undefined;
 *   return {
 *     start({ deliver }) { listener = deliver; bus.on('broadcast', deliver); },
 *     publish(broadcast) { bus.emit('broadcast', broadcast); },
 *     close() { if (listener) bus.off('broadcast', listener); },
 *   };
 * };
 * const a = new WebsocketServer({ adapter: adapter() });
 * const b = new WebsocketServer({ adapter: adapter() });
 * ```
 */
export interface BroadcastAdapter {
    /**
     * Begins receiving: from now on, call `context.deliver` for each broadcast published by another server.
     * A rejection makes `runForever()` reject; an adapter whose transport is down at start should rather log,
     * keep retrying, and resolve.
     */
    start(context: AdapterContext): void | Promise<void>;
    /**
     * Hands this server's broadcast to the others. Called synchronously from `sendMessageToAll` and `publish`,
     * before the server's own clients are sent it: copy the message before returning if it is needed later (the
     * caller may reuse its buffer). What it throws is logged.
     */
    publish(broadcast: Broadcast): void;
    /** This server now has a subscriber to `topic`: deliver the broadcasts published to it from now on. */
    subscribe?(topic: string): void;
    /** This server no longer has any subscriber to `topic`: its broadcasts need not be delivered any more. */
    unsubscribe?(topic: string): void;
    /** Stops receiving and releases the transport; the server calls it once it has shut down. */
    close(): void | Promise<void>;
}
/** What a server gives its {@link BroadcastAdapter} when it starts it. */
export interface AdapterContext {
    /** The server's `serverId`: the `origin` of the broadcasts it publishes. */
    readonly serverId: string;
    /** Sends another server's broadcast to this server's clients. */
    deliver(broadcast: Broadcast): void;
    /** Writes a line through the server's logger, if `level` is at or above the server's `loglevel`. */
    log(level: LogLevel, message: string): void;
}
/**
 * Picks the subprotocol for a connection from those the client offered, in its order of preference:
 * one of `offered`, or `undefined`/`null` for none. Called synchronously during the handshake.
 *
 * @example
 * ```ts
 * const subprotocols: SubprotocolChooser = (offered, request) =>
 *   request.path === '/v2' && offered.includes('chat.v2') ? 'chat.v2' : offered.find((p) => p === 'chat.v1');
 * ```
 */
export type SubprotocolChooser = (offered: readonly string[], request: HandshakeRequest) => string | undefined | null;
/** A received message: a `string` for a text message, a `Buffer` for a binary one. */
export type Message = string | Buffer;
/**
 * What can be sent: a `string` goes as a text message, bytes as a binary message: any `ArrayBufferView` (a
 * `Buffer`, a typed array, a `DataView`; exactly the bytes it views) or an `ArrayBuffer`.
 */
export type Sendable = string | ArrayBufferView | ArrayBuffer;
/**
 * What became of a message handed to `sendMessage` / `ClientHandler.send`:
 * - `'written'`: handed to the socket, whose buffer stays below its high-water mark (16 KiB);
 * - `'queued'`: handed to the socket, whose buffer is now past its high-water mark: the message will still be
 *   sent, but a sender of many messages should slow down (see `ClientHandler.bufferedAmount`). A message
 *   larger than the high-water mark is always `'queued'`;
 * - `'dropped'`: not sent, because the connection is closing or closed.
 */
export type SendResult = 'written' | 'queued' | 'dropped';
/** A close reason: a string, or its UTF-8 bytes; at most 123 bytes (RFC 6455 §5.5). */
export type CloseReason = string | ArrayBufferView;
/** Where a client connects from. */
export interface ClientAddress {
    readonly host: string;
    readonly port: number;
}
/**
 * A connected client, as in `WebsocketServer.clients`. `Data` is the type of what the application keeps on it
 * (`client.data`): the `Data` of its {@link WebsocketServer}.
 */
export interface Client<Data = unknown> {
    /** Unique and increasing for the life of the server, starting at 1. */
    readonly id: number;
    /** The connection: send, close, ping, state. */
    readonly handler: ClientHandler;
    /** The peer's host and port. */
    readonly address: ClientAddress;
    /** The opening handshake's request (the same object as `handler.request`). */
    readonly request: HandshakeRequest;
    /**
     * The application's own data about this client: what `setFnAuthenticate` attached with `{ data }`
     * (`undefined` when it attached nothing), and whatever the application sets later (`client.data = …`).
     */
    data: Data;
    /** The subprotocol agreed on in the handshake (as `handler.protocol`); `''` when none. */
    readonly protocol: string;
    /** The topics it is subscribed to (see `server.subscribe`), in the order it joined them: a frozen snapshot. */
    readonly topics: readonly string[];
}
/** The opening handshake's HTTP request, as given to `setFnAuthenticate` and kept on `ClientHandler.request`. */
export interface HandshakeRequest {
    /** Always `'GET'` for a request that reaches `setFnAuthenticate`. */
    readonly method: string;
    /** The request target as sent, e.g. `'/chat?room=1'`. */
    readonly url: string;
    /** The path part of the target, e.g. `'/chat'`. */
    readonly path: string;
    /** The query part of the target, parsed. */
    readonly query: URLSearchParams;
    /** Header fields by lower-case name; repeated fields are joined with `', '` (`cookie` with `'; '`). */
    readonly headers: Readonly<Record<string, string>>;
    /** The peer's IP address. */
    readonly remoteAddress: string;
    /** The peer's TCP port. */
    readonly remotePort: number;
    /**
     * The `Cookie` header, parsed: values by name, as sent (no percent-decoding, surrounding quotes removed);
     * the first of a repeated name wins. Empty when there is no `Cookie` header.
     */
    readonly cookies: Readonly<Record<string, string>>;
    /** The `Origin` header (sent by browsers), or `undefined` when there is none. */
    readonly origin: string | undefined;
}
/** The state of a connection, after RFC 6455 §4.1 and §7: `open`, then `closing`, then `closed`. */
export type ConnectionState = 'open' | 'closing' | 'closed';
/** Called when a client has completed its opening handshake; it is already in `server.clients`. */
export type NewClientCallback<Data = unknown> = (client: Client<Data>, server: WebsocketServer<Data>) => void;
/** Called once for every client that got new-client, after it left `server.clients`, however it ended. */
export type ClientLeftCallback<Data = unknown> = (client: Client<Data>, server: WebsocketServer<Data>) => void;
/** Called for every complete message: `string` for text, `Buffer` for binary. */
export type MessageReceivedCallback<Data = unknown> = (client: Client<Data>, server: WebsocketServer<Data>, message: Message) => void;
/**
 * What `setFnAuthenticate` decides:
 * - `true`: accept;
 * - `{ data }`: accept, and attach `data` to the client (`client.data`), e.g. the user it authenticated;
 * - `false`: refuse with 403 Forbidden;
 * - `{ status, headers?, message? }`: refuse with that 4xx or 5xx status, those header fields and that text
 *   as the body (RFC 6455 §4.2.2 item 2), e.g. `{ status: 401, headers: { 'WWW-Authenticate': 'Bearer' } }`.
 *
 * @example
 * ```ts
 * server.setFnAuthenticate(async (request): Promise<AuthenticateResult> => {
 *   const user = await sessions.get(request.cookies['session'] ?? '');
 *   return user ? { data: user } : { status: 401, headers: { 'WWW-Authenticate': 'Cookie' }, message: 'Log in first.' };
 * });
 * ```
 */
export type AuthenticateResult<Data = unknown> = boolean | {
    readonly data: Data;
} | {
    readonly status: number;
    readonly headers?: Readonly<Record<string, string>>;
    readonly message?: string;
};
/** Decides during the handshake, before the 101 response, whether to accept; see {@link AuthenticateResult}. */
export type AuthenticateCallback<Data = unknown> = (request: HandshakeRequest) => AuthenticateResult<Data> | Promise<AuthenticateResult<Data>>;
/**
 * Receives every failure: protocol errors of a client (with the client), handshake rejections (client `null`),
 * and exceptions thrown by the other callbacks.
 */
export type ErrorCallback<Data = unknown> = (error: Error, client: Client<Data> | null, server: WebsocketServer<Data>) => void;
/** Called when a client that had fallen behind has caught up (see `setFnDrain`). */
export type DrainCallback<Data = unknown> = (client: Client<Data>, server: WebsocketServer<Data>) => void;
/** What `server.stats` reports; every count is since the server was made. */
export interface ServerStats {
    /** Clients connected now. */
    readonly connectionsOpen: number;
    /** Clients that completed a handshake. */
    readonly connectionsTotal: number;
    /** Complete messages received from clients. */
    readonly messagesIn: number;
    /** Data messages handed to sockets (a broadcast counts once per client). */
    readonly messagesOut: number;
    /** Bytes received from clients after their handshakes (frames as on the wire). */
    readonly bytesIn: number;
    /** Bytes of data frames handed to sockets (as on the wire, after compression). */
    readonly bytesOut: number;
    /** Messages not sent: to a client not open, or dropped by `slowClientPolicy`. */
    readonly messagesDropped: number;
    /**
     * Refused handshakes by error code (e.g. `WS_ERR_HANDSHAKE_INVALID_KEY`), and with `proxyProtocol` the
     * connections closed for their PROXY header (`WS_ERR_HANDSHAKE_PROXY_HEADER_INVALID`, `…_TOO_LONG`, `…_TIMEOUT`).
     */
    readonly handshakeFailures: Readonly<Record<string, number>>;
    /** Clients that left, by close code (`closeCode` of each, 1006 when no Close frame). */
    readonly closeCodes: Readonly<Record<string, number>>;
    /** Broadcasts handed to the `adapter` for the other servers. */
    readonly broadcastsPublished: number;
    /** Broadcasts of other servers received from the `adapter` and sent to this server's clients. */
    readonly broadcastsReceived: number;
}
/**
 * Who ended a connection, in a `websocket-server:connection-close` event: `'client'` sent the first Close frame;
 * `'server'` closed, failed or dropped it (`close`, a protocol error, a slow client, a missed Pong, a shutdown);
 * `'network'`: the TCP connection ended with no closing handshake that either side had started.
 */
export type ClosedBy = 'client' | 'server' | 'network';
/** Published on `websocket-server:connection-open` once a client is in `server.clients`, before new-client. */
export interface ConnectionOpenEvent {
    readonly server: WebsocketServer;
    readonly client: Client;
}
/** Published on `websocket-server:connection-close` once a client's TCP connection has closed, before client-left. */
export interface ConnectionCloseEvent {
    readonly server: WebsocketServer;
    readonly client: Client;
    /** As `client.handler.closeCode`: the code received, or sent when the server failed the connection; 1006 for none. */
    readonly code: number;
    /** As `client.handler.closeReason` (empty if none). */
    readonly reason: string;
    readonly closedBy: ClosedBy;
    /** Milliseconds from the 101 response to the end of the TCP connection. */
    readonly duration: number;
}
/** Published on `websocket-server:handshake-refused` for every refused opening handshake, as it is answered. */
export interface HandshakeRefusedEvent {
    readonly server: WebsocketServer;
    /** The HTTP status answered (none reaches a connection dropped during TLS, which is published all the same). */
    readonly status: number;
    /** The refusal's stable code, e.g. `'WS_ERR_HANDSHAKE_UPGRADE_REQUIRED'` (as in `stats.handshakeFailures`). */
    readonly code: string;
    /** Why, in a sentence (`error.message`). */
    readonly reason: string;
    readonly error: HandshakeError;
    /** The peer's address and port, as the socket reports them. */
    readonly remoteAddress: string;
    readonly remotePort: number;
}
/** Published on `websocket-server:message-in` for every complete message received, before message-received. */
export interface MessageInEvent {
    readonly server: WebsocketServer;
    readonly client: Client;
    /** The message as message-received gets it: a `string` for text, a `Buffer` for binary. */
    readonly data: Message;
    readonly binary: boolean;
    /** Its length in bytes (UTF-8 for text), after decompression. */
    readonly byteLength: number;
}
/**
 * Published on `websocket-server:message-out` once per call that sends a message: `sendMessage` or
 * `client.handler.send` (with `client`), and once per broadcast, not per delivery: `sendMessageToAll`, `publish`,
 * or a broadcast of another server arriving through the `adapter` (with `client` undefined). Streamed messages
 * (`sendStream`, `sendFile`) are not published: their size is not known when they start.
 */
export interface MessageOutEvent {
    readonly server: WebsocketServer;
    /** The client it was sent to; `undefined` for a broadcast. */
    readonly client: Client | undefined;
    /** The topic of a `publish` (or of another server's published broadcast); `undefined` otherwise. */
    readonly topic: string | undefined;
    /** The message: a `string` for text; for binary, what the application gave, or (a broadcast) a view of its bytes. */
    readonly data: Sendable | Uint8Array;
    readonly binary: boolean;
    /** Its length in bytes (UTF-8 for text), before compression. */
    readonly byteLength: number;
    /** How many of this server's clients it was written or queued to: 0 or 1 for a send, any number for a broadcast. */
    readonly recipients: number;
}
/** Published on `websocket-server:error` for every failure `setFnError` receives (with or without one set). */
export interface ServerErrorEvent {
    readonly server: WebsocketServer;
    readonly error: Error;
    /** The client concerned; `null` for a refused handshake, or a callback failure without a client. */
    readonly client: Client | null;
}
/** Options of {@link WebsocketServer}. Every one is optional. */
export interface WebsocketServerOptions {
    /** TCP port to listen on. Default `0`: an ephemeral port, read back from {@link WebsocketServer.port}. */
    port?: number;
    /** Interface to listen on. Default `'127.0.0.1'`; `'0.0.0.0'` (or `'::'`) listens on all interfaces. */
    host?: string;
    /** Lowest level that is logged. Default `'warning'`. */
    loglevel?: LogLevel;
    /** Where log lines go. Default: the process's standard error, through `console`. */
    logger?: Logger;
    /**
     * Largest message accepted, in bytes, after reassembling its fragments. A bigger one closes the connection
     * with 1009 (Message Too Big), decided from the frame header before its payload is buffered.
     * Default 16 MiB (16,777,216).
     */
    maxMessageSize?: number;
    /**
     * Most frames one message may be split into (RFC 6455 §5.4); more closes the connection with 1008 (Policy
     * Violation). Default `0`: no limit. Fragments need no count limit: however many there are, what a message
     * holds is bounded by `maxMessageSize` plus a constant (small fragments are copied together as they arrive,
     * empty ones cost nothing), and the work is linear in the bytes received.
     */
    maxFragments?: number;
    /**
     * Most received chunks (TCP reads) held while a frame is incomplete. More closes the connection with 1008: a
     * frame trickled in one-byte segments would otherwise cost an object per byte. Default 16,384 (a 16 MiB frame
     * in 1 KiB reads fits).
     */
    maxBufferedChunks?: number;
    /**
     * Most connections at once, counting those still in their handshake (TLS included). A connection over it is
     * answered `503 Service Unavailable` at once (on the TLS port, closed before TLS). Default: 50,000, or less
     * where the process's descriptor limit (`ulimit -n`) is lower: that limit less a reserve of 32 + 5 % for the
     * application's own files, so that the server refuses with 503 before it runs out of descriptors.
     */
    maxConnections?: number;
    /**
     * Largest HTTP request head accepted during the opening handshake (request line and headers), in bytes.
     * A bigger one is answered `431 Request Header Fields Too Large`. Default 16 KiB (16,384).
     */
    maxHeaderSize?: number;
    /**
     * Milliseconds a client has to complete its opening handshake (and `setFnAuthenticate` to answer).
     * A slower one is answered `408 Request Timeout`. Default 10,000.
     */
    handshakeTimeout?: number;
    /**
     * Milliseconds to wait for the peer's part of the closing handshake (its Close frame, then the end of
     * the TCP connection) before the connection is dropped. Default 5,000.
     */
    closeTimeout?: number;
    /**
     * The TLS private key, to serve `wss://`: a PEM string, a `Buffer`, or the path of a PEM file (a string that
     * does not begin with `-----BEGIN`). Needs {@link cert}. Default: none, the server speaks plain `ws://`.
     */
    key?: string | Buffer;
    /** The TLS certificate (chain), as {@link key}: a PEM string, a `Buffer`, or a file path. Needs {@link key}. */
    cert?: string | Buffer;
    /**
     * Further options of `tls.createServer` for `wss://`, e.g. `ca`, `passphrase`, `minVersion`; needs
     * {@link key} and {@link cert}. The TLS handshake is bounded by this server's `handshakeTimeout`, counted from
     * the TCP connection (node:tls's own `handshakeTimeout`, an idle timer, defaults to twice that).
     */
    tls?: TlsOptions;
    /**
     * Milliseconds between the Pings the server sends each client to check that it is still there
     * (RFC 6455 §5.5.2); `0` sends none. Default 20,000.
     */
    pingInterval?: number;
    /**
     * Milliseconds a client has to answer the server's Ping with a Pong; one that does not is dropped (its
     * `closeCode` is 1006), so that half-open TCP connections do not linger. `0` never drops. Default 20,000.
     */
    pingTimeout?: number;
    /**
     * The subprotocols the server speaks, most preferred first: it picks the first of its list that the client
     * offers in `Sec-WebSocket-Protocol` (RFC 6455 §4.2.2). Or a function that picks one of the offered ones
     * (or none: `undefined`/`null`); it is called only when the client offers at least one. Default: none.
     */
    subprotocols?: readonly string[] | SubprotocolChooser;
    /**
     * When `true`, a client that offers no subprotocol the server picks is refused with 400. Needs
     * {@link subprotocols}. Default `false`: such a client connects without a subprotocol.
     */
    requireSubprotocol?: boolean;
    /**
     * An HTTP(S) server of the application to attach to, instead of listening on a port of our own:
     * `runForever()` takes its `'upgrade'` requests (see {@link path}); the application listens on it itself.
     * Excludes `port`, `host`, `key`, `cert` and `tls`. Default: none, the server listens itself.
     */
    server?: HttpServer | HttpsServer;
    /**
     * The only path served, compared exactly with the request's path (without its query), e.g. `'/ws'`.
     * Upgrades to other paths are answered 404, or, on an attached {@link server} that has another `'upgrade'`
     * listener, left to that listener. Default: every path.
     */
    path?: string;
    /**
     * The allowed values of the `Origin` header (compared case-insensitively), e.g. `['https://example.com']`.
     * A request with another Origin is refused with 403 before `setFnAuthenticate` (RFC 6455 §10.2). A request
     * without Origin passes: browsers always send one, other clients can send any (RFC 6455 §10.1).
     * Default: every origin.
     */
    origins?: readonly string[];
    /**
     * Compress messages with permessage-deflate (RFC 7692) when a client offers it: `true` for the defaults, or
     * the settings. Default `false` (as in `ws`): compression costs CPU and memory per connection.
     */
    perMessageDeflate?: boolean | PerMessageDeflateOptions;
    /**
     * Most bytes that may wait to be sent to one client (its `bufferedAmount`) before `slowClientPolicy` applies
     * to a new message. Default 16 MiB.
     */
    maxBufferedAmount?: number;
    /**
     * What happens to a message for a client whose `bufferedAmount` would pass `maxBufferedAmount`:
     * `'close'` closes that client with 1008 (Policy Violation) and drops the message; `'drop'` drops the message
     * (`'dropped'` is returned) and keeps the client; `'queue'` queues it anyway, without a limit.
     * Default `'close'`: a client that cannot keep up never costs the server unbounded memory.
     */
    slowClientPolicy?: SlowClientPolicy;
    /**
     * Carries broadcasts to and from other servers (other processes, other hosts), so that
     * {@link WebsocketServer.sendMessageToAll} reaches every client of every server: `ClusterAdapter` (in
     * `adapters/cluster.ts`) across the workers of `node:cluster`, `RedisAdapter` (in `adapters/redis.ts`) across
     * hosts, or your own {@link BroadcastAdapter}. Default: none, broadcasts stay in this server (and cost nothing
     * more).
     */
    adapter?: BroadcastAdapter;
    /**
     * This server's name among the servers joined by an {@link adapter}: it marks the broadcasts it publishes, so
     * that it never delivers its own again. Must differ from every other server's. Default: a random UUID.
     */
    serverId?: string;
    /**
     * Which proxies in front of the server are trusted to say where a client connects from, so that
     * `client.address` and `request.remoteAddress` are the client's rather than the proxy's: a number of hops (the
     * peer and the proxies before it, each assumed to append the address it received from to `X-Forwarded-For` or
     * `Forwarded`, RFC 7239), or a list of the proxies' addresses and CIDR ranges, IPv4 or IPv6 (`'10.0.0.0/8'`,
     * `'::1'`; an IPv4 entry also matches its IPv4-mapped IPv6 form). The headers are read from the right, only as
     * far as trusted proxies wrote them; a peer that is not trusted is its own address, whatever it sends.
     * Default `false`: the address is the TCP peer's (or what the PROXY protocol gave).
     */
    trustProxy?: false | number | readonly string[];
    /**
     * When `true`, every connection to our own listener must begin with a PROXY protocol header, version 1 or 2
     * (as HAProxy and AWS NLB send it), which gives the client's address; one without it, or with a malformed one,
     * is closed without an answer. Not with `server` (the PROXY protocol is then the business of that server's
     * listener) nor, for now, with `key`/`cert`. Default `false`.
     */
    proxyProtocol?: boolean;
    /**
     * Milliseconds a connection has to send its PROXY protocol header (a proxy sends it at once); a slower one is
     * closed without an answer. `handshakeTimeout` still runs from the TCP connection. Needs {@link proxyProtocol}.
     * Default 5,000.
     */
    proxyProtocolTimeout?: number;
    /**
     * Stops the server when aborted, as `shutdownGracefully()` does: every client is closed with 1001 (Going Away)
     * and the server stops listening. A signal already aborted lets nothing start: `runForever()` rejects (with the
     * signal's reason as `cause`) and handshakes given to `handleUpgrade` are answered 503. The server listens to
     * the signal from `runForever()` (or the first `handleUpgrade()`) until it shuts down, however it does.
     * Default: none.
     */
    signal?: AbortSignal;
}
/** See {@link WebsocketServerOptions.slowClientPolicy}. */
export type SlowClientPolicy = 'close' | 'drop' | 'queue';
/**
 * permessage-deflate settings (RFC 7692). Memory per connection, when compression is in use (measured with the
 * defaults by `bench/memory.ts`): about 113 KB of RSS for a compressor (kept with context takeover; only while a
 * compressed message is being sent with `serverNoContextTakeover`), about 32 KB for a decompressor once the
 * client has sent a compressed message.
 */
export interface PerMessageDeflateOptions {
    /**
     * Reset the server's compression context after every message. It costs compression ratio, but no compressor
     * is kept per connection, and a broadcast is compressed once for all such clients. Default `false`.
     */
    serverNoContextTakeover?: boolean;
    /** Ask clients to reset their compression context after every message. Default `false`. */
    clientNoContextTakeover?: boolean;
    /** Largest window the server compresses with: 9–15 (zlib cannot produce 8-bit windows). Default 12. */
    serverMaxWindowBits?: number;
    /** Largest window clients may compress with, when they offer to limit it: 8–15. Default 15. */
    clientMaxWindowBits?: number;
    /** Messages shorter than this many bytes are sent uncompressed. Default 1024. */
    threshold?: number;
    /** zlib compression level, 0–9. Default 6. */
    level?: number;
    /** zlib memory level, 1–9: compressor state memory. Default 5. */
    memLevel?: number;
    /** Most compression and decompression jobs running at once in the whole server. Default 10. */
    concurrencyLimit?: number;
}
/** Frame opcodes (RFC 6455 §5.2, §11.8). */
export declare const Opcode: {
    readonly CONTINUATION: 0;
    readonly TEXT: 1;
    readonly BINARY: 2;
    readonly CLOSE: 8;
    readonly PING: 9;
    readonly PONG: 10;
};
/** Close codes (RFC 6455 §7.4.1 and the IANA registry, §11.7). */
export declare const CloseCode: {
    readonly NORMAL: 1000;
    readonly GOING_AWAY: 1001;
    readonly PROTOCOL_ERROR: 1002;
    readonly UNSUPPORTED_DATA: 1003;
    /** Never sent: reports that a Close frame carried no code (§7.1.5). */
    readonly NO_STATUS: 1005;
    /** Never sent: reports that the connection ended without a Close frame (§7.1.5). */
    readonly ABNORMAL: 1006;
    readonly INVALID_PAYLOAD: 1007;
    readonly POLICY_VIOLATION: 1008;
    readonly MESSAGE_TOO_BIG: 1009;
    readonly MANDATORY_EXTENSION: 1010;
    readonly INTERNAL_ERROR: 1011;
    readonly SERVICE_RESTART: 1012;
    readonly TRY_AGAIN_LATER: 1013;
    readonly BAD_GATEWAY: 1014;
};
/** Base of every error this library reports. `code` is a stable string, e.g. `'WS_ERR_UNMASKED_FRAME'`. */
export declare class WebSocketError extends Error {
    /** Stable machine-readable code. */
    readonly code: string;
    /** The close code sent to the peer for this failure (1002, 1007, 1008, 1009, 1011), or 1006 if none applies. */
    readonly closeCode: number;
    constructor(message: string, code: string, closeCode: number);
}
/** The peer broke a rule of RFC 6455: closed with 1002. */
export declare class ProtocolError extends WebSocketError {
    constructor(message: string, code: string);
}
/** A message's data did not match its type (e.g. invalid UTF-8 in text): closed with 1007. */
export declare class InvalidPayloadError extends WebSocketError {
    constructor(message: string, code: string);
}
/** The peer broke a policy of this server: closed with 1008. */
export declare class PolicyViolationError extends WebSocketError {
    constructor(message: string, code: string);
}
/** A message exceeded `maxMessageSize`: closed with 1009. */
export declare class MessageTooBigError extends WebSocketError {
    constructor(message: string, code: string);
}
/** The server failed unexpectedly: closed with 1011 and no detail sent to the peer. */
export declare class InternalError extends WebSocketError {
    constructor(message: string, code: string);
}
/** The opening handshake was refused with HTTP `status`; no WebSocket connection was made. */
export declare class HandshakeError extends WebSocketError {
    /** The HTTP status answered (400, 403, 404, 405, 408, 414, 426, 431, 500, 503, 505, or one `setFnAuthenticate` chose). */
    readonly status: number;
    /** Header fields sent with the refusal, e.g. `Sec-WebSocket-Version` with a 426. */
    readonly headers: Readonly<Record<string, string>>;
    constructor(message: string, code: string, status: number, headers?: Readonly<Record<string, string>>);
}
/**
 * The names of the `node:diagnostics_channel` channels the server publishes on, one per event of a connection's
 * life; each event's fields are documented on its type ({@link ConnectionOpenEvent} and the others). An event is
 * built only when its channel has a subscriber: with none, publishing costs one read of `hasSubscribers`.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe(DiagnosticsChannel.CONNECTION_CLOSE, (message) => {
 *   const { client, code, closedBy, duration } = message as ConnectionCloseEvent;
 *   console.log(`client ${client.id} closed by the ${closedBy} with ${code} after ${duration} ms`);
 * });
 * ```
 */
export declare const DiagnosticsChannel: {
    readonly CONNECTION_OPEN: 'websocket-server:connection-open';
    readonly CONNECTION_CLOSE: 'websocket-server:connection-close';
    readonly HANDSHAKE_REFUSED: 'websocket-server:handshake-refused';
    readonly MESSAGE_IN: 'websocket-server:message-in';
    readonly MESSAGE_OUT: 'websocket-server:message-out';
    readonly ERROR: 'websocket-server:error';
};
/**
 * A WebSocket server with the callback API of Python's `python-websocket-server`.
 *
 * @example
 * ```ts
 * const server = new WebsocketServer({ port: 13254 });
 * server.setFnMessageReceived((client, server, message) => server.sendMessageToAll(message));
 * await server.runForever();
 * ```
 *
 * `Data` types what the application keeps on each client (`client.data`), in every callback:
 *
 * @example
 * ```ts
 * const server = new WebsocketServer<{ name: string }>({ port: 13254 });
 * server.setFnAuthenticate((request) => ({ data: { name: request.query.get('name') ?? 'anonymous' } }));
 * server.setFnMessageReceived((client, server, message) => server.publish('chat', `${client.data.name}: ${message}`));
 * ```
 */
export declare class WebsocketServer<Data = unknown> {
    #private;
    /**
     * @param options Every option is optional; see {@link WebsocketServerOptions} for the defaults.
     * @throws {TypeError} for an unknown option or a value of the wrong type.
     * @throws {RangeError} for a value out of range.
     */
    constructor(options?: WebsocketServerOptions);
    /**
     * The connected clients, in the order they connected (by `id`): a frozen array, the same one until a client
     * joins or leaves.
     */
    get clients(): readonly Client<Data>[];
    /** This server's name among the servers joined by an adapter (the `serverId` option, else a random UUID). */
    get serverId(): string;
    /**
     * Counters since the server was made: a fresh snapshot on every read. Counting costs one integer increment
     * per message, per read and per write.
     */
    get stats(): ServerStats;
    /**
     * The port listened on: the bound port once {@link runForever} has resolved (the application's server's
     * port when attached to one), else the configured one.
     */
    get port(): number;
    /** The interface listened on (the application's server's address when attached to one). */
    get host(): string;
    /** Whether the server serves `wss://`: it has a `key` and `cert`, or is attached to an HTTPS server. */
    get secure(): boolean;
    /**
     * Starts listening: on the configured port (with TLS when `key` and `cert` are given), or, with the `server`
     * option, on the application's server. Resolves once connections are accepted; {@link port} then holds the
     * bound port.
     * @throws the OS error (e.g. `EADDRINUSE`, `EACCES`) as a rejection, or an `Error` saying why the TLS key or
     * certificate could not be used: a server asked for TLS never falls back to plain text.
     */
    runForever(): Promise<void>;
    /** Sets the function called when a client has connected (after its opening handshake). */
    setFnNewClient(fn: NewClientCallback<Data>): void;
    /** Sets the function called once when a client has left, however the connection ended. */
    setFnClientLeft(fn: ClientLeftCallback<Data>): void;
    /** Sets the function called for every message received: a `string` for text, a `Buffer` for binary. */
    setFnMessageReceived(fn: MessageReceivedCallback<Data>): void;
    /**
     * Sets the function that decides, during the opening handshake and before the 101 response, whether to
     * accept a client. `false` (or a promise of it) answers 403; a throw or rejection answers 500.
     */
    setFnAuthenticate(fn: AuthenticateCallback<Data>): void;
    /** Sets the function that receives protocol errors, handshake refusals and exceptions thrown by callbacks. */
    setFnError(fn: ErrorCallback<Data>): void;
    /**
     * Sets the function called when a client that had fallen behind (a send returned `'queued'`) has caught up:
     * everything for it has been handed to the network. A good moment to send it more.
     */
    setFnDrain(fn: DrainCallback<Data>): void;
    /**
     * Sends a message to one client: a `string` as a text message, bytes as a binary message.
     * @returns `'written'` or `'queued'` when sent, `'dropped'` when the client is closing or gone.
     */
    sendMessage(client: Client<Data>, message: Sendable): SendResult;
    /**
     * Sends a message to every open client but those in `exclude`, and, with an `adapter`, to every client of
     * the other servers it joins. The frame is built once and the same bytes are written to each.
     * @param exclude a client, or its id, or several: they are left out (ids are this server's).
     * @returns the number of this server's clients it was written or queued to.
     */
    sendMessageToAll(sendable: Sendable, exclude?: Client<Data> | number | Iterable<Client<Data> | number>): number;
    /**
     * Subscribes a client to a topic: it receives what is {@link publish}ed to it, from this server and, with an
     * `adapter`, from the others. A client leaves all its topics when it leaves, before client-left is called.
     * @returns whether it was not subscribed yet (`false` too for a client no longer connected).
     * @throws {TypeError} if `topic` is not a non-empty string.
     */
    subscribe(client: Client<Data>, topic: string): boolean;
    /**
     * Unsubscribes a client from a topic.
     * @returns whether it was subscribed.
     * @throws {TypeError} if `topic` is not a non-empty string.
     */
    unsubscribe(client: Client<Data>, topic: string): boolean;
    /**
     * Sends a message to the subscribers of a topic but those in `exclude`, and, with an `adapter`, to the
     * subscribers on the other servers. As for {@link sendMessageToAll}, the frame is built (and, for clients
     * that agreed on no context takeover, compressed) once, and each subscriber gets its messages in order.
     * @param exclude a client, or its id, or several: they are left out (ids are this server's).
     * @returns the number of this server's subscribers it was written or queued to.
     * @throws {TypeError} if `topic` is not a non-empty string.
     */
    publish(topic: string, sendable: Sendable, exclude?: Client<Data> | number | Iterable<Client<Data> | number>): number;
    /** How many of this server's clients are subscribed to `topic`. */
    subscriberCount(topic: string): number;
    /** The topics that have at least one subscriber on this server: a frozen snapshot. */
    get topics(): readonly string[];
    /** Streams a message of unknown size to one client: see {@link ClientHandler.sendStream}. */
    sendStream(client: Client<Data>, source: AsyncIterable<Sendable> | Iterable<Sendable>, options?: {
        binary?: boolean;
    }): Promise<void>;
    /** Sends a file to one client as one binary message, streamed from disk: see {@link ClientHandler.sendFile}. */
    sendFile(client: Client<Data>, path: string): Promise<void>;
    /**
     * Closes every connection with a close handshake (default 1001, Going Away), waits for each to end (at most
     * `closeTimeout`), and stops listening.
     */
    shutdownGracefully(code?: number, reason?: CloseReason): Promise<void>;
    /** Drops every connection at once, without a close handshake, and stops listening. */
    shutdownAbruptly(): Promise<void>;
    /** Closes every client with a close handshake (default 1000); resolves when all of them have gone. */
    disconnectClientsGracefully(code?: number, reason?: CloseReason): Promise<void>;
    /** Drops every client's TCP connection at once, without a close handshake. */
    disconnectClientsAbruptly(): void;
    /** From now on, opening handshakes are answered `503 Service Unavailable`. Connected clients stay. */
    denyNewConnections(): void;
    /** Undoes {@link denyNewConnections}. */
    allowNewConnections(): void;
    /**
     * Takes over a connection whose HTTP request another server has already read: pass it the arguments of a
     * `node:http` (or `node:https`) server's `'upgrade'` event, so that WebSocket and your HTTP app share one port.
     * The request gets the same checks, authentication and answers as on the server's own listener.
     *
     * @example
     * ```ts
     * const http = createServer((request, response) => response.end('hello'));
     * http.on('upgrade', (request, socket, head) => server.handleUpgrade(request, socket, head));
     * http.listen(8080);
     * ```
     * @throws {TypeError} if `socket` is not a `net.Socket` (or a `tls.TLSSocket`).
     */
    handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void;
}
/**
 * `Symbol.asyncDispose`'s type where the compiler's library declares it (TypeScript >= 5.2, or the polyfill in
 * @types/node 20 and 22); `never` where it does not (TypeScript 5.0 or 5.1 with @types/node 24).
 */
type AsyncDisposeSymbol = SymbolConstructor extends {
    readonly asyncDispose: infer Key extends symbol;
} ? Key : never;
/** A server's `[Symbol.asyncDispose]()`, where the symbol is declared; nothing where it is not. */
type AsyncDisposableServer = {
    [Key in AsyncDisposeSymbol]: () => Promise<void>;
};
/**
 * `[Symbol.asyncDispose]()` shuts the server down gracefully, as `shutdownGracefully()` does (1001, Going Away);
 * called again, it returns the same promise. So `await using` stops a server at the end of its block.
 *
 * @example
 * ```ts
 * {
 *   await using server = new WebsocketServer({ port: 0 });
 *   await server.runForever();
 *   // ... serve ...
 * } // every client has been closed with 1001 and the server has stopped listening
 * ```
 */
export interface WebsocketServer<Data = unknown> extends AsyncDisposableServer {
}
/**
 * One client's connection: `client.handler`. Sends messages, pings, and closes; reports its state.
 *
 * @example
 * ```ts
 * server.setFnNewClient((client) => {
 *   client.handler.send('welcome');
 *   if (client.handler.request.query.get('token') !== 'secret') client.handler.close(4001, 'who are you?');
 * });
 * ```
 */
export declare class ClientHandler {
    #private;
    /** The record of this client in `server.clients`. */
    readonly client: Client;
    /** The opening handshake's request: path, query, headers, cookies, origin, remote address. */
    readonly request: HandshakeRequest;
    /** The subprotocol agreed on in the opening handshake (RFC 6455 §1.9); `''` when none. */
    readonly protocol: string;
    /** Made by the server when a handshake completes (`connectionInternals.create`): no public use. */
    private constructor();
    /** `'open'`, then `'closing'` once a Close frame was sent or received, then `'closed'` once TCP has ended. */
    get state(): ConnectionState;
    /** Bytes waiting to be sent: queued here (behind compression or a stream) and buffered in the socket. */
    get bufferedAmount(): number;
    /** The permessage-deflate parameters agreed with this client (RFC 7692), or `''` when none. */
    get extensions(): string;
    /**
     * Once closed: the close code received from the peer (1005 if its Close frame had none), or the code the
     * server failed the connection with, or 1006 if the connection ended without a Close frame (RFC 6455 §7.1.5).
     */
    get closeCode(): number | undefined;
    /** Once closed: the reason that came with {@link closeCode} (empty if none). */
    get closeReason(): string;
    /**
     * The round trip of the last heartbeat Ping, in milliseconds: from sending it to receiving the Pong that
     * carries its payload. `undefined` until one has been answered (and with `pingInterval: 0`).
     */
    get latency(): number | undefined;
    /** Resolves once the connection is closed (after client-left has been called). */
    get closed(): Promise<void>;
    /**
     * Sends a message: a `string` as a text message, bytes as a binary message. With permessage-deflate, a
     * message of at least `threshold` bytes is compressed first (and `'queued'` meanwhile).
     * @returns `'written'`, `'queued'`, or `'dropped'` (connection not open, or a slow client: `slowClientPolicy`).
     */
    send(message: Sendable): SendResult;
    /**
     * Sends a message of unknown size as it is produced: each chunk of `source` goes as one fragment (RFC 6455
     * §5.4), waiting for the socket to drain when it is full. Messages sent meanwhile wait until this one ends.
     * The type is text for string chunks and binary for bytes, unless `options.binary` says.
     * Streamed messages are not compressed.
     * @returns a promise that resolves once the last fragment is handed to the socket. If `source` fails after
     *   the first fragment went out, the message cannot be completed: the connection is closed with 1011.
     */
    sendStream(source: AsyncIterable<Sendable> | Iterable<Sendable>, options?: {
        binary?: boolean;
    }): Promise<void>;
    /**
     * Sends a file's content as one binary message, streamed from disk (see {@link sendStream}).
     * @returns a promise that resolves once the file is handed to the socket; it rejects, before anything is
     *   sent, if the file cannot be opened.
     */
    sendFile(path: string): Promise<void>;
    /**
     * Sends a Ping (RFC 6455 §5.5.2); the peer answers with a Pong. Control frames go at once, between the
     * frames of queued messages.
     * @returns `false` when the connection is not open.
     * @throws {RangeError} if the payload is longer than 125 bytes.
     */
    ping(payload?: Sendable): boolean;
    /**
     * Starts the closing handshake (RFC 6455 §7.1.2): sends a Close frame (after the messages already queued),
     * waits for the peer's, then ends TCP. A peer that does not finish within `closeTimeout` is dropped.
     * Does nothing if already closing.
     * @throws {RangeError} for a code an endpoint may not send, or a reason over 123 UTF-8 bytes.
     */
    close(code?: number, reason?: CloseReason): void;
    /** Drops the TCP connection at once, without a closing handshake. */
    terminate(): void;
    /**
     * Stops reading from this client (flow control): no message-received calls until {@link resumeReading},
     * and TCP tells the client to slow down once the buffers fill. Pings are not answered meanwhile.
     */
    pauseReading(): void;
    /** Reads again after {@link pauseReading}, handling first what arrived meanwhile. */
    resumeReading(): void;
}
/** What the parser reports. After `onClose` or `onProtocolError` it reports nothing more. */
export interface FrameParserHandler {
    /** A complete text message, validated as UTF-8; the parser also gives its bytes as received (valid for the call). */
    onText(text: string, bytes?: Buffer): void;
    /** A complete binary message. */
    onBinary(data: Buffer): void;
    /** A Ping's payload (at most 125 bytes). */
    onPing(payload: Buffer): void;
    /** A Pong's payload (at most 125 bytes). */
    onPong(payload: Buffer): void;
    /** A valid Close frame: its code (1005 if it carried none) and reason. */
    onClose(code: number, reason: string): void;
    /** A broken rule: the error carries the close code to send (1002, 1007 or 1009). */
    onProtocolError(error: WebSocketError): void;
    /**
     * Read backpressure: `true` when the parser, waiting for the inflater, holds `maxReadAhead` bytes or more of
     * frames behind the one being inflated (stop reading the socket), `false` once it goes on parsing.
     */
    onReadPressure?(pressed: boolean): void;
}
/**
 * Decompresses the messages of a negotiated permessage-deflate extension (RFC 7692) for a {@link FrameParser}.
 * The parser reads no further frames until `callback` has been called, so messages stay in order.
 */
export interface MessageInflater {
    /**
     * Takes the payload of one frame of a compressed message; after the final frame (`fin`), calls back with the
     * whole decompressed message (before that, with `undefined`). Fails with a `MessageTooBigError` as soon as the
     * output passes the size limit, and with an `InvalidPayloadError` for data that is not valid DEFLATE.
     */
    inflate(payload: Buffer, fin: boolean, callback: (error: WebSocketError | null, message?: Buffer) => void): void;
}
/** Options of {@link FrameParser}. */
export interface FrameParserOptions {
    /** Largest message accepted, in bytes, after reassembly; more fails with 1009. */
    readonly maxMessageSize: number;
    /** Present when permessage-deflate was negotiated: RSV1 then marks a compressed message (RFC 7692 §6). */
    readonly inflater?: MessageInflater | undefined;
    /** Most frames in one message; more fails with 1008. Default (and `0`): no limit. */
    readonly maxFragments?: number | undefined;
    /**
     * Bytes of later frames held while a compressed message is being inflated before `onReadPressure(true)` asks
     * the socket to stop reading. Default 256 KiB.
     */
    readonly maxReadAhead?: number | undefined;
    /** Most received chunks held while a frame is incomplete; more fails with 1008. Default: no limit. */
    readonly maxBufferedChunks?: number | undefined;
}
/**
 * Decodes client-to-server frames from a byte stream split in any way, and reports complete messages and
 * control frames to its handler, synchronously. It keeps a queue of received chunks and takes exactly the
 * bytes each step needs; a payload is a view of the chunk it arrived in when it fits in one, and a copy only
 * when it spans several. Every rule decidable from a frame header is checked before its payload is awaited.
 * It is pure, with no socket and no timers: bytes go in, events come out, so that a test drives it alone.
 *
 * @example
 * ```ts
 * const parser = new FrameParser(handler, { maxMessageSize: 1 << 20 });
 * socket.on('data', (chunk) => parser.push(chunk));
 * ```
 */
export declare class FrameParser {
    #private;
    constructor(handler: FrameParserHandler, options: FrameParserOptions);
    /** Feeds received bytes; complete frames are handled before this returns, unless paused or inflating. */
    push(chunk: Buffer): void;
    /** Stops handling frames (received bytes are kept) until {@link resume}. */
    pause(): void;
    /** Handles the frames received while paused, and goes on. */
    resume(): void;
    /** Discards all further input and frees what is buffered. */
    stop(): void;
}
export {};
