/**
 * The demo: a chat with rooms, like the example of Python's python-websocket-server.
 *
 * One port serves both the page (`client.html` at `/`) and the WebSocket endpoint, so a newcomer runs
 * `npm start` and opens http://127.0.0.1:13254/ in two browser tabs.
 *
 *   npm start                              # port 13254 on 127.0.0.1
 *   npm start -- --port 8080 --host 0.0.0.0
 *   PORT=8080 HOST=0.0.0.0 npm start
 *   node server.ts                         # Node >= 22.18 (22.6-22.17: --experimental-strip-types), no build step
 *   npm start -- --trust-proxy 1           # behind one proxy (nginx): client addresses from X-Forwarded-For
 *   npm start -- --trust-proxy 127.0.0.1,10.0.0.0/8   # or trust the proxies at these addresses and ranges
 *
 * For operators, on the same port: `GET /healthz` answers 200 while the chat serves and 503 from a stop signal
 * on, while its connections drain (a load balancer then sends no one new); `GET /metrics` is `server.stats` in
 * the Prometheus text format (server-metrics.ts).
 *
 * Beyond one process (the rooms span every process):
 *   npm run start:cluster                  # one worker per core, sharing the port (node:cluster)
 *   npm start -- --cluster --workers 2
 *   npm start -- --port 13254 --redis redis://127.0.0.1:6379   # and, in another terminal,
 *   npm start -- --port 13255 --redis redis://127.0.0.1:6379   # a second server: the two chat as one
 *
 * Rooms: every client starts in the room `lobby`, may be in up to 8 rooms at once, and may leave any, the lobby
 * too. A room exists while someone is in it. A line or a file sent to a room reaches that room's members only,
 * on every server: a room is a topic of the server (`subscribe`, `publish`).
 *
 * What travels on the WebSocket, from a page to the server:
 * - a text message that is a JSON object is a request:
 *     {"type":"join","room":"garden"}                       join a room; it becomes the current room
 *     {"type":"leave","room":"garden"}                      leave it
 *     {"type":"list"}                                       ask for the rooms (answered with `rooms`)
 *     {"type":"say","room":"garden","text":"hello"}         a line to a room one is in
 *     {"type":"file","room":"garden","name":"a.png","mime":"image/png"}   names the binary message that follows
 *   (`room` may be left out of `say` and `file`: then the current room, the one joined last, is meant);
 * - any other text message is a line to the current room, so that any WebSocket client can chat;
 * - a binary message is a file: for the room its `file` request named, else the current room (as `file.bin`).
 * A room name is 1 to 32 characters among a-z, 0-9, '-' and '_', beginning with a letter or a digit. One server
 * holds at most 64 rooms. A file's name is cleaned (no path separators, no control or invisible characters, at
 * most 100 characters, keeping the extension); its type is kept when it is a plausible `type/subtype`, else it
 * is `application/octet-stream`.
 *
 * From the server to the pages, text messages are JSON events, each with a `type` and a readable `text`:
 * - `welcome` (to a new client: its `id`, `maxMessageSize` and `limits`);
 * - `joined` and `left` (`room`, `id`), to the room's members, the one who joined or left included;
 * - `message` (`room`, `from`, `text`), to the room's members but the sender;
 * - `file` (`room`, `from`, `name`, `mime`, `size`), followed at once by the file itself as a binary message;
 * - `rooms` (`rooms`: `[{ name, count }]`, the 100 largest rooms of the whole chat, largest first; `more`: how
 *   many others), to every client when it changes, and in answer to `list`;
 * - `members` (`room`, `count`, `members`: the first 50 names), to a room's members when they change;
 * - `error` (`code`, `request`, and `room` when it names a valid one), in answer to a request that is refused:
 *   `bad-request`, `unknown-request`, `bad-room`, `not-in-room`, `no-room`, `too-many-rooms`, `room-limit`,
 *   `bad-file`.
 * A client is named by its id; when several servers share the chat, by `id@server` (the worker, or the port).
 *
 * Who is in which room, across servers: each server knows its own members, and tells the others. It publishes a
 * snapshot of its rooms (on a topic no client can join: `directory:`) when they change and every 5 s; it keeps
 * the others' snapshots, and forgets a server that said goodbye or was not heard from for 15 s. So every page
 * sees the rooms and members of the whole chat, whichever server it is on; a line itself never waits for that.
 */
