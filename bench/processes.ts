// The benchmark's child processes: a server and a load generator per run, each pinned to its own core where
// `taskset` exists, each with its open-file limit raised to the hard limit. Every child is tracked and killed
// when the run ends, when the benchmark ends, and when it fails or is interrupted. A server may be several
// processes (`ours-cluster`: a primary and its two workers; `ours-redis`: two servers and a redis-server), all
// on the server's core, all killed with it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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

export function stage(root: string, library = root): string {
  const directory = mkdtempSync(join(tmpdir(), 'websocket-server-bench-'));
  stageDirectory = directory;
  cpSync(join(root, 'build', 'bench'), join(directory, 'bench'), { recursive: true });
  mkdirSync(join(directory, 'dist'));
  cpSync(join(library, 'dist', 'websocket-server.js'), join(directory, 'dist', 'websocket-server.js'));
  const exports: Record<string, string> = { '.': './dist/websocket-server.js' };
  // The adapters (for `ours-cluster` and `ours-redis`), imported as users do: 'websocket-server/adapters/cluster'.
  const adapters = join(library, 'dist', 'adapters');
  if (existsSync(adapters)) {
    mkdirSync(join(directory, 'dist', 'adapters'));
    for (const file of readdirSync(adapters).filter((name) => name.endsWith('.js'))) {
      cpSync(join(adapters, file), join(directory, 'dist', 'adapters', file));
      exports[`./adapters/${file.slice(0, -'.js'.length)}`] = `./dist/adapters/${file}`;
    }
  }
  const { name } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string };
  writeFileSync(join(directory, 'package.json'), JSON.stringify({ name, type: 'module', exports }));
  symlinkSync(join(root, 'node_modules'), join(directory, 'node_modules'), 'dir');
  return directory;
}

/** Removes the staged copy. */
export function unstage(): void {
  if (stageDirectory !== undefined) rmSync(stageDirectory, { recursive: true, force: true });
  stageDirectory = undefined;
}

/**
 * Processes started by our children rather than by us (the workers of `ours-cluster`), by pid. They are killed
 * with their server, and at the end like the children.
 */
const grandchildren = new Set<number>();

/** The shells of {@link spawnWatched}, with the pid of the program each watches. */
const watchers = new Map<ChildProcess, number>();

/**
 * Kills every child still running (each by its own pid), every grandchild that is still one of ours, and every
 * program under a watching shell.
 */
export function killChildren(): void {
  for (const [shell, pid] of watchers) killWatched(shell, pid);
  for (const pid of grandchildren) killGrandchild(pid);
  grandchildren.clear();
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
}

/**
 * SIGKILLs a process that one of our children started, if it is still one of the benchmark's: its command line
 * or its working directory names the staged directory (redis-server rewrites its command line, but works in
 * its `--dir`). A pid that has ended and been reused by another program is left alone.
 */
