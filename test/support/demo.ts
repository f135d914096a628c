// Runs a compiled script that starts a server and reports where it listens, for the tests of the three doors; and
// a `ws` stand-in for a page of the chat demo.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import type WebSocket from 'ws';
import { echo, newWs, openWs } from './harness.ts';
import { until, within } from './wait.ts';

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
/**
 * Waits (bounded) until the `count` workers of `server.ts --cluster` all say they listen: the script's port is
 * known from the first, and connections made before the others listen would all reach it.
 */
export async function workersListening(demo: RunningScript, count: number): Promise<void> {
  await until(() => (demo.output().match(/worker \d+ \(pid \d+\): Chat demo/g) ?? []).length >= count, `${count} workers to listen`, 15_000);
}

export async function echoOnce(t: TestContext, port: number, message: string): Promise<string> {
  const ws = await openWs(t, `ws://127.0.0.1:${port}/`);
  try {
    return await echo(ws, message);
  } finally {
    ws.terminate();
  }
}

/** What the chat demo sends, a JSON event per text message. */
export type ChatEvent = Record<string, unknown>;

/** A chat page stand-in for the demo's rooms protocol, over `ws`: what it received, in order. */
export interface ChatPeer {
  readonly socket: WebSocket;
  /** Its name in the chat, from its welcome: its id, or `id@w<worker>` / `id@<port>`. */
  readonly name: string;
  /** The text messages received, parsed, in order (the welcome first). */
  readonly events: ChatEvent[];
  /** The binary messages received, in order. */
  readonly files: Buffer[];
  /** For each binary message, how many text messages had arrived before it. */
  readonly filesAt: number[];
  /** Resolves with the close code. */
  readonly closed: Promise<number>;
  /** Sends a request (a JSON object) or, given a string, that text as it is. */
  send(message: ChatEvent | string): void;
  /**
   * Waits (bounded) for the first event at or after index `from` (default 0) whose fields equal those of
   * `pattern` (compared as JSON), and returns it.
   */
  next(pattern: ChatEvent, from?: number, ms?: number): Promise<ChatEvent>;
  /** The events so far whose fields equal those of `pattern`. */
  all(pattern: ChatEvent): ChatEvent[];
}

const fieldsMatch = (event: ChatEvent, pattern: ChatEvent): boolean =>
  Object.entries(pattern).every(([key, value]) => JSON.stringify(event[key]) === JSON.stringify(value));

/** Connects a `ws` client to the demo on 127.0.0.1:`port` and waits for its welcome; terminated after the test. */
export async function joinChat(t: TestContext, port: number): Promise<ChatPeer> {
  const socket = newWs(t, `ws://127.0.0.1:${port}/`);
  const events: ChatEvent[] = [];
  const files: Buffer[] = [];
  const filesAt: number[] = [];
  socket.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) {
      events.push(JSON.parse(data.toString('utf8')) as ChatEvent);
      return;
    }
    files.push(data);
    filesAt.push(events.length);
  });
  const closed = once(socket, 'close').then(([code]) => code as number);
  await within(once(socket, 'open'), 'the chat to accept a client');
  const all = (pattern: ChatEvent): ChatEvent[] => events.filter((event) => fieldsMatch(event, pattern));
  const next = async (pattern: ChatEvent, from = 0, ms = 5_000): Promise<ChatEvent> => {
    const find = (): ChatEvent | undefined => events.slice(from).find((event) => fieldsMatch(event, pattern));
    await until(() => find() !== undefined, `an event like ${JSON.stringify(pattern)}`, ms);
    return find()!;
  };
  const welcome = await next({ type: 'welcome' });
  return {
    socket,
    name: String(welcome['id']),
    events,
    files,
    filesAt,
    closed,
    send: (message) => socket.send(typeof message === 'string' ? message : JSON.stringify(message)),
    next,
    all,
  };
}
