// Runs a compiled script that starts a server and reports where it listens, for the tests of the three doors.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { echo, openWs } from './harness.ts';
import { within } from './wait.ts';

export interface RunningScript {
  readonly child: ChildProcess;
  /** The first `http://HOST:PORT/` or `"port":N` found in its output. */
  readonly port: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Sends a signal and waits for the process to exit; resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `node <script> ...args` (with `env` added to this process's) and waits (bounded) until it prints its port. */
export async function runScript(
  t: TestContext,
  script: string,
  args: string[] = [],
  cwd?: string,
  env?: Record<string, string>,
): Promise<RunningScript> {
  const child = spawn(process.execPath, [script, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(env && { env: { ...process.env, ...env } }),
  });
  let printed = '';
  const portSeen = new Promise<number>((resolve, reject) => {
    const look = (chunk: Buffer): void => {
      printed += chunk.toString('utf8');
      const match = /http:\/\/127\.0\.0\.1:(\d+)\/|"port":(\d+)/.exec(printed);
      if (match) resolve(Number(match[1] ?? match[2]));
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before listening:\n${printed}`)));
  });
  const exited = once(child, 'exit');
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const [code] = (await within(exited, `${script} to exit`)) as [number | null];
    return code;
  };
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const port = await within(portSeen, `${script} to print its port`, 15_000);
  return { child, port, output: () => printed, stop };
}

/** Connects with `ws` as an independent client, sends `message`, and resolves with the first reply; then closes. */
export async function echoOnce(t: TestContext, port: number, message: string): Promise<string> {
  const ws = await openWs(t, `ws://127.0.0.1:${port}/`);
  try {
    return await echo(ws, message);
  } finally {
    ws.terminate();
  }
}