import cluster from 'node:cluster';
import { readFileSync, existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { ClusterAdapter, relayClusterBroadcasts } from './adapters/cluster.ts';
import { formatMetrics, METRICS_CONTENT_TYPE } from './server-metrics.ts';
import { WebsocketServer, type Broadcast, type BroadcastAdapter, type Client, type ServerStats } from './websocket-server.ts';

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string', default: process.env['PORT'] ?? '13254' },
    host: { type: 'string', default: process.env['HOST'] ?? '127.0.0.1' },
    cluster: { type: 'boolean', default: false },
    workers: { type: 'string', default: String(availableParallelism()) },
    redis: { type: 'string' },
    'trust-proxy': { type: 'string' },
  },
});
const port = Number(flags.port);
const host = flags.host ?? '127.0.0.1';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`Cannot start the demo: --port must be a number from 0 to 65535, not '${flags.port}'.`);
  process.exit(2);
}
/** `--trust-proxy`: a number of hops, or a comma-separated list of addresses and CIDR ranges (`trustProxy`). */
const trustProxy = flags['trust-proxy'] === undefined ? undefined
  : /^\d+$/.test(flags['trust-proxy']) ? Number(flags['trust-proxy'])
  : flags['trust-proxy'].split(',').map((entry) => entry.trim());
const workers = Number(flags.workers);
if (flags.cluster && (!Number.isInteger(workers) || workers < 1 || workers > 1024)) {
  console.error(`Cannot start the demo: --workers must be a number from 1 to 1024, not '${flags.workers}'.`);
  process.exit(2);
}


// ---------------------------------------------------------------------------------------------------------------
// Limits and names

/** Largest file (or line) a page may send; the page checks it before sending. */
const MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/** What one client can make a server hold, told to each page in its `welcome`. */
const LIMITS = {
  /** Longest room name, in characters. */
  roomName: 32,
  /** Rooms one client may be in at once, the lobby included. */
  roomsPerClient: 8,
  /** Rooms one server holds at most (rooms with a member on it): opening one more is refused. */
  rooms: 64,
  /** Longest file name, in characters: longer ones are shortened, keeping their extension. */
  fileName: 100,
} as const;

/** The room every client starts in. */
const LOBBY = 'lobby';
/** A room name: a-z, 0-9, '-' and '_', beginning with a letter or a digit; never a ':', which the topics use. */
const ROOM_NAME = /^[a-z0-9][a-z0-9_-]*$/;
/** The topic of a room. */
const roomTopic = (room: string): string => `room:${room}`;
/** The topic the servers' snapshots travel on: not `room:`, so no client can join it. */
const DIRECTORY_TOPIC = 'directory:';

/** Names listed per room in `members` and in snapshots; `count` tells how many there are in all. */
const MEMBERS_LISTED = 50;
/** Rooms listed in `rooms`, the largest first; `more` tells how many others there are. */
const ROOMS_LISTED = 100;
/** Longest member name taken from another server's snapshot. */
const MEMBER_NAME_MAX = 64;
/** Servers whose snapshots a server keeps: those of more are ignored. */
const MAX_PEERS = 64;
/** A server publishes its snapshot at least this often, and forgets a server silent for three times as long. */
const SNAPSHOT_INTERVAL_MS = 5_000;
/** Changes of membership within this time reach the pages, and the other servers, as one update. */
const COALESCE_MS = 50;

const OCTET_STREAM = 'application/octet-stream';
/** The top-level media types of the IANA registry (RFC 6838 §4.2 and its updates). */
const MEDIA_TYPES = new Set(['application', 'audio', 'font', 'haptics', 'image', 'message', 'model', 'multipart', 'text', 'video']);
/** A subtype: RFC 6838 §4.2's restricted-name, in lower case. */
const MEDIA_SUBTYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/;
/**
 * What a file name may not hold, each replaced by '_': control characters (C0, DEL, C1), path separators, the
 * characters Windows refuses in names, and half a surrogate pair.
 */
