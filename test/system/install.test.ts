// Two of the three doors: `npm install git+…` of the repository, and copying the one file.
// Both compile a consumer with only `typescript` and `@types/node`, run it, and talk to it with `ws`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { echoOnce, runScript } from '../support/demo.ts';
import { openWs } from '../support/harness.ts';
import { startRedis } from '../support/redis-server.ts';
import { within } from '../support/wait.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url)); // build/test/system/ → the repository
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
function writeTsconfig(dir: string, files: string[]): void {
  const compilerOptions = {
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

/**
 * A git repository of the work tree as it is now (tracked and new files, nothing ignored), committed once, so that
 * the test installs what would be pushed, uncommitted changes included.
 */
function snapshotRepository(t: { after(fn: () => void): void }): string {
  const repo = mkdtempSync(join(tmpdir(), 'websocket-server-repo-'));
  t.after(() => rmSync(repo, { recursive: true, force: true }));
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' });
  for (const file of listed.split('\0')) {
    if (file === '' || !existsSync(join(root, file))) continue; // a tracked file deleted in the work tree
    mkdirSync(dirname(join(repo, file)), { recursive: true });
    copyFileSync(join(root, file), join(repo, file));
  }
  const git = (...args: string[]): void => void execFileSync('git', args, { cwd: repo, stdio: 'pipe' });
  git('init', '-q');
  git('add', '-A');
  git('-c', 'user.name=test', '-c', 'user.email=test@127.0.0.1', 'commit', '-q', '-m', 'snapshot');
  return repo;
}

/**
 * `npm install git+file://…` into the consumer `dir`, offline and with an empty npm cache: it succeeds only if
 * installing from git needs nothing from the registry (no devDependencies for a build step).
 */
function installFromGit(t: { after(fn: () => void): void }, dir: string): void {
  const repo = snapshotRepository(t);
  const cache = join(dir, '.npm-cache');
  execFileSync(npm, ['install', '--offline', '--cache', cache, '--no-audit', '--no-fund', `git+file://${repo}`], { cwd: dir, stdio: 'pipe' });
}

test('installed from git, it brings only itself, is imported by name with its types, and serves', SLOW, async (t) => {
  const dir = temporaryProject(t, 'install');
  installFromGit(t, dir);
  const installed = join(dir, 'node_modules', 'websocket-server');
  // `redis` is an optional peer dependency of the Redis adapter, never a dependency: installing us brings none.
  assert.deepEqual(readdirSync(join(dir, 'node_modules')).filter((name) => !name.startsWith('.')), ['websocket-server']);
  // Everything package.json lists in `files` is shipped (the core, the adapters, and their compiled forms).
  const listed = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] }).files;
  for (const expected of [...listed, 'package.json']) assert.ok(existsSync(join(installed, expected)), `the package ships ${expected}`);
  for (const absent of ['test', 'build', 'bench', 'node_modules']) assert.equal(existsSync(join(installed, absent)), false, `no ${absent}/ in the package`);

  writeFileSync(join(dir, 'consumer.ts'), consumerSource('websocket-server'));
  // The adapters' subpaths resolve with their types too: a broadcast goes through the wire format and back.
  writeFileSync(
    join(dir, 'wire.ts'),
    `import { ClusterAdapter } from 'websocket-server/adapters/cluster';
import { decodeBroadcast, encodeBroadcast } from 'websocket-server/adapters/wire';
const adapter: ClusterAdapter | undefined = undefined;
console.log(JSON.stringify({ adapter: adapter === undefined, ...decodeBroadcast(encodeBroadcast({ origin: 'a', message: 'hi', exclude: [7] })) }));
`,
  );
  writeTsconfig(dir, ['consumer.ts', 'wire.ts']);
  // Types must resolve through `exports`: an untyped import would fail under `strict` (TS7016).
  execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, stdio: 'pipe' });
  const decoded = JSON.parse(execFileSync(process.execPath, [join(dir, 'out', 'wire.js')], { cwd: dir, encoding: 'utf8' })) as unknown;
  assert.deepEqual(decoded, { adapter: true, origin: 'a', message: 'hi', exclude: [7] });

  const running = await runScript(t, join(dir, 'out', 'consumer.js'), [], dir);
  assert.equal(await echoOnce(t, running.port, 'from the installed package'), 'echo: from the installed package');
  assert.equal(await running.stop(), 0);
});

test('installed from git with redis beside it, websocket-server/adapters/redis joins two servers through a Redis', SLOW, async (t) => {
  const dir = temporaryProject(t, 'redis');
  installFromGit(t, dir);
  // The application's own `redis` (here this repository's devDependency, linked in: the tests reach no registry;
  // its @redis/* packages resolve beside it).
  symlinkSync(join(root, 'node_modules', 'redis'), join(dir, 'node_modules', 'redis'), 'dir');
  writeFileSync(join(dir, 'consumer.ts'), redisConsumerSource);
  writeTsconfig(dir, ['consumer.ts']);
  execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, stdio: 'pipe' });

  const redis = await startRedis(t);
  const first = await runScript(t, join(dir, 'out', 'consumer.js'), [redis.url], dir);
  const second = await runScript(t, join(dir, 'out', 'consumer.js'), [redis.url], dir);
  const [sender, receiver] = await Promise.all([
    openWs(t, `ws://127.0.0.1:${first.port}/`),
    openWs(t, `ws://127.0.0.1:${second.port}/`),
  ]);
  const arrived = once(receiver, 'message');
  sender.send('through the installed Redis adapter');
  const [data] = (await within(arrived, 'the broadcast on the other server')) as [Buffer];
  assert.equal(data.toString('utf8'), 'through the installed Redis adapter');
  assert.equal(await first.stop(), 0);
  assert.equal(await second.stop(), 0);
});

test('copied alone into an empty folder with the README\'s tsconfig, websocket-server.ts compiles and serves, and runs as it is where types are stripped', SLOW, async (t) => {
  const dir = temporaryProject(t, 'copy');
  copyFileSync(join(root, 'websocket-server.ts'), join(dir, 'websocket-server.ts'));
  writeFileSync(join(dir, 'consumer.ts'), consumerSource('./websocket-server.ts'));
  // The tsconfig of "Use from TypeScript", verbatim; only @types/node beside it.
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const tsconfig = /## Use from TypeScript[^#]*?```json\n([^`]*)```/.exec(readme)?.[1];
  assert.ok(tsconfig !== undefined, 'the README shows a tsconfig under "Use from TypeScript"');
  writeFileSync(join(dir, 'tsconfig.json'), tsconfig);
  mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
  symlinkSync(join(root, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'dir');
  execFileSync(process.execPath, [tsc, '-p', dir], { cwd: dir, stdio: 'pipe' });

  const compiled = await runScript(t, join(dir, 'dist', 'consumer.js'), [], dir);
  assert.equal(await echoOnce(t, compiled.port, 'from the copied file'), 'echo: from the copied file');
  assert.equal(await compiled.stop(), 0);

  // Node 20 has no type stripping; the runtime matrix (.ci/runtimes.sh) runs this test on Node 22, 24 and 26 too.
  const strips = (process.features as { typescript?: string | false }).typescript;
  if (strips !== undefined && strips !== false) {
    const stripped = await runScript(t, join(dir, 'consumer.ts'), [], dir);
    assert.equal(await echoOnce(t, stripped.port, 'from the file as it is'), 'echo: from the file as it is');
    assert.equal(await stripped.stop(), 0);
  }
});