function killGrandchild(pid: number): void {
  if (stageDirectory === undefined) return;
  let ours = false;
  try {
    ours = readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(stageDirectory);
  } catch {
    return; // already gone
  }
  try {
    ours ||= readlinkSync(`/proc/${pid}/cwd`).startsWith(stageDirectory);
  } catch {
    // no access to its working directory: decided by the command line
  }
  try {
    if (ours) process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
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

/**
 * Starts `argv`, a program without an IPC channel (redis-server), pinned to `core`, under a shell that kills it
 * when the shell's standard input closes: so it ends with the benchmark even when the benchmark is killed with
 * SIGKILL (which no exit handler sees; the other children exit when their IPC channel closes), and the shell,
 * which is never killed itself (that would orphan the program), kills its own child, whose pid cannot have been
 * reused while the shell has not reaped it. Resolves with the program's pid once the shell has started it;
 * {@link killWatched} (and {@link killChildren}) end it.
 */
export async function spawnWatched(argv: readonly string[], core: number, placement: Placement, env: NodeJS.ProcessEnv): Promise<{ shell: ChildProcess; pid: number; output: () => string }> {
  const pin = placement.pinned ? ['taskset', '-c', String(core)] : [];
  const shell = spawn(
    '/bin/sh',
    ['-c', '"$@" & pid=$!; echo "started pid $pid"; read _; kill -9 "$pid" 2>/dev/null', 'sh', ...pin, ...argv],
    { stdio: ['pipe', 'pipe', 'pipe'], env },
  );
  watchers.set(shell, -1);
  shell.once('exit', () => watchers.delete(shell));
  const output = keepTail(shell);
  const pid = await within(
    new Promise<number>((resolve, reject) => {
      let printed = '';
      const look = (chunk: Buffer): void => {
        printed += chunk.toString('latin1');
        const match = /^started pid (\d+)$/m.exec(printed);
        if (match === null) return;
        shell.stdout?.off('data', look);
        resolve(Number(match[1]));
      };
      shell.stdout?.on('data', look);
      shell.once('exit', (code, signal) => reject(new Error(`The shell starting ${argv[0]} exited (${signal ?? code}): ${output()}`)));
    }),
    5_000,
    `the shell to start ${argv[0]}`,
  ).catch((error: unknown) => {
    shell.stdin?.destroy(); // the shell kills the program, if it started it, and exits
    throw error;
  });
  if (watchers.has(shell)) watchers.set(shell, pid);
  return { shell, pid, output };
}

/**
 * Ends a program started by {@link spawnWatched}: SIGKILL at once if it is still the benchmark's, and its shell's
 * standard input closed, so that the shell kills it (if not done yet) and exits.
 */
export function killWatched(shell: ChildProcess, pid: number): void {
  if (pid > 0) killGrandchild(pid);
  shell.stdin?.destroy();
  watchers.delete(shell);
}

/** CPU time a process has used so far, in seconds, from Linux's /proc/PID/stat (in USER_HZ); `undefined` without. */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** The staged directory (see {@link stage}), for the files a run's processes need (a redis-server's `--dir`). */
export function stagedDirectory(): string {
  if (stageDirectory === undefined) throw new Error('The benchmark must be staged (stage()) before it starts processes.');
  return stageDirectory;
}

/** The last few KiB a child printed, for the report of a failed run. */
export function keepTail(child: ChildProcess): () => string {
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

export type ReplyOf<T extends ServerReply['type']> = Extract<ServerReply, { type: T }>;

/** What a run needs of the server under test, whether it is one process or several. */
export interface ServerUnderTest {
  readonly kind: ServerKind;
  /** The port of the first (or only) process. */
  readonly port: number;
  /** The port of each process that serves clients: one, or two for `ours-cluster` and `ours-redis`. */
  readonly ports: readonly number[];
  /** Asks the server for its memory after GC, or its number of clients (summed over its processes). */
  request<T extends ServerReply['type']>(type: T): Promise<ReplyOf<T>>;
  /** CPU time all its processes have used so far, in seconds (see {@link ServerProcess.cpuSeconds}). */
  cpuSeconds(): number | undefined;
  readonly output: string;
  /** Whether one of its processes has exited. */
  readonly exited: boolean;
  kill(): void;
}

/** A server under test, in its own process (`ours-cluster`: the primary, which reports its workers). */
export class ServerProcess implements ServerUnderTest {
  readonly kind: ServerKind;
  readonly port: number;
  readonly ports: readonly number[];
  readonly native: NativeInfo;
  readonly #child: ChildProcess;
  readonly #output: () => string;
  readonly #pending = new Map<number, (reply: ServerReply) => void>();
  /** Processes of this server that its process started (cluster workers). */
  readonly #workers: readonly number[];
  #nextId = 1;

  private constructor(kind: ServerKind, child: ChildProcess, output: () => string, ready: Extract<ServerMessage, { type: 'ready' }>) {
    this.kind = kind;
    this.#child = child;
    this.#output = output;
    this.port = ready.port;
    this.ports = ready.group?.ports ?? [ready.port];
    this.#workers = ready.group?.pids ?? [];
    for (const pid of this.#workers) grandchildren.add(pid);
    this.native = ready.native;
    child.on('message', (message: ServerMessage) => {
      if (message.type === 'ready') return;
      this.#pending.get(message.id)?.(message);
      this.#pending.delete(message.id);
    });
  }

  /**
   * Starts a server of `kind` and resolves once it listens; checks that `ws` unmasks the way its kind says.
   * `extraEnv` adds to the environment (the adapter of a process of `ours-redis`).
   */
  static async start(kind: ServerKind, placement: Placement, extraEnv: Record<string, string> = {}, nodeFlags: readonly string[] = []): Promise<ServerProcess> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv };
    delete env['WS_NO_BUFFER_UTIL'];
    delete env['UWS_USE_FALLBACK']; // (uWS's JavaScript fallback: servers/uws.js refuses it anyway)
    if (kind === 'ws') env['WS_NO_BUFFER_UTIL'] = '1';
    const file = kind === 'ws-bufferutil' ? 'ws' : kind === 'ours-cluster' ? 'cluster' : kind;
    if (file === 'ours-redis') throw new Error('ours-redis is two processes and a redis-server: see redis-server.ts.');
    const child = spawnNode(script(`servers/${file}.js`), [], placement.serverCore, placement, env, ['--expose-gc', ...nodeFlags]);
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
    if (kind === 'uws' && ready.native.uws === undefined) {
      server.kill();
      throw new Error('The uws server did not say which uWebSockets.js binary it loaded.');
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
    return sumOf([this.#child.pid, ...this.#workers].map(processCpuSeconds));
  }

  get output(): string {
    return this.#output();
  }

  get exited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  /**
   * Ends the server the way it ends when the benchmark goes (servers/control.ts exits when its IPC channel
   * closes), so that what Node writes at exit (a `--cpu-prof` profile) is written; SIGKILL after `limitMs`.
   */
  async stop(limitMs = 10_000): Promise<void> {
    const child = this.#child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.disconnect();
    const timer = setTimeout(() => this.kill(), limitMs);
    await exited;
    clearTimeout(timer);
  }

  kill(): void {
    for (const pid of this.#workers) {
      killGrandchild(pid);
      grandchildren.delete(pid);
    }
    this.#child.kill('SIGKILL');
  }
}

/** The sum, or `undefined` if any is unknown. */
export function sumOf(values: ReadonlyArray<number | undefined>): number | undefined {
  let total = 0;
  for (const value of values) {
    if (value === undefined) return undefined;
    total += value;
  }
  return total;
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
