// `ours-redis`: two processes of our server joined by Redis pub/sub (RedisAdapter), and the redis-server they
// share, which the benchmark starts for each run: on a free port of 127.0.0.1 (never a Redis that may already
// run on 6379), nothing persisted (`--save '' --appendonly no`), pinned to the server's core like the two
// servers, and killed with them. It needs Debian's redis-server (`apt-get install redis-server`; or the path of
// one in REDIS_SERVER): without it, a plan with `ours-redis` fails at its start (see requireRedisServer).
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import {
  ServerProcess,
  killWatched,
  processCpuSeconds,
  spawnWatched,
  stagedDirectory,
  sumOf,
  type Placement,
  type ReplyOf,
  type ServerUnderTest,
} from './processes.ts';
import { freePort } from './ports.ts';
import type { ServerKind, ServerReply } from './protocol.ts';

/** The redis-server binary: REDIS_SERVER if set, else the one on the PATH. */
const BINARY = process.env['REDIS_SERVER'] || 'redis-server';
/** Ports tried when the one found free is taken before redis-server binds it. */
const PORT_ATTEMPTS = 5;
/** Longest wait for a started redis-server to answer. */
const READY_MS = 5_000;

/** The version line of the redis-server binary, or `undefined` when there is none. */
export function redisServerVersion(): string | undefined {
  const result = spawnSync(BINARY, ['--version'], { encoding: 'utf8', timeout: 5_000 });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

/** Throws, saying what to install, when there is no redis-server: a plan with `ours-redis` never skips it. */
export function requireRedisServer(): string {
  const version = redisServerVersion();
  if (version === undefined) {
    throw new Error(
      `The cross-process broadcast runs (ours-redis) need redis-server, and ${BINARY} was not found: install ` +
        `Debian's redis-server (apt-get install redis-server; .ci/run does), or set REDIS_SERVER to its path.`,
    );
  }
  return version;
}

/** A redis-server of one run (under a watching shell: see spawnWatched). */
export class RedisServerProcess {
  readonly port: number;
  readonly #shell: ChildProcess;
  readonly #pid: number;
  readonly #output: () => string;

  private constructor(port: number, shell: ChildProcess, pid: number, output: () => string) {
    this.port = port;
    this.#shell = shell;
    this.#pid = pid;
    this.#output = output;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts one on a free port of 127.0.0.1, pinned to the server's core; resolves once it answers. */
  static async start(placement: Placement): Promise<RedisServerProcess> {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const { shell, pid, output } = await spawnWatched(
        [BINARY, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
          '--dir', stagedDirectory(), '--loglevel', 'warning', '--daemonize', 'no'],
        placement.serverCore,
        placement,
        process.env,
      );
      const outcome = await waitUntilAnswering(pid, port);
      if (outcome === 'ready') return new RedisServerProcess(port, shell, pid, output);
      killWatched(shell, pid);
      const taken = outcome === 'exited' && /address already in use/i.test(output());
      if (!taken || attempt === PORT_ATTEMPTS) {
        throw new Error(`redis-server could not start on port ${port} (${outcome === 'exited' ? 'it exited' : `no answer within ${READY_MS} ms`}, attempt ${attempt}): ${output()}`);
      }
    }
  }

  cpuSeconds(): number | undefined {
    return processCpuSeconds(this.#pid);
  }

  get output(): string {
    return this.#output();
  }

  get exited(): boolean {
    return !isRunning(this.#pid);
  }

  kill(): void {
    killWatched(this.#shell, this.#pid);
  }
}

/** Whether process `pid` runs (and is not a zombie waiting for its shell). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Waits until the redis-server on `port` answers `INFO server` with its own pid (not another Redis that took the
 * port first): 'ready', 'exited', or 'timeout' after {@link READY_MS}.
 */
async function waitUntilAnswering(pid: number, port: number): Promise<'ready' | 'exited' | 'timeout'> {
  const mine = new RegExp(`^process_id:${pid}\\r?$`, 'm');
  for (const deadline = performance.now() + READY_MS; performance.now() < deadline; await delay(20)) {
    if (!isRunning(pid)) return 'exited';
    const info = await command(port, 'INFO server').catch(() => '');
    if (mine.test(info)) return 'ready';
  }
  return isRunning(pid) ? 'timeout' : 'exited';
}

/** Sends one inline command over RESP and resolves with the reply's text (a bulk string's body). 1 s at most. */
function command(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const socket = connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => done(new Error('no reply within 1 s')), 1_000);
    function done(error: Error | undefined, reply = ''): void {
      clearTimeout(timer);
      socket.destroy();
      if (error === undefined) resolve(reply);
      else reject(error);
    }
    socket.on('error', (error) => done(error));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const headEnd = received.indexOf('\r\n');
      if (headEnd < 0) return;
      if (received[0] !== 0x24 /* $ */) {
        done(undefined, received.toString('latin1'));
        return;
      }
      const length = Number(received.toString('latin1', 1, headEnd));
      if (received.length >= headEnd + 2 + length) done(undefined, received.toString('utf8', headEnd + 2, headEnd + 2 + length));
    });
    socket.write(`${line}\r\n`);
  });
}

/**
 * `ours-redis`: two processes of our server (servers/ours.js with BENCH_ADAPTER=redis://…), each on a port of
 * its own with a RedisAdapter, and their redis-server. All three are pinned to the server's core, so the server's
 * CPU budget is the one `ours` has alone, and its CPU time is the sum of theirs.
 */
export class RedisPair implements ServerUnderTest {
  readonly kind: ServerKind = 'ours-redis';
  readonly port: number;
  readonly ports: readonly number[];
  readonly #redis: RedisServerProcess;
  readonly #servers: readonly ServerProcess[];

  private constructor(redis: RedisServerProcess, servers: readonly ServerProcess[]) {
    this.#redis = redis;
    this.#servers = servers;
    this.ports = servers.map((server) => server.port);
    this.port = this.ports[0]!;
  }

  static async start(placement: Placement): Promise<RedisPair> {
    const redis = await RedisServerProcess.start(placement);
    const started = await Promise.allSettled([0, 1].map(() => ServerProcess.start('ours', placement, { BENCH_ADAPTER: redis.url })));
    const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failure = started.find((result) => result.status === 'rejected');
    if (failure !== undefined) {
      for (const server of servers) server.kill();
      redis.kill();
      throw failure.reason;
    }
    return new RedisPair(redis, servers);
  }

  async request<T extends ServerReply['type']>(type: T): Promise<ReplyOf<T>> {
    const replies: ServerReply[] = await Promise.all(this.#servers.map((server) => server.request(type)));
    const first = replies[0]!;
    // memory: the first process's (the memory scenario does not run this server).
    if (first.type !== 'clients') return first as ReplyOf<T>;
    let count = 0;
    let errors = 0;
    for (const reply of replies) {
      if (reply.type !== 'clients') continue;
      count += reply.count;
      errors += reply.errors;
    }
    return { ...first, count, errors } as ReplyOf<T>;
  }

  cpuSeconds(): number | undefined {
    return sumOf([this.#redis.cpuSeconds(), ...this.#servers.map((server) => server.cpuSeconds())]);
  }

  get output(): string {
    const parts = [...this.#servers.map((server, i) => [`server ${i}`, server.output]), ['redis-server', this.#redis.output]];
    return parts.filter(([, output]) => output !== '').map(([name, output]) => `[${name}] ${output}`).join('\n');
  }

  get exited(): boolean {
    return this.#redis.exited || this.#servers.some((server) => server.exited);
  }

  kill(): void {
    for (const server of this.#servers) server.kill();
    this.#redis.kill();
  }
}
