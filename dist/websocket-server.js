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
var _a, _b, _c;
import { Buffer, isUtf8 } from 'node:buffer';
import { createHash, getRandomValues, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { channel as diagnosticsChannel } from 'node:diagnostics_channel';
import { Server as HttpServer, STATUS_CODES } from 'node:http';
import { Server as HttpsServer } from 'node:https';
import { createServer, isIPv4, isIPv6, Socket } from 'node:net';
import { constants as zlibConstants, createDeflateRaw, createInflateRaw, deflateRaw, } from 'node:zlib';
import { endianness } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createServer as createTlsServer, Server as TlsServer } from 'node:tls';
/** The options that have no default value: absent unless given. */
const OPTIONS_WITHOUT_DEFAULT = [
    'logger',
    'key',
    'cert',
    'tls',
    'subprotocols',
    'server',
    'path',
    'origins',
    'adapter',
    'serverId',
    'signal',
];
/** The default of every other option (each documented on {@link WebsocketServerOptions}). */
const DEFAULTS = {
    port: 0,
    host: '127.0.0.1',
    loglevel: 'warning',
    maxMessageSize: 16 * 1024 * 1024,
    maxFragments: 0,
    maxBufferedChunks: 16384,
    maxConnections: 50_000,
    maxHeaderSize: 16 * 1024,
    handshakeTimeout: 10_000,
    closeTimeout: 5_000,
    perMessageDeflate: false,
    maxBufferedAmount: 16 * 1024 * 1024,
    slowClientPolicy: 'close',
    pingInterval: 20_000,
    pingTimeout: 20_000,
    requireSubprotocol: false,
    trustProxy: false,
    proxyProtocol: false,
    proxyProtocolTimeout: 5_000,
};
const DEFLATE_DEFAULTS = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 12,
    clientMaxWindowBits: 15,
    threshold: 1024,
    level: 6,
    memLevel: 5,
    concurrencyLimit: 10,
};
/** The name of every option: {@link resolveOptions} refuses any other, so that a misspelt one does not pass unseen. */
const OPTION_NAMES = new Set([...Object.keys(DEFAULTS), ...OPTIONS_WITHOUT_DEFAULT]);
const BUFFER_MAX_LENGTH = 2 ** 32;
/** setTimeout's largest delay (about 24.8 days). */
const TIMER_MAX = 2 ** 31 - 1;
/**
 * The default of `maxConnections`: 50,000, or the process's soft descriptor limit less a reserve for the
 * application's own files (32 + 5 %) where that is lower. Read from `/proc/self/limits` where there is one
 * (Linux); elsewhere, or without the permission to read it, 50,000.
 */