const FILE_NAME_UNSAFE = /[\u0000-\u001f\u007f-\u009f/\\<>:"|?*]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
/** Invisible characters that reorder or hide a name's text (bidi controls, zero widths), so that 'exe.txt' is what it says. */
const FILE_NAME_INVISIBLE = /[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/** What the demo keeps on each client (`client.data`). */
interface ChatData {
  /** Its name in the chat: its id, or `id@server` when several servers share the chat. */
  readonly name: string;
  /** Where its plain lines and unannounced files go: the room it joined last, while it is in it. */
  room: string | undefined;
  /** The room, name and type of its next binary message, from its `file` request. */
  nextFile: { readonly room: string; readonly name: string; readonly mime: string } | undefined;
}
type ChatClient = Client<ChatData>;
type ChatServer = WebsocketServer<ChatData>;

/** A value in at most about 40 characters, as JSON (so control characters show as escapes), for answers and logs. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  return json.length > 40 ? `${json.slice(0, 40)}…` : json;
}

/** Why `value` cannot be a room name, or `undefined` when it can. */
function roomNameProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `a room name is a string, not ${describe(value)}`;
  if (value.length === 0 || value.length > LIMITS.roomName) {
    return `a room name has 1 to ${LIMITS.roomName} characters, not ${value.length}`;
  }
  if (!ROOM_NAME.test(value)) {
    return `a room name has only the characters a-z, 0-9, '-' and '_', and begins with a letter or a digit (not ${describe(value)})`;
  }
  return undefined;
}

/** A file name fit to offer for download: no path, no control or invisible characters, at most 100 characters. */
function cleanFileName(name: string): string {
  let clean = name.normalize('NFC').replace(FILE_NAME_INVISIBLE, '').replace(FILE_NAME_UNSAFE, '_').trim();
  if (/^\.*$/.test(clean)) clean = 'file'; // '', '.' and '..' name no file
  const characters = Array.from(clean); // by code point: a pair of surrogates stays whole
  if (characters.length <= LIMITS.fileName) return clean;
  const extension = Array.from(/\.[^.\s]{1,16}$/.exec(clean)?.[0] ?? '');
  return characters.slice(0, LIMITS.fileName - extension.length).join('').trimEnd() + extension.join('');
}

/** A media type as `type/subtype` (parameters dropped) when it is a plausible one, else `application/octet-stream`. */
function cleanMediaType(value: unknown): string {
  if (typeof value !== 'string' || value.length > 300) return OCTET_STREAM;
  const parts = value.split(';')[0]!.trim().toLowerCase().split('/');
  const [type, subtype] = parts;
  const plausible = parts.length === 2 && MEDIA_TYPES.has(type!) && MEDIA_SUBTYPE.test(subtype!);
  return plausible ? `${type}/${subtype}` : OCTET_STREAM;
}

/** A text message as a request: a JSON object; `undefined` for any other text, which is a line of chat. */
function parseRequest(text: string): Record<string, unknown> | undefined {
  if (!text.trimStart().startsWith('{')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Who is in which room

/** One room as one server sees it: how many members it has there, and the names of the first of them. */
interface RoomView {
  readonly count: number;
  readonly members: readonly string[];
}

/** Another server's snapshot, checked: its rooms, or its goodbye. */
interface Snapshot {
  readonly rooms: ReadonlyMap<string, RoomView>;
  readonly bye: boolean;
}

/** A snapshot from another server, checked field by field; `undefined` when it is not one. Bad rooms are skipped. */
function parseSnapshot(text: string): Snapshot | undefined {
  const value = parseRequest(text);
  if (value === undefined || !Array.isArray(value['rooms'])) return undefined;
  const rooms = new Map<string, RoomView>();
  for (const entry of (value['rooms'] as unknown[]).slice(0, LIMITS.rooms)) {
    if (!Array.isArray(entry)) continue;
    const [name, count, members] = entry as unknown[];
    if (roomNameProblem(name) !== undefined || !Number.isSafeInteger(count) || (count as number) < 1 || !Array.isArray(members)) continue;
    const names = (members as unknown[]).filter((member): member is string => typeof member === 'string' && member.length <= MEMBER_NAME_MAX);
    rooms.set(name as string, { count: count as number, members: names.slice(0, MEMBERS_LISTED) });
  }
  return { rooms, bye: value['bye'] === true };
}

const sameView = (a: RoomView | undefined, b: RoomView | undefined): boolean =>
  a === b || (a !== undefined && b !== undefined && a.count === b.count && a.members.join('\n') === b.members.join('\n'));

/**
 * Who is in which room, in the whole chat. This server's members it keeps itself; the other servers' it learns
 * from their snapshots (see `withDirectory`). Changes are gathered for `COALESCE_MS`, then the pages hear of them:
 * every page a new `rooms` if the list changed, the members of a changed room a new `members`.
 */
class Directory {
  readonly #chat: ChatServer;
  /** Whether other servers share the chat (an adapter): only then are snapshots published. */
  readonly #shared: boolean;
  /** This server's rooms and their members, in the order they joined. */
  readonly #local = new Map<string, Set<ChatClient>>();
  /** The other servers' rooms by their `serverId`, and when each was last heard from. */
  readonly #peers = new Map<string, { readonly rooms: ReadonlyMap<string, RoomView>; readonly heard: number }>();
  /** Rooms whose members changed since the last update. */
  readonly #changed = new Set<string>();
  #localChanged = false;
  /** The last `rooms` event sent to every page. */
  #lastRooms = '';
  #update: ReturnType<typeof setTimeout> | undefined;
  #refresh: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  constructor(chat: ChatServer, shared: boolean) {
    this.#chat = chat;
    this.#shared = shared;
  }

  /** Once the server runs: tells the other servers about this one, then again every `SNAPSHOT_INTERVAL_MS`. */
  start(): void {
    if (!this.#shared || this.#stopped) return;
    this.#localChanged = true;
    this.#schedule();
    this.#refresh = setInterval(() => this.#refreshPeers(), SNAPSHOT_INTERVAL_MS);
    this.#refresh.unref();
  }

  /** Says goodbye to the other servers (they forget this one's rooms at once) and sends nothing more. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#update);
    clearInterval(this.#refresh);
    if (this.#shared) this.#chat.publish(DIRECTORY_TOPIC, JSON.stringify({ rooms: [], bye: true }));
  }

  /** How many rooms this server holds (rooms with a member on it). */
  get localRooms(): number {
    return this.#local.size;
  }

  hasLocal(room: string): boolean {
    return this.#local.has(room);
  }

  join(client: ChatClient, room: string): void {
    let members = this.#local.get(room);
    if (members === undefined) this.#local.set(room, (members = new Set()));
    members.add(client);
    this.#touch(room);
  }

  leave(client: ChatClient, room: string): void {
    const members = this.#local.get(room);
    if (members === undefined || !members.delete(client)) return;
    if (members.size === 0) this.#local.delete(room);
    this.#touch(room);
  }

  /** Takes a client that left the server out of its rooms; returns them. */
  leaveAll(client: ChatClient): string[] {
    const rooms = [...this.#local].filter(([, members]) => members.has(client)).map(([room]) => room);
    for (const room of rooms) this.leave(client, room);
    return rooms;
  }

  /** The `rooms` event: the largest rooms of the whole chat, then by name. */
  roomsEvent(): Record<string, unknown> {
    const counts = new Map<string, number>();
    for (const [room, members] of this.#local) counts.set(room, members.size);
    for (const peer of this.#peers.values()) {
      for (const [room, view] of peer.rooms) counts.set(room, (counts.get(room) ?? 0) + view.count);
    }
    const all = [...counts].sort(([a, countA], [b, countB]) => countB - countA || (a < b ? -1 : 1));
    const rooms = all.slice(0, ROOMS_LISTED).map(([name, count]) => ({ name, count }));
    const text = `${all.length} room${all.length === 1 ? '' : 's'}: ${rooms.slice(0, 5).map((room) => `#${room.name} (${room.count})`).join(', ')}${all.length > 5 ? ', …' : ''}`;
    return { type: 'rooms', rooms, more: all.length - rooms.length, text };
  }

  /** The `members` event of a room: how many in the whole chat, and the first names, this server's first. */
  membersEvent(room: string): Record<string, unknown> {
    const names: string[] = [];
    let count = 0;
    const views: RoomView[] = [];
    for (const peer of this.#peers.values()) {
      const view = peer.rooms.get(room);
      if (view !== undefined) views.push(view);
    }
    const local = this.#local.get(room);
    if (local !== undefined) views.unshift({ count: local.size, members: [...local].slice(0, MEMBERS_LISTED).map((client) => client.data.name) });
    for (const view of views) {
      count += view.count;
      names.push(...view.members.slice(0, MEMBERS_LISTED - names.length));
    }
    return { type: 'members', room, count, members: names, text: `${count} in #${room}: ${names.join(', ')}${count > names.length ? ', …' : ''}` };
  }

  /** Another server's snapshot, handed over by `withDirectory`. */
  receive(broadcast: Broadcast): void {
    if (this.#stopped || typeof broadcast.message !== 'string') return;
    const snapshot = parseSnapshot(broadcast.message);
    if (snapshot === undefined) {
      console.warn(`Ignored a snapshot of rooms from ${describe(broadcast.origin)}: it is not one.`);
      return;
    }
    const known = this.#peers.get(broadcast.origin);
    if (known === undefined && this.#peers.size >= MAX_PEERS) return;
    // A newcomer hears of this server's rooms at once, rather than at the next refresh.
    if (known === undefined && !snapshot.bye) this.#localChanged = true;
    this.#compare(known?.rooms, snapshot.bye ? undefined : snapshot.rooms);
    if (snapshot.bye) this.#peers.delete(broadcast.origin);
    else this.#peers.set(broadcast.origin, { rooms: snapshot.rooms, heard: Date.now() });
    this.#schedule();
  }

  /** Marks the rooms whose view differs between two snapshots of one server. */
  #compare(before: ReadonlyMap<string, RoomView> | undefined, after: ReadonlyMap<string, RoomView> | undefined): void {
    for (const room of new Set([...(before?.keys() ?? []), ...(after?.keys() ?? [])])) {
      if (!sameView(before?.get(room), after?.get(room))) this.#changed.add(room);
    }
  }

  #touch(room: string): void {
    this.#changed.add(room);
    this.#localChanged = true;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#update === undefined && !this.#stopped) this.#update = setTimeout(() => this.#sendUpdates(), COALESCE_MS);
  }

  /** Every `SNAPSHOT_INTERVAL_MS`: forgets the servers not heard from for three times as long, and publishes. */
  #refreshPeers(): void {
    const oldest = Date.now() - 3 * SNAPSHOT_INTERVAL_MS;
    for (const [origin, peer] of this.#peers) {
      if (peer.heard >= oldest) continue;
      console.warn(`Forgot the rooms of server ${describe(origin)}: not heard from for ${3 * SNAPSHOT_INTERVAL_MS / 1000} s.`);
      this.#peers.delete(origin);
      this.#compare(peer.rooms, undefined);
    }
    this.#localChanged = true;
    this.#schedule();
  }

  #sendUpdates(): void {
    this.#update = undefined;
    if (this.#stopped) return;
    const rooms = JSON.stringify(this.roomsEvent());
    if (rooms !== this.#lastRooms) {
      this.#lastRooms = rooms;
      for (const client of this.#chat.clients) this.#chat.sendMessage(client, rooms);
    }
    for (const room of this.#changed) {
      const local = this.#local.get(room);
      if (local === undefined) continue;
      const members = JSON.stringify(this.membersEvent(room));
      for (const client of local) this.#chat.sendMessage(client, members);
    }
    this.#changed.clear();
    if (this.#shared && this.#localChanged) {
      this.#localChanged = false;
      const rooms = [...this.#local].map(([room, members]) => [room, members.size, [...members].slice(0, MEMBERS_LISTED).map((client) => client.data.name)]);
      this.#chat.publish(DIRECTORY_TOPIC, JSON.stringify({ rooms }));
    }
  }
}

/**
 * The adapter, with the directory's snapshots taken out: a broadcast on `DIRECTORY_TOPIC` goes to `receive`, not
 * to clients (none is subscribed to it). The adapter is told at start that this server wants that topic, since
 * no client of it will ever subscribe.
 */
function withDirectory(adapter: BroadcastAdapter, receive: (broadcast: Broadcast) => void): BroadcastAdapter {
  return {
    async start(context) {
      const deliver = (broadcast: Broadcast): void => {
        if (broadcast.topic !== DIRECTORY_TOPIC) context.deliver(broadcast);
        else if (broadcast.origin !== context.serverId) receive(broadcast);
      };
      await adapter.start({ serverId: context.serverId, log: (level, message) => context.log(level, message), deliver });
      adapter.subscribe?.(DIRECTORY_TOPIC);
    },
    publish: (broadcast) => adapter.publish(broadcast),
    subscribe: (topic) => adapter.subscribe?.(topic),
    unsubscribe: (topic) => adapter.unsubscribe?.(topic),
    close: () => adapter.close(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The chat's rules

/** What the chat does with each client's requests, lines and files, room by room. */
class RoomChat {
  readonly #chat: ChatServer;
  readonly #directory: Directory;

  constructor(chat: ChatServer, directory: Directory) {
    this.#chat = chat;
    this.#directory = directory;
  }

  /** A new client: welcomed, put in the lobby, and told which rooms there are. */
  welcome(client: ChatClient, name: string): void {
    client.data = { name, room: undefined, nextFile: undefined };
    const text = `You are client ${name}.`;
    this.#send(client, { type: 'welcome', id: name, maxMessageSize: MAX_MESSAGE_SIZE, limits: LIMITS, text });
    this.#join(client, LOBBY);
    this.#send(client, this.#directory.roomsEvent());
  }

  /** A text message: a request when it is a JSON object, else a line to the client's current room. */
  text(client: ChatClient, text: string): void {
    const request = parseRequest(text);
    if (request === undefined) {
      this.#say(client, undefined, text);
      return;
    }
    const type = request['type'];
    switch (type) {
      case 'join':
        return this.#join(client, request['room']);
      case 'leave':
        return this.#leave(client, request['room']);
      case 'list':
        return this.#send(client, this.#directory.roomsEvent());
      case 'say':
        if (typeof request['text'] !== 'string' || request['text'] === '') {
          return this.#refuse(client, 'say', 'bad-request', `A line is a non-empty string, not ${describe(request['text'])}.`);
        }
        return this.#say(client, request['room'], request['text']);
      case 'file':
        return this.#announceFile(client, request);
      default:
        if (typeof type !== 'string') {
          return this.#refuse(client, undefined, 'bad-request', `A request is a JSON object with a "type" string, not ${describe(type)}.`);
        }
        return this.#refuse(client, type, 'unknown-request', `Unknown request ${describe(type)}: join, leave, list, say or file.`);
    }
  }

  /** A binary message: the file its `file` request announced, else `file.bin` for the current room. */
  file(client: ChatClient, bytes: Buffer): void {
    const announced = client.data.nextFile;
    client.data.nextFile = undefined;
    const room = announced?.room ?? client.data.room;
    if (room === undefined) return this.#refuse(client, 'file', 'no-room', 'Cannot send the file: you are in no room; join one first.');
    if (!this.#isIn(client, room)) {
      return this.#refuse(client, 'file', 'not-in-room', `Cannot send the file to #${room}: you left it.`, room);
    }
    const from = client.data.name;
    const name = announced?.name ?? 'file.bin';
    const mime = announced?.mime ?? OCTET_STREAM;
    console.info(`client ${from} sent ${describe(name)} (${mime}, ${bytes.length} bytes) to #${room}`);
    const text = `client ${from} sent “${name}”`;
    this.#publish(room, { type: 'file', room, from, name, mime, size: bytes.length, text }, client);
    this.#chat.publish(roomTopic(room), bytes, client);
  }

  /** A client left the server: it left its rooms too, and their members hear of it. */
  left(client: ChatClient): void {
    for (const room of this.#directory.leaveAll(client)) this.#announceLeave(client, room);
  }

  #join(client: ChatClient, value: unknown): void {
    const problem = roomNameProblem(value);
    if (problem !== undefined) return this.#refuse(client, 'join', 'bad-room', `Cannot join: ${problem}.`);
    const room = value as string;
    if (this.#isIn(client, room)) {
      client.data.room = room;
      return this.#send(client, this.#directory.membersEvent(room));
    }
    if (client.topics.length >= LIMITS.roomsPerClient) {
      const text = `Cannot join #${room}: you are in ${LIMITS.roomsPerClient} rooms, the most one can be in; leave one first.`;
      return this.#refuse(client, 'join', 'too-many-rooms', text, room);
    }
    if (!this.#directory.hasLocal(room) && this.#directory.localRooms >= LIMITS.rooms) {
      const text = `Cannot open #${room}: this server holds ${LIMITS.rooms} rooms, its most; join one of them.`;
      return this.#refuse(client, 'join', 'room-limit', text, room);
    }
    this.#chat.subscribe(client, roomTopic(room));
    this.#directory.join(client, room);
    client.data.room = room;
    const name = client.data.name;
    this.#publish(room, { type: 'joined', room, id: name, text: `Client ${name} has joined #${room}.` });
  }

  #leave(client: ChatClient, value: unknown): void {
    const problem = roomNameProblem(value);
    if (problem !== undefined) return this.#refuse(client, 'leave', 'bad-room', `Cannot leave: ${problem}.`);
    const room = value as string;
    if (!this.#isIn(client, room)) return this.#refuse(client, 'leave', 'not-in-room', `Cannot leave #${room}: you are not in it.`, room);
    // Published while it is still a member: the one who leaves hears it too, as its answer.
    this.#announceLeave(client, room);
    this.#chat.unsubscribe(client, roomTopic(room));
    this.#directory.leave(client, room);
    if (client.data.room === room) client.data.room = client.topics.at(-1)?.slice(roomTopic('').length);
  }

  #announceLeave(client: ChatClient, room: string): void {
    const name = client.data.name;
    this.#publish(room, { type: 'left', room, id: name, text: `Client ${name} left #${room}.` });
  }

  #say(client: ChatClient, roomValue: unknown, text: string): void {
    const room = this.#targetRoom(client, roomValue, 'say');
    if (room === undefined) return;
    const from = client.data.name;
    console.info(`client ${from} said in #${room}: ${describe(text.length > 200 ? `${text.slice(0, 200)}…` : text)}`);
    this.#publish(room, { type: 'message', room, from, text }, client);
  }

  #announceFile(client: ChatClient, request: Record<string, unknown>): void {
    const room = this.#targetRoom(client, request['room'], 'file');
    if (room === undefined) return;
    const name = request['name'];
    if (typeof name !== 'string') {
      return this.#refuse(client, 'file', 'bad-file', `A file request names the file with a string, not ${describe(name)}.`, room);
    }
    client.data.nextFile = { room, name: cleanFileName(name), mime: cleanMediaType(request['mime']) };
  }

  /** The room a line or a file goes to: the one named, if the client is in it, else its current room. */
  #targetRoom(client: ChatClient, value: unknown, request: string): string | undefined {
    if (value === undefined) {
      if (client.data.room === undefined) this.#refuse(client, request, 'no-room', 'You are in no room: join one first.');
      return client.data.room;
    }
    const problem = roomNameProblem(value);
    if (problem !== undefined) {
      this.#refuse(client, request, 'bad-room', `Cannot send: ${problem}.`);
      return undefined;
    }
    if (this.#isIn(client, value as string)) return value as string;
    this.#refuse(client, request, 'not-in-room', `Cannot send to #${value as string}: you are not in it; join it first.`, value as string);
    return undefined;
  }

  #isIn(client: ChatClient, room: string): boolean {
    return client.topics.includes(roomTopic(room));
  }

  #refuse(client: ChatClient, request: string | undefined, code: string, text: string, room?: string): void {
    this.#send(client, { type: 'error', code, ...(request !== undefined && { request }), ...(room !== undefined && { room }), text });
  }

  #send(client: ChatClient, event: Record<string, unknown>): void {
    this.#chat.sendMessage(client, JSON.stringify(event));
  }

  /** To the room's members on every server, but `except`. */
  #publish(room: string, event: Record<string, unknown>, except?: ChatClient): void {
    this.#chat.publish(roomTopic(room), JSON.stringify(event), except);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The server

/**
 * The primary of `--cluster`: forks the workers, which share the port, relays their broadcasts to each other,
 * starts a new worker for one that crashed, and on a stop signal stops the workers and ends when they have.
 */
function runPrimary(count: number): void {
  relayClusterBroadcasts();
  let stopping = false;
  const crashes: number[] = [];
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`worker ${worker.id} ended (${signal ?? `exit code ${code}`})`);
    // A worker that keeps crashing at start would otherwise be restarted in a tight loop.
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && crashes[0]! < now - 60_000) crashes.shift();
    if (crashes.length > 10) {
      console.error('Cannot keep the chat up: more than 10 workers ended within a minute; stopping.');
      stopAll();
      return;
    }
    cluster.fork();
  });
  function stopAll(): void {
    if (stopping) return;
    stopping = true;
    // Each worker closes its clients with 1001; the primary ends once they all have.
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  }
  process.on('SIGINT', stopAll);
  process.on('SIGTERM', stopAll);
  console.info(`Chat demo: ${count} workers (pid ${process.pid} is the primary)`);
  for (let i = 0; i < count; i++) cluster.fork();
}

