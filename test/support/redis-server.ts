// A private redis-server for one test: on a free loopback port (never a Redis that may already run on 6379), with
// nothing persisted and its own temporary directory; it can crash (SIGKILL) and start again on the same port, and
// it is always killed when the test ends. Needs Debian's redis-server and redis-cli (.ci/run installs them): a
// machine without them fails the test with a message saying so, it never skips.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from './harness.ts';
import { within } from './wait.ts';

/** Ports tried when the one found free is taken before redis-server binds it. */
const PORT_ATTEMPTS = 5;
/** Longest wait for a started redis-server to answer. */
const READY_MS = 5_000;
/** Longest wait for one redis-cli command. */
const COMMAND_MS = 2_000;

/** A redis-server of the test's own. */
export interface TestRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Whether the process runs now. */
  readonly running: boolean;
  /** Kills it with SIGKILL, as a crash: its clients get no goodbye. Resolves once it has exited. */
  crash(): Promise<void>;
  /** Starts it again, empty, on the same port; resolves once it answers. */
  restart(): Promise<void>;
  /** Stops it with SIGSTOP, as a stall: connections stay open, nothing is answered. */
  pause(): void;
  /** Lets a paused server go on (SIGCONT). */
  resume(): void;
  /** Runs one command with redis-cli and resolves with what it printed. */
  command(...args: string[]): Promise<string>;
  /** `CLIENT LIST` without the redis-cli connection asking: one record per connection (`id`, `addr`, `name`, …). */
  clients(): Promise<Array<Record<string, string>>>;
  /** What redis-server printed (its log, at level warning). */
  output(): string;
}

/** Starts a redis-server on a free port of 127.0.0.1 and resolves once it answers; it is killed in `t.after`. */
export async function startRedis(t: TestContext): Promise<TestRedis> {
  await requireCommand('redis-server');
  await requireCommand('redis-cli');
  const dir = await mkdtemp(join(tmpdir(), 'websocket-server-redis-'));
  let child: ChildProcess | undefined;
  let printed = '';
  t.after(async () => {
    await kill(child);
    await rm(dir, { recursive: true, force: true });
  });

  const command = async (port: number, args: string[]): Promise<string> =>
    within(
      new Promise<string>((resolve, reject) => {
        const cli = ['-h', '127.0.0.1', '-p', String(port), ...args];
        execFile('redis-cli', cli, { timeout: COMMAND_MS }, (error, stdout, stderr) => {
          // redis-cli prints a refused connection on stderr, and its exit code does not say whether the command failed.
          if (error !== null) reject(new Error(`redis-cli ${args.join(' ')} failed: ${error.message}${stderr}`));
          else if (stderr !== '' || /^(ERR|WRONGTYPE|NOAUTH|LOADING)\b/.test(stdout)) {
            reject(new Error(`redis-cli ${args.join(' ')} failed: ${stderr}${stdout}`));
          } else resolve(stdout);
        });
      }),
      `redis-cli ${args.join(' ')}`,
      COMMAND_MS + 1_000,
    );

  /** Starts redis-server on `port`; resolves `false` if it exited (the port was taken), `true` once it answers. */
  const launch = async (port: number): Promise<boolean> => {
    printed = '';
    const server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
        '--loglevel', 'warning'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = server;
    server.stdout!.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
    server.stderr!.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
    for (const deadline = Date.now() + READY_MS; Date.now() < deadline; await delay(20)) {
      if (server.exitCode !== null || server.signalCode !== null) return false;
      // Answered by this process, not by another Redis that took the port first.
      const info = await command(port, ['INFO', 'server']).catch(() => '');
      if (new RegExp(`^process_id:${server.pid}\\r?$`, 'm').test(info)) return true;
    }
    await kill(server);
    throw new Error(`redis-server on port ${port} did not answer within ${READY_MS} ms:\n${printed}`);
  };

  const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    if (await launch(port)) break;
    if (attempt === PORT_ATTEMPTS || !/Address already in use/i.test(printed)) {
      throw new Error(`redis-server could not start on port ${port} (try ${attempt} of ${PORT_ATTEMPTS}):\n${printed}`);
    }
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return running();
    },
    crash: () => kill(child),
    pause() {
      if (!running()) throw new Error('redis-server is not running: nothing to pause.');
      child!.kill('SIGSTOP');
    },
    resume() {
      if (!running()) throw new Error('redis-server is not running: nothing to resume.');
      child!.kill('SIGCONT');
    },
    async restart() {
      if (running()) throw new Error('redis-server is still running: crash() it first.');
      if (!(await launch(port))) throw new Error(`redis-server could not start again on port ${port}:\n${printed}`);
    },
    command: (...args) => command(port, args),
    async clients() {
      const list = await command(port, ['CLIENT', 'LIST']);
      return list
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => Object.fromEntries(line.trim().split(' ').map((field) => {
          const equals = field.indexOf('=');
          return [field.slice(0, equals), field.slice(equals + 1)];
        })))
        .filter((client) => client['cmd'] !== 'client|list');
    },
    output: () => printed,
  };
}

/** SIGKILLs `server` if it runs, and waits (bounded) until it has exited. */
async function kill(server: ChildProcess | undefined): Promise<void> {
  if (server === undefined || server.exitCode !== null || server.signalCode !== null) return;
  const exited = once(server, 'exit');
  server.kill('SIGKILL');
  await within(exited, 'redis-server to exit after SIGKILL');
}

/** Fails with a message saying what to install when `name` is not on the PATH. */
async function requireCommand(name: 'redis-server' | 'redis-cli'): Promise<void> {
  const found = await new Promise<boolean>((resolve) => {
    execFile(name, ['--version'], { timeout: COMMAND_MS }, (error) => resolve(error === null));
  });
  if (!found) {
    throw new Error(
      `The Redis adapter tests need ${name}, which is not installed: install Debian's redis-server ` +
        `(apt-get install redis-server, which brings redis-cli), as .ci/run does.`,
    );
  }
}
