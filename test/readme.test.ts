// README.md for users and operators, checked so that it cannot go stale: its table of contents lists every section
// in order, its support matrix names the versions CI pins, its Troubleshooting tables have every HTTP status and
// close code the server answers with, and it states no measured number outside ## Performance (which cites the
// benchmark's own output). The reverse proxy snippets are run by test/system/reverse-proxy.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const root = new URL('../../', import.meta.url); // build/test/ → project root
const readme = readFileSync(new URL('README.md', root), 'utf8');
const source = readFileSync(new URL('websocket-server.ts', root), 'utf8');

/** The README without its fenced code blocks, whose lines are not headings or prose. */
const prose = readme.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');

/** GitHub's anchor for a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The `##` and `###` headings, in order, as `level anchor` (the Contents heading itself left out). */
function headings(): string[] {
  return [...prose.matchAll(/^(##|###) (.+)$/gm)].map((m) => `${m[1]!.length} ${anchorOf(m[2]!)}`).filter((h) => h !== '2 contents');
}

/** The entries of the Contents list, in order, as `level anchor` (two spaces of indent: one level down). */
function contents(): string[] {
  const section = /^## Contents\n([\s\S]*?)\n## /m.exec(prose)?.[1] ?? '';
  return [...section.matchAll(/^( *)- \[[^\]]+\]\(#([^)]+)\)$/gm)].map((m) => `${m[1]!.length / 2 + 2} ${m[2]}`);
}

/** The rows of the markdown table that follows `caption`: their first cells. */
function firstCells(caption: string): string[] {
  const start = readme.indexOf(caption);
  assert.ok(start >= 0, `the README has ${JSON.stringify(caption)}`);
  const table = /\n\n((?:\|.*\|\n)+)/.exec(readme.slice(start))?.[1] ?? '';
  return table
    .split('\n')
    .slice(2)
    .filter((row) => row !== '')
    .map((row) => row.split('|')[1]!.trim());
}

test('the contents list every section of the README, in order, at its level, and nothing else', () => {
  const listed = contents();
  assert.ok(listed.length > 20, 'the contents are found');
  assert.deepEqual(listed, headings());
});

test('the support matrix names the runtimes CI pins and the TypeScript versions the compile matrix uses', () => {
  const matrix = readme.slice(readme.indexOf('## Requirements and support matrix'), readme.indexOf('## Use from TypeScript'));
  const runtimes = JSON.parse(readFileSync(new URL('.ci/runtimes/package.json', root), 'utf8')) as { dependencies: Record<string, string> };
  const pinned = Object.values(runtimes.dependencies).map((spec) => spec.replace(/^npm:[^@]+@/, ''));
  assert.ok(pinned.length >= 5);
  for (const version of pinned) assert.ok(matrix.includes(version), `the matrix names ${version}, pinned in .ci/runtimes/package.json`);
  const manifest = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { devDependencies: Record<string, string>; engines: { node: string } };
  const compilers = Object.entries(manifest.devDependencies).filter(([name]) => /^ts\d+$/.test(name));
  assert.ok(compilers.length >= 5);
  for (const [, spec] of compilers) {
    const version = spec.replace(/^npm:typescript@/, '');
    assert.ok(matrix.includes(version), `the matrix names TypeScript ${version}, of package.json`);
  }
  const native = /^\^?(\d+)\./.exec(manifest.devDependencies['typescript']!)?.[1];
  assert.ok(matrix.includes(`and ${native} (`), `the matrix names TypeScript ${native}`);
  assert.ok(matrix.includes(`(\`engines\`: ${manifest.engines.node.replace('>=', '≥ ')})`), `the matrix names engines ${manifest.engines.node}`);
});

test('Troubleshooting explains every HTTP status the handshake answers with', () => {
  const table = /const HANDSHAKE_FAILURES = \{([\s\S]*?)\n\} as const/.exec(source)?.[1] ?? '';
  const statuses = new Set([...table.matchAll(/^\s+[A-Z_0-9]+: \[\s*(\d{3}),/gm)].map((m) => m[1]!));
  assert.ok(statuses.size >= 10, 'the handshake failures are found');
  const rows = firstCells('**HTTP statuses: the handshake was refused**');
  for (const status of statuses) assert.ok(rows.includes(status), `a row for HTTP ${status}`);
});

test('Troubleshooting explains every close code the server sends or records', () => {
  const codes = new Map([...source.matchAll(/^\s+([A-Z_]+): (1\d{3}),$/gm)].map((m) => [m[1]!, m[2]!] as const));
  const used = new Set([...source.matchAll(/\bCloseCode\.([A-Z_]+)/g)].map((m) => codes.get(m[1]!)));
  assert.ok(used.size >= 8, 'the close codes in use are found');
  const rows = firstCells('**Close codes: the connection ended**');
  for (const code of used) assert.ok(rows.includes(code!), `a row for close code ${code}`);
});

test('outside ## Performance, the README states no measured count, time, size or ratio', () => {
  const performance = /^## Performance\n[\s\S]*?(?=^## )/m;
  const rest = prose.replace(performance, '');
  const measured = [
    /\b\d[\d,.]* tests\b/, // test counts
    /\babout \d/, // estimates of a measurement
    /\b\d[\d,.]* ?(?:KB|MB)\b/, // measured sizes (limits are in KiB/MiB)
    /\d(?:\.\d+)?× ?`?ws/, // ratios to ws
    /\b\d+ (?:projects|minutes)\b/,
  ];
  for (const pattern of measured) assert.doesNotMatch(rest, pattern);
});

test("CHANGELOG.md keeps Keep a Changelog's shape, and its latest version is package.json's", () => {
  const changelog = readFileSync(new URL('CHANGELOG.md', root), 'utf8');
  const manifest = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string };
  const versions = [...changelog.matchAll(/^## \[([^\]]+)\](.*)$/gm)].map((m) => [m[1]!, m[2]!] as const);
  assert.equal(versions[0]?.[0], 'Unreleased', 'an [Unreleased] section comes first');
  const released = versions.slice(1);
  assert.ok(released.length > 0);
  for (const [version, rest] of released) {
    assert.match(version, /^\d+\.\d+\.\d+$/, 'a semantic version');
    assert.match(rest, /^ - \d{4}-\d{2}-\d{2}$/, `${version} has an ISO date`);
  }
  assert.equal(released[0]![0], manifest.version, 'package.json has the latest released version');
  const numbers = released.map(([version]) => version.split('.').map(Number));
  for (let i = 1; i < numbers.length; i++) {
    const [a, b] = [numbers[i - 1]!, numbers[i]!];
    assert.ok(a[0]! > b[0]! || (a[0] === b[0] && (a[1]! > b[1]! || (a[1] === b[1] && a[2]! > b[2]!))), 'newest first');
  }
  for (const [, kind] of changelog.matchAll(/^### (.+)$/gm)) {
    assert.ok(['Added', 'Changed', 'Deprecated', 'Removed', 'Fixed', 'Security'].includes(kind!), `a kind of change: ${kind}`);
  }
});
