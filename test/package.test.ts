// The package as `npm install git+…` sees it: the compiled files are committed, so installing from git builds
// nothing and downloads none of the tooling that tests and benchmarks need.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url)); // build/test/ → the repository
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  files: string[];
  engines?: { node?: string };
};

test('package.json has no script that makes npm install the devDependencies of a git install', () => {
  // npm (pacote's git fetcher) installs every devDependency into a temporary clone and packs it again when the
  // package has any of these scripts; without them it packs the clone as it is.
  const preparing = ['build', 'preinstall', 'install', 'postinstall', 'prepack', 'prepare'];
  assert.deepEqual(preparing.filter((name) => name in pkg.scripts), []);
});

test('package.json states the Node.js lines it supports, as the README does', () => {
  assert.equal(pkg.engines?.node, '>=20');
  assert.match(readFileSync(join(root, 'README.md'), 'utf8'), /Node\.js ≥ 20/);
});

test('the committed dist/ is what the compiler makes of the source now', { timeout: 60_000 }, async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'websocket-server-dist-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, [tsc, '-p', join(root, 'tsconfig.json'), '--outDir', out], { cwd: root }, (error, stdout) =>
      error ? reject(new Error(`tsc failed:\n${stdout}`)) : resolve(),
    ),
  );
  const compiled = pkg.files.filter((file) => file.startsWith('dist/'));
  assert.ok(compiled.length >= 4, `package.json lists the compiled files (${compiled.join(', ')})`);
  const stale: string[] = [];
  for (const file of compiled) {
    const fresh = await readFile(join(out, file.slice('dist/'.length)), 'utf8');
    const committed = await readFile(join(root, file), 'utf8').catch(() => '(missing)');
    if (fresh !== committed) stale.push(file);
  }
  assert.deepEqual(stale, [], 'these files differ from a fresh compile: run `npm run compile` and commit dist/');
});
