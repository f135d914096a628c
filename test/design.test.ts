// The design card's rules for the one-file library, checked on the source itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = new URL('../../', import.meta.url); // build/test/ → project root
const source = readFileSync(new URL('websocket-server.ts', root), 'utf8');

test('websocket-server.ts imports only node: built-ins', () => {
  const specifiers = [...source.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]);
  assert.ok(specifiers.length > 0, 'expected at least one import');
  assert.deepEqual(specifiers.filter((s) => !s!.startsWith('node:')), []);
  assert.doesNotMatch(source, /\brequire\(|\bimport\(/, 'no dynamic imports or require');
});

test('websocket-server.ts uses no syntax that type stripping cannot erase', () => {
  // erasableSyntaxOnly already rejects these at compile time; this names them for a reader of the test.
  assert.doesNotMatch(source, /^\s*(export\s+)?(const\s+)?enum\s/m, 'no enum');
  assert.doesNotMatch(source, /^\s*(export\s+)?(namespace|module)\s+\w+\s*\{/m, 'no namespace');
  assert.doesNotMatch(source, /constructor\([^)]*\b(public|private|protected|readonly)\s/, 'no parameter properties');
});

test('package.json has no runtime dependencies', () => {
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as Record<string, unknown>;
  assert.equal(pkg['dependencies'], undefined);
  assert.equal(pkg['type'], 'module');
});

test('websocket-server.ts, copied alone, compiles with strict on and off, with and without the DOM library, as ESM and as CommonJS', { timeout: 120_000 }, async (t) => {
  // A user copies the one file into a project of their own: its tsconfig is not ours. Each variant compiles the
  // file alone in a directory of its own, with only @types/node beside it.
  const tsc = fileURLToPath(new URL('node_modules/typescript/bin/tsc', root));
  const variants = [];
  for (const strict of [true, false]) for (const lib of [undefined, 'es2023']) for (const type of ['module', 'commonjs']) variants.push({ strict, lib, type });
  const failures = await Promise.all(
    variants.map(async ({ strict, lib, type }) => {
      const dir = await mkdtemp(join(tmpdir(), 'websocket-server-alone-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      await copyFile(new URL('websocket-server.ts', root), join(dir, 'websocket-server.ts'));
      await writeFile(join(dir, 'package.json'), JSON.stringify({ type }));
      await symlink(fileURLToPath(new URL('node_modules', root)), join(dir, 'node_modules'), 'dir');
      const args = [tsc, '--noEmit', '--target', 'es2022', '--module', 'nodenext', '--types', 'node', '--strict', String(strict)];
      if (lib !== undefined) args.push('--lib', lib);
      args.push('websocket-server.ts');
      return new Promise<string | undefined>((resolve) =>
        execFile(process.execPath, args, { cwd: dir }, (error, stdout) =>
          resolve(error ? `strict ${strict}, lib ${lib ?? 'default'}, ${type}:\n${stdout}` : undefined),
        ),
      );
    }),
  );
  assert.deepEqual(failures.filter((f) => f !== undefined), []);
});
