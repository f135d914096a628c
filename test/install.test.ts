// Two of the three doors: `npm install` of the repository (as from git), and copying the one file.
// Both compile a consumer with only `typescript` and `@types/node`, run it, and talk to it with `ws`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import WebSocket from 'ws';
import { echoOnce, runScript } from './support/demo.ts';
import { startRedis } from './support/redis-server.ts';
import { within } from './support/wait.ts';

const root = fileURLToPath(new URL('../../', import.meta.url)); // build/test/ → the repository
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const SLOW = { timeout: 180_000 };

/** The consumer: an echo server on an ephemeral port that prints `{"port":N}`, typed against the library. */
function consumerSource(specifier: string): string {
  return `import { WebsocketServer, type Client, type Message, type SendResult } from '${specifier}';
const server = new WebsocketServer({ port: 0, loglevel: 'error' });
server.setFnMessageReceived((client: Client, srv: WebsocketServer, message: Message) => {
  const result: SendResult = srv.sendMessage(client, typeof message === 'string' ? \`echo: \${message}\` : message);
  void result;
});
await server.runForever();
console.log(JSON.stringify({ port: server.port }));
process.on('SIGTERM', () => void server.shutdownAbruptly().then(() => process.exit(0)));
`;
}

/**
 * A consumer of the Redis adapter, as the README shows it: every message is broadcast to everyone but its sender,
 * across the servers joined by the Redis at `process.argv[2]`.
 */
const redisConsumerSource = `import { WebsocketServer } from 'websocket-server';
import { RedisAdapter, type RedisAdapterOptions } from 'websocket-server/adapters/redis';
const options: RedisAdapterOptions = { url: process.argv[2]! };
const server = new WebsocketServer({ port: 0, loglevel: 'error', adapter: new RedisAdapter(options) });
server.setFnMessageReceived((client, srv, message) => void srv.sendMessageToAll(message, client));
await server.runForever();
console.log(JSON.stringify({ port: server.port }));
process.on('SIGTERM', () => void server.shutdownGracefully().then(() => process.exit(0)));
`;

/** A strict tsconfig that sees only `@types/node` (from this repository's node_modules). */
function writeTsconfig(dir: string, files: string[], extraOptions: Record<string, unknown> = {}): void {
  const compilerOptions = {
    ...extraOptions,
    target: 'es2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    verbatimModuleSyntax: true,
    types: ['node'],
    typeRoots: [join(root, 'node_modules', '@types')],
    outDir: 'out',
    rootDir: '.',
  };
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }, null, 2));
}

function temporaryProject(t: { after(fn: () => void): void }, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `websocket-server-${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${name}`, private: true, type: 'module' }));
  return dir;
}

test('installed as a package, it is imported by name with its types, and serves', SLOW, async (t) => {
  const dir = temporaryProject(t, 'install');
  // `npm pack` runs `prepare` (the build) and applies `files`, as `npm install git+...` does.
  const [packed] = JSON.parse(
    execFileSync(npm, ['pack', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
  ) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const shipped = packed!.files.map((file) => file.path).sort();
  const expectedFiles = [
    'dist/websocket-server.d.ts',
    'dist/websocket-server.js',
    'dist/adapters/redis.d.ts',
    'dist/adapters/redis.js',
    'adapters/redis.ts',
    'package.json',
    'websocket-server.ts',
  ];
  for (const expected of expectedFiles) {
    assert.ok(shipped.includes(expected), `the package ships ${expected} (it has ${shipped.join(', ')})`);
  }
  assert.deepEqual(shipped.filter((path) => path.startsWith('test/') || path.startsWith('build/')), [], 'no tests in the package');

  execFileSync(npm, ['install', '--no-audit', '--no-fund', '--offline', join(dir, packed!.filename)], { cwd: dir, stdio: 'pipe' });
  // `redis` is an optional peer dependency of the Redis adapter, never a dependency: installing us brings none.
  assert.equal(existsSync(join(dir, 'node_modules', 'redis')), false, 'installing the package does not install redis');
  writeFileSync(join(dir, 'consumer.ts'), consumerSource('websocket-server'));
  writeTsconfig(dir, ['consumer.ts']);
  // Types must resolve through `exports`: an untyped import would fail under `strict` (TS7016).
  execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, stdio: 'pipe' });

  const running = await runScript(t, join(dir, 'out', 'consumer.js'), [], dir);
  assert.equal(await echoOnce(running.port, 'from the installed package'), 'echo: from the installed package');
  assert.equal(await running.stop(), 0);
});

test('installed with redis beside it, websocket-server/adapters/redis joins two servers through a Redis', SLOW, async (t) => {
  const dir = temporaryProject(t, 'redis');
  const [packed] = JSON.parse(
    execFileSync(npm, ['pack', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }),
  ) as Array<{ filename: string }>;
  execFileSync(npm, ['install', '--no-audit', '--no-fund', '--offline', join(dir, packed!.filename)], { cwd: dir, stdio: 'pipe' });
  // The application's own `redis` (here this repository's devDependency, linked in: the tests reach no registry;
  // its @redis/* packages resolve beside it).
  symlinkSync(join(root, 'node_modules', 'redis'), join(dir, 'node_modules', 'redis'), 'dir');
  writeFileSync(join(dir, 'consumer.ts'), redisConsumerSource);
  writeTsconfig(dir, ['consumer.ts']);
  execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, stdio: 'pipe' });

  const redis = await startRedis(t);
  const first = await runScript(t, join(dir, 'out', 'consumer.js'), [redis.url], dir);
  const second = await runScript(t, join(dir, 'out', 'consumer.js'), [redis.url], dir);
  const sender = new WebSocket(`ws://127.0.0.1:${first.port}/`);
  const receiver = new WebSocket(`ws://127.0.0.1:${second.port}/`);
  t.after(() => {
    sender.terminate();
    receiver.terminate();
  });
  await within(Promise.all([once(sender, 'open'), once(receiver, 'open')]), 'both clients to connect');
  const arrived = once(receiver, 'message');
  sender.send('through the installed Redis adapter');
  const [data] = (await within(arrived, 'the broadcast on the other server')) as [Buffer];
  assert.equal(data.toString('utf8'), 'through the installed Redis adapter');
  assert.equal(await first.stop(), 0);
  assert.equal(await second.stop(), 0);
});

test('copied alone into an empty folder, websocket-server.ts compiles with only @types/node, and serves', SLOW, async (t) => {
  const dir = temporaryProject(t, 'copy');
  copyFileSync(join(root, 'websocket-server.ts'), join(dir, 'websocket-server.ts'));
  writeFileSync(join(dir, 'consumer.ts'), consumerSource('./websocket-server.ts'));
  // Importing the .ts file by name, as under type stripping, needs these two options.
  writeTsconfig(dir, ['websocket-server.ts', 'consumer.ts'], {
    allowImportingTsExtensions: true,
    rewriteRelativeImportExtensions: true,
  });
  execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, stdio: 'pipe' });

  const running = await runScript(t, join(dir, 'out', 'consumer.js'), [], dir);
  assert.equal(await echoOnce(running.port, 'from the copied file'), 'echo: from the copied file');
  assert.equal(await running.stop(), 0);
});
