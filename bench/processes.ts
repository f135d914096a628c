// The benchmark's child processes: a server and a load generator per run, each pinned to its own core where
// `taskset` exists, each with its open-file limit raised to the hard limit. Every child is tracked and killed
// when the run ends, when the benchmark ends, and when it fails or is interrupted.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadCommand, LoadEvent, LoadJob, LoadResult, NativeInfo, ServerKind, ServerMessage, ServerReply } from './protocol.ts';

/** Where the processes run: the server on one core, the load generator on the other. */
export interface Placement {
  /** Whether `taskset` pins the processes (it needs at least two cores). */
  pinned: boolean;
  serverCore: number;
  loadCore: number;
  /** The open-file limit the children get: the hard limit of `ulimit -n`. */
  openFiles: number;
}

/** Finds out whether the processes can be pinned and how many files each may open. */
export function detectPlacement(): Placement {
  const cores = availableParallelism();
  const pinned = cores >= 2 && spawnSync('taskset', ['-c', '1', 'true'], { stdio: 'ignore' }).status === 0;
  const hard = spawnSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout.trim();
  const openFiles = hard === 'unlimited' ? 1_048_576 : Number.parseInt(hard, 10) || 1024;
  return { pinned, serverCore: 0, loadCore: 1, openFiles };
}

const children = new Set<ChildProcess>();

/**
 * The compiled benchmark and the built library, copied once at the start into a temporary directory that the
 * child processes run from: a rebuild or `npm test` (which deletes build/) during a long run changes nothing.
 * The copy's package.json has the library's name, so `import 'websocket-server'` resolves there as it does in
 * the repository (a package importing itself by name); node_modules is a link to the repository's.
 */
let stageDirectory: string | undefined;

export function stage(root: string): string {
  const directory = mkdtempSync(join(tmpdir(), 'websocket-server-bench-'));
  stageDirectory = directory;
  cpSync(join(root, 'build', 'bench'), join(directory, 'bench'), { recursive: true });
  mkdirSync(join(directory, 'dist'));
  cpSync(join(root, 'dist', 'websocket-server.js'), join(directory, 'dist', 'websocket-server.js'));
  const { name } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string };
  writeFileSync(join(directory, 'package.json'), JSON.stringify({ name, type: 'module', exports: { '.': './dist/websocket-server.js' } }));
  symlinkSync(join(root, 'node_modules'), join(directory, 'node_modules'), 'dir');
  return directory;
}

/** Removes the staged copy. */
export function unstage(): void {
  if (stageDirectory !== undefined) rmSync(stageDirectory, { recursive: true, force: true });
  stageDirectory = undefined;
}

/** Kills every child still running (each by its own pid). */
export function killChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

/** Node with `script`, through `sh` (to raise the open-file limit) and `taskset` (to pin it), with IPC. */
function spawnNode(script: string, args: readonly string[], core: number, placement: Placement, env: NodeJS.ProcessEnv, nodeFlags: readonly string[]): ChildProcess {
  const pin = placement.pinned ? ['taskset', '-c', String(core)] : [];
  const child = spawn(
    '/bin/sh',
    ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', ...pin, process.execPath, ...nodeFlags, script, ...args],
    { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** The last few KiB a child printed, for the report of a failed run. */
function keepTail(child: ChildProcess): () => string {
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString()).slice(-4096);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => tail.trim();
}

function script(name: string): string {
  if (stageDirectory === undefined) throw new Error('The benchmark must be staged (stage()) before it starts processes.');
  return join(stageDirectory, 'bench', name);
}

/**
 * Rejects after `ms` unless `promise` settles first. The result is marked as handled: a run that fails early
 * stops waiting for its other promises, whose later rejections must not end the benchmark.
 */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const result = Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}.`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
  result.catch(() => {});
  return result;
}

type ReplyOf<T extends ServerReply['type']> = Extract<ServerReply, { type: T }>;

/** A server under test, in its own process. */
export class ServerProcess {
  readonly kind: ServerKind;
  readonly port: number;
  readonly native: NativeInfo;
  readonly #child: ChildProcess;
  readonly #output: () => string;
  readonly #pending = new Map<number, (reply: ServerReply) => void>();
  #nextId = 1;

  private constructor(kind: ServerKind, child: ChildProcess, output: () => string, ready: Extract<ServerMessage, { type: 'ready' }>) {
    this.kind = kind;
    this.#child = child;
    this.#output = output;
    this.port = ready.port;
    this.native = ready.native;
    child.on('message', (message: ServerMessage) => {
      if (message.type === 'ready') return;
      this.#pending.get(message.id)?.(message);
      this.#pending.delete(message.id);
    });
  }

  /** Starts a server of `kind` and resolves once it listens; checks that `ws` unmasks the way its kind says. */
  static async start(kind: ServerKind, placement: Placement): Promise<ServerProcess> {
    const env = { ...process.env };
    delete env['WS_NO_BUFFER_UTIL'];
    if (kind === 'ws') env['WS_NO_BUFFER_UTIL'] = '1';
    const file = kind === 'ws-bufferutil' ? 'ws' : kind;
    const child = spawnNode(script(`servers/${file}.js`), [], placement.serverCore, placement, env, ['--expose-gc']);
    const output = keepTail(child);
    const ready = await within(
      new Promise<Extract<ServerMessage, { type: 'ready' }>>((resolve, reject) => {
        child.on('message', (message: ServerMessage) => {
          if (message.type === 'ready') resolve(message);
        });
        child.once('exit', (code, signal) => reject(new Error(`The ${kind} server exited (${signal ?? code}) before listening: ${output()}`)));
        child.once('error', reject);
      }),
      15_000,
      `the ${kind} server to listen`,
    ).catch((error: unknown) => {
      child.kill('SIGKILL');
      throw error;
    });
    const server = new ServerProcess(kind, child, output, ready);
    const expected = kind === 'ws-bufferutil';
    if (ready.native.bufferutil !== expected) {
      server.kill();
      throw new Error(`The ${kind} server ${ready.native.bufferutil ? 'uses' : 'does not use'} bufferutil: check that the bufferutil devDependency is installed.`);
    }
    return server;
  }

  /** Asks the server process for its CPU time, its memory after GC, or its number of clients. */
  request<T extends ServerReply['type']>(type: T): Promise<ReplyOf<T>> {
    const id = this.#nextId++;
    const reply = new Promise<ReplyOf<T>>((resolve) => {
      this.#pending.set(id, resolve as (reply: ServerReply) => void);
    });
    this.#child.send({ id, type });
    return within(reply, 20_000, `the ${this.kind} server to answer "${type}"`);
  }

  /**
   * CPU time the server process has used so far, in seconds, read from outside (Linux's /proc/PID/stat, in
   * USER_HZ): a server busy with a long broadcast answers IPC late, /proc does not wait. `undefined` without /proc.
   */
  cpuSeconds(): number | undefined {
    try {
      const stat = readFileSync(`/proc/${this.#child.pid}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return undefined;
    }
  }

  get output(): string {
    return this.#output();
  }

  get exited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  kill(): void {
    this.#child.kill('SIGKILL');
  }
}

