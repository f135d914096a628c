// `npm start`: the chat demo (server.ts), started as fast as the running Node allows. Plain JavaScript, so that
// it runs before anything is compiled.
//
// - Node with type stripping on (22.18 and later, 23.6 and later: `process.features.typescript`): server.ts is
//   imported as it is, in this process. It imports './websocket-server.ts' and './adapters/*.ts' by their own
//   names, which work stripped (as the runtime matrix runs the suites, .ci/runtimes.sh).
// - Node 22.6 to 22.17: the same, in a child Node with `--experimental-strip-types`; signals are passed on.
// - Node 20: server.ts and what it imports (and nothing else: not the tests, bench, fuzz or soak) are compiled
//   into build/ with `tsc --noCheck` (emit only, a fraction of a second), then imported. Type errors are the
//   business of `npm run typecheck` and `npm test`, which check every file; starting the demo need not wait.
//
// Arguments after `npm start --` reach server.ts unchanged (process.argv is left as it is).
import { spawn, spawnSync } from 'node:child_process';
import cluster from 'node:cluster';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);

/** How this Node can run server.ts: 'strip' (it does by itself), 'flag' (with --experimental-strip-types), or 'compile'. */
function demoMode() {
  const typescript = /** @type {{ typescript?: string | false }} */ (process.features).typescript;
  if (typescript === 'strip' || typescript === 'transform') return 'strip';
  return major > 22 || (major === 22 && minor >= 6) ? 'flag' : 'compile';
}

async function main() {
  const mode = demoMode();
  if (mode === 'strip') {
    await import(pathToFileURL(`${root}server.ts`).href);
    return;
  }
  if (mode === 'flag') {
    const child = spawn(process.execPath, ['--experimental-strip-types', `${root}server.ts`, ...process.argv.slice(2)], {
      stdio: 'inherit',
    });
    // Ctrl-C reaches both processes (one process group); a SIGTERM sent to this one alone is passed on.
    for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) process.on(signal, () => child.kill(signal));
    child.on('exit', (code, signal) => process.exit(code ?? (signal === null ? 1 : 128)));
    return;
  }
  // The workers of `--cluster` run this file again: their primary has compiled already.
  const tsc = cluster.isWorker ? { status: 0 } : spawnSync(
    process.execPath,
    [`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.demo.json`, '--noCheck'],
    { stdio: 'inherit' },
  );
  if (tsc.status !== 0) {
    console.error('Cannot start the demo: server.ts did not compile (see above).');
    process.exit(1);
  }
  await import(pathToFileURL(`${root}build/server.js`).href);
}

await main();
