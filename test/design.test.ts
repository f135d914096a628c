// The design card's rules for the one-file library, checked on the source itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

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

test('the table of contents in the header lists the numbered banners, in order and numbered 1, 2, 3…', () => {
  const banners = [...source.matchAll(/^\/\/ ═+\n\/\/ (\d+)\. (.+)$/gm)].map((m) => `${m[1]}. ${m[2]}`);
  const header = source.slice(0, source.indexOf('*/'));
  const contents = header.slice(header.indexOf('Contents:'));
  const listed = [...contents.matchAll(/^ \*\s+(\d+\. .+)$/gm)].map((m) => m[1]!).filter((line) => /^\d+\. /.test(line));
  assert.ok(banners.length >= 5, `the file has numbered banners (${banners.length})`);
  assert.deepEqual(listed.slice(0, banners.length), banners, 'the contents match the banners');
  assert.equal(listed.length, banners.length, 'the contents list nothing else');
  assert.deepEqual(banners.map((b) => Number.parseInt(b, 10)), banners.map((_, i) => i + 1), 'banners are numbered in order');
});