function defaultMaxConnections() {
    let limits;
    try {
        limits = readFileSync('/proc/self/limits', 'latin1');
    }
    catch {
        return DEFAULTS.maxConnections;
    }
    const match = /^Max open files\s+(\d+)/m.exec(limits);
    if (match === null)
        return DEFAULTS.maxConnections;
    const descriptors = Number(match[1]);
    return Math.max(1, Math.min(DEFAULTS.maxConnections, descriptors - 32 - Math.ceil(descriptors / 20)));
}
/** Merges the options with the defaults and checks every value, then how they go together. */
function resolveOptions(options) {
    if (typeof options !== 'object' || options === null) {
        throw new TypeError(`Cannot create the server: options must be an object, not ${describeType(options)}.`);
    }
    for (const name of Object.keys(options)) {
        if (!OPTION_NAMES.has(name)) {
            throw new TypeError(`Cannot create the server: '${name}' is not an option (known: ${[...OPTION_NAMES].join(', ')}).`);
        }
    }
    const resolved = { ...DEFAULTS, ...withoutUndefined(options) };
    if (options.maxConnections === undefined)
        resolved.maxConnections = defaultMaxConnections();
    checkInteger('port', resolved.port, 0, 65535);
    if (typeof resolved.host !== 'string' || resolved.host === '') {
        throw new TypeError(`Cannot create the server: 'host' must be a non-empty string, not ${describeType(resolved.host)}.`);
    }
    if (typeof resolved.loglevel !== 'string') {
        throw new TypeError(`Cannot create the server: 'loglevel' must be a string, not ${describeType(resolved.loglevel)}.`);
    }
    if (!Object.keys(LEVEL_RANK).includes(resolved.loglevel)) {
        throw new RangeError(`Cannot create the server: loglevel '${resolved.loglevel}' is not one of ${Object.keys(LEVEL_RANK).join(', ')}.`);
    }
    checkInteger('maxMessageSize', resolved.maxMessageSize, 1, BUFFER_MAX_LENGTH);
    checkInteger('maxFragments', resolved.maxFragments, 0, Number.MAX_SAFE_INTEGER);
    checkInteger('maxBufferedChunks', resolved.maxBufferedChunks, 16, Number.MAX_SAFE_INTEGER);
    checkInteger('maxConnections', resolved.maxConnections, 1, Number.MAX_SAFE_INTEGER);
    checkInteger('maxHeaderSize', resolved.maxHeaderSize, 1024, 1024 * 1024);
    checkInteger('handshakeTimeout', resolved.handshakeTimeout, 1, TIMER_MAX);
    checkInteger('closeTimeout', resolved.closeTimeout, 1, TIMER_MAX);
    checkInteger('maxBufferedAmount', resolved.maxBufferedAmount, 1, Number.MAX_SAFE_INTEGER);
    if (!['close', 'drop', 'queue'].includes(resolved.slowClientPolicy)) {
        throw new RangeError(`Cannot create the server: slowClientPolicy '${String(resolved.slowClientPolicy)}' is not one of close, drop, queue.`);
    }
    checkInteger('pingInterval', resolved.pingInterval, 0, TIMER_MAX);
    checkInteger('pingTimeout', resolved.pingTimeout, 0, TIMER_MAX);
    const logger = options.logger;
    if (logger !== undefined) {
        const methods = ['debug', 'info', 'warn', 'error'];
        if (typeof logger !== 'object' || logger === null || methods.some((m) => typeof logger[m] !== 'function')) {
            throw new TypeError(`Cannot create the server: 'logger' must have the methods ${methods.join(', ')}.`);
        }
    }
    checkTlsOptions(resolved);
    checkSubprotocolOptions(resolved);
    checkAttachOptions(options, resolved);
    checkStringList('origins', resolved.origins);
    checkAdapterOptions(resolved);
    checkProxyOptions(options, resolved);
    if (resolved.signal !== undefined && !(resolved.signal instanceof AbortSignal)) {
        throw new TypeError(`Cannot create the server: 'signal' must be an AbortSignal, not ${describeType(resolved.signal)}.`);
    }
    return resolved;
}
/** The permessage-deflate settings with their defaults, or `undefined` when compression is off. */
function resolveDeflateOptions(option) {
    if (option === false)
        return undefined;
    if (option === true)
        return DEFLATE_DEFAULTS;
    if (typeof option !== 'object' || option === null) {
        throw new TypeError(`Cannot create the server: 'perMessageDeflate' must be a boolean or an object, not ${describeType(option)}.`);
    }
    for (const name of Object.keys(option)) {
        if (!Object.keys(DEFLATE_DEFAULTS).includes(name)) {
            throw new TypeError(`Cannot create the server: '${name}' is not a perMessageDeflate option (known: ${Object.keys(DEFLATE_DEFAULTS).join(', ')}).`);
        }
    }
    const resolved = { ...DEFLATE_DEFAULTS, ...withoutUndefined(option) };
    for (const name of ['serverNoContextTakeover', 'clientNoContextTakeover']) {
        if (typeof resolved[name] !== 'boolean') {
            throw new TypeError(`Cannot create the server: 'perMessageDeflate.${name}' must be a boolean, not ${describeType(resolved[name])}.`);
        }
    }
    if (resolved.serverMaxWindowBits === 8) {
        throw new RangeError("Cannot create the server: 'perMessageDeflate.serverMaxWindowBits' cannot be 8, as zlib compresses with 9 at least.");
    }
    checkInteger('perMessageDeflate.serverMaxWindowBits', resolved.serverMaxWindowBits, 9, 15);
    checkInteger('perMessageDeflate.clientMaxWindowBits', resolved.clientMaxWindowBits, 8, 15);
    checkInteger('perMessageDeflate.threshold', resolved.threshold, 0, Number.MAX_SAFE_INTEGER);
    checkInteger('perMessageDeflate.level', resolved.level, 0, 9);
    checkInteger('perMessageDeflate.memLevel', resolved.memLevel, 1, 9);
    checkInteger('perMessageDeflate.concurrencyLimit', resolved.concurrencyLimit, 1, 1024);
    return resolved;
}
/** `key` and `cert` go together, each a PEM string, a Buffer or a file path; `tls` adds to them. */
function checkTlsOptions(options) {
    for (const name of ['key', 'cert']) {
        const value = options[name];
        if (value !== undefined && !(typeof value === 'string' ? value !== '' : Buffer.isBuffer(value))) {
            throw new TypeError(`Cannot create the server: '${name}' must be a PEM string, a Buffer or a file path, not ${describeType(value)}.`);
        }
    }
    if ((options.key === undefined) !== (options.cert === undefined)) {
        const [given, missing] = options.key === undefined ? ['cert', 'key'] : ['key', 'cert'];
        throw new TypeError(`Cannot create the server: '${given}' needs '${missing}' as well, to serve wss://.`);
    }
    const tls = options.tls;
    if (tls === undefined)
        return;
    if (typeof tls !== 'object' || tls === null || Array.isArray(tls)) {
        throw new TypeError(`Cannot create the server: 'tls' must be an object of tls.createServer options, not ${describeType(tls)}.`);
    }
    if (options.key === undefined) {
        throw new TypeError("Cannot create the server: 'tls' needs 'key' and 'cert', which turn TLS on.");
    }
    for (const name of ['key', 'cert']) {
        if (name in tls) {
            throw new TypeError(`Cannot create the server: give the TLS ${name} as the option '${name}', not inside 'tls'.`);
        }
    }
}
/** `subprotocols` is a list of tokens (RFC 6455 §4.1) or a function; `requireSubprotocol` needs it. */
function checkSubprotocolOptions(options) {
    const subprotocols = options.subprotocols;
    if (subprotocols !== undefined && typeof subprotocols !== 'function') {
        if (!Array.isArray(subprotocols)) {
            throw new TypeError(`Cannot create the server: 'subprotocols' must be an array of names or a function, not ${describeType(subprotocols)}.`);
        }
        for (const name of subprotocols) {
            if (typeof name !== 'string') {
                throw new TypeError(`Cannot create the server: 'subprotocols' must hold strings, not ${describeType(name)}.`);
            }
            if (!TOKEN.test(name)) {
                throw new RangeError(`Cannot create the server: '${name}' is not a valid subprotocol name, which must be a token (RFC 6455 §4.1).`);
            }
        }
    }
    if (typeof options.requireSubprotocol !== 'boolean') {
        throw new TypeError(`Cannot create the server: 'requireSubprotocol' must be a boolean, not ${describeType(options.requireSubprotocol)}.`);
    }
    if (options.requireSubprotocol && subprotocols === undefined) {
        throw new TypeError("Cannot create the server: 'requireSubprotocol' needs 'subprotocols', the names to require.");
    }
}
/** `server` is an HTTP(S) server and excludes the options of an own listener; `path` is an absolute path. */
function checkAttachOptions(given, options) {
    const server = options.server;
    if (server !== undefined) {
        if (!(server instanceof HttpServer || server instanceof HttpsServer)) {
            throw new TypeError(`Cannot create the server: 'server' must be a node:http or node:https Server, not ${describeType(server)}.`);
        }
        for (const name of ['port', 'host', 'key', 'cert', 'tls']) {
            if (given[name] !== undefined) {
                throw new TypeError(`Cannot create the server: '${name}' cannot be given with 'server', whose own settings decide where and how it listens.`);
            }
        }
    }
    const path = options.path;
    if (path === undefined)
        return;
    if (typeof path !== 'string') {
        throw new TypeError(`Cannot create the server: 'path' must be a string, not ${describeType(path)}.`);
    }
    if (!path.startsWith('/') || !/^[\x21-\x7e]+$/.test(path) || /[?#]/.test(path)) {
        throw new RangeError(`Cannot create the server: 'path' must begin with '/' and hold no query, fragment or space, not '${path}'.`);
    }
}
function checkAdapterOptions(options) {
    const adapter = options.adapter;
    if (adapter !== undefined) {
        const methods = ['start', 'publish', 'close'];
        if (typeof adapter !== 'object' || adapter === null || methods.some((m) => typeof adapter[m] !== 'function')) {
            throw new TypeError(`Cannot create the server: 'adapter' must have the methods ${methods.join(', ')}.`);
        }
    }
    if (options.serverId !== undefined && (typeof options.serverId !== 'string' || options.serverId === '')) {
        throw new TypeError(`Cannot create the server: 'serverId' must be a non-empty string, not ${describeType(options.serverId)}.`);
    }
}
/**
 * `trustProxy` is hops or addresses and CIDR ranges; `proxyProtocol` needs a listener of our own that speaks
 * plain TCP, as the header precedes everything else on the connection.
 */
function checkProxyOptions(given, options) {
    const trust = options.trustProxy;
    if (typeof trust === 'number') {
        checkInteger('trustProxy', trust, 0, MAX_TRUSTED_HOPS);
    }
    else if (Array.isArray(trust)) {
        checkStringList('trustProxy', trust);
        for (const entry of trust) {
            if (parseSubnet(entry) === undefined) {
                throw new RangeError(`Cannot create the server: '${entry}' in 'trustProxy' is not an IPv4 or IPv6 address or CIDR range (e.g. '10.0.0.0/8', 'fd00::/8').`);
            }
        }
    }
    else if (trust !== false) {
        throw new TypeError(`Cannot create the server: 'trustProxy' must be false, a number of hops or a list of addresses, not ${describeType(trust)}` +
            (trust === true ? ': true would trust whatever any client claims.' : '.'));
    }
    if (typeof options.proxyProtocol !== 'boolean') {
        throw new TypeError(`Cannot create the server: 'proxyProtocol' must be a boolean, not ${describeType(options.proxyProtocol)}.`);
    }
    checkInteger('proxyProtocolTimeout', options.proxyProtocolTimeout, 1, TIMER_MAX);
    if (given.proxyProtocolTimeout !== undefined && !options.proxyProtocol) {
        throw new TypeError("Cannot create the server: 'proxyProtocolTimeout' needs 'proxyProtocol: true'.");
    }
    if (!options.proxyProtocol)
        return;
    if (options.server !== undefined) {
        throw new TypeError("Cannot create the server: 'proxyProtocol' cannot be given with 'server': the PROXY header is read by the listener " +
            "that accepts the connection, the application's server (trustProxy works with it).");
    }
    if (options.key !== undefined) {
        throw new TypeError("Cannot create the server: 'proxyProtocol' does not work with 'key' and 'cert' yet: terminate TLS at the proxy, " +
            'or let the proxy speak TLS to the server without the PROXY protocol.');
    }
}
function checkStringList(name, value) {
    if (value === undefined)
        return;
    if (!Array.isArray(value) || value.some((item) => typeof item !== 'string' || item === '')) {
        throw new TypeError(`Cannot create the server: '${name}' must be an array of non-empty strings, not ${describeType(value)}.`);
    }
}
function checkInteger(name, value, min, max) {
    if (typeof value !== 'number') {
        throw new TypeError(`Cannot create the server: '${name}' must be a number, not ${describeType(value)}.`);
    }
    if (!Number.isInteger(value) || value < min || value > max) {
        throw new RangeError(`Cannot create the server: '${name}' must be an integer from ${min} to ${max}, not ${value}.`);
    }
}
function withoutUndefined(value) {
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// 3. Protocol vocabulary and limits (RFC 6455 §5.2, §7.4, §11.7)
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
/** Frame opcodes (RFC 6455 §5.2, §11.8). */
export const Opcode = {
    CONTINUATION: 0x0,
    TEXT: 0x1,
    BINARY: 0x2,
    CLOSE: 0x8,
    PING: 0x9,
    PONG: 0xa,
};
/** Close codes (RFC 6455 §7.4.1 and the IANA registry, §11.7). */
export const CloseCode = {
    NORMAL: 1000,
    GOING_AWAY: 1001,
    PROTOCOL_ERROR: 1002,
    UNSUPPORTED_DATA: 1003,
    /** Never sent: reports that a Close frame carried no code (§7.1.5). */
    NO_STATUS: 1005,
    /** Never sent: reports that the connection ended without a Close frame (§7.1.5). */
    ABNORMAL: 1006,
    INVALID_PAYLOAD: 1007,
    POLICY_VIOLATION: 1008,
    MESSAGE_TOO_BIG: 1009,
    MANDATORY_EXTENSION: 1010,
    INTERNAL_ERROR: 1011,
    SERVICE_RESTART: 1012,
    TRY_AGAIN_LATER: 1013,
    BAD_GATEWAY: 1014,
};
/** The GUID that the opening handshake appends to the client's key (RFC 6455 §1.3, §4.2.2). */
const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** Control frames carry at most 125 bytes (§5.5); a close reason therefore at most 123. */
const MAX_CONTROL_PAYLOAD = 125;
const MAX_CLOSE_REASON_BYTES = MAX_CONTROL_PAYLOAD - 2;
/** At most this many header fields in a handshake request; more is answered 431. */
const MAX_HEADER_COUNT = 100;
/** A request line longer than this is answered 414. */
const MAX_REQUEST_LINE = 8 * 1024;
/** Most hops `trustProxy` may count: more proxies than this in front of one server is a mistake of configuration. */
const MAX_TRUSTED_HOPS = 100;
/** The longest PROXY protocol v1 header, CR LF included (HAProxy's proxy-protocol.txt §2.1). */
const PROXY_V1_MAX_LENGTH = 107;
/**
 * The most bytes of addresses and TLVs a PROXY protocol v2 header may announce (its 16-bit length allows 65,535):
 * addresses take 216 at most, and the TLVs that load balancers add (AWS's endpoint id, TLS details) a few hundred.
 */
const PROXY_V2_MAX_LENGTH = 4096;
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// 4. Errors
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
/** Base of every error this library reports. `code` is a stable string, e.g. `'WS_ERR_UNMASKED_FRAME'`. */
export class WebSocketError extends Error {
    /** Stable machine-readable code. */
    code;
    /** The close code sent to the peer for this failure (1002, 1007, 1008, 1009, 1011), or 1006 if none applies. */
    closeCode;
    constructor(message, code, closeCode) {
        super(message);
        this.name = new.target.name;
        this.code = code;
        this.closeCode = closeCode;
    }
}
/** The peer broke a rule of RFC 6455: closed with 1002. */
export class ProtocolError extends WebSocketError {
    constructor(message, code) {
        super(message, code, CloseCode.PROTOCOL_ERROR);
    }
}
/** A message's data did not match its type (e.g. invalid UTF-8 in text): closed with 1007. */
export class InvalidPayloadError extends WebSocketError {
    constructor(message, code) {
        super(message, code, CloseCode.INVALID_PAYLOAD);
    }
}
/** The peer broke a policy of this server: closed with 1008. */
export class PolicyViolationError extends WebSocketError {
    constructor(message, code) {
        super(message, code, CloseCode.POLICY_VIOLATION);
    }
}
/** A message exceeded `maxMessageSize`: closed with 1009. */
export class MessageTooBigError extends WebSocketError {
    constructor(message, code) {
        super(message, code, CloseCode.MESSAGE_TOO_BIG);
    }
}
/** The server failed unexpectedly: closed with 1011 and no detail sent to the peer. */
export class InternalError extends WebSocketError {
    constructor(message, code) {
        super(message, code, CloseCode.INTERNAL_ERROR);
    }
}
/** The opening handshake was refused with HTTP `status`; no WebSocket connection was made. */
export class HandshakeError extends WebSocketError {
    /** The HTTP status answered (400, 403, 404, 405, 408, 414, 426, 431, 500, 503, 505, or one `setFnAuthenticate` chose). */
    status;
    /** Header fields sent with the refusal, e.g. `Sec-WebSocket-Version` with a 426. */
    headers;
    constructor(message, code, status, headers = {}) {
        super(message, code, CloseCode.ABNORMAL);
        this.status = status;
        this.headers = headers;
    }
}
/**
 * Every way a stream of frames can break the protocol, with the close code it earns (RFC 6455 §7.4.1).
 * The one table that maps failures to close codes; `frameFailure` turns an entry into an error.
 */
const FRAME_FAILURES = {
    RESERVED_BITS: [ProtocolError, 'a frame has RSV bits set but no extension was negotiated (RFC 6455 §5.2)'],
    RESERVED_OPCODE: [ProtocolError, 'a frame uses a reserved opcode (RFC 6455 §5.2)'],
    UNMASKED_FRAME: [ProtocolError, 'a client frame is not masked (RFC 6455 §5.1)'],
    FRAGMENTED_CONTROL_FRAME: [ProtocolError, 'a control frame is fragmented (RFC 6455 §5.5)'],
    CONTROL_FRAME_TOO_LONG: [ProtocolError, 'a control frame carries more than 125 bytes (RFC 6455 §5.5)'],
    UNEXPECTED_CONTINUATION: [ProtocolError, 'a continuation frame arrived with no message to continue (RFC 6455 §5.4)'],
    UNFINISHED_MESSAGE: [ProtocolError, 'a new message started before the fragmented one ended (RFC 6455 §5.4)'],
    NON_MINIMAL_LENGTH: [ProtocolError, 'a payload length is not in its minimal encoding (RFC 6455 §5.2)'],
    LENGTH_TOP_BIT_SET: [ProtocolError, 'a 64-bit payload length has its top bit set (RFC 6455 §5.2)'],
    CLOSE_PAYLOAD_ONE_BYTE: [ProtocolError, 'a close frame has a one-byte payload (RFC 6455 §5.5.1)'],
    INVALID_CLOSE_CODE: [ProtocolError, 'a close frame carries a code that may not be sent (RFC 6455 §7.4)'],
    INVALID_CLOSE_REASON: [InvalidPayloadError, 'a close reason is not valid UTF-8 (RFC 6455 §5.5.1)'],
    INVALID_UTF8: [InvalidPayloadError, 'a text message is not valid UTF-8 (RFC 6455 §8.1)'],
    MESSAGE_TOO_BIG: [MessageTooBigError, 'a message is larger than maxMessageSize (RFC 6455 §10.4)'],
    TOO_MANY_FRAGMENTS: [PolicyViolationError, 'a message has more fragments than maxFragments (RFC 6455 §10.4)'],
    TOO_MANY_CHUNKS: [PolicyViolationError, 'a frame arrived in more pieces than maxBufferedChunks (RFC 6455 §10.4)'],
    INVALID_DEFLATE_DATA: [InvalidPayloadError, 'a compressed message is not valid DEFLATE data (RFC 7692 §7.2.2)'],
};
/** The error for a frame failure, with the stable code `WS_ERR_<kind>`. */
function frameFailure(kind) {
    const [ErrorClass, description] = FRAME_FAILURES[kind];
    return new ErrorClass(`The connection failed: ${description}.`, `WS_ERR_${kind}`);
}
const VERSION_HEADER = { 'Sec-WebSocket-Version': '13' };
/**
 * RFC 9110 §7.8: a 426 names the protocol to switch to in Upgrade, which goes with the "upgrade" connection
 * option ("close" too, as we close anyway); RFC 6455 §4.4 adds the versions we speak.
 */
const UPGRADE_REQUIRED_HEADERS = { Upgrade: 'websocket', Connection: 'Upgrade, close', ...VERSION_HEADER };
/** Every reason to refuse an opening handshake, with the HTTP status it is answered with (RFC 6455 §4.2.1). */
const HANDSHAKE_FAILURES = {
    MALFORMED_REQUEST_LINE: [400, 'the request line is not of the form "GET /path HTTP/1.1"'],
    MALFORMED_HEADER: [400, 'a header line is malformed'],
    BARE_LINE_FEED: [400, 'lines must end with CR LF (RFC 9112 §2.2)'],
    HTTP_VERSION_TOO_OLD: [400, 'WebSocket needs HTTP/1.1 or later (RFC 6455 §4.1)'],
    HTTP_VERSION_NOT_SUPPORTED: [505, 'only HTTP/1.x is spoken here'],
    REQUEST_LINE_TOO_LONG: [414, 'the request line is too long'],
    HEADERS_TOO_LARGE: [431, 'the request head is larger than maxHeaderSize'],
    TOO_MANY_HEADERS: [431, `the request has more than ${MAX_HEADER_COUNT} header fields`],
    NOT_ACCEPTING: [503, 'the server is not accepting new connections'],
    TOO_MANY_CONNECTIONS: [503, 'the server has as many connections as maxConnections allows'],
    METHOD_NOT_ALLOWED: [405, 'the method must be GET (RFC 6455 §4.1)', { Allow: 'GET' }],
    UPGRADE_REQUIRED: [
        426,
        'this is a WebSocket endpoint: send "Upgrade: websocket" (RFC 6455 §4.1)',
        UPGRADE_REQUIRED_HEADERS,
    ],
    MISSING_CONNECTION_UPGRADE: [400, 'the Connection header must contain "Upgrade" (RFC 6455 §4.1)'],
    MISSING_HOST: [400, 'the request needs exactly one Host header (RFC 6455 §4.1)'],
    MISSING_VERSION: [400, 'the Sec-WebSocket-Version header is missing (RFC 6455 §4.1)', VERSION_HEADER],
    UNSUPPORTED_VERSION: [426, 'only Sec-WebSocket-Version 13 is supported (RFC 6455 §4.4)', UPGRADE_REQUIRED_HEADERS],
    INVALID_KEY: [400, 'Sec-WebSocket-Key must be one base64-encoded 16-byte value (RFC 6455 §4.1)'],
    UNEXPECTED_BODY: [400, 'an opening handshake has no body'],
    INVALID_EXTENSIONS: [400, 'the Sec-WebSocket-Extensions header is malformed (RFC 6455 §9.1)'],
    NOT_FOUND: [404, 'there is no WebSocket endpoint at this path'],
    INVALID_SUBPROTOCOLS: [400, 'Sec-WebSocket-Protocol must be a comma-separated list of unique tokens (RFC 6455 §4.1)'],
    ORIGIN_NOT_ALLOWED: [403, 'the Origin of the request is not allowed (RFC 6455 §10.2)'],
    SUBPROTOCOL_REQUIRED: [400, 'the client offered no subprotocol that the server speaks (Sec-WebSocket-Protocol)'],
    SUBPROTOCOL_CHOICE_FAILED: [500, 'choosing a subprotocol failed with an error'],
    FORBIDDEN: [403, 'the connection was not authorized'],
    /** `setFnAuthenticate` refused with a status of its choice: the 403 here is only a placeholder. */
    REFUSED: [403, 'the application refused the connection'],
    AUTHENTICATION_FAILED: [500, 'authentication failed with an error'],
    AUTHENTICATION_TIMEOUT: [503, 'authentication did not answer in time'],
    HANDSHAKE_TIMEOUT: [408, 'the opening handshake did not complete in time'],
    // With `proxyProtocol`: these close the connection without an answer, as the peer is a proxy, not the client.
    PROXY_HEADER_INVALID: [400, 'the connection did not begin with a valid PROXY protocol header (v1 or v2)'],
    PROXY_HEADER_TOO_LONG: [400, `the PROXY protocol header is longer than ${PROXY_V1_MAX_LENGTH} bytes (v1) or announces more than ${PROXY_V2_MAX_LENGTH} (v2)`],
    PROXY_HEADER_TIMEOUT: [408, 'the PROXY protocol header did not arrive within proxyProtocolTimeout'],
};
/** The refusal for a handshake failure, with the stable code `WS_ERR_HANDSHAKE_<kind>`. */
function handshakeFailure(kind) {
    const [status, description, headers] = HANDSHAKE_FAILURES[kind];
    return new HandshakeError(`The WebSocket handshake was refused: ${description}.`, `WS_ERR_HANDSHAKE_${kind}`, status, headers);
}
/**
 * `new Error(message, { cause })`, with the constructor retyped: `ErrorOptions` comes with the es2022 library,
 * which a target below es2022 does not load by default (the runtime, Node >= 20, has `cause` all the same).
 */
function errorWithCause(message, cause) {
    return new Error(message, { cause });
}
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// 5. The server: lifecycle, listening, the client list, callbacks, broadcast, heartbeat, stats
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
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
export const DiagnosticsChannel = {
    CONNECTION_OPEN: 'websocket-server:connection-open',
    CONNECTION_CLOSE: 'websocket-server:connection-close',
    HANDSHAKE_REFUSED: 'websocket-server:handshake-refused',
    MESSAGE_IN: 'websocket-server:message-in',
    MESSAGE_OUT: 'websocket-server:message-out',
    ERROR: 'websocket-server:error',
};
/**
 * The channels, made once for the module. `diagnostics_channel` keeps one channel object per name for the
 * process, so every copy of this file (and every subscriber) shares them.
 */
const channels = {
    connectionOpen: diagnosticsChannel(DiagnosticsChannel.CONNECTION_OPEN),
    connectionClose: diagnosticsChannel(DiagnosticsChannel.CONNECTION_CLOSE),
    handshakeRefused: diagnosticsChannel(DiagnosticsChannel.HANDSHAKE_REFUSED),
    messageIn: diagnosticsChannel(DiagnosticsChannel.MESSAGE_IN),
    messageOut: diagnosticsChannel(DiagnosticsChannel.MESSAGE_OUT),
    error: diagnosticsChannel(DiagnosticsChannel.ERROR),
};
// Each publisher below is called only after its caller found `hasSubscribers` true. A subscriber that throws does
// not reach the server: `diagnostics_channel` catches it and rethrows it on the next tick, as an
// 'uncaughtException' of the process, where the application sees its own bug.
function publishMessageIn(server, client, data, utf8) {
    const binary = typeof data !== 'string';
    const byteLength = typeof data === 'string' ? (utf8?.length ?? Buffer.byteLength(data, 'utf8')) : data.length;
    channels.messageIn.publish({ server, client, data, binary, byteLength });
}
function publishMessageOut(server, client, topic, data, recipients) {
    const byteLength = typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.byteLength;
    const event = { server, client, topic, data, binary: typeof data !== 'string', byteLength, recipients };
    channels.messageOut.publish(event);
}
function publishRefusal(server, socket, error) {
    const event = {
        server,
        status: error.status,
        code: error.code,
        reason: error.message,
        error,
        remoteAddress: socket.remoteAddress ?? '',
        remotePort: socket.remotePort ?? 0,
    };
    channels.handshakeRefused.publish(event);
}
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
export class WebsocketServer {
    /**
     * The connected clients in the order they connected: an insertion-ordered set, so that a client leaves in
     * O(1) however many there are (an array's `indexOf` + `splice` made 100,000 departures take seconds).
     */
    #clients = new Set();
    /** The frozen list `clients` returns, made again on the first read after a change. */
    #clientList;
    /** The topics and their subscribers (`subscribe`, `publish`). */
    #topics;
    #options;
    #log;
    #context;
    #handshake;
    #listener;
    /**
     * Where the server is in its life: `starting` while `runForever()` prepares (the adapter, TLS files, an
     * attached server), `running` once it has resolved, `stopped` before and after. A shutdown during a start
     * leaves it `starting`, for the start to notice (see {@link #runs}) and fail.
     */
    #lifecycle = 'stopped';
    /** Counts the shutdowns, so that a start they overtook can tell. */
    #runs = 0;
    /** The `signal` option, listened to while the server runs. */
    #signal;
    /** The shutdown that `Symbol.asyncDispose` started: a second call waits for the same one. */
    #disposed;
    #nextClientId = 1;
    #acceptingConnections = true;
    #deflateConfig;
    #zlibLimiter;
    #traffic = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, messagesDropped: 0 };
    #connectionsTotal = 0;
    #closeCodes = {};
    /** The one heartbeat timer of the server (RFC 6455 §5.5.2), running while a client is connected. */
    #heartbeatTimer;
    #serverId;
    /** The link to the other servers, with the `adapter` option. */
    #adapter;
    #onNewClient;
    #onClientLeft;
    #onMessageReceived;
    #onAuthenticate;
    #onError;
    #onDrain;
    /**
     * @param options Every option is optional; see {@link WebsocketServerOptions} for the defaults.
     * @throws {TypeError} for an unknown option or a value of the wrong type.
     * @throws {RangeError} for a value out of range.
     */
    constructor(options = {}) {
        this.#options = resolveOptions(options);
        this.#log = new LevelLogger(options.logger, this.#options.loglevel);
        this.#deflateConfig = resolveDeflateOptions(this.#options.perMessageDeflate);
        this.#zlibLimiter = this.#deflateConfig && new ZlibLimiter(this.#deflateConfig.concurrencyLimit);
        this.#context = {
            server: this,
            maxMessageSize: this.#options.maxMessageSize,
            maxFragments: this.#options.maxFragments,
            maxBufferedChunks: this.#options.maxBufferedChunks,
            closeTimeout: this.#options.closeTimeout,
            maxBufferedAmount: this.#options.maxBufferedAmount,
            slowClientPolicy: this.#options.slowClientPolicy,
            log: this.#log,
            stats: this.#traffic,
            // The connections' records are this server's clients: `Data` is known here, not to them.
            messageReceived: (client, message) => this.#deliverMessage(client, message),
            connectionFailed: (client, error) => this.#reportError(error, client),
            connectionClosed: (client) => this.#removeClient(client),
            drained: (client) => this.#runCallback(this.#onDrain, client, 'drain'),
        };
        this.#handshake = new Handshake(this.#options, this.#log, this.#deflateConfig, this.#zlibLimiter, {
            server: this,
            connectionCount: () => this.#clients.size,
            accepting: () => this.#acceptingConnections && this.#options.signal?.aborted !== true,
            authenticator: () => this.#onAuthenticate,
            connect: (socket, request, accepted, codec) => this.#addClient(socket, request, accepted, codec),
            callbackFailed: (error, name) => this.#callbackFailed(error, null, name),
            refused: (error) => this.#reportError(error, null),
        });
        this.#listener = new Listener(this.#options, this.#log, this.#handshake, (request, socket, head) => this.handleUpgrade(request, socket, head));
        this.#serverId = this.#options.serverId ?? randomUUID();
        this.#adapter =
            this.#options.adapter &&
                new AdapterBridge(this.#options.adapter, this.#serverId, this.#log, {
                    deliver: (message, topic) => this.#deliverBroadcast(message, topic),
                    topics: () => this.#topics.names(),
                });
        this.#topics = new Topics((topic, exists) => this.#adapter?.topicChanged(topic, exists));
        this.#signal = new SignalWatch(this.#options.signal, () => {
            this.#log.info('the signal was aborted: shutting down');
            this.shutdownGracefully().catch((error) => this.#log.error(`the shutdown failed: ${describeError(error)}`));
        });
    }
    /**
     * The connected clients, in the order they connected (by `id`): a frozen array, the same one until a client
     * joins or leaves.
     */
    get clients() {
        return (this.#clientList ??= Object.freeze([...this.#clients]));
    }
    /** This server's name among the servers joined by an adapter (the `serverId` option, else a random UUID). */
    get serverId() {
        return this.#serverId;
    }
    /**
     * Counters since the server was made: a fresh snapshot on every read. Counting costs one integer increment
     * per message, per read and per write.
     */
    get stats() {
        return {
            connectionsOpen: this.#clients.size,
            connectionsTotal: this.#connectionsTotal,
            ...this.#traffic,
            handshakeFailures: this.#handshake.failureCounts(),
            closeCodes: { ...this.#closeCodes },
            broadcastsPublished: this.#adapter?.published ?? 0,
            broadcastsReceived: this.#adapter?.received ?? 0,
        };
    }
    /**
     * The port listened on: the bound port once {@link runForever} has resolved (the application's server's
     * port when attached to one), else the configured one.
     */
    get port() {
        return this.#listener.port;
    }
    /** The interface listened on (the application's server's address when attached to one). */
    get host() {
        return this.#listener.host;
    }
    /** Whether the server serves `wss://`: it has a `key` and `cert`, or is attached to an HTTPS server. */
    get secure() {
        return this.#listener.secure;
    }
    /**
     * Starts listening: on the configured port (with TLS when `key` and `cert` are given), or, with the `server`
     * option, on the application's server. Resolves once connections are accepted; {@link port} then holds the
     * bound port.
     * @throws the OS error (e.g. `EADDRINUSE`, `EACCES`) as a rejection, or an `Error` saying why the TLS key or
     * certificate could not be used: a server asked for TLS never falls back to plain text.
     */
    async runForever() {
        if (this.#lifecycle !== 'stopped')
            throw new Error('Cannot start the server: it is already running.');
        const signal = this.#options.signal;
        if (signal?.aborted === true)
            throw errorWithCause('Cannot start the server: its signal is aborted.', signal.reason);
        this.#lifecycle = 'starting';
        const run = this.#runs;
        const overtaken = () => this.#runs !== run;
        // Watched from the start: an abort while starting shuts down, which the start notices (`overtaken`).
        this.#signal.watch();
        try {
            if (this.#adapter !== undefined) {
                await this.#adapter.start();
                if (overtaken())
                    throw new Error('Cannot start the server: it was shut down while starting.');
            }
            await this.#listener.start(overtaken);
            this.#lifecycle = 'running';
        }
        catch (error) {
            this.#lifecycle = 'stopped';
            this.#signal.unwatch();
            // Whatever failed after the adapter started must not leave its connections behind.
            await this.#adapter?.close();
            throw error;
        }
    }
    /** Sets the function called when a client has connected (after its opening handshake). */
    setFnNewClient(fn) {
        this.#onNewClient = checkCallback(fn, 'setFnNewClient');
    }
    /** Sets the function called once when a client has left, however the connection ended. */
    setFnClientLeft(fn) {
        this.#onClientLeft = checkCallback(fn, 'setFnClientLeft');
    }
    /** Sets the function called for every message received: a `string` for text, a `Buffer` for binary. */
    setFnMessageReceived(fn) {
        this.#onMessageReceived = checkCallback(fn, 'setFnMessageReceived');
    }
    /**
     * Sets the function that decides, during the opening handshake and before the 101 response, whether to
     * accept a client. `false` (or a promise of it) answers 403; a throw or rejection answers 500.
     */
    setFnAuthenticate(fn) {
        this.#onAuthenticate = checkCallback(fn, 'setFnAuthenticate');
    }
    /** Sets the function that receives protocol errors, handshake refusals and exceptions thrown by callbacks. */
    setFnError(fn) {
        this.#onError = checkCallback(fn, 'setFnError');
    }
    /**
     * Sets the function called when a client that had fallen behind (a send returned `'queued'`) has caught up:
     * everything for it has been handed to the network. A good moment to send it more.
     */
    setFnDrain(fn) {
        this.#onDrain = checkCallback(fn, 'setFnDrain');
    }
    /**
     * Sends a message to one client: a `string` as a text message, bytes as a binary message.
     * @returns `'written'` or `'queued'` when sent, `'dropped'` when the client is closing or gone.
     */
    sendMessage(client, message) {
        return client.handler.send(message);
    }
    /**
     * Sends a message to every open client but those in `exclude`, and, with an `adapter`, to every client of
     * the other servers it joins. The frame is built once and the same bytes are written to each.
     * @param exclude a client, or its id, or several: they are left out (ids are this server's).
     * @returns the number of this server's clients it was written or queued to.
     */
    sendMessageToAll(sendable, exclude) {
        const message = typeof sendable === 'string' ? sendable : messageBytes(sendable);
        const excluded = exclude === undefined ? undefined : excludedIds(exclude);
        // Published first: the other servers' clients need not wait for the whole local fan-out.
        this.#adapter?.publish(message, excluded, undefined);
        return this.#sendToClients(message, excluded, this.#clients, undefined);
    }
    /**
     * Subscribes a client to a topic: it receives what is {@link publish}ed to it, from this server and, with an
     * `adapter`, from the others. A client leaves all its topics when it leaves, before client-left is called.
     * @returns whether it was not subscribed yet (`false` too for a client no longer connected).
     * @throws {TypeError} if `topic` is not a non-empty string.
     */
    subscribe(client, topic) {
        checkTopic(topic, 'subscribe');
        return this.#clients.has(client) && this.#topics.add(client, topic);
    }
    /**
     * Unsubscribes a client from a topic.
     * @returns whether it was subscribed.
     * @throws {TypeError} if `topic` is not a non-empty string.
     */
    unsubscribe(client, topic) {
        checkTopic(topic, 'unsubscribe');
        return this.#clients.has(client) && this.#topics.remove(client, topic);
    }
    /**
     * Sends a message to the subscribers of a topic but those in `exclude`, and, with an `adapter`, to the
     * subscribers on the other servers. As for {@link sendMessageToAll}, the frame is built (and, for clients
     * that agreed on no context takeover, compressed) once, and each subscriber gets its messages in order.
     * @param exclude a client, or its id, or several: they are left out (ids are this server's).
     * @returns the number of this server's subscribers it was written or queued to.
     * @throws {TypeError} if `topic` is not a non-empty string.
     */
    publish(topic, sendable, exclude) {
        checkTopic(topic, 'publish');
        const message = typeof sendable === 'string' ? sendable : messageBytes(sendable);
        const excluded = exclude === undefined ? undefined : excludedIds(exclude);
        this.#adapter?.publish(message, excluded, topic);
        const subscribers = this.#topics.subscribersOf(topic);
        return this.#sendToClients(message, excluded, subscribers ?? NO_CLIENTS, topic);
    }
    /** How many of this server's clients are subscribed to `topic`. */
    subscriberCount(topic) {
        checkTopic(topic, 'subscriberCount');
        return this.#topics.subscribersOf(topic)?.size ?? 0;
    }
    /** The topics that have at least one subscriber on this server: a frozen snapshot. */
    get topics() {
        return Object.freeze(this.#topics.names());
    }
    /** A broadcast from another server: to all this server's clients, or to its subscribers of the topic. */
    #deliverBroadcast(message, topic) {
        const targets = topic === undefined ? this.#clients : this.#topics.subscribersOf(topic);
        this.#sendToClients(message, undefined, targets ?? NO_CLIENTS, topic);
    }
    /** Sends a message to every open client of `targets` whose id is not in `excluded`; one message-out event. */
    #sendToClients(message, excluded, targets, topic) {
        // The bytes are needed only to compress; the plain frame encodes the message itself.
        let bytes;
        const opcode = typeof message === 'string' ? Opcode.TEXT : Opcode.BINARY;
        let frame;
        let shared;
        let sent = 0;
        const internals = connectionInternals;
        for (const client of targets) {
            if (excluded !== undefined && excluded.has(client.id))
                continue;
            const handler = client.handler;
            const codec = internals.deflateCodec(handler);
            let result;
            if (codec !== undefined && codec.shouldCompress((bytes ??= messageBytes(message)).length)) {
                // Compressed once per window size for the clients without server context takeover, else per client.
                let job;
                if (codec.sharesCompression) {
                    job = (shared ??= new Map()).get(codec.serverWindowBits);
                    if (job === undefined) {
                        job = new SharedCompression(opcode, bytes, codec.serverWindowBits, this.#deflateConfig, this.#zlibLimiter);
                        shared.set(codec.serverWindowBits, job);
                    }
                }
                result = internals.sendCompressed(handler, opcode, bytes, job);
            }
            else {
                result = internals.sendFrame(handler, (frame ??= encodeDataFrame(message)));
            }
            if (result !== 'dropped')
                sent++;
        }
        if (channels.messageOut.hasSubscribers)
            publishMessageOut(this.#context.server, undefined, topic, message, sent);
        return sent;
    }
    /** Streams a message of unknown size to one client: see {@link ClientHandler.sendStream}. */
    sendStream(client, source, options) {
        return client.handler.sendStream(source, options);
    }
    /** Sends a file to one client as one binary message, streamed from disk: see {@link ClientHandler.sendFile}. */
    sendFile(client, path) {
        return client.handler.sendFile(path);
    }
    /**
     * Closes every connection with a close handshake (default 1001, Going Away), waits for each to end (at most
     * `closeTimeout`), and stops listening.
     */
    async shutdownGracefully(code = CloseCode.GOING_AWAY, reason = '') {
        checkCloseArguments(code, reason);
        const listenerClosed = this.#stopListening();
        await this.disconnectClientsGracefully(code, reason);
        await listenerClosed;
        // Last: the clients' departures may still have broadcast (a chat announcing who left).
        await this.#adapter?.close();
    }
    /** Drops every connection at once, without a close handshake, and stops listening. */
    async shutdownAbruptly() {
        const listenerClosed = this.#stopListening();
        const clients = [...this.clients];
        this.disconnectClientsAbruptly();
        await listenerClosed;
        // The listener can close before the sockets report theirs: a client-left callback may still broadcast.
        await Promise.all(clients.map((client) => client.handler.closed));
        await this.#adapter?.close();
    }
    /** Closes every client with a close handshake (default 1000); resolves when all of them have gone. */
    async disconnectClientsGracefully(code = CloseCode.NORMAL, reason = '') {
        checkCloseArguments(code, reason);
        const clients = [...this.clients];
        for (const client of clients)
            client.handler.close(code, reason);
        await Promise.all(clients.map((client) => client.handler.closed));
    }
    /** Drops every client's TCP connection at once, without a close handshake. */
    disconnectClientsAbruptly() {
        for (const client of [...this.clients])
            client.handler.terminate();
    }
    /** From now on, opening handshakes are answered `503 Service Unavailable`. Connected clients stay. */
    denyNewConnections() {
        this.#acceptingConnections = false;
    }
    /** Undoes {@link denyNewConnections}. */
    allowNewConnections() {
        this.#acceptingConnections = true;
    }
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
    handleUpgrade(request, socket, head) {
        if (!(socket instanceof Socket)) {
            throw new TypeError(`handleUpgrade needs the net.Socket of an 'upgrade' event, not ${describeType(socket)}.`);
        }
        this.#signal.watch();
        if (this.#adapter !== undefined && !this.#adapter.running) {
            // Without runForever() nothing else starts it; a failure leaves this server's own broadcasts working.
            this.#adapter.start().catch((error) => this.#log.error(`the adapter could not start: ${describeError(error)}`));
        }
        this.#handshake.takeOver(socket, request, head);
    }
    /** Stops accepting connections (detaching from the application's server) and drops those still in their handshake. */
    #stopListening() {
        this.#runs++;
        if (this.#lifecycle === 'running')
            this.#lifecycle = 'stopped';
        this.#signal.unwatch();
        const listenerClosed = this.#listener.stop();
        this.#handshake.dropAll();
        this.#stopHeartbeat();
        return listenerClosed;
    }
    static {
        // `await using server = …` shuts the server down gracefully at the end of the block, once.
        defineAsyncDispose(WebsocketServer.prototype, (server) => (server.#disposed ??= server.shutdownGracefully()));
    }
    // ── the clients: joining, callbacks into the application, leaving ─────────────────────────────────────────
    /** A completed opening handshake becomes a client: its handler, its place in `clients`, the new-client callback. */
    #addClient(socket, request, accepted, codec) {
        const handler = connectionInternals.create(socket, this.#context, request, this.#nextClientId++, accepted, codec);
        this.#connectionsTotal++;
        const client = handler.client;
        this.#clients.add(client);
        this.#clientList = undefined;
        this.#startHeartbeat();
        if (channels.connectionOpen.hasSubscribers)
            channels.connectionOpen.publish({ server: this.#context.server, client });
        // Guarded: building the line costs more than the rest of this bookkeeping.
        if (this.#log.enabled('info')) {
            this.#log.info(`client ${client.id} connected from ${formatHostPort(client.address.host, client.address.port)}` +
                `${accepted.protocol ? ` with subprotocol ${accepted.protocol}` : ''}`);
        }
        this.#runCallback(this.#onNewClient, client, 'new-client');
        return handler;
    }
    #deliverMessage(client, message) {
        const fn = this.#onMessageReceived;
        if (fn === undefined)
            return;
        try {
            const result = fn(client, this, message);
            if (isPromiseLike(result))
                result.then(undefined, (error) => this.#callbackFailed(error, client, 'message-received'));
        }
        catch (error) {
            this.#callbackFailed(error, client, 'message-received');
        }
    }
    /** Runs a new-client or client-left callback; what it throws is reported, never propagated. */
    #runCallback(fn, client, name) {
        if (fn === undefined)
            return;
        try {
            const result = fn(client, this);
            if (isPromiseLike(result))
                result.then(undefined, (error) => this.#callbackFailed(error, client, name));
        }
        catch (error) {
            this.#callbackFailed(error, client, name);
        }
    }
    #callbackFailed(thrown, client, name) {
        const error = thrown instanceof Error ? thrown : new Error(`The ${name} callback threw a non-Error value: ${String(thrown)}`);
        this.#log.error(`the ${name} callback failed${client ? ` for client ${client.id}` : ''}: ${error.stack ?? error.message}`);
        this.#reportError(error, client);
    }
    #reportError(error, client) {
        if (channels.error.hasSubscribers)
            channels.error.publish({ server: this.#context.server, error, client });
        if (error instanceof WebSocketError && !(error instanceof HandshakeError) && client !== null) {
            this.#log.info(`client ${client.id} failed: ${error.closeCode} ${error.message}`);
        }
        const fn = this.#onError;
        if (fn === undefined)
            return;
        try {
            const result = fn(error, client, this);
            if (isPromiseLike(result))
                result.then(undefined, (e) => this.#log.error(`the error callback failed: ${describeError(e)}`));
        }
        catch (e) {
            this.#log.error(`the error callback failed: ${describeError(e)}`);
        }
    }
    /** Called once per client when its TCP connection has closed: leaves `clients`, then client-left. */
    #removeClient(client) {
        if (!this.#clients.delete(client))
            return;
        this.#clientList = undefined;
        this.#topics.removeAll(client);
        const code = String(client.handler.closeCode ?? CloseCode.ABNORMAL);
        this.#closeCodes[code] = (this.#closeCodes[code] ?? 0) + 1;
        if (this.#clients.size === 0)
            this.#stopHeartbeat();
        if (this.#log.enabled('info')) {
            this.#log.info(`client ${client.id} left (${client.handler.closeCode ?? CloseCode.ABNORMAL}` +
                `${client.handler.closeReason ? ` ${client.handler.closeReason}` : ''})`);
        }
        this.#runCallback(this.#onClientLeft, client, 'client-left');
    }
    // ── the heartbeat (RFC 6455 §5.5.2, §5.5.3) ───────────────────────────────────────────────────────────────
    /**
     * Starts the server's one heartbeat timer, if pings are on and it is not running. It ticks four times per
     * `pingInterval` (or `pingTimeout`, if shorter), so each deadline is met within a quarter of its length.
     * One timer for all clients, rather than one per client, keeps a connection's cost to a few fields.
     */
    #startHeartbeat() {
        const { pingInterval, pingTimeout } = this.#options;
        if (this.#heartbeatTimer !== undefined || pingInterval === 0)
            return;
        const shortest = pingTimeout === 0 ? pingInterval : Math.min(pingInterval, pingTimeout);
        this.#heartbeatTimer = setInterval(() => this.#onHeartbeatTick(), Math.max(HEARTBEAT_MIN_TICK, Math.floor(shortest / 4)));
        // The heartbeat alone does not keep the process alive.
        this.#heartbeatTimer.unref();
    }
    #stopHeartbeat() {
        if (this.#heartbeatTimer === undefined)
            return;
        clearInterval(this.#heartbeatTimer);
        this.#heartbeatTimer = undefined;
    }
    #onHeartbeatTick() {
        const now = performance.now();
        const { pingInterval, pingTimeout } = this.#options;
        // A client dropped here leaves `clients` later, on its socket's 'close' event: the loop is not disturbed.
        const internals = connectionInternals;
        for (const client of this.#clients)
            internals.heartbeat(client.handler, now, pingInterval, pingTimeout);
    }
}
/**
 * Defines `[Symbol.asyncDispose]()` on the server's prototype, where the runtime has the symbol (Node >= 20, Bun,
 * Deno). Not in the class body: TypeScript 5.0's library has no `Symbol.asyncDispose` to name the method by; its
 * type is declared by the interface {@link WebsocketServer}, merged with the class, wherever the symbol is declared.
 */
function defineAsyncDispose(prototype, dispose) {
    const asyncDispose = Symbol.asyncDispose;
    if (asyncDispose === undefined)
        return;
    Object.defineProperty(prototype, asyncDispose, {
        value: function () {
            return dispose(this);
        },
        writable: true,
        configurable: true,
    });
}
/**
 * The `signal` option: listened to from the start of the server until it shuts down, however it does, so that a
 * long-lived signal (a process-wide one, reused by servers made again and again) collects no listener.
 */
class SignalWatch {
    #signal;
    #onAbort;
    #watching = false;
    constructor(signal, aborted) {
        this.#signal = signal;
        this.#onAbort = () => {
            this.#watching = false;
            aborted();
        };
    }
    /** Listens, if there is a signal not listened to yet. An aborted one is left alone: it stopped nothing. */
    watch() {
        if (this.#signal === undefined || this.#signal.aborted || this.#watching)
            return;
        this.#watching = true;
        this.#signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    unwatch() {
        if (!this.#watching)
            return;
        this.#watching = false;
        this.#signal.removeEventListener('abort', this.#onAbort);
    }
}
/** The empty set of clients, for a broadcast to a topic nobody is subscribed to. */
const NO_CLIENTS = new Set();
/**
 * A server's topics (`subscribe`, `publish`): each topic's subscribers, in the order they joined. A topic exists
 * while it has a subscriber: the last to leave takes it away, so a topic nobody is in holds no memory. Each
 * client's own topics are kept on its record (see {@link ClientRecord}), so that it leaves them all in
 * O(its topics).
 */
class Topics {
    #subscribers = new Map();
    /** Told when a topic gets its first subscriber (`true`) or loses its last (`false`): the adapter follows. */
    #changed;
    constructor(changed) {
        this.#changed = changed;
    }
    /** Subscribes `client` (a client of this server); returns whether it was not subscribed yet. */
    add(client, topic) {
        const own = clientRecordTopics(client, true);
        if (own.has(topic))
            return false;
        own.add(topic);
        const subscribers = this.#subscribers.get(topic);
        if (subscribers !== undefined) {
            subscribers.add(client);
            return true;
        }
        this.#subscribers.set(topic, new Set([client]));
        this.#changed(topic, true);
        return true;
    }
    /** Unsubscribes `client`; returns whether it was subscribed. */
    remove(client, topic) {
        const own = clientRecordTopics(client, false);
        if (own === undefined || !own.delete(topic))
            return false;
        this.#leave(client, topic);
        return true;
    }
    /** Unsubscribes `client` from all its topics (it left). */
    removeAll(client) {
        const own = clientRecordTopics(client, false);
        if (own === undefined)
            return;
        for (const topic of own)
            this.#leave(client, topic);
        own.clear();
    }
    /** The subscribers of `topic`, or `undefined` when it has none. */
    subscribersOf(topic) {
        return this.#subscribers.get(topic);
    }
    /** The topics with at least one subscriber, in the order they got their first. */
    names() {
        return [...this.#subscribers.keys()];
    }
    #leave(client, topic) {
        const subscribers = this.#subscribers.get(topic);
        subscribers.delete(client);
        if (subscribers.size > 0)
            return;
        this.#subscribers.delete(topic);
        this.#changed(topic, false);
    }
}
/** @throws {TypeError} unless `topic` is a non-empty string. */
function checkTopic(topic, method) {
    if (typeof topic !== 'string' || topic === '') {
        throw new TypeError(`${method} needs a topic: a non-empty string, not ${topic === '' ? 'an empty string' : describeType(topic)}.`);
    }
}
/**
 * The server's side of the adapter seam: starts and closes the {@link BroadcastAdapter}, publishes this server's
 * broadcasts while it runs, tells it which topics this server has subscribers to, and hands the other servers'
 * broadcasts to this server's clients.
 */
class AdapterBridge {
    #adapter;
    #serverId;
    #log;
    #host;
    /**
     * Settles when the adapter has started. Set from its start until its close (or failed start): broadcasts are
     * published and received meanwhile.
     */
    #started;
    /** Set once `start` has settled, until the close: the adapter is told of topic changes meanwhile. */
    #ready = false;
    published = 0;
    received = 0;
    constructor(adapter, serverId, log, host) {
        this.#adapter = adapter;
        this.#serverId = serverId;
        this.#log = log;
        this.#host = host;
    }
    /** Whether the adapter is started or starting. */
    get running() {
        return this.#started !== undefined;
    }
    /** Starts the adapter once; later calls share the first start. */
    start() {
        if (this.#started !== undefined)
            return this.#started;
        const adapter = this.#adapter;
        const context = {
            serverId: this.#serverId,
            // Only while this run lasts: a context outlives it if the adapter forgets to unsubscribe.
            deliver: (broadcast) => {
                if (this.#started === started)
                    this.#receive(broadcast);
            },
            log: (level, message) => this.#log.log(level, message),
        };
        // Started a microtask later, so that `started` is this run's token before the adapter can deliver.
        const started = Promise.resolve()
            .then(() => adapter.start(context))
            .then(() => {
            this.#log.info(`broadcasts are shared with other servers through the adapter (this server is ${this.#serverId})`);
            if (this.#started !== started)
                return;
            // Topics that got subscribers before the adapter could hear of them.
            this.#ready = true;
            for (const topic of this.#host.topics())
                this.topicChanged(topic, true);
        });
        this.#started = started;
        started.catch(() => {
            // A failed start may be tried again by the next runForever().
            if (this.#started === started)
                this.#started = undefined;
        });
        return started;
    }
    /** Closes the adapter if it was started (after its start settles); what it throws is logged. */
    async close() {
        const started = this.#started;
        if (started === undefined)
            return;
        this.#started = undefined;
        this.#ready = false;
        try {
            await started;
        }
        catch {
            return; // it never started: nothing to close
        }
        try {
            await this.#adapter.close();
        }
        catch (error) {
            this.#log.error(`the adapter could not close: ${describeError(error)}`);
        }
    }
    /** Hands a broadcast to the other servers: only while the adapter runs, since before and after nobody takes it. */
    publish(message, excluded, topic) {
        if (this.#started === undefined)
            return;
        const exclude = excluded === undefined ? [] : [...excluded];
        try {
            this.#adapter.publish(topic === undefined ? { origin: this.#serverId, message, exclude } : { origin: this.#serverId, message, exclude, topic });
            this.published++;
        }
        catch (error) {
            this.#log.error(`the adapter could not publish a broadcast: ${describeError(error)}`);
        }
    }
    /** A topic got its first subscriber on this server (`exists`), or lost its last: the adapter is told, once ready. */
    topicChanged(topic, exists) {
        if (!this.#ready)
            return;
        try {
            if (exists)
                this.#adapter.subscribe?.(topic);
            else
                this.#adapter.unsubscribe?.(topic);
        }
        catch (error) {
            this.#log.error(`the adapter could not ${exists ? 'subscribe to' : 'unsubscribe from'} topic '${topic}': ${describeError(error)}`);
        }
    }
    /** A broadcast from another server: sent to this server's clients (or a topic's subscribers), never published again. */
    #receive(broadcast) {
        const message = broadcast?.message;
        const givenTopic = broadcast?.topic;
        const topic = typeof givenTopic === 'string' && givenTopic !== '' ? givenTopic : undefined;
        if (typeof broadcast?.origin !== 'string' ||
            (typeof message !== 'string' && !(message instanceof Uint8Array)) ||
            (givenTopic !== undefined && topic === undefined)) {
            this.#log.error(`the adapter delivered something that is not a broadcast: ${describeType(broadcast)}`);
            return;
        }
        // An adapter may hand a server its own broadcasts back (Redis delivers to every subscriber): already sent.
        if (broadcast.origin === this.#serverId)
            return;
        this.received++;
        this.#host.deliver(message, topic);
    }
}
/**
 * Where a server's connections come from: its own port (plain TCP, or TLS with the configured key and
 * certificate), or the `'upgrade'` events of the application's server it is attached to. Every connection
 * goes to the opening handshake.
 */
class Listener {
    #options;
    #log;
    #handshake;
    /** Where an attached server's upgrades go: the server's `handleUpgrade`. */
    #upgrade;
    #listener;
    #boundPort;
    /** The application's server that `runForever()` attached to, while attached. */
    #attachedTo;
    /** Set when the listener ran out of descriptors, cleared when one is accepted: one error line per episode. */
    #outOfDescriptorsLogged = false;
    constructor(options, log, handshake, upgrade) {
        this.#options = options;
        this.#log = log;
        this.#handshake = handshake;
        this.#upgrade = upgrade;
    }
    get port() {
        const address = this.#attachedTo?.address();
        if (typeof address === 'object' && address !== null)
            return address.port;
        return this.#boundPort ?? this.#options.port;
    }
    get host() {
        const address = this.#attachedTo?.address();
        if (typeof address === 'object' && address !== null)
            return address.address;
        return this.#options.host;
    }
    get secure() {
        const server = this.#options.server;
        return server === undefined ? this.#options.key !== undefined : server instanceof TlsServer;
    }
    /**
     * Listens on the configured port, or attaches to the application's server. `overtaken` tells whether a
     * shutdown came meanwhile: the start then fails rather than listen for a server that was stopped.
     */
    async start(overtaken) {
        const server = this.#options.server;
        if (server !== undefined) {
            await this.#attach(server, overtaken);
            return;
        }
        const listener = this.#options.key === undefined
            ? createServer({ noDelay: true }, (socket) => this.#accept(socket))
            : await this.#createTlsListener();
        if (overtaken())
            throw new Error('Cannot start the server: it was shut down while starting.');
        await this.#listen(listener);
    }
    /** Stops accepting connections: closes the listener, or detaches from the application's server. */
    stop() {
        const listener = this.#listener;
        this.#listener = undefined;
        if (this.#attachedTo !== undefined) {
            this.#detach();
            this.#log.info("detached from the application's server");
        }
        if (listener === undefined)
            return Promise.resolve();
        return new Promise((resolve) => {
            listener.close(() => {
                this.#log.info('stopped listening');
                this.#boundPort = undefined;
                resolve();
            });
        });
    }
    /** A connection accepted by the listener (for TLS, once its TLS handshake is done). */
    #accept(socket, timeout) {
        this.#outOfDescriptorsLogged = false;
        this.#handshake.accept(socket, timeout);
    }
    #listen(listener) {
        this.#listener = listener;
        return new Promise((resolve, reject) => {
            const failToListen = (error) => {
                this.#listener = undefined;
                reject(error);
            };
            listener.once('error', failToListen);
            listener.listen(this.#options.port, this.#options.host, () => {
                listener.off('error', failToListen);
                listener.on('error', (error) => {
                    if (error.code !== 'EMFILE' && error.code !== 'ENFILE') {
                        this.#log.error(`listener error: ${describeError(error)}`);
                    }
                    else if (!this.#outOfDescriptorsLogged) {
                        this.#outOfDescriptorsLogged = true;
                        this.#log.error(`the process ran out of file descriptors (${error.code}): new connections are dropped unanswered; ` +
                            'raise the limit (ulimit -n) or lower maxConnections');
                    }
                });
                const address = listener.address();
                this.#boundPort = typeof address === 'object' && address !== null ? address.port : this.#options.port;
                this.#log.info(`listening on ${this.secure ? 'wss' : 'ws'}://${formatHostPort(this.#options.host, this.#boundPort)}`);
                resolve();
            });
        });
    }
    /**
     * A `node:tls` server with the configured key and certificate. Every way they can be unusable (a file that
     * cannot be read, bad PEM, a key that does not match the certificate, a wrong passphrase) rejects.
     */
    async #createTlsListener() {
        const [key, cert] = await Promise.all([readPem(this.#options.key, 'key'), readPem(this.#options.cert, 'cert')]);
        let listener;
        try {
            listener = createTlsServer(
            // Our own deadline (from TCP accept, see Handshake.acceptTlsConnection) ends a TLS handshake first; node:tls's timer,
            // which restarts at every byte received, stays as a fallback.
            { handshakeTimeout: 2 * this.#options.handshakeTimeout, ...this.#options.tls, key, cert, noDelay: true }, (socket) => this.#accept(socket, this.#handshake.timeLeftAfterTls(socket)));
        }
        catch (error) {
            throw errorWithCause(`Cannot start the server: the TLS key and certificate cannot be used (${describeError(error)}).`, error);
        }
        listener.on('connection', (socket) => this.#handshake.acceptTlsConnection(socket));
        // A client that fails its TLS handshake (e.g. plain HTTP on this port) concerns that client only; node:tls
        // leaves its socket open once this event has a listener, so it is closed here.
        listener.on('tlsClientError', (error, socket) => {
            this.#log.info(`TLS handshake with ${formatHostPort(socket.remoteAddress, socket.remotePort)} failed: ${describeError(error)}`);
            socket.destroy();
        });
        return listener;
    }
    /** Takes the upgrades of the application's server; resolves once that server listens. */
    #attach(server, overtaken) {
        this.#attachedTo = server;
        server.on('upgrade', this.#onAttachedUpgrade);
        if (server.listening) {
            this.#log.info(`attached to the application's server on ${formatHostPort(this.host, this.port)}`);
            return Promise.resolve();
        }
        return new Promise((resolve, reject) => {
            const listening = () => {
                server.off('error', failToListen);
                if (overtaken()) {
                    reject(new Error('Cannot start the server: it was shut down while starting.'));
                    return;
                }
                this.#log.info(`attached to the application's server on ${formatHostPort(this.host, this.port)}`);
                resolve();
            };
            const failToListen = (error) => {
                server.off('listening', listening);
                this.#detach();
                reject(error);
            };
            server.once('listening', listening);
            server.once('error', failToListen);
        });
    }
    /**
     * The `'upgrade'` listener on the application's server. With a `path`, an upgrade to another path is left to
     * the application's own `'upgrade'` listener when it has one, and answered 404 otherwise.
     */
    #onAttachedUpgrade = (request, socket, head) => {
        const path = this.#options.path;
        if (path !== undefined && pathOf(request.url ?? '/') !== path && (this.#attachedTo?.listenerCount('upgrade') ?? 0) > 1) {
            return;
        }
        this.#upgrade(request, socket, head);
    };
    #detach() {
        this.#attachedTo?.off('upgrade', this.#onAttachedUpgrade);
        this.#attachedTo = undefined;
    }
}
/**
 * The contents of a TLS `key` or `cert` option: the PEM or bytes given, or those of the file it names.
 * @throws an `Error` naming the file when it cannot be read.
 */
async function readPem(value, name) {
    if (typeof value !== 'string' || value.trimStart().startsWith('-----BEGIN'))
        return value;
    try {
        return await readFile(value);
    }
    catch (error) {
        throw errorWithCause(`Cannot start the server: the TLS ${name} file '${value}' cannot be read (${describeError(error)}).`, error);
    }
}
const kPendingHandshake = Symbol('websocket-server.pendingHandshake');
/**
 * Refusals that follow a failure of the application's own function: that failure is reported (as what the
 * function threw), the refusal is not reported again.
 */
const REFUSALS_AFTER_CALLBACK_FAILURE = new Set([
    'WS_ERR_HANDSHAKE_SUBPROTOCOL_CHOICE_FAILED',
    'WS_ERR_HANDSHAKE_AUTHENTICATION_FAILED',
]);
/**
 * The opening handshakes of a server, from TCP accept to the 101 response or the refusal. Tracks every socket
 * until then (counted toward `maxConnections`, timed by `handshakeTimeout`), reads the request head within its
 * limits, runs the checks in their fixed order, asks the application, and answers.
 */
class Handshake {
    #options;
    #log;
    #host;
    #deflateConfig;
    #zlibLimiter;
    /** The allowed origins, lower-cased; `undefined` allows every origin. */
    #origins;
    /** The sockets past TCP (and TLS) accept whose opening handshake has not ended. */
    #pending = new Set();
    /**
     * TCP connections to the TLS port still in their TLS handshake, with the time their opening handshake must be
     * done by: they count toward `maxConnections`, and `handshakeTimeout` runs from TCP accept, not from the end
     * of TLS (a socket that never starts TLS is otherwise held forever).
     */
    #inTls = new Map();
    /** Refusals by code, for `stats`. */
    #failures = {};
    /** The `trustProxy` rule; `undefined` when no proxy is trusted. */
    #proxyTrust;
    /** Set at the first trusted forwarding header that names no usable client: that one is a warning, later ones info. */
    #proxyWarned = false;
    #refusalLog;
    constructor(options, log, deflateConfig, zlibLimiter, host) {
        this.#options = options;
        this.#log = log;
        this.#deflateConfig = deflateConfig;
        this.#zlibLimiter = zlibLimiter;
        this.#host = host;
        this.#origins = options.origins && new Set(options.origins.map((origin) => origin.toLowerCase()));
        const trust = options.trustProxy;
        this.#proxyTrust = trust === false || trust === 0 || (Array.isArray(trust) && trust.length === 0) ? undefined : new ProxyTrust(trust);
        this.#refusalLog = new RefusalLog(log, options);
    }
    /** The refusals so far, by code: a copy. */
    failureCounts() {
        return { ...this.#failures };
    }
    /** A connection whose request head is yet to be read (for TLS: once TLS is done, with what is left of the time). */
    accept(socket, timeout = this.#options.handshakeTimeout) {
        const full = this.#atConnectionLimit();
        const proxied = this.#options.proxyProtocol;
        const pending = this.#track(socket, proxied ? 'proxy' : 'reading', proxied ? Math.min(timeout, this.#options.proxyProtocolTimeout) : timeout);
        if (proxied)
            pending.deadline = performance.now() + timeout;
        // Answered at once, before reading: holding the request of a connection we will refuse costs for nothing.
        if (full)
            this.#refuse(socket, handshakeFailure('TOO_MANY_CONNECTIONS'));
    }
    /** A connection whose request `node:http` has already read (`handleUpgrade`); `head` is what followed it. */
    takeOver(socket, request, head) {
        socket.setNoDelay(true);
        // node:http accepts with `allowHalfOpen: true`, so a client's FIN would leave our side open until the close
        // timeout. A WebSocket has no use for half of a TCP connection (RFC 6455 §7.1.1: the connection closes as a
        // whole); as on our own listener, the peer's end ends ours.
        socket.allowHalfOpen = false;
        const full = this.#atConnectionLimit();
        const pending = this.#track(socket, 'deciding');
        if (full) {
            this.#refuse(socket, handshakeFailure('TOO_MANY_CONNECTIONS'));
            return;
        }
        pending.bytes = head;
        this.#decide(socket, pending, requestHeadFromIncomingMessage(request));
    }
    /** A TCP connection to the TLS port, before its TLS handshake: counted, timed, or refused at once. */
    acceptTlsConnection(socket) {
        if (this.#atConnectionLimit()) {
            // No HTTP answer is possible before TLS, and doing TLS for a refusal costs the most CPU of all.
            this.#dropDuringTls(socket, handshakeFailure('TOO_MANY_CONNECTIONS'));
            return;
        }
        const timeout = this.#options.handshakeTimeout;
        const timer = setTimeout(() => {
            if (this.#leaveTls(socket) !== undefined)
                this.#dropDuringTls(socket, handshakeFailure('HANDSHAKE_TIMEOUT'));
        }, timeout);
        this.#inTls.set(socket, { timer, deadline: performance.now() + timeout });
        socket.once('close', () => this.#leaveTls(socket));
    }
    /** A connection that completed TLS: stops timing its TLS phase; returns what is left of `handshakeTimeout`. */
    timeLeftAfterTls(socket) {
        // node:tls keeps the TCP socket a TLS socket wraps as `_parent` (not part of its typed API).
        const tcp = socket._parent;
        const entry = tcp instanceof Socket ? this.#leaveTls(tcp) : undefined;
        return entry === undefined ? this.#options.handshakeTimeout : Math.max(1, Math.ceil(entry.deadline - performance.now()));
    }
    /** Drops every connection still in its handshake (the server stops). */
    dropAll() {
        for (const socket of this.#pending)
            socket.destroy();
        for (const socket of this.#inTls.keys())
            socket.destroy();
    }
    // ── tracking: limits, timers, the socket's listeners ─────────────────────────────────────────────────────
    /** Whether `maxConnections` is reached, counting the connections still in their handshake. */
    #atConnectionLimit() {
        return this.#host.connectionCount() + this.#pending.size + this.#inTls.size >= this.#options.maxConnections;
    }
    /** Stops tracking a TCP socket's TLS phase; returns its entry, if it was in that phase. */
    #leaveTls(socket) {
        const entry = this.#inTls.get(socket);
        if (entry === undefined)
            return undefined;
        clearTimeout(entry.timer);
        this.#inTls.delete(socket);
        return entry;
    }
    /** Logs, counts and drops a connection refused before it could get an HTTP answer (still in its TLS handshake). */
    #dropDuringTls(socket, error) {
        this.#refusalLog.refused(error, `dropped a connection from ${formatHostPort(socket.remoteAddress, socket.remotePort)} during TLS: ${error.message}`);
        this.#countFailure(socket, error);
        socket.destroy();
    }
    /** Counts a refusal by its code in `stats`, and publishes it to diagnostics subscribers. */
    #countFailure(socket, error) {
        this.#failures[error.code] = (this.#failures[error.code] ?? 0) + 1;
        if (channels.handshakeRefused.hasSubscribers)
            publishRefusal(this.#host.server, socket, error);
    }
    /** Watches a socket until its handshake completes or is refused: timer, listeners, shutdown. */
    #track(socket, phase, timeout = this.#options.handshakeTimeout) {
        this.#pending.add(socket);
        const pending = {
            handshake: this,
            phase,
            bytes: undefined,
            timer: setTimeout(_a.#onTimeout, timeout, socket),
        };
        socket[kPendingHandshake] = pending;
        socket.on('data', _a.#onSocketData);
        socket.on('error', _a.#onSocketError);
        socket.on('close', _a.#onSocketClose);
        return pending;
    }
    // The socket's listeners, for its whole life (not swapped at the upgrade, which would cost six listener
    // changes per connection): the handshake's work first, then its ClientHandler's.
    static #onSocketData(chunk) {
        const handler = this[kHandler];
        if (handler !== undefined) {
            connectionInternals.receive(handler, chunk);
            return;
        }
        const pending = this[kPendingHandshake];
        if (pending === undefined)
            return;
        if (pending.phase === 'reading')
            pending.handshake.#readRequestHead(this, pending, chunk);
        else if (pending.phase === 'proxy')
            pending.handshake.#readProxyHeader(this, pending, chunk);
        else if (pending.phase === 'deciding')
            pending.bytes = concatBytes(pending.bytes, chunk);
    }
    static #onSocketError(error) {
        const handler = this[kHandler];
        if (handler !== undefined) {
            connectionInternals.socketError(handler, error);
            return;
        }
        const pending = this[kPendingHandshake];
        if (pending !== undefined)
            pending.handshake.#log.debug(`connection error during handshake: ${describeError(error)}`);
    }
    static #onSocketClose() {
        const handler = this[kHandler];
        if (handler !== undefined) {
            connectionInternals.socketClosed(handler);
            return;
        }
        const pending = this[kPendingHandshake];
        if (pending === undefined)
            return;
        clearTimeout(pending.timer);
        this[kPendingHandshake] = undefined;
        pending.handshake.#pending.delete(this);
    }
    static #onTimeout(socket) {
        const pending = socket[kPendingHandshake];
        if (pending === undefined)
            return;
        if (pending.phase === 'refused') {
            // A refusal was sent but the peer has not closed: stop waiting for it.
            socket.destroy();
            return;
        }
        if (pending.phase === 'proxy') {
            pending.handshake.#dropWithoutProxyHeader(socket, handshakeFailure('PROXY_HEADER_TIMEOUT'));
            return;
        }
        pending.handshake.#refuse(socket, handshakeFailure(pending.phase === 'deciding' ? 'AUTHENTICATION_TIMEOUT' : 'HANDSHAKE_TIMEOUT'));
    }
    // ── the PROXY header, before the request ─────────────────────────────────────────────────────────────────
    /**
     * Collects the PROXY header across TCP chunks (with `proxyProtocol`); once complete, the client's address is
     * noted, the rest of the time is `handshakeTimeout`'s, and the bytes after the header are the request head.
     */
    #readProxyHeader(socket, pending, chunk) {
        const bytes = concatBytes(pending.bytes, chunk);
        const header = parseProxyHeader(bytes);
        if (header === 'incomplete') {
            pending.bytes = bytes;
            return;
        }
        if (header instanceof HandshakeError) {
            this.#dropWithoutProxyHeader(socket, header);
            return;
        }
        pending.source = header.source;
        pending.phase = 'reading';
        pending.bytes = undefined;
        clearTimeout(pending.timer);
        pending.timer = setTimeout(_a.#onTimeout, Math.max(1, Math.ceil(pending.deadline - performance.now())), socket);
        if (bytes.length > header.length)
            this.#readRequestHead(socket, pending, bytes.subarray(header.length));
    }
    /**
     * Closes a connection whose PROXY header is missing, malformed, too long or late, without an answer: the peer
     * is a proxy that speaks another protocol, or not a proxy at all. Counted in `stats` like a refusal.
     */
    #dropWithoutProxyHeader(socket, error) {
        const pending = socket[kPendingHandshake];
        pending.phase = 'refused';
        pending.bytes = undefined;
        this.#refusalLog.refused(error, `closed a connection from ${formatHostPort(socket.remoteAddress, socket.remotePort)}: ${error.message}`);
        this.#countFailure(socket, error);
        this.#host.refused(error);
        socket.destroy();
    }
    /** The client's address: the peer's (or the PROXY header's), else what the proxies trusted by `trustProxy` say. */
    #clientAddress(socket, head) {
        const peer = socket[kPendingHandshake]?.source ?? { host: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
        if (this.#proxyTrust === undefined)
            return peer;
        const origin = this.#proxyTrust.clientOrigin(peer, head.headers);
        if (origin.problem !== undefined) {
            const level = this.#proxyWarned ? 'info' : 'warning';
            this.#proxyWarned = true;
            this.#log.log(level, `the client address of a request from ${formatHostPort(peer.host, peer.port)} is that proxy's own: ${origin.problem}`);
        }
        return origin.address;
    }
    // ── the request: read, checked, decided ───────────────────────────────────────────────────────────────────
    /** Collects the request head across TCP chunks, enforcing the size limits as it grows. */
    #readRequestHead(socket, pending, chunk) {
        const previousLength = pending.bytes?.length ?? 0;
        const head = concatBytes(pending.bytes, chunk);
        // Resume the search a little before the new bytes: the terminator may straddle two chunks.
        const end = head.indexOf('\r\n\r\n', Math.max(0, previousLength - 3), 'latin1');
        if (end === -1) {
            pending.bytes = head;
            const failure = checkIncompleteHead(head, previousLength, this.#options.maxHeaderSize);
            if (failure !== undefined)
                this.#refuse(socket, failure);
            return;
        }
        if (end + 4 > this.#options.maxHeaderSize) {
            this.#refuse(socket, handshakeFailure('HEADERS_TOO_LARGE'));
            return;
        }
        // What follows the head is frames: hold it until the handshake is decided.
        pending.phase = 'deciding';
        pending.bytes = head.subarray(end + 4);
        this.#decide(socket, pending, parseRequestHead(head.toString('latin1', 0, end)));
    }
    /** Runs the checks on a complete request head; the first that fails is the answer, else the application is asked. */
    #decide(socket, pending, parsed) {
        const checked = parsed instanceof HandshakeError ? parsed : this.#check(socket, parsed);
        if (checked instanceof HandshakeError)
            this.#refuse(socket, checked);
        else
            this.#authenticate(socket, pending, checked.request, checked.accepted);
    }
    /**
     * The checks of a request head, in their fixed order: the path, availability, the RFC 6455 §4.1 rules, the
     * offered subprotocols, the Origin, the offered extensions, then the subprotocol choice.
     * @returns the request and what the handshake settled so far, or the refusal.
     */
    #check(socket, head) {
        // §4.2.2 /resource name/: "If the requested service is not available, the server MUST send [...] 404".
        if (this.#options.path !== undefined && pathOf(head.target) !== this.#options.path)
            return handshakeFailure('NOT_FOUND');
        if (!this.#host.accepting())
            return handshakeFailure('NOT_ACCEPTING');
        const key = checkUpgradeRequest(head);
        if (key instanceof HandshakeError)
            return key;
        const offered = parseSubprotocolList(head.headers['sec-websocket-protocol']);
        if (offered instanceof HandshakeError)
            return offered;
        // §10.2: an Origin the server does not expect is refused with 403, before the application is asked.
        const origin = head.headers['origin'];
        if (this.#origins !== undefined && origin !== undefined && !this.#origins.has(origin.toLowerCase())) {
            return handshakeFailure('ORIGIN_NOT_ALLOWED');
        }
        const deflate = this.#negotiateDeflate(head.headers['sec-websocket-extensions']);
        if (deflate instanceof HandshakeError)
            return deflate;
        const client = this.#clientAddress(socket, head);
        const request = new UpgradeRequest(head, client.host, client.port);
        const protocol = this.#chooseSubprotocol(offered, request);
        if (protocol instanceof HandshakeError)
            return protocol;
        return { request, accepted: { key, protocol, data: undefined, deflate } };
    }
    /** The permessage-deflate agreement (RFC 7692 §5), if the server enables it and the client offers it. */
    #negotiateDeflate(extensions) {
        if (this.#deflateConfig === undefined || extensions === undefined)
            return undefined;
        const offers = parseExtensionOffers(extensions);
        if (offers === undefined)
            return handshakeFailure('INVALID_EXTENSIONS');
        return negotiateDeflate(offers, this.#deflateConfig);
    }
    /**
     * Picks the subprotocol (RFC 6455 §4.2.2 /subprotocol/): the first of the server's list that the client
     * offered, or what the application's function picks among the offered ones.
     * @returns the subprotocol, `''` for none, or the refusal.
     */
    #chooseSubprotocol(offered, request) {
        const subprotocols = this.#options.subprotocols;
        let chosen;
        if (subprotocols === undefined || offered.length === 0) {
            chosen = undefined;
        }
        else if (typeof subprotocols !== 'function') {
            chosen = subprotocols.find((protocol) => offered.includes(protocol));
        }
        else {
            try {
                chosen = subprotocols(offered, request);
                checkChosenSubprotocol(chosen, offered);
            }
            catch (error) {
                this.#host.callbackFailed(error, 'subprotocols');
                return handshakeFailure('SUBPROTOCOL_CHOICE_FAILED');
            }
        }
        if (typeof chosen === 'string')
            return chosen;
        return this.#options.requireSubprotocol ? handshakeFailure('SUBPROTOCOL_REQUIRED') : '';
    }
    /** Asks `setFnAuthenticate`, if set; a promised answer is awaited with reading paused. */
    #authenticate(socket, pending, request, accepted) {
        const authenticate = this.#host.authenticator();
        if (authenticate === undefined) {
            this.#complete(socket, request, accepted);
            return;
        }
        let verdict;
        try {
            verdict = authenticate(request);
        }
        catch (error) {
            this.#refuse(socket, this.#authenticationFailed(error));
            return;
        }
        if (!isPromiseLike(verdict)) {
            this.#conclude(socket, request, this.#applyVerdict(verdict, accepted));
            return;
        }
        // Reading pauses while the application decides, so the bytes held meanwhile stay few.
        socket.pause();
        const stillWaiting = () => {
            if (socket.destroyed || socket[kPendingHandshake] !== pending || pending.phase !== 'deciding')
                return false;
            socket.resume();
            return true;
        };
        verdict.then((resolved) => {
            if (stillWaiting())
                this.#conclude(socket, request, this.#applyVerdict(resolved, accepted));
        }, (error) => {
            if (stillWaiting())
                this.#refuse(socket, this.#authenticationFailed(error));
        });
    }
    /**
     * What `setFnAuthenticate` decided (see {@link AuthenticateResult}): the handshake to complete, or the refusal.
     * Anything unexpected fails closed.
     */
    #applyVerdict(verdict, accepted) {
        if (verdict === true)
            return accepted;
        if (typeof verdict !== 'object' || verdict === null)
            return handshakeFailure('FORBIDDEN');
        if ('status' in verdict) {
            try {
                return applicationRefusal(verdict);
            }
            catch (error) {
                return this.#authenticationFailed(error);
            }
        }
        if ('data' in verdict)
            return { ...accepted, data: verdict.data };
        return this.#authenticationFailed(new TypeError(`setFnAuthenticate returned ${describeType(verdict)}: return true, false, { data } or { status }.`));
    }
    /** Reports what `setFnAuthenticate` threw (or got wrong); the refusal that follows answers 500. */
    #authenticationFailed(error) {
        this.#host.callbackFailed(error, 'authenticate');
        return handshakeFailure('AUTHENTICATION_FAILED');
    }
    #conclude(socket, request, outcome) {
        if (outcome instanceof HandshakeError)
            this.#refuse(socket, outcome);
        else
            this.#complete(socket, request, outcome);
    }
    // ── the answer ───────────────────────────────────────────────────────────────────────────────────────────
    /** The one place a handshake is refused: an HTTP error response, then the connection closes. */
    #refuse(socket, error) {
        const pending = socket[kPendingHandshake];
        if (pending === undefined || pending.phase === 'refused')
            return;
        pending.phase = 'refused';
        pending.bytes = undefined;
        socket.resume();
        this.#refusalLog.refused(error, `refused a handshake from ${formatHostPort(socket.remoteAddress, socket.remotePort)}: ${error.status} ${error.message}`);
        this.#countFailure(socket, error);
        if (!REFUSALS_AFTER_CALLBACK_FAILURE.has(error.code))
            this.#host.refused(error);
        // The descriptor is freed as soon as the answer (and our FIN) has reached the kernel, which delivers it:
        // a refused connection, above all one refused for want of room, must not hold a descriptor for seconds.
        socket.end(httpErrorResponse(error), 'utf8', () => socket.destroy());
        // A peer that does not read the answer keeps it from leaving: drop it after closeTimeout all the same.
        clearTimeout(pending.timer);
        pending.timer = setTimeout(_a.#onTimeout, this.#options.closeTimeout, socket);
    }
    /** Sends the 101 response and hands the socket to the server as a client (RFC 6455 §4.2.2). */
    #complete(socket, request, accepted) {
        const pending = socket[kPendingHandshake];
        const firstFrames = pending?.bytes ?? EMPTY;
        if (pending !== undefined)
            clearTimeout(pending.timer);
        socket[kPendingHandshake] = undefined;
        this.#pending.delete(socket);
        if (socket.destroyed)
            return;
        socket.write('HTTP/1.1 101 Switching Protocols\r\n' +
            'Upgrade: websocket\r\n' +
            'Connection: Upgrade\r\n' +
            `Sec-WebSocket-Accept: ${acceptKeyFor(accepted.key)}\r\n` +
            `${negotiatedHeaderLines(accepted)}\r\n`, 'latin1');
        const codec = accepted.deflate && new DeflateCodec(accepted.deflate, this.#deflateConfig, this.#zlibLimiter, this.#options.maxMessageSize);
        // An idle connection keeps the header fields, not the request head they were parsed from.
        request.detach();
        const handler = this.#host.connect(socket, request, accepted, codec);
        if (firstFrames.length > 0)
            connectionInternals.receive(handler, firstFrames);
    }
}
_a = Handshake;
/** At most one warning per kind of refusal in this many milliseconds; the others are logged at `info`. */
const REFUSAL_WARNING_INTERVAL = 60_000;
/**
 * What an operator should check when a kind of refusal happens, as the warning about it says. Kinds without a hint
 * are logged at `info` only: the application's own refusals (`setFnAuthenticate`: FORBIDDEN, REFUSED), and those
 * that follow a failure of its function, which is logged at `error` already.
 */
const REFUSAL_HINTS = {
    MALFORMED_REQUEST_LINE: () => 'a client that does not speak HTTP/1.1: a port scanner, or a TLS client on a plain ws:// port?',
    MALFORMED_HEADER: () => 'a client or proxy that sends malformed header lines',
    BARE_LINE_FEED: () => 'a hand-written client that ends lines with LF alone instead of CR LF',
    HTTP_VERSION_TOO_OLD: () => 'a proxy that speaks HTTP/1.0 upstream? (nginx: proxy_http_version 1.1)',
    HTTP_VERSION_NOT_SUPPORTED: () => 'a client or proxy speaking HTTP/2 or later to us: make the proxy speak HTTP/1.1 upstream',
    REQUEST_LINE_TOO_LONG: () => 'clients put long query strings in the URL: move the data into the first message',
    HEADERS_TOO_LARGE: (options) => `large cookies, or headers a proxy adds? raise maxHeaderSize (now ${options.maxHeaderSize} bytes) if the clients are yours`,
    TOO_MANY_HEADERS: () => 'a client or a chain of proxies that sends more header fields than any browser does',
    NOT_ACCEPTING: () => 'denyNewConnections() was called, or the signal option was aborted: call allowNewConnections() to accept again',
    TOO_MANY_CONNECTIONS: (options) => `maxConnections (${options.maxConnections}) is reached: new connections are refused until some leave; raise ` +
        'maxConnections (and the descriptor limit, ulimit -n) if the machine can hold more',
    METHOD_NOT_ALLOWED: () => 'a health check or crawler sends other methods than GET here: point it at another path',
    UPGRADE_REQUIRED: () => 'a request reached us without "Upgrade: websocket": a proxy that drops hop-by-hop headers? (nginx: ' +
        'proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"), or a plain HTTP request',
    MISSING_CONNECTION_UPGRADE: () => 'a proxy that drops or rewrites the Connection header? (nginx: proxy_set_header Connection "upgrade")',
    MISSING_HOST: () => 'a hand-written client that sends no Host header',
    MISSING_VERSION: () => 'a client that is not a WebSocket client, or a proxy that drops Sec-WebSocket-* headers',
    UNSUPPORTED_VERSION: () => 'an old WebSocket client (only version 13, RFC 6455, is spoken)',
    INVALID_KEY: () => 'a client or proxy that mangles Sec-WebSocket-Key',
    UNEXPECTED_BODY: () => 'a client that sends a body with its upgrade request',
    INVALID_EXTENSIONS: () => 'a client whose Sec-WebSocket-Extensions header is malformed',
    NOT_FOUND: (options) => `clients ask for another path than '${options.path ?? ''}': check their URL, and whether a proxy rewrites it`,
    INVALID_SUBPROTOCOLS: () => 'a client whose Sec-WebSocket-Protocol header is malformed',
    ORIGIN_NOT_ALLOWED: () => 'a page from an origin not in the origins option: add it there if the page is yours',
    SUBPROTOCOL_REQUIRED: () => 'clients offer none of the subprotocols option: an old version of the client?',
    AUTHENTICATION_TIMEOUT: (options) => `setFnAuthenticate did not answer within handshakeTimeout (${options.handshakeTimeout} ms): a slow session store?`,
    PROXY_HEADER_INVALID: () => 'a peer that does not speak the PROXY protocol though proxyProtocol is on: a client that went around the proxy, ' +
        "or a proxy not told to send it (HAProxy: send-proxy; nginx stream: proxy_protocol on)",
    PROXY_HEADER_TOO_LONG: () => 'a proxy that adds large TLVs to its PROXY v2 header, or a peer that is not a proxy',
    PROXY_HEADER_TIMEOUT: (options) => `peers that send no PROXY header within proxyProtocolTimeout (${options.proxyProtocolTimeout} ms): a health ` +
        'check that connects to the port directly, or a client that went around the proxy',
    HANDSHAKE_TIMEOUT: (options) => `clients that do not complete their request within handshakeTimeout (${options.handshakeTimeout} ms): idle proxy ` +
        'connections, slow networks, a TLS client on a plain port, or a slow-loris attack',
};
/**
 * The log of refusals an operator can act on: the first refusal of each kind (by its stable code) is a warning
 * with a hint, as is the first after {@link REFUSAL_WARNING_INTERVAL}, which also counts those logged at `info`
 * meanwhile. The default level (`warning`) thus says why upgrades fail when a proxy or a setting breaks them all,
 * without a line per request. Memory is bounded: one entry per kind, and the kinds are a fixed set.
 */
class RefusalLog {
    #log;
    #options;
    /** By refusal code: when its last warning was written, and how many refusals were logged at info since. */
    #warned = new Map();
    constructor(log, options) {
        this.#log = log;
        this.#options = options;
    }
    /** Logs `line`, the refusal's own: as a warning with a hint, or at info when this kind warned recently. */
    refused(error, line) {
        const hint = REFUSAL_HINTS[error.code.slice('WS_ERR_HANDSHAKE_'.length)];
        if (hint === undefined || !this.#log.enabled('warning')) {
            this.#log.info(line);
            return;
        }
        // Wall-clock time, read only on refusals: coarse enough for a once-a-minute limit.
        const now = Date.now();
        const last = this.#warned.get(error.code);
        if (last !== undefined && now - last.at < REFUSAL_WARNING_INTERVAL) {
            last.since++;
            this.#log.info(line);
            return;
        }
        this.#warned.set(error.code, { at: now, since: 0 });
        const count = last === undefined
            ? 'the first of its kind'
            : `${last.since} more of its kind since the last warning ${Math.round((now - last.at) / 1000)} s ago`;
        this.#log.log('warning', `${line} (${count}; at most one warning a minute for ${error.status} ${error.code}, the others at info). ` +
            `Check: ${hint(this.#options)}.`);
    }
}
/**
 * The header lines of the 101 response that depend on what was negotiated (RFC 6455 §4.2.2 item 5), each
 * ending in CR LF: `Sec-WebSocket-Protocol` when a subprotocol was agreed on, else nothing.
 */
function negotiatedHeaderLines(accepted) {
    let lines = '';
    if (accepted.protocol !== '')
        lines += `Sec-WebSocket-Protocol: ${accepted.protocol}\r\n`;
    if (accepted.deflate !== undefined)
        lines += `Sec-WebSocket-Extensions: ${accepted.deflate.response}\r\n`;
    return lines;
}
/**
 * The handshake request as kept on a client: parsed once, the query and cookies only when asked for. The head as
 * received is not kept: a connection holds its header fields (at most `maxHeaderSize`), nothing twice.
 */
class UpgradeRequest {
    method;
    url;
    remoteAddress;
    remotePort;
    /** The parsed fields while the handshake runs (and once asked for again); `undefined` while idle. */
    #headers;
    /** The parsed fields packed in one string, `name LF value LF …`: what an idle connection keeps. */
    #packedHeaders = '';
    #query;
    #cookies;
    constructor(head, remoteAddress, remotePort) {
        this.method = head.method;
        this.url = head.target;
        this.#headers = head.headers;
        this.remoteAddress = remoteAddress;
        this.remotePort = remotePort;
    }
    get path() {
        return pathOf(this.url);
    }
    get headers() {
        this.#headers ??= unpackHeaders(this.#packedHeaders);
        return this.#headers;
    }
    /**
     * For the life of the connection: keeps the fields as one string of their own (neither a dictionary, which costs
     * more than the text, nor substrings, which would keep the whole request head alive), and forgets what was
     * derived for the handshake. What is read again is unpacked again, without parsing or checking.
     */
    detach() {
        this.url = ownCopy(this.url);
        this.#packedHeaders = packHeaders(this.headers);
        this.#headers = undefined;
        this.#query = undefined;
        this.#cookies = undefined;
    }
    get query() {
        if (this.#query === undefined) {
            const queryStart = this.url.indexOf('?');
            this.#query = new URLSearchParams(queryStart === -1 ? '' : this.url.slice(queryStart + 1));
        }
        return this.#query;
    }
    get cookies() {
        this.#cookies ??= parseCookies(this.headers['cookie']);
        return this.#cookies;
    }
    get origin() {
        return this.headers['origin'];
    }
}
/** Header fields as one string, `name LF value LF …` (neither a token nor a checked value holds a line feed). */
function packHeaders(headers) {
    let packed = '';
    for (const name in headers)
        packed += `${packed === '' ? '' : '\n'}${name}\n${headers[name]}`;
    return ownCopy(packed);
}
function unpackHeaders(packed) {
    const headers = Object.create(null);
    if (packed === '')
        return headers;
    const parts = packed.split('\n');
    for (let i = 0; i + 1 < parts.length; i += 2)
        headers[parts[i]] = parts[i + 1];
    return headers;
}
/**
 * A copy of a string that shares no memory with the string it was cut from. V8 makes a substring of 13 or more
 * characters a view of its source, which would keep a whole request head alive for one header value.
 */
function ownCopy(text) {
    if (text.length < 13)
        return text;
    // Header fields are Latin-1 as received; anything wider is copied as UTF-16, which is exact for every string.
    const encoding = /[^\x00-\xff]/.test(text) ? 'utf16le' : 'latin1';
    return Buffer.from(text, encoding).toString(encoding);
}
/** The path part of a request target: what comes before its query. */
function pathOf(target) {
    const queryStart = target.indexOf('?');
    return queryStart === -1 ? target : target.slice(0, queryStart);
}
/**
 * Parses a `Cookie` header (RFC 6265 §4.2.1: `name=value` pairs separated by `; `) into values by name. Values
 * stay as sent, but for the optional double quotes around them; the first of a repeated name wins (RFC 6265
 * §5.4 sends the most specific cookie first). Pairs without a name or `=` are skipped.
 */
function parseCookies(header) {
    const cookies = Object.create(null);
    if (header === undefined)
        return cookies;
    for (const pair of header.split(';')) {
        const equals = pair.indexOf('=');
        if (equals === -1)
            continue;
        const name = pair.slice(0, equals).trim();
        if (name === '' || name in cookies)
            continue;
        const value = pair.slice(equals + 1).trim();
        cookies[name] = value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
    }
    return cookies;
}
/** Header fields that must appear at most once in an opening handshake (RFC 6455 §4.1, §11.3; RFC 9110 §7.2). */
const SINGLE_VALUED_HEADERS = new Set(['host', 'sec-websocket-key', 'sec-websocket-version']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/;
/** Field values may hold visible ASCII, spaces, tabs and obs-text; no other control characters (RFC 9110 §5.5). */
const INVALID_FIELD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
/**
 * Refuses an incomplete head early: when it can no longer fit the limits, or when its new bytes (from
 * `checkedLength` on) hold a line feed without a carriage return, which would never end the head.
 */
function checkIncompleteHead(head, checkedLength, maxHeaderSize) {
    for (let lf = head.indexOf(0x0a, checkedLength); lf !== -1; lf = head.indexOf(0x0a, lf + 1)) {
        if (lf === 0 || head[lf - 1] !== 0x0d)
            return handshakeFailure('BARE_LINE_FEED');
    }
    const lineEnd = head.indexOf('\r\n', 0, 'latin1');
    if (lineEnd === -1 ? head.length > MAX_REQUEST_LINE : lineEnd > MAX_REQUEST_LINE) {
        return handshakeFailure('REQUEST_LINE_TOO_LONG');
    }
    if (head.length >= maxHeaderSize)
        return handshakeFailure('HEADERS_TOO_LARGE');
    return undefined;
}
/** Parses an HTTP/1.1 request head (RFC 9112 §2–§5), without its final empty line. Strict: no obs-fold, no bare LF. */
function parseRequestHead(text) {
    const lines = text.split('\r\n');
    const requestLine = REQUEST_LINE.exec(lines[0]);
    if (requestLine === null)
        return handshakeFailure('MALFORMED_REQUEST_LINE');
    const [, method, target, major, minor] = requestLine;
    if (lines[0].length > MAX_REQUEST_LINE)
        return handshakeFailure('REQUEST_LINE_TOO_LONG');
    if (major !== '1')
        return handshakeFailure('HTTP_VERSION_NOT_SUPPORTED');
    // RFC 6455 §4.1: "the HTTP version MUST be at least 1.1".
    if (minor === '0')
        return handshakeFailure('HTTP_VERSION_TOO_OLD');
    if (lines.length - 1 > MAX_HEADER_COUNT)
        return handshakeFailure('TOO_MANY_HEADERS');
    const headers = Object.create(null);
    const repeated = new Set();
    for (let i = 1; i < lines.length; i++) {
        const line = lines[i];
        const colon = line.indexOf(':');
        // A name must be a token directly followed by the colon; a leading space would be obs-fold (RFC 9112 §5.2).
        if (colon <= 0)
            return handshakeFailure('MALFORMED_HEADER');
        const name = line.slice(0, colon);
        if (!TOKEN.test(name))
            return handshakeFailure('MALFORMED_HEADER');
        const value = trimFieldValue(line.slice(colon + 1));
        if (INVALID_FIELD_VALUE.test(value))
            return handshakeFailure('MALFORMED_HEADER');
        addHeader(headers, repeated, name, value);
    }
    return { method, target, headers, repeated };
}
/** Header fields by lower-case name from node:http's raw pairs, noting repeated single-valued ones. */
function collectHeaders(source) {
    const headers = Object.create(null);
    const repeated = new Set();
    for (let i = 0; i + 1 < source.length; i += 2)
        addHeader(headers, repeated, source[i], source[i + 1]);
    return { headers, repeated };
}
/** A field value without the optional whitespace (spaces and tabs) around it (RFC 9110 §5.5). */
function trimFieldValue(value) {
    let start = 0;
    let end = value.length;
    while (start < end && (value.charCodeAt(start) === 0x20 || value.charCodeAt(start) === 0x09))
        start++;
    while (end > start && (value.charCodeAt(end - 1) === 0x20 || value.charCodeAt(end - 1) === 0x09))
        end--;
    return start === 0 && end === value.length ? value : value.slice(start, end);
}
/** The same request head, from a request that `node:http` has already parsed (its raw, unmerged headers). */
function requestHeadFromIncomingMessage(request) {
    if (request.httpVersionMajor !== 1)
        return handshakeFailure('HTTP_VERSION_NOT_SUPPORTED');
    if (request.httpVersionMinor === 0)
        return handshakeFailure('HTTP_VERSION_TOO_OLD');
    const raw = request.rawHeaders;
    if (raw.length / 2 > MAX_HEADER_COUNT)
        return handshakeFailure('TOO_MANY_HEADERS');
    const { headers, repeated } = collectHeaders(raw);
    return { method: request.method ?? '', target: request.url ?? '/', headers, repeated };
}
/** Adds a field by its lower-case name, joining repeats as a list and noting repeats of single-valued ones. */
function addHeader(headers, repeated, name, value) {
    const key = name.toLowerCase();
    const existing = headers[key];
    if (existing === undefined) {
        headers[key] = value;
        return;
    }
    if (SINGLE_VALUED_HEADERS.has(key))
        repeated.add(key);
    headers[key] = `${existing}${key === 'cookie' ? '; ' : ', '}${value}`;
}
/**
 * Checks an opening handshake request (RFC 6455 §4.2.1), in a fixed order.
 * @returns the client's `Sec-WebSocket-Key`, or the refusal.
 */
function checkUpgradeRequest(head) {
    const { headers } = head;
    if (head.method !== 'GET')
        return handshakeFailure('METHOD_NOT_ALLOWED');
    if (!hasToken(headers['upgrade'], 'websocket'))
        return handshakeFailure('UPGRADE_REQUIRED');
    if (!hasToken(headers['connection'], 'upgrade'))
        return handshakeFailure('MISSING_CONNECTION_UPGRADE');
    if (headers['host'] === undefined || head.repeated.has('host'))
        return handshakeFailure('MISSING_HOST');
    const version = headers['sec-websocket-version'];
    if (version === undefined)
        return handshakeFailure('MISSING_VERSION');
    // §4.4: a version we do not speak gets 426 and the list of versions we do.
    if (version !== '13' || head.repeated.has('sec-websocket-version'))
        return handshakeFailure('UNSUPPORTED_VERSION');
    const key = headers['sec-websocket-key'];
    // §4.1: the key is a base64-encoded 16-byte value, i.e. 22 characters and '=='.
    if (key === undefined || head.repeated.has('sec-websocket-key') || !/^[A-Za-z0-9+/]{21}[AQgw]==$/.test(key)) {
        return handshakeFailure('INVALID_KEY');
    }
    // A GET that announces a body would have its bytes read as frames.
    const contentLength = headers['content-length'];
    if ((contentLength !== undefined && contentLength !== '0') || headers['transfer-encoding'] !== undefined) {
        return handshakeFailure('UNEXPECTED_BODY');
    }
    return key;
}
/**
 * The subprotocols a client offers, in its order of preference: `Sec-WebSocket-Protocol` is `1#token`, its
 * elements unique (RFC 6455 §4.1 item 10); empty list elements are ignored (RFC 9110 §5.6.1.2), and repeated
 * fields have already been joined into one list (§11.3.4).
 * @returns the offered names (none without the header), or the refusal.
 */
function parseSubprotocolList(value) {
    if (value === undefined)
        return [];
    // A set, not `includes` on the list: thousands of distinct names must not cost a quadratic check.
    const offered = new Set();
    for (const element of value.split(',')) {
        const protocol = element.trim();
        if (protocol === '')
            continue;
        if (!TOKEN.test(protocol) || offered.has(protocol))
            return handshakeFailure('INVALID_SUBPROTOCOLS');
        offered.add(protocol);
    }
    return offered.size > 0 ? [...offered] : handshakeFailure('INVALID_SUBPROTOCOLS');
}
/**
 * Checks what a subprotocol function returned: one of the offered names, or `undefined`/`null` for none.
 * §4.2.2: the value "MUST be derived from the client's handshake".
 * @throws {TypeError} for another type, {@link RangeError} for a name the client did not offer.
 */
function checkChosenSubprotocol(chosen, offered) {
    if (chosen === undefined || chosen === null)
        return;
    if (typeof chosen !== 'string') {
        throw new TypeError(`The subprotocols function returned ${isPromiseLike(chosen) ? 'a promise' : describeType(chosen)}: ` +
            'it must return one of the offered subprotocols, undefined or null, synchronously.');
    }
    if (!offered.includes(chosen)) {
        throw new RangeError(`The subprotocols function chose '${chosen}', which the client did not offer (it offered ${offered.join(', ')}): ` +
            'only an offered subprotocol may be chosen (RFC 6455 §4.2.2).');
    }
}
/** Header fields that the response to a refusal sets itself, so that `setFnAuthenticate` may not. */
const REFUSAL_OWN_HEADERS = new Set(['connection', 'content-length', 'content-type', 'transfer-encoding']);
/**
 * The refusal that `setFnAuthenticate` asked for with `{ status, headers?, message? }`.
 * @throws {TypeError} or {@link RangeError} when it is not a 4xx/5xx status with valid header fields.
 */
function applicationRefusal(verdict) {
    const { status, headers = {}, message } = verdict;
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) {
        throw new RangeError(`setFnAuthenticate refused with status ${String(status)}: a refusal needs a status from 400 to 599.`);
    }
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
        throw new TypeError(`setFnAuthenticate refused with headers of type ${describeType(headers)}: give an object of strings.`);
    }
    const checked = {};
    for (const [name, value] of Object.entries(headers)) {
        if (!TOKEN.test(name) || REFUSAL_OWN_HEADERS.has(name.toLowerCase())) {
            throw new TypeError(`setFnAuthenticate refused with the header '${name}', which is not a name it may set.`);
        }
        if (typeof value !== 'string' || INVALID_FIELD_VALUE.test(value)) {
            throw new TypeError(`setFnAuthenticate refused with a value of '${name}' that is not a single-line string.`);
        }
        checked[name] = value;
    }
    if (message !== undefined && typeof message !== 'string') {
        throw new TypeError(`setFnAuthenticate refused with a message of type ${describeType(message)}: give a string.`);
    }
    const base = handshakeFailure('REFUSED');
    return new HandshakeError(typeof message === 'string' ? message : base.message, base.code, status, checked);
}
/** `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2, item 5.4). */
function acceptKeyFor(key) {
    return createHash('sha1').update(key + HANDSHAKE_GUID, 'latin1').digest('base64');
}
function httpErrorResponse(error) {
    const body = `${error.message}\n`;
    let response = `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\n` +
        (error.headers['Connection'] === undefined ? 'Connection: close\r\n' : '') +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n`;
    for (const [name, value] of Object.entries(error.headers))
        response += `${name}: ${value}\r\n`;
    return `${response}\r\n${body}`;
}
/** A `trustProxy` entry: an address or a CIDR range, IPv4 or IPv6; `undefined` when it is neither. */
function parseSubnet(entry) {
    const slash = entry.indexOf('/');
    const address = slash === -1 ? entry : entry.slice(0, slash);
    const bytes = addressBytes(address);
    if (bytes === undefined || address.includes('%'))
        return undefined;
    // An IPv4 range is a range of IPv4-mapped addresses: its prefix counts after the 96 bits of ::ffff:0:0/96.
    const offset = isIPv4(address) ? 96 : 0;
    if (slash === -1)
        return { bytes, prefix: 128 };
    const prefix = entry.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(prefix) || Number(prefix) > 128 - offset)
        return undefined;
    return { bytes, prefix: offset + Number(prefix) };
}
/** Whether an address (as from {@link addressBytes}) lies in a range. */
function inSubnet(bytes, subnet) {
    const whole = subnet.prefix >> 3;
    for (let i = 0; i < whole; i++)
        if (bytes[i] !== subnet.bytes[i])
            return false;
    const bits = subnet.prefix & 7;
    if (bits === 0)
        return true;
    const mask = (0xff << (8 - bits)) & 0xff;
    return (bytes[whole] & mask) === (subnet.bytes[whole] & mask);
}
/** An IP address as 16 bytes, an IPv4 one mapped into IPv6; `undefined` for anything else. A zone id is ignored. */
function addressBytes(text) {
    const bytes = new Uint8Array(16);
    if (isIPv4(text)) {
        bytes[10] = 0xff;
        bytes[11] = 0xff;
        bytes.set(text.split('.').map(Number), 12);
        return bytes;
    }
    if (!isIPv6(text))
        return undefined;
    let rest = text.replace(/%.*$/, '');
    const lastColon = rest.lastIndexOf(':');
    if (rest.includes('.', lastColon)) {
        // An IPv4 tail (RFC 4291 §2.2, form 3) is the last two groups.
        const [a, b, c, d] = rest.slice(lastColon + 1).split('.').map(Number);
        rest = `${rest.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
    }
    const [left, right] = rest.split('::');
    const head = left === '' ? [] : left.split(':');
    const tail = right === undefined || right === '' ? [] : right.split(':');
    const groups = right === undefined ? head : [...head, ...new Array(8 - head.length - tail.length).fill('0'), ...tail];
    groups.forEach((group, i) => {
        const value = parseInt(group, 16);
        bytes[i * 2] = value >> 8;
        bytes[i * 2 + 1] = value & 0xff;
    });
    return bytes;
}
/**
 * A node of `X-Forwarded-For` (an address, perhaps with a port, IPv6 perhaps in brackets) or of a `Forwarded`
 * `for=` value (RFC 7239 §6: IPv4, `"[IPv6]"`, either with `:port`; `unknown` and `_obfuscated` names are
 * hidden nodes). `undefined` when malformed.
 */
function parseForwardedNode(text) {
    if (text.toLowerCase() === 'unknown' || /^_[A-Za-z0-9._-]+$/.test(text))
        return 'hidden';
    let host = text;
    let port = '';
    if (text.startsWith('[')) {
        const close = text.indexOf(']');
        if (close === -1 || (close + 1 < text.length && text[close + 1] !== ':'))
            return undefined;
        host = text.slice(1, close);
        port = text.slice(close + 2);
        if (!isIPv6(host) || (close + 1 < text.length && port === ''))
            return undefined;
    }
    else if (!isIPv6(text)) {
        const colon = text.indexOf(':');
        if (colon !== -1)
            [host, port] = [text.slice(0, colon), text.slice(colon + 1)];
        if (!isIPv4(host))
            return undefined;
    }
    // §6.3: an obfuscated port says nothing we can use.
    if (port.startsWith('_') && /^_[A-Za-z0-9._-]+$/.test(port))
        port = '';
    if (port !== '' && (!/^(0|[1-9]\d{0,4})$/.test(port) || Number(port) > 65535))
        return undefined;
    return { host, port: port === '' ? 0 : Number(port) };
}
/**
 * The `for=` values of a `Forwarded` header (RFC 7239 §4), nearest proxy first. `undefined` when it is malformed:
 * elements `pair *(";" pair)` separated by commas, a pair `token "=" (token / quoted-string)`, each parameter at
 * most once per element. An element without `for` is a hidden node.
 */
function forwardedForValues(header) {
    const values = [];
    const pair = /[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)=(?:([!#$%&'*+\-.^_`|~0-9A-Za-z]+)|"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*)")[ \t]*/y;
    let names = new Set();
    let forValue = 'unknown';
    for (let at = 0;;) {
        pair.lastIndex = at;
        const match = pair.exec(header);
        if (match === null)
            return undefined;
        const name = match[1].toLowerCase();
        if (names.has(name))
            return undefined;
        names.add(name);
        if (name === 'for')
            forValue = match[2] ?? match[3].replace(/\\(.)/g, '$1');
        at = pair.lastIndex;
        if (at === header.length || header[at] === ',') {
            values.push(forValue);
            // Empty list elements are allowed and ignored (RFC 9110 §5.6.1.2).
            while (at < header.length && /[ \t,]/.test(header[at]))
                at++;
            if (at === header.length)
                return values.reverse();
            names = new Set();
            forValue = 'unknown';
        }
        else if (header[at] === ';') {
            at++;
        }
        else {
            return undefined;
        }
    }
}
/**
 * The `trustProxy` rule: which peers are trusted proxies, and the client's address they report. Pure, for tests.
 *
 * The chain is the peer, then the nodes of `X-Forwarded-For` (or of `Forwarded`) from the right: each trusted
 * proxy appended the address it received the request from, so the walk moves left while the node it stands on
 * is trusted, and stops at the first that is not (the client, as far as anyone trusted can tell). What the
 * client itself wrote, to the left, is never reached. Both headers present must name the same client: a proxy
 * appends to one of them only, so a second one the client sent cannot win.
 */
class ProxyTrust {
    #hops;
    #subnets;
    /** @param option a checked `trustProxy` value */
    constructor(option) {
        this.#hops = typeof option === 'number' ? option : 0;
        this.#subnets = typeof option === 'number' ? [] : option.map((entry) => parseSubnet(entry));
    }
    /** Whether the node at `hop` (0: the TCP peer) is a proxy whose header is believed. */
    trusts(host, hop) {
        if (this.#subnets.length === 0)
            return hop < this.#hops;
        const bytes = addressBytes(host);
        return bytes !== undefined && this.#subnets.some((subnet) => inSubnet(bytes, subnet));
    }
    /** The client's address, given the peer's and the request's header fields (by lower-case name). */
    clientOrigin(peer, headers) {
        if (!this.trusts(peer.host, 0))
            return { address: peer };
        const forwardedFor = headers['x-forwarded-for'];
        const forwarded = headers['forwarded'];
        const fromXff = forwardedFor === undefined ? undefined : this.#walk(peer, forwardedFor.split(',').map((node) => node.trim()).filter((node) => node !== '').reverse());
        const fromForwarded = forwarded === undefined ? undefined : this.#walk(peer, forwardedForValues(forwarded));
        if (fromXff === undefined)
            return fromForwarded ?? { address: peer };
        if (fromForwarded === undefined || fromXff.problem !== undefined)
            return fromXff;
        if (fromForwarded.problem !== undefined)
            return fromForwarded;
        if (fromXff.address.host.toLowerCase() !== fromForwarded.address.host.toLowerCase()) {
            return { address: peer, problem: 'X-Forwarded-For and Forwarded name different clients' };
        }
        return fromForwarded;
    }
    /** Walks the nodes (nearest first) while the current one is trusted; `undefined` nodes: a malformed header. */
    #walk(peer, nodes) {
        if (nodes === undefined)
            return { address: peer, problem: 'the Forwarded header is malformed' };
        let current = peer;
        for (let hop = 0; hop < nodes.length && this.trusts(current.host, hop); hop++) {
            const node = parseForwardedNode(nodes[hop]);
            if (node === undefined)
                return { address: peer, problem: `a trusted proxy forwarded '${nodes[hop]}', which is not an address` };
            // RFC 7239 §6.2-6.3: the proxy hid the client; the nearest address known is that proxy's own.
            if (node === 'hidden')
                return { address: current };
            current = node;
        }
        return { address: current };
    }
}
const PROXY_V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The v2 signature (proxy-protocol.txt §2.2): it cannot begin any HTTP request. */
const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const PROXY_PORT = /^(0|[1-9]\d{0,4})$/;
/**
 * Reads a PROXY header from the bytes a connection began with: the header, `'incomplete'` while it may still
 * be one, or the failure. Garbage is refused from its first byte that fits neither version's signature, and a
 * header too long before it is all buffered.
 */
function parseProxyHeader(bytes) {
    const v2 = bytes[0] === PROXY_V2_SIGNATURE[0];
    const signature = v2 ? PROXY_V2_SIGNATURE : PROXY_V1_PREFIX;
    const compared = Math.min(bytes.length, signature.length);
    if (bytes.compare(signature, 0, compared, 0, compared) !== 0)
        return handshakeFailure('PROXY_HEADER_INVALID');
    if (bytes.length < signature.length)
        return 'incomplete';
    return v2 ? parseProxyV2(bytes) : parseProxyV1(bytes);
}
/** Version 1 (§2.1): `PROXY TCP4|TCP6 source destination sport dport CRLF`, or `PROXY UNKNOWN … CRLF`. */
function parseProxyV1(bytes) {
    const end = bytes.indexOf('\r\n', 0, 'latin1');
    if (end === -1 || end + 2 > PROXY_V1_MAX_LENGTH) {
        if (bytes.length >= PROXY_V1_MAX_LENGTH)
            return handshakeFailure('PROXY_HEADER_TOO_LONG');
        return bytes.includes(0x0a) ? handshakeFailure('PROXY_HEADER_INVALID') : 'incomplete';
    }
    const fields = bytes.toString('latin1', 0, end).split(' ');
    // "UNKNOWN": the proxy cannot tell (e.g. a health check); the receiver ignores the rest of the line.
    if (fields[1] === 'UNKNOWN')
        return { length: end + 2, source: undefined };
    const [, family, source, destination, sourcePort, destinationPort] = fields;
    const isAddress = family === 'TCP4' ? isIPv4 : family === 'TCP6' ? isIPv6 : undefined;
    if (fields.length !== 6 ||
        isAddress === undefined ||
        !isAddress(source) ||
        !isAddress(destination) ||
        [sourcePort, destinationPort].some((port) => !PROXY_PORT.test(port) || Number(port) > 65535)) {
        return handshakeFailure('PROXY_HEADER_INVALID');
    }
    return { length: end + 2, source: { host: source, port: Number(sourcePort) } };
}
/**
 * Version 2 (§2.2): the signature, version and command, family and transport, a 16-bit length, then the
 * addresses and TLVs (skipped). The length is checked against the limit before the rest is buffered.
 */
function parseProxyV2(bytes) {
    if (bytes.length < 16)
        return 'incomplete';
    const versionCommand = bytes[12];
    const command = versionCommand & 0x0f;
    if (versionCommand >> 4 !== 2 || command > 1)
        return handshakeFailure('PROXY_HEADER_INVALID');
    const addressLength = bytes.readUInt16BE(14);
    if (addressLength > PROXY_V2_MAX_LENGTH)
        return handshakeFailure('PROXY_HEADER_TOO_LONG');
    const length = 16 + addressLength;
    if (bytes.length < length)
        return 'incomplete';
    const family = bytes[13] >> 4;
    const transport = bytes[13] & 0x0f;
    // LOCAL (the proxy's own connection, e.g. a health check), AF_UNSPEC and AF_UNIX: the peer's address stands.
    if (command === 0 || family === 0 || family === 3)
        return { length, source: undefined };
    const needed = family === 1 ? 12 : family === 2 ? 36 : Infinity;
    if (transport !== 1 || addressLength < needed)
        return handshakeFailure('PROXY_HEADER_INVALID');
    if (family === 1) {
        return { length, source: { host: Array.from(bytes.subarray(16, 20)).join('.'), port: bytes.readUInt16BE(24) } };
    }
    return { length, source: { host: formatIPv6(bytes.subarray(16, 32)), port: bytes.readUInt16BE(48) } };
}
/** 16 bytes as an IPv6 address the way sockets report one: the longest run of zero groups shortened to `::`. */
function formatIPv6(bytes) {
    if (bytes.subarray(0, 10).every((byte) => byte === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
        return `::ffff:${Array.from(bytes.subarray(12)).join('.')}`;
    }
    const groups = Array.from({ length: 8 }, (_, i) => ((bytes[i * 2] << 8) | bytes[i * 2 + 1]).toString(16));
    let bestStart = -1;
    let bestLength = 1;
    for (let start = 0; start < 8; start++) {
        let length = 0;
        while (start + length < 8 && groups[start + length] === '0')
            length++;
        if (length > bestLength)
            [bestStart, bestLength] = [start, length];
    }
    if (bestStart === -1)
        return groups.join(':');
    return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`;
}
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// 7. The connection (ClientHandler): public API, the closing handshake, the heartbeat, reading
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
const kHandler = Symbol('websocket-server.handler');
/** Set by {@link ClientHandler}'s static block, when the class is defined (so before any server runs). */
let connectionInternals;
/** Set by {@link ClientHandler}'s static block, with {@link connectionInternals}. */
let sendQueueEvents;
/** Why a connection's reading is paused: bits of one field, any of them pauses the socket. */
const ReadPause = {
    /** The application called `pauseReading()`. */
    APPLICATION: 1,
    /** The parser holds too many bytes behind an inflating message. */
    PARSER: 2,
    /** Our Close frame has not left yet: the peer cannot answer it before; reading a flood meanwhile is waste. */
    CLOSE_FRAME: 4,
};
/** The topics of a client's record, made on its first subscription when `create`; set by {@link ClientRecord}. */
let clientRecordTopics;
/** A client's record in `server.clients` (see {@link Client}): made by its connection when the handshake completes. */
class ClientRecord {
    id;
    handler;
    address;
    request;
    data;
    protocol;
    /** Its topics, in the order it joined them; kept by the server's {@link Topics}. */
    #topics;
    constructor(id, handler, request, accepted) {
        this.id = id;
        this.handler = handler;
        // The same strings as the request's: the socket makes a new one on every read.
        this.address = { host: request.remoteAddress, port: request.remotePort };
        this.request = request;
        this.data = accepted.data;
        this.protocol = accepted.protocol;
    }
    get topics() {
        return this.#topics === undefined || this.#topics.size === 0 ? NO_TOPICS : Object.freeze([...this.#topics]);
    }
    static {
        clientRecordTopics = (client, create) => {
            const record = client;
            return create ? (record.#topics ??= new Set()) : record.#topics;
        };
    }
}
const NO_TOPICS = Object.freeze([]);
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
export class ClientHandler {
    /** The record of this client in `server.clients`. */
    client;
    /** The opening handshake's request: path, query, headers, cookies, origin, remote address. */
    request;
    /** The subprotocol agreed on in the opening handshake (RFC 6455 §1.9); `''` when none. */
    protocol;
    #socket;
    #context;
    #parser;
    #deflate;
    /** All that is written to the socket goes through it, in order: messages, control frames, Close, the end of TCP. */
    #sendQueue;
    #state = 'open';
    #closeCode;
    #closeReason = '';
    #closeTimer;
    /** Who started the end of the connection: set by the first to, `'network'` if neither did. */
    #closedBy;
    /** When the 101 response went (`performance.now()`), for the duration in the connection-close event. */
    #openedAt;
    #closed;
    #resolveClosed;
    /** Why reading is paused: bits of {@link ReadPause}, none while reading. */
    #readPause = 0;
    // The heartbeat (driven by the server's timer): when the last heartbeat Ping went out, the number it
    // carries while its Pong is awaited, and the round trip of the last one answered.
    #pingSentAt;
    #awaitedPong;
    #latency;
    /** Made by the server when a handshake completes (`connectionInternals.create`): no public use. */
    constructor(socket, context, request, id, accepted, deflate) {
        this.#socket = socket;
        this.#context = context;
        this.#deflate = deflate;
        this.#sendQueue = new SendQueue(socket, context, this);
        this.request = request;
        this.protocol = accepted.protocol;
        this.client = new ClientRecord(id, this, request, accepted);
        this.#pingSentAt = this.#openedAt = performance.now();
        this.#parser = new FrameParser(new _b.#ParserEvents(this), {
            maxMessageSize: context.maxMessageSize,
            inflater: deflate,
            maxFragments: context.maxFragments,
            maxBufferedChunks: context.maxBufferedChunks,
        });
        // The socket's data, error and close listeners, set at accept, now lead here.
        this.#socket[kHandler] = this;
        socket.on('drain', _b.#onSocketDrain);
    }
    /**
     * The parser's handler: one object of one field per connection (32 bytes in 64-bit Node), forwarding the
     * parser's events to this class's private methods, which a class written inside this one may call. The
     * handler itself cannot be the parser's handler without `onText` and the rest becoming public.
     */
    static #ParserEvents = class ParserEvents {
        #handler;
        constructor(handler) {
            this.#handler = handler;
        }
        onText(text, bytes) {
            this.#handler.#onText(text, bytes);
        }
        onBinary(data) {
            this.#handler.#onBinary(data);
        }
        onPing(payload) {
            this.#handler.#sendQueue.sendPong(payload); // §5.5.2: answered with a Pong, unless we already closed
        }
        onPong(payload) {
            this.#handler.#onPong(payload);
        }
        onClose(code, reason) {
            this.#handler.#onClose(code, reason);
        }
        onProtocolError(error) {
            this.#handler.#failConnection(error); // §7.1.7: fail the connection with the error's close code
        }
        onReadPressure(pressed) {
            this.#handler.#pauseReadingFor(ReadPause.PARSER, pressed);
        }
    };
    static {
        connectionInternals = {
            create: (socket, context, request, id, accepted, deflate) => new _b(socket, context, request, id, accepted, deflate),
            receive: (handler, chunk) => handler.#receive(chunk),
            socketError: (handler, error) => handler.#socketError(error),
            socketClosed: (handler) => handler.#socketClosed(),
            heartbeat: (handler, now, pingInterval, pingTimeout) => handler.#heartbeat(now, pingInterval, pingTimeout),
            sendFrame: (handler, frame) => (handler.#state === 'open' ? handler.#sendQueue.sendFrame(frame) : handler.#sendQueue.dropped()),
            sendCompressed: (handler, opcode, data, shared) => handler.#sendCompressed(opcode, data, shared),
            deflateCodec: (handler) => handler.#deflate,
            sharedCompressionDone: (handler) => handler.#sendQueue.sharedCompressionDone(),
        };
        sendQueueEvents = {
            tooSlow: (handler) => handler.#onTooSlow(),
            streamFailed: (handler) => handler.#abandonStream(),
            closeFrameWriting: (handler) => handler.#pauseReadingFor(ReadPause.CLOSE_FRAME, true),
            closeFrameWritten: (handler) => {
                handler.#pauseReadingFor(ReadPause.CLOSE_FRAME, false);
                handler.#armCloseTimer();
            },
            progressWhileClosing: (handler) => handler.#armCloseTimer(),
        };
    }
    /** `'open'`, then `'closing'` once a Close frame was sent or received, then `'closed'` once TCP has ended. */
    get state() {
        return this.#state;
    }
    /** Bytes waiting to be sent: queued here (behind compression or a stream) and buffered in the socket. */
    get bufferedAmount() {
        return this.#sendQueue.bufferedAmount;
    }
    /** The permessage-deflate parameters agreed with this client (RFC 7692), or `''` when none. */
    get extensions() {
        return this.#deflate?.response ?? '';
    }
    /**
     * Once closed: the close code received from the peer (1005 if its Close frame had none), or the code the
     * server failed the connection with, or 1006 if the connection ended without a Close frame (RFC 6455 §7.1.5).
     */
    get closeCode() {
        return this.#closeCode;
    }
    /** Once closed: the reason that came with {@link closeCode} (empty if none). */
    get closeReason() {
        return this.#closeReason;
    }
    /**
     * The round trip of the last heartbeat Ping, in milliseconds: from sending it to receiving the Pong that
     * carries its payload. `undefined` until one has been answered (and with `pingInterval: 0`).
     */
    get latency() {
        return this.#latency;
    }
    /** Resolves once the connection is closed (after client-left has been called). */
    get closed() {
        if (this.#closed === undefined) {
            this.#closed =
                this.#state === 'closed' && this.#resolveClosed === undefined
                    ? Promise.resolve()
                    : new Promise((resolve) => {
                        this.#resolveClosed = resolve;
                    });
        }
        return this.#closed;
    }
    /**
     * Sends a message: a `string` as a text message, bytes as a binary message. With permessage-deflate, a
     * message of at least `threshold` bytes is compressed first (and `'queued'` meanwhile).
     * @returns `'written'`, `'queued'`, or `'dropped'` (connection not open, or a slow client: `slowClientPolicy`).
     */
    send(message) {
        let result;
        const deflate = this.#deflate;
        if (this.#state !== 'open')
            result = this.#sendQueue.dropped();
        else if (deflate === undefined)
            result = this.#sendQueue.sendFrame(encodeDataFrame(message));
        else
            result = this.#sendQueue.sendWithDeflate(message, deflate);
        if (channels.messageOut.hasSubscribers) {
            publishMessageOut(this.#context.server, this.client, undefined, message, result === 'dropped' ? 0 : 1);
        }
        return result;
    }
    /** Sends a message as compressed for this connection, or shared with others (a broadcast). */
    #sendCompressed(opcode, data, shared) {
        if (this.#state !== 'open')
            return this.#sendQueue.dropped();
        return shared === undefined
            ? this.#sendQueue.sendCompressed(opcode, data, this.#deflate)
            : this.#sendQueue.sendSharedCompression(shared, data.length);
    }
    /**
     * Sends a message of unknown size as it is produced: each chunk of `source` goes as one fragment (RFC 6455
     * §5.4), waiting for the socket to drain when it is full. Messages sent meanwhile wait until this one ends.
     * The type is text for string chunks and binary for bytes, unless `options.binary` says.
     * Streamed messages are not compressed.
     * @returns a promise that resolves once the last fragment is handed to the socket. If `source` fails after
     *   the first fragment went out, the message cannot be completed: the connection is closed with 1011.
     */
    sendStream(source, options = {}) {
        if (this.#state !== 'open')
            return Promise.reject(new Error('Cannot stream a message: the connection is not open.'));
        return this.#sendQueue.sendStream(source, options.binary);
    }
    /**
     * Sends a file's content as one binary message, streamed from disk (see {@link sendStream}).
     * @returns a promise that resolves once the file is handed to the socket; it rejects, before anything is
     *   sent, if the file cannot be opened.
     */
    async sendFile(path) {
        if (this.#state !== 'open')
            throw new Error(`Cannot send ${path}: the connection is not open.`);
        const info = await stat(path);
        if (!info.isFile())
            throw new Error(`Cannot send ${path}: it is not a file.`);
        const file = await open(path, 'r');
        if (this.#state !== 'open') {
            // Closed while the file was being opened: nothing will read it.
            await file.close();
            throw new Error(`Cannot send ${path}: the connection closed.`);
        }
        return this.sendStream(file.createReadStream(), { binary: true });
    }
    /**
     * Sends a Ping (RFC 6455 §5.5.2); the peer answers with a Pong. Control frames go at once, between the
     * frames of queued messages.
     * @returns `false` when the connection is not open.
     * @throws {RangeError} if the payload is longer than 125 bytes.
     */
    ping(payload = EMPTY) {
        const bytes = messageBytes(payload);
        if (bytes.length > MAX_CONTROL_PAYLOAD) {
            throw new RangeError(`Cannot send a ping: its payload is ${bytes.length} bytes, and at most 125 are allowed.`);
        }
        if (this.#state !== 'open' || !this.#sendQueue.admit())
            return false;
        this.#sendQueue.writeControlFrame(encodeFrame(Opcode.PING, bytes));
        return true;
    }
    /**
     * Starts the closing handshake (RFC 6455 §7.1.2): sends a Close frame (after the messages already queued),
     * waits for the peer's, then ends TCP. A peer that does not finish within `closeTimeout` is dropped.
     * Does nothing if already closing.
     * @throws {RangeError} for a code an endpoint may not send, or a reason over 123 UTF-8 bytes.
     */
    close(code = CloseCode.NORMAL, reason = '') {
        checkCloseArguments(code, reason);
        if (this.#state !== 'open')
            return;
        this.#state = 'closing';
        this.#closedBy ??= 'server';
        this.#sendQueue.sendClose(encodeClosePayload(code, reason));
        this.#armCloseTimer();
    }
    /** Drops the TCP connection at once, without a closing handshake. */
    terminate() {
        if (this.#state === 'closed')
            return;
        this.#parser.stop();
        if (this.#state === 'open')
            this.#state = 'closing';
        this.#closedBy ??= 'server';
        this.#socket.destroy();
    }
    /**
     * Stops reading from this client (flow control): no message-received calls until {@link resumeReading},
     * and TCP tells the client to slow down once the buffers fill. Pings are not answered meanwhile.
     */
    pauseReading() {
        this.#parser.pause();
        this.#pauseReadingFor(ReadPause.APPLICATION, true);
    }
    /** Reads again after {@link pauseReading}, handling first what arrived meanwhile. */
    resumeReading() {
        if (this.#state === 'closed')
            return;
        this.#pauseReadingFor(ReadPause.APPLICATION, false);
        this.#runParser(undefined);
    }
    // ── the parser's events (FrameParserHandler) ─────────────────────────────────────────────────────────────
    #onText(text, bytes) {
        if (this.#context.log.debugEnabled)
            this.#context.log.debug(`client ${this.client.id} sent text (${text.length} chars)`);
        this.#context.stats.messagesIn++;
        if (channels.messageIn.hasSubscribers)
            publishMessageIn(this.#context.server, this.client, text, bytes);
        // A message callback may read more (resumeReading): the text of an outer callback is put back after.
        const outer = deliveredText.text;
        const outerBytes = deliveredText.bytes;
        deliveredText.text = bytes === undefined ? undefined : text;
        deliveredText.bytes = bytes ?? deliveredText.bytes;
        try {
            this.#context.messageReceived(this.client, text);
        }
        finally {
            deliveredText.text = outer;
            deliveredText.bytes = outerBytes;
        }
    }
    #onBinary(data) {
        if (this.#context.log.debugEnabled)
            this.#context.log.debug(`client ${this.client.id} sent binary (${data.length} bytes)`);
        this.#context.stats.messagesIn++;
        if (channels.messageIn.hasSubscribers)
            publishMessageIn(this.#context.server, this.client, data, undefined);
        this.#context.messageReceived(this.client, data);
    }
    /** Sets or clears one reason to pause reading; the socket reads while there is none. */
    #pauseReadingFor(reason, paused) {
        this.#readPause = paused ? this.#readPause | reason : this.#readPause & ~reason;
        if (this.#state === 'closed')
            return;
        if (this.#readPause !== 0)
            this.#socket.pause();
        else
            this.#socket.resume();
    }
    /**
     * §5.5.3: a Pong needs no answer. One that carries the payload of the heartbeat Ping awaiting its
     * answer (§5.5.3: "identical Application data") ends that wait and measures the round trip.
     */
    #onPong(payload) {
        const awaited = this.#awaitedPong;
        if (awaited === undefined || payload.length !== 4 || payload.readUInt32BE(0) !== awaited)
            return;
        this.#awaitedPong = undefined;
        this.#latency = performance.now() - this.#pingSentAt;
    }
    /** §5.5.1: the peer's Close frame. */
    #onClose(code, reason) {
        this.#closeCode = code;
        this.#closeReason = reason;
        this.#closedBy ??= 'client';
        const sendQueue = this.#sendQueue;
        if (!sendQueue.closeFrameTaken) {
            // Echo the code (§5.5.1) at once, dropping what was queued; a Close without a code is answered without one.
            sendQueue.drop('The peer closed the connection before this message was sent.');
            sendQueue.sendClose(encodeClosePayload(code === CloseCode.NO_STATUS ? undefined : code, ''));
        }
        this.#state = 'closing';
        // §7.1.1: once both Close frames have passed, the server closes the TCP connection first.
        sendQueue.end();
        this.#armCloseTimer();
    }
    /**
     * Called on each tick of the server's heartbeat timer (RFC 6455 §5.5.2). Drops a client whose
     * Pong is overdue (with `pingTimeout` 0, none is); else sends the next Ping once `pingInterval` has passed
     * since the last one. While a Pong is awaited no new Ping goes out, so a slow answer is never mistaken
     * for a missing one.
     */
    #heartbeat(now, pingInterval, pingTimeout) {
        if (this.#state !== 'open')
            return;
        if (this.#awaitedPong !== undefined && pingTimeout > 0) {
            if (now - this.#pingSentAt < pingTimeout)
                return;
            this.#context.log.info(`client ${this.client.id} did not answer a ping within ${pingTimeout} ms; dropping it`);
            this.terminate();
            return;
        }
        if (now - this.#pingSentAt < pingInterval)
            return;
        // The payload is random, so that only a client that read this Ping can answer it: one that never reads
        // cannot keep itself alive with Pongs guessed blind.
        const id = randomPingId();
        const payload = Buffer.allocUnsafe(4);
        payload.writeUInt32BE(id, 0);
        this.#awaitedPong = id;
        this.#pingSentAt = now;
        this.#sendQueue.writeControlFrame(encodeFrame(Opcode.PING, payload));
    }
    // ── internals ────────────────────────────────────────────────────────────────────────────────────────────
    /** Feeds received bytes to the parser. */
    #receive(chunk) {
        this.#context.stats.bytesIn += chunk.length;
        this.#runParser(chunk);
    }
    /**
     * Feeds `chunk` to the parser, or resumes it when there is none, with the socket corked so that the replies
     * this produces (echoes, pongs) leave in one write. (No closure: this runs on every read.)
     */
    #runParser(chunk) {
        const socket = this.#socket;
        socket.cork();
        try {
            if (chunk === undefined)
                this.#parser.resume();
            else
                this.#parser.push(chunk);
        }
        catch (error) {
            // Callbacks are guarded by the server, so this is a bug of ours: 1011, no detail to the peer.
            this.#context.log.error(`internal error on client ${this.client.id}: ${describeError(error)}`);
            this.#failConnection(new InternalError('An internal error occurred while reading frames.', 'WS_ERR_INTERNAL'));
        }
        finally {
            socket.uncork();
        }
    }
    /**
     * §7.1.7: nothing more the peer sends is processed and its Close is not awaited: our Close goes, then our FIN.
     * What waits to be sent is dropped, unless `keepQueued` (a slow client still gets what was accepted for it).
     */
    #failConnection(error, keepQueued = false) {
        this.#parser.stop();
        if (this.#state === 'closed')
            return;
        this.#closeCode = error.closeCode;
        this.#closeReason = '';
        this.#closedBy ??= 'server';
        this.#context.connectionFailed(this.client, error);
        const sendQueue = this.#sendQueue;
        const droppedClose = !keepQueued && sendQueue.drop(`The connection failed before this message was sent: ${error.message}`);
        if (!sendQueue.closeFrameTaken || droppedClose) {
            // 1011 carries no detail; the others say briefly what was wrong.
            sendQueue.sendClose(encodeClosePayload(error.closeCode, error instanceof InternalError ? '' : closeReasonFor(error)));
        }
        this.#state = 'closing';
        sendQueue.end();
        this.#armCloseTimer();
    }
    /** `slowClientPolicy: 'close'`: a client over `maxBufferedAmount` is failed with 1008, keeping what it was sent. */
    #onTooSlow() {
        if (this.#state !== 'open')
            return;
        this.#context.log.info(`client ${this.client.id} is too slow (over maxBufferedAmount): closing it with 1008`);
        this.#failConnection(new PolicyViolationError('The client was too slow: more than maxBufferedAmount bytes were waiting.', 'WS_ERR_SLOW_CLIENT'), true);
    }
    /** A streamed message failed midway: the fragments sent cannot be taken back, so the connection goes with 1011. */
    #abandonStream() {
        // A connection already closing needs no second reason.
        if (this.#state !== 'open')
            return;
        this.#context.log.error(`client ${this.client.id}: a streamed message failed midway; closing with 1011`);
        this.#failConnection(new InternalError('A streamed message failed before its end.', 'WS_ERR_STREAM_FAILED'));
    }
    /** Starts, or starts again, the wait of `closeTimeout` after which a closing connection is dropped. */
    #armCloseTimer() {
        if (this.#state === 'closed')
            return;
        if (this.#closeTimer !== undefined)
            this.#closeTimer.refresh();
        else
            this.#closeTimer = setTimeout(_b.#onCloseTimeout, this.#context.closeTimeout, this);
    }
    static #onCloseTimeout(handler) {
        handler.#context.log.info(`client ${handler.client.id} did not finish the closing handshake in time; dropping it`);
        handler.#socket.destroy();
    }
    /** The socket failed; its close follows. */
    #socketError(error) {
        if (this.#context.log.enabled('debug')) {
            this.#context.log.debug(`client ${this.client.id} connection error: ${describeError(error)}`);
        }
    }
    static #onSocketDrain() {
        const handler = this[kHandler];
        const caughtUp = handler.#sendQueue.socketDrained();
        if (handler.#state === 'closing')
            handler.#armCloseTimer();
        // Only a client that was behind, with nothing left in our queue, has caught up.
        if (caughtUp && handler.#state === 'open')
            handler.#context.drained(handler.client);
    }
    /** The one place a connection ends: exactly once per client, however the connection went. */
    #socketClosed() {
        if (this.#state === 'closed')
            return;
        this.#state = 'closed';
        this.#parser.stop();
        this.#sendQueue.drop('The connection closed before this message was sent.');
        this.#deflate?.close();
        if (this.#closeTimer !== undefined)
            clearTimeout(this.#closeTimer);
        this.#closeTimer = undefined;
        this.#closeCode ??= CloseCode.ABNORMAL;
        if (channels.connectionClose.hasSubscribers)
            this.#publishClose();
        this.#context.connectionClosed(this.client);
        const resolve = this.#resolveClosed;
        this.#resolveClosed = undefined;
        resolve?.();
    }
    #publishClose() {
        const event = {
            server: this.#context.server,
            client: this.client,
            code: this.#closeCode ?? CloseCode.ABNORMAL,
            reason: this.#closeReason,
            closedBy: this.#closedBy ?? 'network',
            duration: performance.now() - this.#openedAt,
        };
        channels.connectionClose.publish(event);
    }
}
_b = ClientHandler;
/** Random heartbeat Ping ids, drawn from the system's generator a thousand at a time. */
const pingIds = new Uint32Array(1024);
let pingIdsLeft = 0;
function randomPingId() {
    if (pingIdsLeft === 0) {
        getRandomValues(pingIds);
        pingIdsLeft = pingIds.length;
    }
    return pingIds[--pingIdsLeft];
}
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// 8. Sending (SendQueue): order, admission under maxBufferedAmount, streaming, compression order, write batching
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
/**
 * What is sent to one client, in order: the write side of its socket (the model is undici's `SendQueue`, with
 * ws's `Sender` queue). A message is written at once when nothing waits; behind a message being compressed or
 * streamed, it waits its turn, so that frames never overtake each other nor interleave with a fragmented message
 * (RFC 6455 §5.4). Control frames go at once, between the frames of queued messages. Our Close frame is the last
 * frame written; only the end of TCP may follow it. Small frames written in one tick leave together.
 *
 * It knows nothing of the closing handshake beyond that: what the connection must act on goes to it through
 * {@link sendQueueEvents}. An idle connection keeps one of these: its fields are few, and its array made on use.
 */
class SendQueue {
    #socket;
    #context;
    /** The connection it writes for: told of {@link SendQueueEvents}, and resumed by a shared compression. */
    #connection;
    /**
     * What waits behind a message being compressed or streamed, in send order, so that frames never overtake
     * each other nor interleave with a fragmented message (RFC 6455 §5.4). `undefined` when nothing waits: then
     * a message is written at once.
     */
    #queue;
    #queuedBytes = 0;
    /**
     * The Pong owed for the most recent Ping received while the socket was full (RFC 6455 §5.5.2 lets an endpoint
     * answer only the most recent Ping), written at the next drain; and the bytes that answering every such Ping
     * would have queued, which count toward `maxBufferedAmount` like data, so a client that floods Pings without
     * reading is closed as a slow client while holding one Pong.
     */
    #pendingPong;
    #owedControlBytes = 0;
    /** Bits of {@link SendState}, in one field rather than four booleans. */
    #flags = 0;
    /** The small frames of this tick, written as one buffer at its end (see {@link #batchWrites}). */
    #batch;
    constructor(socket, context, connection) {
        this.#socket = socket;
        this.#context = context;
        this.#connection = connection;
    }
    /** Bytes waiting to be sent: queued here (behind compression or a stream) and buffered in the socket. */
    get bufferedAmount() {
        return this.#socket.writableLength + (this.#batch?.bytes ?? 0) + this.#queuedBytes;
    }
    /** What `maxBufferedAmount` judges: the bytes waiting, and those of the Pongs owed while the socket was full. */
    get #backlog() {
        return this.bufferedAmount + this.#owedControlBytes;
    }
    /** Our Close frame was taken: written, or queued behind what was accepted before it. */
    get closeFrameTaken() {
        return (this.#flags & SendState.CLOSE_FRAME_TAKEN) !== 0;
    }
    /**
     * Sends a message on a connection with permessage-deflate (RFC 7692): compressed by the connection's `codec`
     * when it is at least the `threshold` long.
     */
    sendWithDeflate(message, codec) {
        // A string of n characters is at most 3n bytes of UTF-8: a short one is not encoded just to be measured.
        if (codec.shouldCompress(typeof message === 'string' ? message.length * 3 : message.byteLength)) {
            const bytes = messageBytes(message);
            const opcode = typeof message === 'string' ? Opcode.TEXT : Opcode.BINARY;
            if (codec.shouldCompress(bytes.length))
                return this.sendCompressed(opcode, bytes, codec);
            return this.sendFrame({ header: encodeFrame(opcode, bytes), payload: undefined });
        }
        return this.sendFrame(encodeDataFrame(message));
    }
    /** Sends an already framed data message (the same bytes may go to many clients). */
    sendFrame(frame) {
        if (!this.admit())
            return this.dropped();
        if (this.#queue !== undefined) {
            return this.#enqueue({ kind: 'frame', frame, size: frame.header.length + (frame.payload?.length ?? 0) });
        }
        this.#context.stats.messagesOut++;
        return this.#writeFrame(frame) ? 'written' : 'queued';
    }
    /**
     * Sends a message compressed by the connection's `codec` (RFC 7692), in its turn: what is sent while it is
     * being compressed waits behind it.
     */
    sendCompressed(opcode, data, codec) {
        if (!this.admit())
            return this.dropped();
        return this.#enqueue({ kind: 'compress', opcode, data, codec, size: data.length });
    }
    /** Sends a broadcast compressed once for several connections, in its turn; `size` is its uncompressed size. */
    sendSharedCompression(job, size) {
        if (!this.admit())
            return this.dropped();
        return this.#enqueue({ kind: 'shared', job, size });
    }
    /** Sends a message of unknown size as fragments, in its turn (see {@link ClientHandler.sendStream}). */
    sendStream(source, binary) {
        return new Promise((resolve, reject) => {
            this.#enqueue({ kind: 'stream', source, binary, resolve, reject, size: 0 });
        });
    }
    /**
     * Applies `maxBufferedAmount` and `slowClientPolicy` before something more is sent. A slow client is one with
     * a backlog: what already waits is judged, not the size of the new message, so one large message into an empty
     * buffer always goes (what one client can hold is `maxBufferedAmount` plus one message).
     */
    admit() {
        const { maxBufferedAmount, slowClientPolicy } = this.#context;
        if (slowClientPolicy === 'queue' || this.#backlog <= maxBufferedAmount)
            return true;
        if (slowClientPolicy === 'close')
            sendQueueEvents.tooSlow(this.#connection);
        return false;
    }
    /** Writes a control frame at once, between the frames of queued messages (RFC 6455 §5.4 allows it). */
    writeControlFrame(frame) {
        this.#flushBatch();
        this.#socket.write(frame);
    }
    /**
     * §5.5.2: a Ping is answered with a Pong carrying the same payload, unless our Close frame was taken. While
     * the socket is full, only the most recent Ping is answered (at the next drain), and the Pongs skipped count
     * toward the client's backlog.
     */
    sendPong(payload) {
        const socket = this.#socket;
        if ((this.#flags & SendState.CLOSE_FRAME_TAKEN) !== 0 || socket.destroyed)
            return;
        if (!socket.writableNeedDrain && this.#pendingPong === undefined) {
            this.#flushBatch();
            socket.write(encodeFrame(Opcode.PONG, payload));
            return;
        }
        // One Pong frame per connection, rewritten in place by every skipped Ping: a flood allocates nothing.
        // Its length byte (a control payload is under 126 bytes, §5.5) tells how much of it to write.
        const pong = (this.#pendingPong ??= Buffer.allocUnsafe(2 + MAX_CONTROL_PAYLOAD));
        pong[0] = FRAME_FIN | Opcode.PONG;
        pong[1] = payload.length;
        payload.copy(pong, 2);
        this.#owedControlBytes += 2 + payload.length + QUEUED_WRITE_COST;
        this.admit();
    }
    /** Sends our Close frame: now, or after the messages queued before it. Nothing but the end of TCP follows it. */
    sendClose(payload) {
        this.#flags |= SendState.CLOSE_FRAME_TAKEN;
        if (this.#queue !== undefined)
            this.#enqueue({ kind: 'close', payload, size: 0 });
        else
            this.#writeClose(payload);
    }
    /** Ends our side of TCP: now, or after what is queued. */
    end() {
        if (this.#queue !== undefined) {
            this.#enqueue({ kind: 'end', size: 0 });
        }
        else {
            this.#flushBatch();
            this.#socket.end();
        }
    }
    /**
     * Forgets what waits to be sent (the connection is going): streams are rejected with an Error saying `why`
     * and their sources destroyed, compression results ignored, the owed Pong forgotten (our Close frame, taken or
     * about to be, forbids it).
     * @returns whether a Close frame was among what was dropped.
     */
    drop(why) {
        this.#pendingPong = undefined;
        const queue = this.#queue;
        if (queue === undefined)
            return false;
        this.#queue = undefined;
        this.#flags &= ~SendState.BUSY;
        this.#queuedBytes = 0;
        let droppedClose = false;
        // Made only for a stream to reject: an Error records a stack, which every closing connection would pay.
        let reason;
        for (const item of queue) {
            if (item.kind === 'close')
                droppedClose = true;
            if (item.kind !== 'stream')
                continue;
            item.reject((reason ??= new Error(why)));
            const source = item.source;
            if (typeof source.destroy === 'function')
                source.destroy();
        }
        return droppedClose;
    }
    /** A broadcast's shared compression has finished: go on writing. */
    sharedCompressionDone() {
        this.#flags &= ~SendState.BUSY;
        this.#pump();
    }
    /**
     * The socket drained: the Pong owed for the most recent Ping goes (unless our Close frame was taken).
     * @returns whether this client had fallen behind and has caught up, with nothing left in this queue.
     */
    socketDrained() {
        this.#owedControlBytes = 0;
        const pong = this.#pendingPong;
        if (pong !== undefined) {
            this.#pendingPong = undefined;
            if ((this.#flags & SendState.CLOSE_FRAME_TAKEN) === 0) {
                this.#flushBatch();
                this.#socket.write(pong.subarray(0, 2 + pong[1]));
            }
        }
        if ((this.#flags & SendState.BEHIND) === 0 || this.#queue !== undefined)
            return false;
        this.#flags &= ~SendState.BEHIND;
        return true;
    }
    /** A message refused (here, or by the connection when not open): counted, and reported as `'dropped'`. */
    dropped() {
        this.#context.stats.messagesDropped++;
        return 'dropped';
    }
    #enqueue(item) {
        (this.#queue ??= []).push(item);
        this.#queuedBytes += item.size;
        this.#pump();
        return 'queued';
    }
    /** Writes what the queue holds, in order, until it is empty or waits for compression or a stream. */
    #pump() {
        const queue = this.#queue;
        while (queue !== undefined && queue === this.#queue && (this.#flags & SendState.BUSY) === 0 && queue.length > 0) {
            if (!this.#writeHead(queue, queue[0]))
                return;
        }
        if (queue !== undefined && queue === this.#queue && queue.length === 0)
            this.#queue = undefined;
    }
    /**
     * Writes the item at the head of `queue`, or starts compressing or streaming it.
     * @returns `false` when the queue must wait for that item: it pumps again once the item is done.
     */
    #writeHead(queue, item) {
        switch (item.kind) {
            case 'frame':
                this.#finishItem(queue);
                this.#context.stats.messagesOut++;
                this.#writeFrame(item.frame);
                return true;
            case 'close':
                this.#finishItem(queue);
                this.#writeClose(item.payload);
                return true;
            case 'end':
                this.#finishItem(queue);
                this.#flushBatch();
                this.#socket.end();
                return true;
            case 'shared':
                return this.#writeSharedCompression(queue, item.job);
            case 'compress':
                this.#compress(queue, item);
                return false;
            case 'stream':
                this.#stream(queue, item);
                return false;
        }
    }
    /** A shared compression at the head: written once done (`null` when it failed: the message is skipped). */
    #writeSharedCompression(queue, job) {
        if (job.frame === undefined) {
            this.#flags |= SendState.BUSY;
            job.waiting.push(this.#connection);
            return false;
        }
        this.#finishItem(queue);
        if (job.frame !== null) {
            this.#context.stats.messagesOut++;
            this.#writeFrame(job.frame);
        }
        return true;
    }
    /** Compresses the item at the head of `queue`, then writes it and pumps on (RFC 7692 §6: RSV1 marks it). */
    #compress(queue, item) {
        this.#flags |= SendState.BUSY;
        item.codec.deflate(item.data, (error, compressed) => {
            if (queue !== this.#queue)
                return; // dropped meanwhile (so also once the connection has closed)
            this.#flags &= ~SendState.BUSY;
            this.#finishItem(queue);
            if (error === null && compressed !== undefined) {
                this.#context.stats.messagesOut++;
                this.#writeFrame({ header: encodeFrame(item.opcode, compressed, FRAME_RSV1), payload: undefined });
            }
            else {
                this.#context.log.error(`client ${this.#connection.client.id}: compression failed: ${describeError(error)}`);
            }
            this.#pump();
        });
    }
    /** Streams the item at the head of `queue`; its promise settles, and the queue goes on, once it has ended. */
    #stream(queue, item) {
        this.#flags |= SendState.BUSY;
        this.#runStream(item).then(() => this.#streamEnded(queue, item, undefined), (error) => this.#streamEnded(queue, item, error instanceof Error ? error : new Error(String(error))));
    }
    #streamEnded(queue, item, error) {
        if (queue === this.#queue) {
            this.#flags &= ~SendState.BUSY;
            this.#finishItem(queue);
        }
        if (error === undefined)
            item.resolve();
        else
            item.reject(error);
        this.#pump();
    }
    #finishItem(queue) {
        const item = queue.shift();
        this.#queuedBytes -= item.size;
        // While closing, the wait for the peer counts from the last progress in sending what was accepted.
        if ((this.#flags & SendState.CLOSE_FRAME_TAKEN) !== 0)
            sendQueueEvents.progressWhileClosing(this.#connection);
    }
    /**
     * Writes one stream item as fragments (RFC 6455 §5.4). One chunk is held back, so that the last data goes
     * in the final frame rather than an empty one after it.
     */
    async #runStream(item) {
        let opcode = item.binary === undefined ? undefined : item.binary ? Opcode.BINARY : Opcode.TEXT;
        let held;
        let first = true;
        try {
            for await (const chunk of item.source) {
                if (opcode === undefined)
                    opcode = typeof chunk === 'string' ? Opcode.TEXT : Opcode.BINARY;
                const bytes = messageBytes(chunk);
                if (bytes.length === 0)
                    continue;
                if (held !== undefined) {
                    await this.#writeFragment(first ? opcode : Opcode.CONTINUATION, held, false);
                    first = false;
                }
                held = bytes;
            }
        }
        catch (error) {
            // Fragments already sent cannot be taken back: the message can only be abandoned with the connection.
            if (!first) {
                item.reject(error instanceof Error ? error : new Error(String(error)));
                sendQueueEvents.streamFailed(this.#connection);
            }
            throw error;
        }
        await this.#writeFragment(first ? (opcode ?? Opcode.BINARY) : Opcode.CONTINUATION, held ?? EMPTY, true);
        this.#context.stats.messagesOut++;
    }
    async #writeFragment(opcode, payload, fin) {
        // A closed connection has dropped its queue, and its socket is destroyed.
        if (this.#socket.destroyed || this.#queue === undefined) {
            throw new Error('Cannot go on streaming a message: the connection closed.');
        }
        const header = Buffer.allocUnsafe(frameHeaderLength(payload.length));
        writeFrameHeader(header, (fin ? FRAME_FIN : 0) | opcode, payload.length);
        if (!this.#writeFrame({ header, payload }))
            await waitForDrain(this.#socket);
    }
    /** Writes a frame (header and uncopied payload in one batch, see STYLE.md); `false` when the socket is full. */
    #writeFrame(frame) {
        const socket = this.#socket;
        if (socket.destroyed)
            return false;
        const payload = frame.payload;
        if (frame.header.length + (payload?.length ?? 0) < BATCH_FRAME_LIMIT) {
            if ((this.#flags & SendState.CORKED) === 0)
                this.#batchWrites();
        }
        else if ((this.#flags & SendState.CORKED) !== 0) {
            // A large frame gains nothing from waiting: flush the batch before it and write it through, so that
            // `write()` can tell whether the socket really took it.
            this.#flags &= ~SendState.CORKED;
            this.#flushBatch();
            socket.uncork();
        }
        const corked = (this.#flags & SendState.CORKED) !== 0;
        let flushed;
        if (payload === undefined && corked && frame.header.length < GATHER_FRAME_LIMIT) {
            // Gathered, not written: one write at the end of the tick costs the stream machinery once, not per frame.
            this.#context.stats.bytesOut += frame.header.length;
            const batch = (this.#batch ??= new FrameBatch());
            batch.buffers.push(frame.header);
            batch.bytes += frame.header.length;
            flushed = socket.writableLength + batch.bytes < socket.writableHighWaterMark;
        }
        else if (payload === undefined) {
            // Written by reference, after what was gathered (a batch exists only while corked). A frame too large to
            // be worth a copy (a broadcast's would be copied once per client) thus leaves in the tick's one writev.
            this.#flushBatch();
            this.#context.stats.bytesOut += frame.header.length;
            const taken = socket.write(frame.header);
            // While corked, `write()` reports full for anything over the high-water mark: judge by what waits.
            flushed = corked ? socket.writableLength < socket.writableHighWaterMark : taken;
        }
        else {
            this.#flushBatch();
            this.#context.stats.bytesOut += frame.header.length + payload.length;
            socket.cork();
            socket.write(frame.header);
            socket.write(payload);
            socket.uncork();
            // While corked, `write()` reports full for any frame over the high-water mark; what is left once the
            // batch went out tells whether the client is behind.
            flushed = socket.writableLength < socket.writableHighWaterMark;
        }
        if (!flushed)
            this.#flags |= SendState.BEHIND;
        return flushed;
    }
    /** Writes our Close frame; the connection stops reading until it has left (see {@link SendQueueEvents}). */
    #writeClose(payload) {
        if (this.#socket.destroyed)
            return;
        this.#flushBatch();
        sendQueueEvents.closeFrameWriting(this.#connection);
        this.#socket.write(encodeFrame(Opcode.CLOSE, payload), () => sendQueueEvents.closeFrameWritten(this.#connection));
    }
    /**
     * Corks the socket until the end of the current tick, as uWebSockets does: all that is sent to this client
     * while one read is handled (echoes, many broadcasts) leaves in one `writev`, not one write per message.
     */
    #batchWrites() {
        this.#flags |= SendState.CORKED;
        this.#socket.cork();
        if (corkedQueues.push(this) === 1)
            process.nextTick(_c.#uncorkAll);
    }
    static #uncorkAll() {
        for (const sendQueue of corkedQueues) {
            if ((sendQueue.#flags & SendState.CORKED) === 0)
                continue;
            sendQueue.#flags &= ~SendState.CORKED;
            sendQueue.#flushBatch();
            sendQueue.#socket.uncork();
        }
        corkedQueues.length = 0;
    }
    /** Writes the small frames gathered in this tick, as one buffer, ahead of whatever is written next. */
    #flushBatch() {
        const batch = this.#batch;
        if (batch === undefined)
            return;
        this.#batch = undefined;
        if (this.#socket.destroyed)
            return;
        const buffers = batch.buffers;
        this.#socket.write(buffers.length === 1 ? buffers[0] : Buffer.concat(buffers, batch.bytes));
    }
}
_c = SendQueue;
/** The state bits of a {@link SendQueue}, packed in one field: an idle connection is measured in bytes. */
const SendState = {
    /** The item at the head of the queue is being compressed or streamed. */
    BUSY: 1,
    /** The socket is corked until the end of the current tick (see `#batchWrites`). */
    CORKED: 2,
    /** A write found the socket full: the next drain means this client has caught up (`setFnDrain`). */
    BEHIND: 4,
    /** Our Close frame was taken: the last frame this queue writes. */
    CLOSE_FRAME_TAKEN: 8,
};
/**
 * What a write queued in a full socket costs beside its bytes: its Buffer object and the stream's write request,
 * about 128 bytes in Node. A skipped Pong is counted as what queuing it would have held, so that `maxBufferedAmount`
 * measures memory for tiny control frames too (2-byte Pongs counted as 2 bytes would let a Ping flood make the
 * server parse 8 million Pings before acting).
 */
const QUEUED_WRITE_COST = 128;
/** The send queues whose sockets are corked until the end of this tick. */
const corkedQueues = [];
/**
 * The small frames one client is sent in one tick, gathered to be written as one buffer, as uWebSockets does
 * with its cork buffer: a broadcast of 32 bytes then costs each client an array push, not a pass through the
 * stream's `write()` (measured: 650 → 540 ns of server CPU per delivery, broadcasting 32 B to 1,000 clients).
 */
class FrameBatch {
    buffers = [];
    bytes = 0;
}
/** Frames from this size on are written at once rather than batched (batching pays for small frames only). */
const BATCH_FRAME_LIMIT = 16 * 1024;
/**
 * Frames below this size are copied into the tick's {@link FrameBatch}; larger ones (up to BATCH_FRAME_LIMIT)
 * wait in the corked socket by reference. Measured (broadcast of 4 KiB to 1,000, publish of 1 KiB to 5,000): a copy
 * per client costs more than a stream `write()` from about 1 KiB on; below, the copy wins.
 */
const GATHER_FRAME_LIMIT = 1024;
/** Resolves when the socket can take more, or has closed (the caller then finds it closed). */
function waitForDrain(socket) {
    return new Promise((resolve) => {
        const done = () => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
    });
}
/**
 * The bytes of a message: a string as UTF-8, bytes viewed (not copied) as a Buffer: exactly the bytes a view
 * covers, never more of its buffer.
 * @throws {TypeError} for anything else (a number, say), so that no memory is ever sent that was not given.
 */
function messageBytes(message) {
    if (typeof message === 'string') {
        const received = receivedBytesOf(message);
        if (received !== undefined)
            return received;
        return message.length >= LONG_TEXT_LENGTH && message.length <= LONG_TEXT_SCRATCH_LIMIT
            ? Buffer.from(encodeLongText(message))
            : Buffer.from(message, 'utf8');
    }
    if (Buffer.isBuffer(message))
        return message;
    if (ArrayBuffer.isView(message))
        return Buffer.from(message.buffer, message.byteOffset, message.byteLength);
    if (message instanceof ArrayBuffer)
        return Buffer.from(message);
    throw new TypeError(`Cannot send a message of type ${describeType(message)}: send a string, an ArrayBufferView (Buffer, typed array, DataView) or an ArrayBuffer.`);
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
export class FrameParser {
    #handler;
    #maxMessageSize;
    #inflater;
    #maxFragments;
    #maxBufferedChunks;
    #maxReadAhead;
    /** Received bytes not consumed yet: `#chunks[0]` from `#offset` on, then the other chunks whole. */
    #chunks = [];
    #offset = 0;
    #buffered = 0;
    /** Set after a Close frame or a failure: everything later is discarded (RFC 6455 §5.5.1, §7.1.7). */
    #stopped = false;
    /** Set by `pause()`: bytes are kept but no frame is handled until `resume()`. */
    #paused = false;
    /** Set while the inflater works on a frame: the frames behind it wait. */
    #inflating = false;
    /** A message whose inflation finished while paused: delivered first on `resume()`. */
    #held;
    /** `onReadPressure(true)` was reported and not yet taken back. */
    #pressed = false;
    /** The frame being read: its header has been consumed, its payload not yet. Reset after each frame. */
    #frame = new FrameState();
    /** The message in progress, fragmented (RFC 6455 §5.4) or compressed. Reset after each message. */
    #message = new MessageState();
    constructor(handler, options) {
        this.#handler = handler;
        this.#maxMessageSize = options.maxMessageSize;
        this.#inflater = options.inflater;
        this.#maxFragments = options.maxFragments || Infinity;
        this.#maxBufferedChunks = options.maxBufferedChunks ?? Infinity;
        this.#maxReadAhead = options.maxReadAhead ?? DEFAULT_MAX_READ_AHEAD;
    }
    /** Feeds received bytes; complete frames are handled before this returns, unless paused or inflating. */
    push(chunk) {
        if (this.#stopped || chunk.length === 0)
            return;
        // §10.4: a frame trickled in tiny reads would hold an object per read.
        if (this.#chunks.push(chunk) > this.#maxBufferedChunks) {
            this.#fail(frameFailure('TOO_MANY_CHUNKS'));
            return;
        }
        this.#buffered += chunk.length;
        this.#process();
        // Bytes that wait behind an inflating message are bounded: past the limit, ask for reading to stop.
        if (this.#inflating && !this.#pressed && this.#buffered >= this.#maxReadAhead && !this.#stopped) {
            this.#pressed = true;
            this.#handler.onReadPressure?.(true);
        }
    }
    /** Stops handling frames (received bytes are kept) until {@link resume}. */
    pause() {
        this.#paused = true;
    }
    /** Handles the frames received while paused, and goes on. */
    resume() {
        if (!this.#paused)
            return;
        this.#paused = false;
        const held = this.#held;
        this.#held = undefined;
        if (held !== undefined && !this.#stopped)
            this.#deliver(held.opcode, held.data, false);
        this.#process();
    }
    #process() {
        const frame = this.#frame;
        while (!this.#stopped && !this.#paused && !this.#inflating) {
            if (!frame.awaitingPayload && !this.#readHeader())
                break;
            const remaining = frame.payloadLength - frame.payloadTaken;
            if (this.#buffered < remaining) {
                // §8.1: text that is not compressed is validated as it arrives, so that invalid UTF-8 fails at the read
                // that shows it, not once the whole frame is in.
                if (this.#buffered > 0 && this.#takesTextInPieces())
                    this.#takeTextPiece(this.#buffered);
                break;
            }
            if (frame.payloadTaken > 0) {
                this.#takeTextPiece(remaining);
                continue;
            }
            const payload = this.#takeUnmasked(frame.payloadLength, frame.mask);
            const { opcode, fin, rsv1 } = frame;
            // Reset before the frame is handled: the handler may resume or stop the parser, which must find no frame
            // in progress.
            frame.reset();
            this.#handleFrame(opcode, fin, rsv1, payload);
        }
        if (this.#pressed && !this.#inflating) {
            this.#pressed = false;
            if (!this.#stopped)
                this.#handler.onReadPressure?.(false);
        }
    }
    /** Discards all further input and frees what is buffered. */
    stop() {
        this.#stopped = true;
        this.#chunks = [];
        this.#buffered = 0;
        this.#frame.reset();
        this.#message.reset();
    }
    /** Whether the frame being read is a data frame of an uncompressed text message. */
    #takesTextInPieces() {
        const frame = this.#frame;
        if (frame.opcode === Opcode.TEXT)
            return !frame.rsv1;
        return frame.opcode === Opcode.CONTINUATION && this.#message.opcode === Opcode.TEXT && !this.#message.compressed;
    }
    /** Consumes the next `count` bytes of a text frame's payload, unmasked with the key at that offset (§5.3). */
    #takeTextPiece(count) {
        const frame = this.#frame;
        const offset = frame.payloadTaken;
        const shift = 8 * (offset & 3);
        const mask = shift === 0 ? frame.mask : ((frame.mask << shift) | (frame.mask >>> (32 - shift))) >>> 0;
        const piece = this.#takeUnmasked(count, mask);
        frame.payloadTaken = offset + count;
        const complete = frame.payloadTaken === frame.payloadLength;
        const endsMessage = complete && frame.fin;
        if (complete)
            frame.reset();
        this.#addToMessage(Opcode.TEXT, piece, endsMessage);
    }
    /**
     * Reads and checks a frame header (RFC 6455 §5.2) once all of its 2–14 bytes are buffered.
     * @returns `false` when more bytes are needed or the frame failed.
     */
    #readHeader() {
        if (this.#buffered < 2)
            return false;
        const byte0 = this.#peek(0);
        const byte1 = this.#peek(1);
        const message = this.#message;
        // Decide what the first two bytes can decide before waiting for the rest of the header.
        const failure = checkFrameStart(byte0, byte1, message.opcode !== 0, this.#inflater !== undefined);
        if (failure !== undefined)
            return this.#fail(frameFailure(failure));
        const lengthCode = byte1 & 0x7f;
        const extendedLengthBytes = lengthCode === 126 ? 2 : lengthCode === 127 ? 8 : 0;
        const headerLength = 2 + extendedLengthBytes + 4;
        if (this.#buffered < headerLength)
            return false;
        let payloadLength = lengthCode;
        if (lengthCode === 126) {
            payloadLength = (this.#peek(2) << 8) | this.#peek(3);
            // §5.2: "the minimal number of bytes MUST be used to encode the length".
            if (payloadLength < 126)
                return this.#fail(frameFailure('NON_MINIMAL_LENGTH'));
        }
        else if (lengthCode === 127) {
            const high = this.#peek32(2);
            // §5.2: "the most significant bit MUST be 0".
            if (high >= 0x80000000)
                return this.#fail(frameFailure('LENGTH_TOP_BIT_SET'));
            payloadLength = high * 0x100000000 + this.#peek32(6);
            if (payloadLength < 65536)
                return this.#fail(frameFailure('NON_MINIMAL_LENGTH'));
        }
        const opcode = byte0 & 0x0f;
        // §10.4: the limits are decided here, before any of the payload is buffered.
        if (opcode < Opcode.CLOSE) {
            if (message.length + payloadLength > this.#maxMessageSize)
                return this.#fail(frameFailure('MESSAGE_TOO_BIG'));
            if (opcode === Opcode.CONTINUATION && ++message.fragmentCount >= this.#maxFragments) {
                return this.#fail(frameFailure('TOO_MANY_FRAGMENTS'));
            }
        }
        const mask = this.#peek32(2 + extendedLengthBytes);
        this.#skip(headerLength);
        this.#frame.start(byte0, payloadLength, mask);
        return true;
    }
    /** Handles a frame whose whole payload has been taken and unmasked. */
    #handleFrame(opcode, fin, rsv1, payload) {
        switch (opcode) {
            case Opcode.PING:
                this.#handler.onPing(payload);
                return;
            case Opcode.PONG:
                this.#handler.onPong(payload);
                return;
            case Opcode.CLOSE:
                this.#handleClose(payload);
                return;
            default:
                // §5.4: a continuation frame carries on the message its first frame began.
                this.#handleDataFrame(opcode === Opcode.CONTINUATION ? this.#message.opcode : opcode, fin, rsv1, payload);
        }
    }
    /** A frame of a data message; `opcode` is the message's (TEXT or BINARY). */
    #handleDataFrame(opcode, fin, rsv1, payload) {
        const message = this.#message;
        if (rsv1 || message.compressed) {
            this.#inflateFrame(opcode, fin, payload);
            return;
        }
        if (fin && message.opcode === 0) {
            // The common case: a whole message in one frame, delivered without copying.
            this.#deliver(opcode, payload, false);
            return;
        }
        this.#addToMessage(opcode, payload, fin);
    }
    /**
     * Adds a fragment (or, for text, a piece of one) to the message in progress, and delivers the message after
     * its last bytes. §8.1: invalid UTF-8 fails as soon as a piece shows it, not only when the message ends.
     */
    #addToMessage(opcode, bytes, last) {
        const message = this.#message;
        if (message.opcode === 0)
            message.opcode = opcode;
        message.length += bytes.length;
        if (opcode === Opcode.TEXT && !this.#checkTextFragment(bytes, last)) {
            this.#fail(frameFailure('INVALID_UTF8'));
            return;
        }
        if (!last) {
            (message.assembler ??= new MessageAssembler()).add(bytes);
            return;
        }
        const whole = message.assembler === undefined ? bytes : message.assembler.finish(bytes, message.length);
        message.reset();
        this.#deliver(opcode, whole, true);
    }
    /** A frame of a compressed message (RFC 7692 §6.2): inflated in order, while the frames behind it wait. */
    #inflateFrame(opcode, fin, payload) {
        const message = this.#message;
        if (message.opcode === 0) {
            message.opcode = opcode;
            message.compressed = true;
        }
        message.length += payload.length;
        let synchronous = true;
        this.#inflating = true;
        this.#inflater.inflate(payload, fin, (error, inflated) => {
            this.#inflating = false;
            if (this.#stopped)
                return;
            if (error !== null) {
                this.#fail(error);
                return;
            }
            if (fin) {
                this.#message.reset();
                if (this.#paused)
                    this.#held = { opcode, data: inflated ?? EMPTY };
                else
                    this.#deliver(opcode, inflated ?? EMPTY, false);
            }
            if (!synchronous)
                this.#process();
        });
        synchronous = false;
    }
    /** Hands a complete message over; text not yet checked as it arrived is checked here (§8.1). */
    #deliver(opcode, data, utf8Checked) {
        if (opcode === Opcode.BINARY) {
            this.#handler.onBinary(data);
        }
        else if (utf8Checked || isUtf8(data)) {
            this.#handler.onText(data.toString('utf8'), data);
        }
        else {
            this.#fail(frameFailure('INVALID_UTF8'));
        }
    }
    /**
     * Validates one fragment of a text message, carrying an incomplete trailing sequence to the next one.
     * On the final fragment nothing may be left incomplete.
     */
    #checkTextFragment(fragment, last) {
        const message = this.#message;
        let bytes = fragment;
        if (message.utf8Tail.length > 0) {
            // Complete the carried sequence with the first bytes of this fragment, then check it alone.
            const carried = message.utf8Tail;
            const missing = utf8SequenceLength(carried[0]) - carried.length;
            const joined = Buffer.concat([carried, fragment.subarray(0, missing)]);
            if (joined.length < carried.length + missing) {
                message.utf8Tail = joined;
                return isValidUtf8Prefix(joined) && !last;
            }
            if (!isUtf8(joined))
                return false;
            bytes = fragment.subarray(missing);
            message.utf8Tail = EMPTY;
        }
        const tailLength = incompleteUtf8TailLength(bytes);
        if (!isUtf8(tailLength === 0 ? bytes : bytes.subarray(0, bytes.length - tailLength)))
            return false;
        if (tailLength === 0)
            return true;
        const tail = bytes.subarray(bytes.length - tailLength);
        if (last || !isValidUtf8Prefix(tail))
            return false;
        message.utf8Tail = Buffer.from(tail);
        return true;
    }
    /** §5.5.1: an optional 2-byte code, then a UTF-8 reason. */
    #handleClose(payload) {
        if (payload.length === 1) {
            this.#fail(frameFailure('CLOSE_PAYLOAD_ONE_BYTE'));
            return;
        }
        const code = payload.length === 0 ? CloseCode.NO_STATUS : payload.readUInt16BE(0);
        if (payload.length > 0 && !isValidReceivedCloseCode(code)) {
            this.#fail(frameFailure('INVALID_CLOSE_CODE'));
            return;
        }
        const reason = payload.subarray(2);
        if (!isUtf8(reason)) {
            this.#fail(frameFailure('INVALID_CLOSE_REASON'));
            return;
        }
        this.stop();
        this.#handler.onClose(code, reason.toString('utf8'));
    }
    #fail(error) {
        this.stop();
        this.#handler.onProtocolError(error);
        return false;
    }
    // ── the chunk queue ──────────────────────────────────────────────────────────────────────────────────────
    /** The buffered byte at `index` from the read position (only used within a frame header). */
    #peek(index) {
        let at = this.#offset + index;
        for (const chunk of this.#chunks) {
            if (at < chunk.length)
                return chunk[at];
            at -= chunk.length;
        }
        throw new RangeError('FrameParser read past its buffered bytes.');
    }
    #peek32(index) {
        return ((this.#peek(index) << 24) | (this.#peek(index + 1) << 16) | (this.#peek(index + 2) << 8) | this.#peek(index + 3)) >>> 0;
    }
    #skip(count) {
        this.#buffered -= count;
        let remaining = count;
        while (remaining > 0) {
            const available = this.#chunks[0].length - this.#offset;
            if (remaining < available) {
                this.#offset += remaining;
                return;
            }
            remaining -= available;
            this.#chunks.shift();
            this.#offset = 0;
        }
    }
    /**
     * Takes the `count` bytes of a payload and unmasks them (RFC 6455 §5.3): in place in the chunk they lie in,
     * else into one new buffer. A long payload spread over chunks is gathered straight into the WebAssembly
     * block, unmasked there and copied out once: two copies of each byte rather than three.
     */
    #takeUnmasked(count, mask) {
        if (count === 0)
            return EMPTY;
        const first = this.#chunks[0];
        const start = this.#offset;
        if (first.length - start >= count) {
            this.#skip(count);
            const view = first.subarray(start, start + count);
            unmask(view, mask);
            return view;
        }
        const out = Buffer.allocUnsafe(count);
        if (count >= WASM_UNMASK_MIN_LENGTH && wasmUnmasker !== undefined) {
            this.#gatherUnmaskedInto(out, mask, wasmUnmasker);
        }
        else {
            this.#gatherInto(out);
            unmask(out, mask);
        }
        return out;
    }
    /** Copies the next `out.length` bytes, which span several chunks, into `out`, and consumes them. */
    #gatherInto(out) {
        const count = out.length;
        // One pass over the chunks, then one splice: a payload trickled in as many tiny chunks stays linear.
        let written = 0;
        let index = 0;
        let offset = this.#offset;
        while (written < count) {
            const chunk = this.#chunks[index];
            const n = Math.min(chunk.length - offset, count - written);
            chunk.copy(out, written, offset, offset + n);
            offset += n;
            written += n;
            if (offset === chunk.length) {
                index++;
                offset = 0;
            }
        }
        this.#dropGathered(index, offset, count);
    }
    /** As {@link #gatherInto}, unmasking on the way: the bytes pass through the WebAssembly block (§5.3). */
    #gatherUnmaskedInto(out, mask, wasm) {
        const count = out.length;
        const key = byteSwap32(mask);
        let blockStart = 0; // where the bytes gathered in the block go in `out`
        let blockFill = 0;
        let written = 0;
        let index = 0;
        let offset = this.#offset;
        while (written < count) {
            const chunk = this.#chunks[index];
            // Blocks start at multiples of 4 in the payload, so each starts with key byte 0.
            const n = Math.min(chunk.length - offset, count - written, WASM_BLOCK_SIZE - blockFill);
            chunk.copy(wasm.memory, blockFill, offset, offset + n);
            blockFill += n;
            offset += n;
            written += n;
            if (blockFill === WASM_BLOCK_SIZE) {
                wasm.xorWords(WASM_BLOCK_SIZE, key);
                wasm.memory.copy(out, blockStart, 0, WASM_BLOCK_SIZE);
                blockStart += WASM_BLOCK_SIZE;
                blockFill = 0;
            }
            if (offset === chunk.length) {
                index++;
                offset = 0;
            }
        }
        this.#dropGathered(index, offset, count);
        // The last, partial block: whole words in WebAssembly, the last 0–3 bytes here.
        const wordBytes = blockFill & ~3;
        wasm.xorWords(wordBytes, key);
        wasm.memory.copy(out, blockStart, 0, blockFill);
        for (let i = blockStart + wordBytes; i < count; i++)
            out[i] = out[i] ^ maskByte(mask, i);
    }
    /** Consumes the `count` bytes just gathered: `index` whole chunks, then `offset` bytes of the next. */
    #dropGathered(index, offset, count) {
        this.#chunks.splice(0, index);
        this.#offset = offset;
        this.#buffered -= count;
    }
}
/** Default of {@link FrameParserOptions.maxReadAhead}. */
const DEFAULT_MAX_READ_AHEAD = 256 * 1024;
/**
 * The frame a {@link FrameParser} is reading (RFC 6455 §5.2), from its header until its payload is consumed.
 * One per parser, with a fixed shape, reset in place: reading a frame allocates nothing.
 */
class FrameState {
    /** A header has been read; its payload is still to come, wholly or in part. */
    awaitingPayload = false;
    fin = false;
    /** RSV1: on the first frame of a data message, marks the message compressed (RFC 7692 §6). */
    rsv1 = false;
    opcode = 0;
    payloadLength = 0;
    /** Bytes of the payload already consumed: a text frame is taken piece by piece as it arrives (§8.1). */
    payloadTaken = 0;
    /** The frame's masking key, its 4 bytes read as a big-endian 32-bit number. */
    mask = 0;
    /** Takes a header just read: its first byte (FIN, RSV1, opcode), its payload length and its masking key. */
    start(firstByte, payloadLength, mask) {
        this.awaitingPayload = true;
        this.fin = (firstByte & 0x80) !== 0;
        this.rsv1 = (firstByte & 0x40) !== 0;
        this.opcode = firstByte & 0x0f;
        this.payloadLength = payloadLength;
        this.payloadTaken = 0;
        this.mask = mask;
    }
    /** No frame is being read: its payload was consumed, or the parser stopped. */
    reset() {
        this.awaitingPayload = false;
        this.fin = false;
        this.rsv1 = false;
        this.opcode = 0;
        this.payloadLength = 0;
        this.payloadTaken = 0;
        this.mask = 0;
    }
}
/**
 * The data message a {@link FrameParser} has begun and not yet delivered: one in several frames (RFC 6455 §5.4),
 * a compressed one (RFC 7692), or text taken in pieces as it arrives (§8.1). One per parser, with a fixed shape,
 * reset in place.
 */
class MessageState {
    /** The message's opcode (TEXT or BINARY), from its first frame; 0 when no message is in progress. */
    opcode = 0;
    /** Payload bytes of its frames so far (as received, so compressed for a compressed message). */
    length = 0;
    /** Its continuation frames so far, counted against `maxFragments`. */
    fragmentCount = 0;
    /** Whether the message is compressed (RSV1 on its first frame, RFC 7692 §6.1). */
    compressed = false;
    /** The bytes so far of a message in several pieces (see {@link MessageAssembler}); none for a message in one. */
    assembler = undefined;
    /** For text: the bytes of an incomplete UTF-8 sequence at the end of the pieces so far. */
    utf8Tail = EMPTY;
    /**
     * No message is in progress: it was delivered, or the parser stopped. The assembler is dropped too, and made
     * again for the next message in pieces: an idle connection holds none.
     */
    reset() {
        this.opcode = 0;
        this.length = 0;
        this.fragmentCount = 0;
        this.compressed = false;
        this.assembler = undefined;
        this.utf8Tail = EMPTY;
    }
}
/** Pieces from this size on are kept as they are; smaller ones are copied together into a slab. */
const LARGE_PIECE = 16 * 1024;
/** The first slab's size; each next one doubles, up to {@link MAX_SLAB}. */
const MIN_SLAB = 1024;
const MAX_SLAB = 64 * 1024;
/**
 * Gathers the bytes of a message that arrives in several pieces (fragments, RFC 6455 §5.4, or the pieces of a
 * text frame checked as they arrive), so that what it holds is bounded by the message's size plus a constant,
 * however many pieces there are: large pieces are kept as they are (no copy), small ones are copied into slabs
 * of up to 64 KiB, so that neither an object per piece nor a socket chunk behind each small view is kept. A
 * million one-byte fragments cost a few dozen slabs, and each byte is copied twice at most.
 */
class MessageAssembler {
    #pieces = [];
    #slab;
    #slabFill = 0;
    add(bytes) {
        if (bytes.length === 0)
            return;
        if (bytes.length >= LARGE_PIECE) {
            this.#sealSlab();
            this.#pieces.push(bytes);
            return;
        }
        let slab = this.#slab;
        if (slab === undefined || slab.length - this.#slabFill < bytes.length) {
            this.#sealSlab();
            const size = Math.min(MAX_SLAB, Math.max(MIN_SLAB, slab === undefined ? 0 : slab.length * 2));
            slab = this.#slab = Buffer.allocUnsafe(Math.max(size, bytes.length));
        }
        bytes.copy(slab, this.#slabFill);
        this.#slabFill += bytes.length;
    }
    /** The whole message, `last` being its final piece and `length` its total size; the assembler is then empty. */
    finish(last, length) {
        if (this.#pieces.length === 0 && this.#slabFill === 0) {
            this.clear();
            return last;
        }
        this.#sealSlab();
        if (last.length > 0)
            this.#pieces.push(last);
        const pieces = this.#pieces;
        this.clear();
        return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, length);
    }
    clear() {
        this.#pieces = [];
        this.#slab = undefined;
        this.#slabFill = 0;
    }
    /** Moves the slab's bytes to the pieces: a full slab as it is, a partly filled one as an exact copy. */
    #sealSlab() {
        const slab = this.#slab;
        if (slab === undefined || this.#slabFill === 0)
            return;
        if (this.#slabFill === slab.length) {
            this.#pieces.push(slab);
            this.#slab = undefined;
        }
        else {
            this.#pieces.push(Buffer.from(slab.subarray(0, this.#slabFill)));
        }
        this.#slabFill = 0;
    }
}
/**
 * The rules decidable from a frame's first two bytes (RFC 6455 §5.1, §5.2, §5.4, §5.5; RFC 7692 §6.1), in the
 * RFC's order.
 * @returns the failure, or `undefined` when the frame may proceed.
 */
function checkFrameStart(byte0, byte1, inMessage, compression) {
    const opcode = byte0 & 0x0f;
    // §5.2: RSV1-3 "MUST be 0 unless an extension is negotiated that defines meanings for non-zero values".
    // RFC 7692 §6.1: permessage-deflate gives RSV1 a meaning on the first frame of a data message only.
    const rsv1MayBeSet = compression && (opcode === Opcode.TEXT || opcode === Opcode.BINARY);
    if ((byte0 & (rsv1MayBeSet ? 0x30 : 0x70)) !== 0)
        return 'RESERVED_BITS';
    const isControl = (opcode & 0x08) !== 0;
    if (isControl ? opcode > Opcode.PONG : opcode > Opcode.BINARY)
        return 'RESERVED_OPCODE';
    // §5.1: "The server MUST close the connection upon receiving a frame that is not masked."
    if ((byte1 & 0x80) === 0)
        return 'UNMASKED_FRAME';
    if (isControl) {
        // §5.5: "All control frames MUST have a payload length of 125 bytes or less and MUST NOT be fragmented."
        if ((byte0 & 0x80) === 0)
            return 'FRAGMENTED_CONTROL_FRAME';
        if ((byte1 & 0x7f) > MAX_CONTROL_PAYLOAD)
            return 'CONTROL_FRAME_TOO_LONG';
        return undefined;
    }
    // §5.4: a continuation continues a message; a new message may not start inside another.
    if (opcode === Opcode.CONTINUATION)
        return inMessage ? undefined : 'UNEXPECTED_CONTINUATION';
    return inMessage ? 'UNFINISHED_MESSAGE' : undefined;
}
/** Codes a peer may send in a Close frame (RFC 6455 §7.4.1, §7.4.2, and the IANA registry's 1012–1014). */
function isValidReceivedCloseCode(code) {
    return ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999));
}
// ── masking (RFC 6455 §5.3) ─────────────────────────────────────────────────────────────────────────────────
const LITTLE_ENDIAN = endianness() === 'LE';
/**
 * XORs `data` in place with a masking key given as the big-endian number of its 4 bytes (RFC 6455 §5.3:
 * byte i is XORed with key byte i mod 4). Long payloads go through WebAssembly SIMD, 16 bytes per instruction,
 * in blocks of 64 KiB; short ones, and every payload where WebAssembly is missing, through a JavaScript loop
 * over 32-bit words. Measured on a 64 KiB payload: 15 µs for the plain loop, 10.6 µs unrolled, 5 µs through
 * WebAssembly including the two copies (`ws` with its native `bufferutil`: 2.4 µs).
 */
function unmask(data, mask) {
    const length = data.length;
    if (length >= WASM_UNMASK_MIN_LENGTH && wasmUnmasker !== undefined) {
        const { memory, xorWords } = wasmUnmasker;
        // Blocks start at multiples of 4, so every block starts with key byte 0; WebAssembly loads little-endian.
        const key = byteSwap32(mask);
        for (let offset = 0; offset < length; offset += WASM_BLOCK_SIZE) {
            const wordBytes = Math.min(WASM_BLOCK_SIZE, length - offset) & ~3;
            data.copy(memory, 0, offset, offset + wordBytes);
            xorWords(wordBytes, key);
            memory.copy(data, offset, 0, wordBytes);
        }
        for (let i = length & ~3; i < length; i++)
            data[i] = data[i] ^ maskByte(mask, i);
        return;
    }
    let i = 0;
    if (length >= 32) {
        const misaligned = (4 - (data.byteOffset & 3)) & 3;
        for (; i < misaligned; i++)
            data[i] = data[i] ^ maskByte(mask, i);
        // The word key starts at key byte `i`: rotate the key so that byte comes first.
        const rotated = i === 0 ? mask : ((mask << (8 * i)) | (mask >>> (32 - 8 * i))) >>> 0;
        const key = LITTLE_ENDIAN ? byteSwap32(rotated) : rotated | 0;
        const words = (length - i) >>> 2;
        const view = new Int32Array(data.buffer, data.byteOffset + i, words);
        let w = 0;
        for (; w + 4 <= words; w += 4) {
            view[w] = view[w] ^ key;
            view[w + 1] = view[w + 1] ^ key;
            view[w + 2] = view[w + 2] ^ key;
            view[w + 3] = view[w + 3] ^ key;
        }
        for (; w < words; w++)
            view[w] = view[w] ^ key;
        i += words * 4;
    }
    for (; i < length; i++)
        data[i] = data[i] ^ maskByte(mask, i);
}
/** Payloads from this length on are unmasked through WebAssembly: below it the copies cost more than they save. */
const WASM_UNMASK_MIN_LENGTH = 1024;
/** One page of WebAssembly memory: the block unmasked at a time. */
const WASM_BLOCK_SIZE = 65536;
/**
 * A WebAssembly module of 131 bytes, assembled by hand, exporting its one page of memory `m` and
 * `u(length, key)`, which XORs `m[0 .. length)` (a multiple of 4) with the little-endian 32-bit `key`:
 *
 *   (func $u (param $length i32) (param $key i32) (local $i i32) (local $key4 v128)
 *     (local.set $key4 (i32x4.splat (local.get $key)))
 *     (block (loop                                     ;; 16 bytes at a time
 *       (br_if 1 (i32.gt_u (i32.add (local.get $i) (i32.const 16)) (local.get $length)))
 *       (v128.store (local.get $i) (v128.xor (v128.load (local.get $i)) (local.get $key4)))
 *       (local.set $i (i32.add (local.get $i) (i32.const 16)))
 *       (br 0)))
 *     (block (loop                                     ;; then 4 bytes at a time
 *       (br_if 1 (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $length)))
 *       (i32.store (local.get $i) (i32.xor (i32.load (local.get $i)) (local.get $key)))
 *       (local.set $i (i32.add (local.get $i) (i32.const 4)))
 *       (br 0))))
 */
const UNMASK_WASM = Uint8Array.of(0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x01, 0x60, 0x02, 0x7f, 0x7f, 0x00, 0x03, 0x02, 0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x09, 0x02, 0x01, 0x6d, 0x02, 0x00, 0x01, 0x75, 0x00, 0x00, 0x0a, 0x5d, 0x01, 0x5b, 0x02, 0x01, 0x7f, 0x01, 0x7b, 0x20, 0x01, 0xfd, 0x11, 0x21, 0x03, 0x02, 0x40, 0x03, 0x40, 0x20, 0x02, 0x41, 0x10, 0x6a, 0x20, 0x00, 0x4b, 0x0d, 0x01, 0x20, 0x02, 0x20, 0x02, 0xfd, 0x00, 0x00, 0x00, 0x20, 0x03, 0xfd, 0x51, 0xfd, 0x0b, 0x00, 0x00, 0x20, 0x02, 0x41, 0x10, 0x6a, 0x21, 0x02, 0x0c, 0x00, 0x0b, 0x0b, 0x02, 0x40, 0x03, 0x40, 0x20, 0x02, 0x41, 0x04, 0x6a, 0x20, 0x00, 0x4b, 0x0d, 0x01, 0x20, 0x02, 0x20, 0x02, 0x28, 0x00, 0x00, 0x20, 0x01, 0x73, 0x36, 0x00, 0x00, 0x20, 0x02, 0x41, 0x04, 0x6a, 0x21, 0x02, 0x0c, 0x00, 0x0b, 0x0b, 0x0b);
/** The compiled module, or `undefined` where WebAssembly (or its SIMD) is not available. */
const wasmUnmasker = (() => {
    try {
        const api = globalThis.WebAssembly;
        if (api === undefined)
            return undefined;
        const { exports } = new api.Instance(new api.Module(UNMASK_WASM));
        const memory = exports['m'];
        const xorWords = exports['u'];
        return { memory: Buffer.from(memory.buffer, 0, WASM_BLOCK_SIZE), xorWords };
    }
    catch {
        return undefined;
    }
})();
/** Key byte `i mod 4` of a big-endian 32-bit masking key. */
function maskByte(mask, i) {
    return (mask >>> (24 - 8 * (i & 3))) & 0xff;
}
function byteSwap32(value) {
    return ((value & 0xff) << 24) | ((value & 0xff00) << 8) | ((value >>> 8) & 0xff00) | (value >>> 24);
}
// ── UTF-8 (RFC 3629), validated as text arrives (RFC 6455 §8.1) ─────────────────────────────────────────────
/** Total length of the UTF-8 sequence a lead byte starts (2–4); 0 for a byte that cannot lead one. */
function utf8SequenceLength(lead) {
    if (lead >= 0xc2 && lead <= 0xdf)
        return 2;
    if (lead >= 0xe0 && lead <= 0xef)
        return 3;
    if (lead >= 0xf0 && lead <= 0xf4)
        return 4;
    return 0;
}
/**
 * How many bytes at the end of `bytes` begin a multi-byte sequence that is not complete yet (0–3).
 * Whether they are a *valid* beginning is left to {@link isValidUtf8Prefix}.
 */
function incompleteUtf8TailLength(bytes) {
    const end = bytes.length;
    for (let back = 1; back <= 3 && back <= end; back++) {
        const byte = bytes[end - back];
        if ((byte & 0xc0) === 0x80)
            continue; // a continuation byte: look further back for its lead
        if (byte < 0x80)
            return 0;
        return utf8SequenceLength(byte) > back ? back : 0;
    }
    return 0;
}
/** Whether 1–3 bytes can begin a valid UTF-8 sequence (RFC 3629 §4, including the second-byte ranges). */
function isValidUtf8Prefix(bytes) {
    const lead = bytes[0];
    const length = utf8SequenceLength(lead);
    if (length === 0 || bytes.length >= length)
        return false;
    if (bytes.length >= 2) {
        const second = bytes[1];
        const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
        const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
        if (second < low || second > high)
            return false;
    }
    return bytes.length < 3 || (bytes[2] & 0xc0) === 0x80;
}
/**
 * Binary payloads up to this size are copied behind their header and written once; larger ones go uncopied as
 * a second write in the same batch. Measured: a fresh 64 KiB buffer plus the copy costs about 8 µs, as much as
 * the rest of an echo; below 4 KiB the copy comes from Node's buffer pool and beats a second write.
 */
const COPY_PAYLOAD_LIMIT = 4 * 1024;
/** First-byte flags of a frame (RFC 6455 §5.2): FIN, and RSV1 for a compressed message (RFC 7692 §6). */
const FRAME_FIN = 0x80;
const FRAME_RSV1 = 0x40;
/** Length of a frame header for a payload of `length` bytes: 2, 4 or 10 (§5.2, minimal encoding). */
function frameHeaderLength(length) {
    return length < 126 ? 2 : length < 65536 ? 4 : 10;
}
/** Writes an unmasked frame header at the start of `target`; `firstByte` is the flags and the opcode. */
function writeFrameHeader(target, firstByte, length) {
    target[0] = firstByte;
    if (length < 126) {
        target[1] = length;
    }
    else if (length < 65536) {
        target[1] = 126;
        target.writeUInt16BE(length, 2);
    }
    else {
        target[1] = 127;
        target.writeUInt32BE(Math.floor(length / 0x100000000), 2);
        target.writeUInt32BE(length >>> 0, 6);
    }
}
/** One complete, final, unmasked frame as a single buffer; `flags` may add RSV1 (a compressed message). */
function encodeFrame(opcode, payload, flags = 0) {
    const headerLength = frameHeaderLength(payload.length);
    const frame = Buffer.allocUnsafe(headerLength + payload.length);
    writeFrameHeader(frame, FRAME_FIN | flags | opcode, payload.length);
    frame.set(payload, headerLength);
    return frame;
}
/**
 * The text message whose callback is running, and its UTF-8 bytes as received. A string sent while it runs that
 * is that very message (an echo, a relay to a room or to everyone) is framed from those bytes rather than encoded
 * again: one pass over the text fewer, and for a long text no copy at all. Set only while the callback runs, so
 * nothing is held between messages; the bytes are the message's own (the parser reuses no buffer).
 */
const deliveredText = { text: undefined, bytes: Buffer.alloc(0) };
/** The UTF-8 bytes of `text` when it is the text message being delivered, else `undefined`. */
function receivedBytesOf(text) {
    // A different string of another length is told apart at once; the same string object, by identity.
    return text === deliveredText.text ? deliveredText.bytes : undefined;
}
/** Frames a message: text encoded straight into the frame buffer; large binary left uncopied. */
function encodeDataFrame(message) {
    if (typeof message === 'string') {
        const received = receivedBytesOf(message);
        if (received !== undefined)
            return framePayload(Opcode.TEXT, received);
        if (message.length >= LONG_TEXT_LENGTH && message.length <= LONG_TEXT_SCRATCH_LIMIT) {
            const encoded = encodeLongText(message);
            const headerLength = frameHeaderLength(encoded.length);
            const frame = Buffer.allocUnsafe(headerLength + encoded.length);
            writeFrameHeader(frame, FRAME_FIN | Opcode.TEXT, encoded.length);
            encoded.copy(frame, headerLength);
            return { header: frame, payload: undefined };
        }
        const length = Buffer.byteLength(message, 'utf8');
        const headerLength = frameHeaderLength(length);
        const frame = Buffer.allocUnsafe(headerLength + length);
        writeFrameHeader(frame, FRAME_FIN | Opcode.TEXT, length);
        frame.write(message, headerLength, 'utf8');
        return { header: frame, payload: undefined };
    }
    return framePayload(Opcode.BINARY, messageBytes(message));
}
/** A data frame of `bytes`: one buffer when small, else a header and the bytes left uncopied. */
function framePayload(opcode, bytes) {
    if (bytes.length <= COPY_PAYLOAD_LIMIT)
        return { header: encodeFrame(opcode, bytes), payload: undefined };
    const header = Buffer.allocUnsafe(frameHeaderLength(bytes.length));
    writeFrameHeader(header, FRAME_FIN | opcode, bytes.length);
    return { header, payload: bytes };
}
/**
 * Long strings are encoded in one pass into a scratch buffer and then copied, rather than measured with
 * `Buffer.byteLength` and encoded in a second pass. Measured on 64 KiB of text with 2- and 3-byte characters:
 * 79 µs rather than 129 (all ASCII: the same). The scratch is kept for strings of at most 1 Mi characters, so it
 * never holds more than 3 MiB.
 */
const LONG_TEXT_LENGTH = 4096;
const LONG_TEXT_SCRATCH_LIMIT = 1024 * 1024;
const textEncoder = new TextEncoder();
let textScratch = Buffer.allocUnsafe(0);
/** The UTF-8 bytes of `text` as a view of the scratch buffer, valid until the next call. */
function encodeLongText(text) {
    // A UTF-16 code unit takes at most 3 bytes of UTF-8 (a surrogate pair: 4 bytes for 2 units).
    if (textScratch.length < text.length * 3)
        textScratch = Buffer.allocUnsafe(text.length * 3);
    const { written } = textEncoder.encodeInto(text, textScratch);
    return textScratch.subarray(0, written);
}
/** A Close frame's payload (§5.5.1): nothing, or the code and a UTF-8 reason. */
function encodeClosePayload(code, reason) {
    if (code === undefined)
        return EMPTY;
    const bytes = messageBytes(reason);
    const payload = Buffer.allocUnsafe(2 + bytes.length);
    payload.writeUInt16BE(code, 0);
    bytes.copy(payload, 2);
    return payload;
}
/** Validates the arguments of a close the application asked for; the same codes a peer may send. */
function checkCloseArguments(code, reason) {
    if (typeof code !== 'number' || !Number.isInteger(code) || !isValidReceivedCloseCode(code)) {
        throw new RangeError(`Cannot close with code ${String(code)}: use 1000-1003, 1007-1014 or 3000-4999 (RFC 6455 §7.4).`);
    }
    if (typeof reason !== 'string' && !ArrayBuffer.isView(reason)) {
        throw new TypeError(`Cannot close with a reason of type ${describeType(reason)}: the reason must be a string or UTF-8 bytes (an ArrayBufferView).`);
    }
    // §5.5.1: the reason is UTF-8; given as bytes, it must be valid UTF-8.
    if (typeof reason !== 'string' && !isUtf8(messageBytes(reason))) {
        throw new RangeError('Cannot close with a reason that is not valid UTF-8 (RFC 6455 §5.5.1).');
    }
    const length = typeof reason === 'string' ? Buffer.byteLength(reason, 'utf8') : reason.byteLength;
    if (length > MAX_CLOSE_REASON_BYTES) {
        throw new RangeError(`Cannot close with a reason of ${length} bytes: at most 123 UTF-8 bytes fit in a Close frame.`);
    }
}
/** The reason sent with a failure's Close frame: the error's message, cut to fit a control frame. */
function closeReasonFor(error) {
    return truncateUtf8(error.message, MAX_CLOSE_REASON_BYTES);
}
/**
 * Parses a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1): `name; param; param=value, name2 ...`, where a
 * value is a token or a quoted string, with optional spaces and tabs around the separators. Returns `undefined`
 * when the syntax is broken. A scanner, one pass, no backtracking: its time is linear in the value whatever it
 * holds (a regular expression over this grammar can take quadratic time on 64 KiB of spaces and semicolons).
 */
function parseExtensionOffers(value) {
    const offers = [];
    const end = value.length;
    let at = 0;
    const skipSpaces = () => {
        while (at < end && (value.charCodeAt(at) === 0x20 || value.charCodeAt(at) === 0x09))
            at++;
    };
    const readToken = () => {
        const start = at;
        while (at < end && isTokenCode(value.charCodeAt(at)))
            at++;
        return value.slice(start, at);
    };
    /** A quoted-string (RFC 9110 §5.6.4) without its quotes and escapes; `undefined` if it does not end. */
    const readQuoted = () => {
        let text = '';
        for (at++; at < end; at++) {
            const code = value.charCodeAt(at);
            if (code === 0x22) {
                at++;
                return text;
            }
            if (code === 0x5c)
                at++;
            if (at < end)
                text += value.charAt(at);
        }
        return undefined;
    };
    skipSpaces();
    while (at < end) {
        const name = readToken();
        if (name === '')
            return undefined;
        const params = [];
        for (skipSpaces(); value.charCodeAt(at) === 0x3b; skipSpaces()) {
            at++;
            skipSpaces();
            const param = readToken();
            if (param === '')
                return undefined;
            skipSpaces();
            let paramValue = true;
            if (value.charCodeAt(at) === 0x3d) {
                at++;
                skipSpaces();
                const quoted = value.charCodeAt(at) === 0x22;
                const read = quoted ? readQuoted() : readToken();
                if (read === undefined || (read === '' && !quoted))
                    return undefined;
                paramValue = read;
            }
            params.push([param.toLowerCase(), paramValue]);
        }
        offers.push({ name: name.toLowerCase(), params });
        if (at === end)
            break;
        if (value.charCodeAt(at) !== 0x2c)
            return undefined;
        at++;
        skipSpaces();
    }
    return offers;
}
/** Whether a character code may appear in a token (RFC 9110 §5.6.2 tchar). */
function isTokenCode(code) {
    return code < 128 && TOKEN_CODES[code] === 1;
}
const TOKEN_CODES = Uint8Array.from({ length: 128 }, (_, code) => (TOKEN.test(String.fromCharCode(code)) ? 1 : 0));
/**
 * Chooses the first permessage-deflate offer this server can honour (RFC 7692 §5, §7). An offer with an unknown
 * or repeated parameter, or an invalid value, is declined (§7: the server "MUST decline"), as is one asking the
 * server for an 8-bit window, which zlib cannot produce. Returns `undefined` when every offer is declined.
 */
function negotiateDeflate(offers, config) {
    for (const offer of offers) {
        if (offer.name !== 'permessage-deflate')
            continue;
        const agreement = acceptDeflateOffer(offer.params, config);
        if (agreement !== undefined)
            return agreement;
    }
    return undefined;
}
function acceptDeflateOffer(params, config) {
    const seen = new Set();
    let serverNoContextTakeover = config.serverNoContextTakeover;
    let clientNoContextTakeover = config.clientNoContextTakeover;
    let offeredServerBits;
    let offeredClientBits;
    for (const [name, value] of params) {
        if (seen.has(name))
            return undefined;
        seen.add(name);
        switch (name) {
            case 'server_no_context_takeover':
                if (value !== true)
                    return undefined;
                serverNoContextTakeover = true;
                break;
            case 'client_no_context_takeover':
                if (value !== true)
                    return undefined;
                clientNoContextTakeover = true;
                break;
            case 'server_max_window_bits':
                offeredServerBits = parseWindowBits(value);
                if (offeredServerBits === undefined || offeredServerBits === 8)
                    return undefined;
                break;
            case 'client_max_window_bits':
                if (value === true)
                    offeredClientBits = true;
                else if ((offeredClientBits = parseWindowBits(value)) === undefined)
                    return undefined;
                break;
            default:
                return undefined;
        }
    }
    // §7.1.2.1: we may compress with a smaller window than offered; the client inflates it all the same.
    const serverWindowBits = Math.min(config.serverMaxWindowBits, offeredServerBits ?? 15);
    let response = 'permessage-deflate';
    if (serverNoContextTakeover)
        response += '; server_no_context_takeover';
    if (clientNoContextTakeover)
        response += '; client_no_context_takeover';
    if (offeredServerBits !== undefined)
        response += `; server_max_window_bits=${serverWindowBits}`;
    // §7.1.2.2: client_max_window_bits may be answered only when offered, with at most the offered value.
    if (offeredClientBits !== undefined) {
        const clientBits = Math.min(config.clientMaxWindowBits, offeredClientBits === true ? 15 : offeredClientBits);
        response += `; client_max_window_bits=${clientBits}`;
    }
    return { serverNoContextTakeover, clientNoContextTakeover, serverWindowBits, response };
}
/** A window-bits value: 1*DIGIT from 8 to 15 (RFC 7692 §7.1.2). */
function parseWindowBits(value) {
    if (value === true || !/^(?:8|9|1[0-5])$/.test(value))
        return undefined;
    return Number(value);
}
/** The tail a sync flush leaves, which RFC 7692 §7.2.1 strips from each message and §7.2.2 puts back. */
const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** `pieces` without their first `count` bytes (views, no copy). */
function skipBytes(pieces, count) {
    const rest = [];
    let skip = count;
    for (const piece of pieces) {
        if (skip >= piece.length) {
            skip -= piece.length;
            continue;
        }
        rest.push(skip === 0 ? piece : piece.subarray(skip));
        skip = 0;
    }
    return rest;
}
/**
 * Runs at most `concurrency` zlib jobs at once for a whole server (each takes a thread-pool slot and memory);
 * the others wait their turn in order.
 */
class ZlibLimiter {
    #concurrency;
    #running = 0;
    #waiting = [];
    constructor(concurrency) {
        this.#concurrency = concurrency;
    }
    /** Runs `job` when a slot is free; the job calls `done` when finished. */
    run(job) {
        if (this.#running >= this.#concurrency) {
            this.#waiting.push(() => this.run(job));
            return;
        }
        this.#running++;
        let finished = false;
        job(() => {
            if (finished)
                return;
            finished = true;
            this.#running--;
            this.#waiting.shift()?.();
        });
    }
}
/**
 * A broadcast compressed once for every client that agreed to no server context takeover with the same window
 * (RFC 7692 §7.1.1.1: their compressed form of a message does not depend on what they were sent before).
 * `frame` is `undefined` while compressing, `null` if compression failed; waiting connections are resumed.
 */
class SharedCompression {
    frame;
    waiting = [];
    constructor(opcode, data, windowBits, config, limiter) {
        limiter.run((done) => {
            const options = { windowBits, memLevel: config.memLevel, level: config.level, finishFlush: zlibConstants.Z_SYNC_FLUSH };
            deflateRaw(data, options, (error, output) => {
                done();
                this.frame = error === null
                    ? { header: encodeFrame(opcode, output.subarray(0, Math.max(0, output.length - DEFLATE_TAIL.length)), FRAME_RSV1), payload: undefined }
                    : null;
                for (const handler of this.waiting.splice(0))
                    connectionInternals.sharedCompressionDone(handler);
            });
        });
    }
}
/**
 * One connection's compressor and decompressor. The zlib streams are made on first use and, without context
 * takeover, reset after each message, so an idle connection holds no zlib memory.
 */
class DeflateCodec {
    #agreement;
    #config;
    #limiter;
    #maxMessageSize;
    #deflater;
    #inflater;
    #deflated = [];
    #inflated = [];
    #inflatedLength = 0;
    /** The job zlib is working on, finished by its flush or, sooner, by an error. */
    #pendingDeflate;
    #pendingInflate;
    #closed = false;
    constructor(agreement, config, limiter, maxMessageSize) {
        this.#agreement = agreement;
        this.#config = config;
        this.#limiter = limiter;
        this.#maxMessageSize = maxMessageSize;
    }
    /** Whether a message of `length` bytes is worth compressing. */
    shouldCompress(length) {
        return length >= this.#config.threshold;
    }
    /** Whether this connection's compressed output depends only on the message (no context carried over). */
    get sharesCompression() {
        return this.#agreement.serverNoContextTakeover;
    }
    get serverWindowBits() {
        return this.#agreement.serverWindowBits;
    }
    /** The agreed parameters, as answered in `Sec-WebSocket-Extensions`. */
    get response() {
        return this.#agreement.response;
    }
    /** Compresses one whole message (RFC 7692 §7.2.1): deflate, sync flush, strip the 4-byte tail. */
    deflate(data, callback) {
        this.#limiter.run((done) => {
            if (this.#closed) {
                done();
                callback(new Error('The connection closed before a message was compressed.'));
                return;
            }
            const deflater = (this.#deflater ??= this.#makeDeflater());
            this.#pendingDeflate = { callback, done };
            deflater.write(data);
            deflater.flush(zlibConstants.Z_SYNC_FLUSH, () => this.#finishDeflate(null));
        });
    }
    /** Decompresses one frame of a message (RFC 7692 §7.2.2), stopping as soon as the output is too large. */
    inflate(payload, fin, callback) {
        this.#limiter.run((done) => {
            if (this.#closed) {
                done();
                return;
            }
            this.#pendingInflate = { fin, callback, done };
            this.#feedInflater(fin ? [payload, DEFLATE_TAIL] : [payload]);
        });
    }
    /**
     * Writes compressed bytes to the inflater and flushes. RFC 7692 §7.2.3.4: a client may end a message with a
     * DEFLATE block with BFINAL set, which ends zlib's stream; zlib then ignores whatever follows. So when the
     * inflater consumed less than it was given, its stream has ended: it is replaced by a fresh one (as browsers
     * do, without a dictionary), which takes the rest, so that no byte after a final block is silently lost.
     */
    #feedInflater(input) {
        const inflater = (this.#inflater ??= this.#makeInflater());
        const before = inflater.bytesWritten;
        for (const bytes of input)
            inflater.write(bytes);
        inflater.flush(() => {
            if (inflater !== this.#inflater || this.#pendingInflate === undefined)
                return; // failed or closed meanwhile
            const consumed = inflater.bytesWritten - before;
            const given = input.reduce((sum, bytes) => sum + bytes.length, 0);
            if (consumed < given) {
                this.#inflater = undefined;
                inflater.close();
                // When only the tail we appended follows the final block, it marked a flush of a stream that has ended.
                if (!(this.#pendingInflate.fin && given - consumed === DEFLATE_TAIL.length)) {
                    this.#feedInflater(skipBytes(input, consumed));
                    return;
                }
            }
            this.#finishInflate(null);
        });
    }
    /** Frees the zlib streams and drops pending work; later calls do nothing. */
    close() {
        this.#closed = true;
        this.#deflater?.close();
        this.#inflater?.close();
        this.#deflater = undefined;
        this.#inflater = undefined;
        this.#deflated = [];
        this.#inflated = [];
        this.#finishDeflate(new Error('The connection closed before a message was compressed.'));
        this.#finishInflate(null);
    }
    #finishDeflate(error) {
        const pending = this.#pendingDeflate;
        if (pending === undefined)
            return;
        this.#pendingDeflate = undefined;
        pending.done();
        const output = this.#deflated.length === 1 ? this.#deflated[0] : Buffer.concat(this.#deflated);
        this.#deflated = [];
        if (error !== null || this.#closed) {
            pending.callback(error ?? new Error('The connection closed before a message was compressed.'));
            return;
        }
        if (this.#agreement.serverNoContextTakeover)
            this.#deflater?.reset();
        pending.callback(null, output.subarray(0, Math.max(0, output.length - DEFLATE_TAIL.length)));
    }
    #finishInflate(error) {
        const pending = this.#pendingInflate;
        if (pending === undefined)
            return;
        this.#pendingInflate = undefined;
        pending.done();
        if (this.#closed)
            return;
        if (error !== null) {
            this.#inflated = [];
            this.#inflatedLength = 0;
            pending.callback(error);
            return;
        }
        if (!pending.fin) {
            pending.callback(null);
            return;
        }
        const message = this.#inflated.length === 1 ? this.#inflated[0] : Buffer.concat(this.#inflated, this.#inflatedLength);
        this.#inflated = [];
        this.#inflatedLength = 0;
        if (this.#agreement.clientNoContextTakeover)
            this.#inflater?.reset();
        pending.callback(null, message);
    }
    #makeDeflater() {
        const deflater = createDeflateRaw({
            windowBits: this.#agreement.serverWindowBits,
            memLevel: this.#config.memLevel,
            level: this.#config.level,
        });
        deflater.on('data', (chunk) => this.#deflated.push(chunk));
        deflater.on('error', (error) => {
            this.#deflater = undefined;
            this.#finishDeflate(error);
        });
        return deflater;
    }
    #makeInflater() {
        // A 15-bit window inflates whatever window the client compressed with (RFC 7692 §7.1.2.2).
        const inflater = createInflateRaw({ windowBits: 15 });
        inflater.on('data', (chunk) => {
            if (this.#pendingInflate === undefined)
                return;
            this.#inflatedLength += chunk.length;
            // Checked while inflating: a small compressed message cannot expand past the limit (a "deflate bomb").
            if (this.#inflatedLength > this.#maxMessageSize) {
                this.#inflater = undefined;
                inflater.close();
                this.#finishInflate(frameFailure('MESSAGE_TOO_BIG'));
                return;
            }
            this.#inflated.push(chunk);
        });
        inflater.on('error', () => {
            this.#inflater = undefined;
            this.#finishInflate(frameFailure('INVALID_DEFLATE_DATA'));
        });
        return inflater;
    }
}
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
// 12. Small utilities and the logger
// ════════════════════════════════════════════════════════════════════════════════════════════════════════════
const EMPTY = Buffer.alloc(0);
/** The heartbeat timer ticks at most this often (ms), however short `pingInterval` and `pingTimeout` are. */
const HEARTBEAT_MIN_TICK = 5;
const LEVEL_RANK = { debug: 10, info: 20, warning: 30, error: 40, critical: 50 };
/** The default logger: one line per event on standard error. */
const defaultLogger = {
    debug: (message) => writeLogLine('DEBUG', message),
    info: (message) => writeLogLine('INFO', message),
    warn: (message) => writeLogLine('WARNING', message),
    error: (message) => writeLogLine('ERROR', message),
};
function writeLogLine(level, message) {
    process.stderr.write(`${new Date().toISOString()} ${level} websocket-server: ${message}\n`);
}
/**
 * The one logger of a server: drops what is below its level, and never lets a failing logger fail the caller.
 * @internal
 */
export class LevelLogger {
    #logger;
    #threshold;
    /** Whether debug lines are written: read once per message, so a field, not a lookup. */
    debugEnabled;
    /** @param logger Where lines go; without one, to standard error. */
    constructor(logger, level) {
        this.#logger = logger ?? defaultLogger;
        this.#threshold = LEVEL_RANK[level];
        this.debugEnabled = this.#threshold <= LEVEL_RANK.debug;
    }
    /** Whether lines of `level` are written: guard costly debug messages with it. */
    enabled(level) {
        return LEVEL_RANK[level] >= this.#threshold;
    }
    debug(message) {
        if (this.#threshold <= LEVEL_RANK.debug)
            this.#write('debug', message);
    }
    info(message) {
        if (this.#threshold <= LEVEL_RANK.info)
            this.#write('info', message);
    }
    error(message) {
        if (this.#threshold <= LEVEL_RANK.error)
            this.#write('error', message);
    }
    /** Writes at any level: `warning` goes to `warn`, `critical` to `error`. */
    log(level, message) {
        if (!this.enabled(level))
            return;
        this.#write(level === 'warning' ? 'warn' : level === 'critical' || level === 'error' ? 'error' : level, message);
    }
    #write(method, message) {
        try {
            this.#logger[method](message);
        }
        catch {
            // A broken logger must not take a connection down with it.
        }
    }
}
function isPromiseLike(value) {
    return (value !== null &&
        (typeof value === 'object' || typeof value === 'function') &&
        typeof value.then === 'function');
}
/** The client ids named by `sendMessageToAll`'s `exclude`: a client, an id, or an iterable of them. */
function excludedIds(exclude) {
    const ids = new Set();
    const add = (item) => {
        if (typeof item === 'number' && Number.isSafeInteger(item))
            ids.add(item);
        else if (typeof item === 'object' && item !== null && typeof item.id === 'number' && 'handler' in item)
            ids.add(item.id);
        else
            throw new TypeError(`Cannot exclude ${describeType(item)} from a broadcast: give clients or their ids.`);
    };
    if (typeof exclude === 'object' && exclude !== null && Symbol.iterator in exclude) {
        for (const item of exclude)
            add(item);
    }
    else {
        add(exclude);
    }
    return ids;
}
function describeType(value) {
    if (value === null)
        return 'null';
    if (Array.isArray(value))
        return 'an array';
    return typeof value === 'object' ? `an object (${value.constructor?.name ?? 'no prototype'})` : `${typeof value} ${String(value)}`;
}
function describeError(error) {
    if (error instanceof Error)
        return 'code' in error && error.code !== undefined ? `${String(error.code)} ${error.message}` : error.message;
    return String(error);
}
function formatHostPort(host, port) {
    const h = host ?? '?';
    return `${h.includes(':') ? `[${h}]` : h}:${port ?? '?'}`;
}
/** Cuts a string to at most `maxBytes` of UTF-8 without splitting a character. */
function truncateUtf8(text, maxBytes) {
    if (Buffer.byteLength(text, 'utf8') <= maxBytes)
        return text;
    let cut = text;
    while (Buffer.byteLength(cut, 'utf8') > maxBytes - 3)
        cut = cut.slice(0, -1);
    if (/[\ud800-\udbff]$/.test(cut))
        cut = cut.slice(0, -1);
    return `${cut}...`;
}
/** Appends a chunk to optional bytes, copying only when there is something to append to. */
function concatBytes(bytes, chunk) {
    return bytes === undefined || bytes.length === 0 ? chunk : Buffer.concat([bytes, chunk]);
}
/** Whether a comma-separated header value holds `token`, compared case-insensitively (RFC 9110 §5.6.1). */
function hasToken(value, token) {
    if (value === undefined)
        return false;
    for (const part of value.split(',')) {
        if (part.trim().toLowerCase() === token)
            return true;
    }
    return false;
}
/** The function given to a `setFn…` setter, checked: anything else is a `TypeError`. */
function checkCallback(fn, setter) {
    if (typeof fn !== 'function') {
        throw new TypeError(`${setter} needs a function, not ${describeType(fn)}.`);
    }
    return fn;
}