/** The page sits beside this file, or one folder up when this file runs compiled from `build/`. */
function findPage(): Buffer {
  for (const candidate of ['./client.html', '../client.html']) {
    const url = new URL(candidate, import.meta.url);
    if (existsSync(url)) return readFileSync(url);
  }
  throw new Error('Cannot start the demo: client.html was not found next to server.ts.');
}


/** One chat server: the page and the WebSocket endpoint on one port, its rooms shared by `--cluster`/`--redis`. */
async function runChat(): Promise<void> {
  const page = findPage();
  /** From the first stop signal on: /healthz answers 503 while the connections drain. */
  let stopping = false;
  const http = createServer((request, response) => {
    if (serveOperator(request, response, { draining: stopping, stats: () => chat.stats })) return;
    servePage(page, request, response);
  });
  let adapter: BroadcastAdapter | undefined;
  if (cluster.isWorker) {
    adapter = new ClusterAdapter();
  } else if (flags.redis !== undefined) {
    // Loaded only when asked for: the `redis` package is needed for --redis alone.
    const { RedisAdapter } = await import('./adapters/redis.ts');
    adapter = new RedisAdapter({ url: flags.redis });
  }
  // Browsers offer permessage-deflate: chat text compresses well, so accept it.
  const chat = new WebsocketServer<ChatData>({
    server: http,
    loglevel: 'info',
    logger: console,
    maxMessageSize: MAX_MESSAGE_SIZE,
    perMessageDeflate: true,
    ...(trustProxy !== undefined && { trustProxy }),
    // The snapshots of the other servers' rooms go to the directory (made just below, before any can arrive).
    ...(adapter && { adapter: withDirectory(adapter, (broadcast) => directory.receive(broadcast)) }),
    // Readable in the log lines of the cluster's workers; elsewhere the default, a UUID, is unique across hosts.
    ...(cluster.isWorker && { serverId: `worker-${cluster.worker!.id}` }),
  });
  const directory = new Directory(chat, adapter !== undefined);
  const rooms = new RoomChat(chat, directory);
  /** Where this server is in a chat shared by several: its worker, or its port; nothing when alone. */
  const serverName = (): string | undefined =>
    cluster.isWorker ? `w${cluster.worker!.id}` : adapter !== undefined ? String(chat.port) : undefined;
  const nameOf = (client: ChatClient): string => {
    const server = serverName();
    return server === undefined ? String(client.id) : `${client.id}@${server}`;
  };

  chat.setFnNewClient((client) => rooms.welcome(client, nameOf(client)));
  chat.setFnMessageReceived((client, _server, message) => {
    if (typeof message === 'string') rooms.text(client, message);
    else rooms.file(client, message);
  });
  chat.setFnClientLeft((client) => rooms.left(client));

  http.once('error', (error) => {
    console.error(`Cannot start the demo on ${host}:${port}: ${error.message}`);
    process.exit(1);
  });
  http.listen(port, host);
  await chat.runForever();
  directory.start();
  const shown = host.includes(':') ? `[${host}]` : host;
  const where = cluster.isWorker ? `worker ${cluster.worker!.id} (pid ${process.pid}): ` : '';
  console.info(`${where}Chat demo: open http://${shown}:${chat.port}/ in two tabs (WebSocket endpoint ws://${shown}:${chat.port}/)`);

  /**
   * Ctrl-C or a stop signal: say goodbye to the other servers, close every chat with 1001, then stop serving.
   * The port stays open while the connections drain, so that a load balancer's health check sees the 503.
   */
  const stop = (): void => {
    if (stopping) {
      // A second Ctrl-C: do not wait. (A worker gets Ctrl-C and its primary's SIGTERM: the primary decides.)
      if (!cluster.isWorker) process.exit(1);
      return;
    }
    stopping = true;
    console.info('Shutting down: closing every connection with 1001');
    directory.stop();
    chat.shutdownGracefully(1001, 'the server is shutting down').then(
      () => http.close(() => process.exit(0)).closeAllConnections(),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** What the operator's endpoints report. */
interface OperatorView {
  readonly draining: boolean;
  readonly stats: () => ServerStats;
}

/**
 * `GET /healthz` (200 `ok` while serving, 503 `draining` once stopping) and `GET /metrics` (Prometheus text);
 * `false` for any other path, which is the page's.
 */
function serveOperator(request: IncomingMessage, response: ServerResponse, view: OperatorView): boolean {
  const path = (request.url ?? '/').split('?')[0];
  if (path !== '/healthz' && path !== '/metrics') return false;
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('Use GET.\n');
    return true;
  }
  const [status, type, body] =
    path === '/healthz'
      ? [view.draining ? 503 : 200, 'text/plain; charset=utf-8', view.draining ? 'draining\n' : 'ok\n']
      : [200, METRICS_CONTENT_TYPE, formatMetrics(view.stats(), view.draining)];
  response.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  response.end(request.method === 'HEAD' ? undefined : body);
  return true;
}

/** Plain HTTP on the same port: the page at `/`, nothing else. */
function servePage(page: Buffer, request: IncomingMessage, response: ServerResponse): void {
  const path = (request.url ?? '/').split('?')[0];
  if (path !== '/' && path !== '/client.html') {
    response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found: the chat page is at /\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('Use GET.\n');
    return;
  }
  response.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': page.length,
    'Cache-Control': 'no-store',
  });
  response.end(request.method === 'HEAD' ? undefined : page);
}

// Last, once every constant above is defined.
if (flags.cluster && cluster.isPrimary) {
  runPrimary(workers);
} else {
  await runChat();
}
