// The README's reverse proxy snippets, run as they are written: the nginx and HAProxy blocks under "## Behind a
// reverse proxy" are taken from README.md, their ports filled in (the README's 80 and 13254 become free ports on
// 127.0.0.1), and each proxy runs as a child process in front of a server. A `ws` client connects through it,
// messages cross both ways, and the server sees the `X-Forwarded-For` the proxy added. The timeouts the snippets
// set are checked against the server's default `pingInterval`.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { echo, freePort, openWs, startServer } from '../support/harness.ts';
import { within } from '../support/wait.ts';

const root = new URL('../../../', import.meta.url); // build/test/system/ → project root
const readme = readFileSync(new URL('README.md', root), 'utf8');
const source = readFileSync(new URL('websocket-server.ts', root), 'utf8');
const LIMIT = { timeout: 30_000 };

/** The fenced block of `language` in the README's "## Behind a reverse proxy" section. */
function snippet(language: string): string {
  const section = /^## Behind a reverse proxy\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
  const block = new RegExp('^```' + language + '\\n([\\s\\S]*?)^```$', 'm').exec(section)?.[1];
  assert.ok(block !== undefined, `the README has a \`\`\`${language} block under "## Behind a reverse proxy"`);
  return block;
}

/** A program the system tests install (test/support/system-programs.ts); in /usr/sbin on Debian. */
const program = (name: string): string => (existsSync(`/usr/sbin/${name}`) ? `/usr/sbin/${name}` : name);

/** Seconds in an nginx or HAProxy time value: `60s`, `1h`, `500ms`, `2m`, or a bare number (nginx: seconds; HAProxy: ms). */
function seconds(value: string, bareUnit: 's' | 'ms'): number {
  const [, amount, unit = bareUnit] = /^(\d+)(ms|s|m|h|d)?$/.exec(value) ?? [];
  assert.ok(amount !== undefined, `a time value: ${value}`);
  return Number(amount) * { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 }[unit as 'ms']!;
}

const defaultPingInterval = Number(/^\s+pingInterval: ([\d_]+),$/m.exec(source)?.[1]?.replace(/_/g, '')) / 1000;

/** Waits (bounded) until something accepts TCP connections on 127.0.0.1:`port`. */
async function listening(port: number, what: string, child: ChildProcess, output: () => string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    assert.equal(child.exitCode, null, `${what} exited early:\n${output()}`);
    const socket = net.connect({ host: '127.0.0.1', port });
    const connected = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true)).once('error', () => resolve(false));
    });
    socket.destroy();
    if (connected) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`${what} did not listen on ${port}:\n${output()}`);
}

/** Runs a proxy; stops it (SIGTERM, so nginx's master takes its workers along) after the test. */
async function runProxy(t: TestContext, what: string, file: string, args: string[], port: number): Promise<void> {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = once(child, 'exit');
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await within(exited, `${what} to stop`).catch(() => child.kill('SIGKILL'));
  });
  await listening(port, what, child, () => output);
}

/** A client exchanges messages through the proxy at `proxyPort`; the server saw one handshake, forwarded for 127.0.0.1. */
async function exchangeThrough(t: TestContext, proxyPort: number, serverRequests: string[]): Promise<void> {
  const ws = await openWs(t, `ws://127.0.0.1:${proxyPort}/chat`);
  assert.equal(await echo(ws, 'through the proxy'), 'through the proxy');
  assert.equal(await echo(ws, 'x'.repeat(70_000)), 'x'.repeat(70_000));
  ws.close(1000);
  assert.deepEqual(serverRequests, ['127.0.0.1']);
}

async function serverBehindProxy(t: TestContext): Promise<{ port: number; forwardedFor: string[] }> {
  const h = await startServer(t);
  const forwardedFor: string[] = [];
  h.server.setFnAuthenticate((request) => {
    forwardedFor.push(request.headers['x-forwarded-for'] ?? '(none)');
    return true;
  });
  return { port: h.server.port, forwardedFor };
}

function tempDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755); // nginx's workers run as an unprivileged user when the tests run as root
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("the README's nginx snippet proxies WebSocket connections and adds X-Forwarded-For", LIMIT, async (t) => {
  const text = snippet('nginx');
  assert.match(text, /proxy_http_version 1\.1;/);
  const readTimeout = /proxy_read_timeout (\S+);/.exec(text)?.[1];
  assert.ok(readTimeout !== undefined && seconds(readTimeout, 's') > defaultPingInterval, 'proxy_read_timeout exceeds pingInterval');
  const server = await serverBehindProxy(t);
  const proxyPort = await freePort();
  const dir = tempDir(t, 'nginx-');
  const filled = text.replace('listen 80;', `listen 127.0.0.1:${proxyPort};`).replace('127.0.0.1:13254', `127.0.0.1:${server.port}`);
  assert.notEqual(filled, text);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log;`,
      'events { worker_connections 64; }',
      'http {',
      '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${dir}/${kind};`),
      filled,
      '}',
    ].join('\n'),
  );
  await runProxy(t, 'nginx', program('nginx'), ['-p', dir, '-c', conf, '-e', `${dir}/error.log`, '-g', 'daemon off;'], proxyPort);
  await exchangeThrough(t, proxyPort, server.forwardedFor);
});

test("the README's HAProxy snippet proxies WebSocket connections and adds X-Forwarded-For", LIMIT, async (t) => {
  const text = snippet('haproxy');
  const tunnel = /timeout tunnel (\S+)/.exec(text)?.[1];
  assert.ok(tunnel !== undefined && seconds(tunnel, 'ms') > defaultPingInterval, 'timeout tunnel exceeds pingInterval');
  const server = await serverBehindProxy(t);
  const proxyPort = await freePort();
  const dir = tempDir(t, 'haproxy-');
  const filled = text.replace('bind :80', `bind 127.0.0.1:${proxyPort}`).replace('127.0.0.1:13254', `127.0.0.1:${server.port}`);
  assert.notEqual(filled, text);
  const conf = join(dir, 'haproxy.cfg');
  writeFileSync(conf, filled);
  await runProxy(t, 'haproxy', program('haproxy'), ['-f', conf, '-db'], proxyPort);
  await exchangeThrough(t, proxyPort, server.forwardedFor);
});
