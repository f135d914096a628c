// The README's "Stopping: signal and await using" snippets, run as they are written: each is taken from README.md,
// compiled by TypeScript (transpileModule, so `await using` becomes what Node 20 runs), given the import it
// assumes and a line that says its port, and run in a child process on 127.0.0.1. A snippet that stops shutting
// the server down, or a README that changes them into something that does not run, fails here.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'ts59';
import { connectRaw } from './support/raw-client.ts';
import { within } from './support/wait.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LIBRARY = join(ROOT, 'dist', 'websocket-server.js');

/** The ```ts blocks of the README section under `heading`, in order. */
function snippetsOf(heading: string): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `the README has ${heading}`);
  const end = readme.indexOf('\n### ', start + heading.length + 2);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/**
 * Runs `body` (a snippet, made to listen on 127.0.0.1 and to print its port) as an ES module in a child Node;
 * resolves with the child and the port it printed.
 */
async function runSnippet(t: { after: (fn: () => void) => void }, body: string): Promise<{ child: ChildProcess; port: number; exited: Promise<number | null> }> {
  const directory = mkdtempSync(join(tmpdir(), 'readme-snippet-'));
  t.after(() => rmSync(directory, { recursive: true, force: true }));
  const source = `import { WebsocketServer } from ${JSON.stringify(LIBRARY)};\n${body}`;
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  const file = join(directory, 'snippet.mjs');
  writeFileSync(file, outputText);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const port = await within(
    new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        const match = /port (\d+)/.exec(chunk.toString());
        if (match !== null) resolve(Number(match[1]));
      });
      child.once('exit', (code) => reject(new Error(`The snippet exited (${code}) before listening: ${output}`)));
    }),
    'the snippet to listen',
  );
  return { child, port, exited };
}

test('README, Stopping: the signal snippet shuts the server down on SIGTERM, closing clients with 1001', { timeout: 20_000 }, async (t) => {
  const [snippet] = snippetsOf('### Stopping: signal and await using');
  assert.ok(snippet?.includes('signal: controller.signal'), 'the first snippet passes a signal');
  // On 127.0.0.1 and a free port rather than 8080 on every interface; then say the port.
  const body = `${snippet!.replace('{ port: 8080,', "{ port: 0, host: '127.0.0.1',")}\nconsole.log(\`port \${server.port}\`);\n`;
  assert.notEqual(body, snippet, 'the port was replaced');
  const { child, port, exited } = await runSnippet(t, body);
  const client = await connectRaw(port);
  t.after(() => client.socket.destroy());
  child.kill('SIGTERM');
  assert.equal((await client.closeFrame()).code, 1001, 'Going Away');
  client.socket.end();
  // Nothing else keeps the snippet's process alive: it exits once the server has shut down.
  assert.equal(await within(exited, 'the snippet to exit after the shutdown'), 0);
});

test('README, Stopping: the await using snippet closes the server at the end of its block', { timeout: 20_000 }, async (t) => {
  const snippets = snippetsOf('### Stopping: signal and await using');
  const snippet = snippets.find((s) => s.includes('await using'));
  assert.ok(snippet !== undefined, 'the section has an await using snippet');
  // The block's "… serve …" becomes: say the port, then wait until a client has connected and been greeted.
  const serve = "console.log(`port ${server.port}`);\n  await new Promise((resolve) => server.setFnNewClient(() => resolve(undefined)));";
  const body = snippet.replace('{ port: 0 }', "{ port: 0, host: '127.0.0.1' }").replace('// … serve …', serve);
  assert.ok(body.includes('setFnNewClient'), 'the serve comment was replaced');
  const { port, exited } = await runSnippet(t, body);
  const client = await connectRaw(port);
  t.after(() => client.socket.destroy());
  assert.equal((await client.closeFrame()).code, 1001, 'disposed at the end of the block: Going Away');
  client.socket.end();
  assert.equal(await within(exited, 'the snippet to exit after the block'), 0);
});
