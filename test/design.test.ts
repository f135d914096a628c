// The design card's rules for the one-file library, checked on the source itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import ts from 'ts59';

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

// ── The outline's limits, measured on the syntax tree (TypeScript 5.9's API: the `typescript` package is 7.0,
// whose compiler has no JavaScript API) ─────────────────────────────────────────────────────────────────────

const tree = ts.createSourceFile('websocket-server.ts', source, ts.ScriptTarget.Latest, true);
const lineOf = (position: number): number => tree.getLineAndCharacterOfPosition(position).line + 1;
const linesOf = (node: ts.Node): number => lineOf(node.getEnd()) - lineOf(node.getStart(tree)) + 1;
const NESTING = new Set([
  ts.SyntaxKind.IfStatement,
  ts.SyntaxKind.ForStatement,
  ts.SyntaxKind.ForOfStatement,
  ts.SyntaxKind.ForInStatement,
  ts.SyntaxKind.WhileStatement,
  ts.SyntaxKind.DoStatement,
  ts.SyntaxKind.SwitchStatement,
  ts.SyntaxKind.TryStatement,
]);

/** How deep statements nest inside `node`: each if/loop/switch/try counts one level; an `else if` does not. */
function nesting(node: ts.Node, depth = 0): number {
  let deepest = depth;
  ts.forEachChild(node, (child) => {
    const elseIf = ts.isIfStatement(child) && ts.isIfStatement(child.parent) && child.parent.elseStatement === child;
    deepest = Math.max(deepest, nesting(child, NESTING.has(child.kind) && !elseIf ? depth + 1 : depth));
  });
  return deepest;
}

interface Measured {
  readonly name: string;
  readonly lines: number;
  readonly depth: number;
}

function measure(): { classes: Measured[]; functions: Measured[] } {
  const classes: Measured[] = [];
  const functions: Measured[] = [];
  const visit = (node: ts.Node, owner: string): void => {
    if (ts.isClassDeclaration(node)) {
      const name = node.name?.text ?? '(anonymous class)';
      classes.push({ name, lines: linesOf(node), depth: 0 });
      ts.forEachChild(node, (child) => visit(child, `${name}.`));
      return;
    }
    const body = (ts.isFunctionLike(node) || ts.isClassStaticBlockDeclaration(node)) && 'body' in node ? node.body : undefined;
    if (body !== undefined && ts.isBlock(body) && !ts.isArrowFunction(node) && !ts.isFunctionExpression(node)) {
      const named = (node as { name?: ts.Node }).name;
      const name = named !== undefined ? named.getText(tree) : ts.SyntaxKind[node.kind];
      functions.push({ name: `${owner}${name}`, lines: linesOf(node), depth: nesting(body) });
    }
    ts.forEachChild(node, (child) => visit(child, owner));
  };
  visit(tree, '');
  return { classes, functions };
}

const measured = measure();

test('the measurement sees the classes and functions of the file', () => {
  const names = measured.classes.map((c) => c.name);
  for (const expected of ['WebsocketServer', 'Handshake', 'ClientHandler', 'FrameParser']) assert.ok(names.includes(expected), expected);
  assert.ok(measured.functions.length > 100, `${measured.functions.length} functions and methods`);
  // The measure itself: a method with an if inside a for inside a try nests three deep.
  const probe = ts.createSourceFile('probe.ts', 'function f() { try { for (;;) { if (a) b(); else if (c) d(); } } catch {} }', ts.ScriptTarget.Latest, true);
  const f = probe.statements[0] as ts.FunctionDeclaration;
  assert.equal(nesting(f.body!), 3);
});

test('no class in the library is longer than 550 lines', () => {
  const long = measured.classes.filter((c) => c.lines > 550).map((c) => `${c.name}: ${c.lines} lines`);
  assert.deepEqual(long, []);
});

test('no function or method in the library is longer than 60 lines or nests deeper than four levels', () => {
  const long = measured.functions.filter((f) => f.lines > 60).map((f) => `${f.name}: ${f.lines} lines`);
  const deep = measured.functions.filter((f) => f.depth > 4).map((f) => `${f.name}: nested ${f.depth} deep`);
  assert.deepEqual([...long, ...deep], []);
});

test('no member of an exported class is marked @internal: internals go through module-private access', () => {
  const marked: string[] = [];
  for (const statement of tree.statements) {
    if (!ts.isClassDeclaration(statement) || !statement.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue;
    for (const member of statement.members) {
      const docs = ts.getJSDocTags(member).map((tag) => tag.tagName.text);
      const isPrivate = member.name !== undefined && ts.isPrivateIdentifier(member.name);
      if (docs.includes('internal') && !isPrivate) marked.push(`${statement.name?.text}.${member.name?.getText(tree) ?? 'constructor'}`);
    }
  }
  assert.deepEqual(marked, []);
});