/** The load generator of one run, in its own process, pinned to the other core. */
export class LoadProcess {
  readonly #child: ChildProcess;
  readonly #output: () => string;
  readonly done: Promise<LoadResult>;

  constructor(job: LoadJob, placement: Placement, onEvent: (event: LoadEvent) => void, limitMs: number) {
    this.#child = spawnNode(script('load.js'), [JSON.stringify(job)], placement.loadCore, placement, process.env, []);
    this.#output = keepTail(this.#child);
    const child = this.#child;
    this.done = within(
      new Promise<LoadResult>((resolve, reject) => {
        child.on('message', (event: LoadEvent) => {
          if (event.type === 'result') resolve(event.result);
          else if (event.type === 'failed') reject(new Error(event.error));
          else onEvent(event);
        });
        // A message sent just before exiting may be read after the exit is seen: give it a moment.
        child.once('exit', (code, signal) => {
          setTimeout(() => reject(new Error(`The load generator exited (${signal ?? code}) without a result: ${this.#output()}`)), 250);
        });
        child.once('error', reject);
      }),
      limitMs,
      'the load generator',
    );
  }

  send(command: LoadCommand): void {
    this.#child.send(command);
  }

  kill(): void {
    this.#child.kill('SIGKILL');
  }
}

/**
 * CPU time the processes of the machine have spent so far (user, nice and system time, not interrupts: the
 * loopback TCP stack runs much of the bench's own traffic in softirq time), in core-seconds, from Linux's
 * /proc/stat (in USER_HZ, 100 per second); `undefined` where there is no /proc/stat. The difference over a run,
 * less what the server and the load generator used, is what other processes took from the two cores.
 */
export function machineBusySeconds(): number | undefined {
  try {
    const [user = 0, nice = 0, system = 0] = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 4).map(Number);
    return (user + nice + system) / 100;
  } catch {
    return undefined;
  }
}

/**
 * Waits until other processes use less than a quarter of a core (sampled over 0.3 s), for at most
 * `limitMs`. Returns the share they used in the last sample.
 */
export async function waitForQuietMachine(limitMs: number, onWait: (busyCores: number) => void): Promise<number> {
  const started = performance.now();
  let warned = false;
  for (;;) {
    const before = machineBusySeconds();
    const at = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = machineBusySeconds();
    if (before === undefined || after === undefined) return 0;
    const busy = (after - before) / ((performance.now() - at) / 1000);
    if (busy < 0.25 || performance.now() - started > limitMs) return busy;
    if (!warned) onWait(busy);
    warned = true;
  }
}

/** TCP sockets in TIME_WAIT on the machine (Linux's /proc/net/sockstat), or `undefined` where it is not known. */
export function socketsInTimeWait(): number | undefined {
  try {
    const match = /^TCP:.* tw (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'latin1'));
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}
