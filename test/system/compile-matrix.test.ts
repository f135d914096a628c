// Users copy websocket-server.ts into projects of their own, so it must compile under their tsconfig, not ours.
// Every combination below is one compilation of its own: a copy of the file in a directory of its own, with a
// package.json "type" and a tsconfig.json, as a user's project would have.
//
// Speed, on 2 cores: TypeScript 7 is native, and one `tsc -b` builds every project. TypeScript 5.x and 6.0 run in
// worker threads through their API, one program per project, reusing the parsed library files (lib.*.d.ts and
// @types/node) from one program to the next as the language service does; each program parses its own copy of
// websocket-server.ts and is checked from scratch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';

/** TypeScript 5.0, 5.4, 5.7, 5.9 and 6.0, by the devDependency that installs each. */
const API_COMPILERS = ['ts50', 'ts54', 'ts57', 'ts59', 'ts60'] as const;
/** TypeScript 7. */
const NATIVE_COMPILER = 'typescript';
/** @types/node 20, 22 and 24, by the devDependency that installs each. */
const NODE_TYPES = [
  ['@types/node', 'node20'],
  ['types-node22', 'node22'],
  ['types-node24', 'node24'],
] as const;
const TARGETS = ['es2020', 'es2022', 'esnext'] as const;
/** Without DOM, `lib` is this alone; with DOM, `lib` is not set and the target's default (which has DOM) applies. */
const LIB_WITHOUT_DOM = 'es2023';

const WORKER_ROLE = 'compile-matrix-worker';

/** A user's project: one combination of settings, compiled by every compiler. */
interface Project {
  /** Its directory, which names it in reports, e.g. `node22-strict-esm-dom-es2020`. */
  readonly name: string;
  /** How a report describes it, one phrase per setting. */
  readonly settings: readonly string[];
  readonly nodeTypes: string;
  readonly strict: boolean;
  readonly packageType: 'module' | 'commonjs';
  readonly dom: boolean;
  readonly target: string;
}

/** What a compiler printed for a project (undefined: for the build as a whole), with paths inside the project. */
interface Failure {
  readonly compiler: string;
  readonly project: Project | undefined;
  readonly output: string;
}

/** One project for one TypeScript 5.x or 6.0 compiler, in a worker. */
interface CompileTask {
  /** The compiler's lib/typescript.js. */
  readonly typescript: string;
  readonly target: string;
  readonly directory: string;
}

function findRoot(): string {
  // build/test/ when compiled, test/ under type stripping: the root is the first directory above with a package.json.
  let directory = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(directory, 'package.json'))) {
    const parent = dirname(directory);
    if (parent === directory) throw new Error(`There is no package.json above ${fileURLToPath(import.meta.url)}.`);
    directory = parent;
  }
  return directory;
}

function packageVersion(root: string, name: string): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

function listProjects(root: string): Project[] {
  const projects: Project[] = [];
  for (const [nodeTypes, short] of NODE_TYPES) {
    const nodeTypesVersion = packageVersion(root, nodeTypes);
    for (const strict of [true, false]) {
      for (const packageType of ['module', 'commonjs'] as const) {
        for (const dom of [true, false]) {
          for (const target of TARGETS) {
            const format = packageType === 'module' ? 'esm' : 'cjs';
            const name = [short, strict ? 'strict' : 'loose', format, dom ? 'dom' : 'nodom', target].join('-');
            const settings = [
              `@types/node ${nodeTypesVersion}`,
              strict ? 'strict' : 'not strict',
              packageType === 'module' ? 'ESM' : 'CommonJS',
              dom ? 'default lib (with DOM)' : `lib ${LIB_WITHOUT_DOM}`,
              `target ${target}`,
            ];
            projects.push({ name, settings, nodeTypes, strict, packageType, dom, target });
          }
        }
      }
    }
  }
  return projects;
}

async function createProject(root: string, base: string, project: Project): Promise<void> {
  const directory = join(base, project.name);
  await mkdir(join(directory, 'node_modules', '@types'), { recursive: true });
  await copyFile(join(root, 'websocket-server.ts'), join(directory, 'websocket-server.ts'));
  await writeFile(join(directory, 'package.json'), JSON.stringify({ type: project.packageType }));
  await symlink(join(root, 'node_modules', project.nodeTypes), join(directory, 'node_modules', '@types', 'node'), 'dir');
  const compilerOptions = {
    target: project.target,
    module: 'nodenext',
    strict: project.strict,
    ...(project.dom ? {} : { lib: [LIB_WITHOUT_DOM] }),
    types: ['node'],
    // Errors inside declaration files cannot be of websocket-server.ts's making, as it declares nothing global (see
    // the test below), and checking those files takes three times as long as the rest. TypeScript 5.0 does report
    // some in @types/node 22 and 24, whose stated minimum is TypeScript 5.6.
    skipLibCheck: true,
    noEmit: true,
  };
  await writeFile(join(directory, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['websocket-server.ts'] }, null, 2));
}

/** TypeScript 7: one `tsc -b` over a solution that references every project. */
async function compileNative(root: string, base: string, projects: readonly Project[]): Promise<Failure[]> {
  const compiler = `TypeScript ${packageVersion(root, NATIVE_COMPILER)}`;
  await writeFile(join(base, 'tsconfig.json'), JSON.stringify({ files: [], references: projects.map((p) => ({ path: p.name })) }));
  const tsc = join(root, 'node_modules', NATIVE_COMPILER, 'bin', 'tsc');
  const { code, stdout, stderr } = await new Promise<{ code: unknown; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [tsc, '-b', '--pretty', 'false'], { cwd: base, maxBuffer: 64 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error?.code ?? 0, stdout, stderr }),
    ),
  );
  // A diagnostic starts with its project's directory (`node20-strict-esm-dom-es2020/websocket-server.ts(…)`), and
  // continues on indented lines.
  const byName = new Map(projects.map((p) => [p.name, p]));
  const outputs = new Map<Project | undefined, string[]>();
  let lines: string[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    if (line.trim() === '' || /^Found \d+ errors?/.test(line)) continue;
    if (!/^\s/.test(line)) {
      const [, name = '', rest = line] = /^([^/\\]+)[/\\](.*)$/.exec(line) ?? [];
      const project = byName.get(name);
      lines = outputs.get(project) ?? [];
      outputs.set(project, lines);
      lines.push(project === undefined ? line : rest);
    } else {
      lines.push(line);
    }
  }
  if (stderr.trim() !== '' || (code !== 0 && outputs.size === 0)) {
    outputs.set(undefined, [...(outputs.get(undefined) ?? []), `tsc -b exited with ${String(code)}`, stderr.trim()]);
  }
  return [...outputs].map(([project, output]) => ({ compiler, project, output: output.join('\n') }));
}

/**
 * TypeScript 5.x and 6.0: one worker per core (at most one per version), taking one project at a time from a list
 * ordered by version and target. Even workers take from the front and odd ones from the back, so that a worker
 * meets few versions (each loaded and warmed up once) and parses the library files of few targets, and both finish
 * together.
 */
async function compileWithApi(root: string, base: string, projects: readonly Project[]): Promise<Failure[]> {
  const tasks: { compiler: string; project: Project; task: CompileTask }[] = [];
  for (const name of API_COMPILERS) {
    const compiler = `TypeScript ${packageVersion(root, name)}`;
    const typescript = join(root, 'node_modules', name, 'lib', 'typescript.js');
    for (const target of TARGETS) {
      for (const project of projects.filter((p) => p.target === target)) {
        tasks.push({ compiler, project, task: { typescript, target, directory: join(base, project.name) } });
      }
    }
  }
  const failures: Failure[] = [];
  const workers = Math.min(availableParallelism(), API_COMPILERS.length);
  await Promise.all(
    Array.from({ length: workers }, async (_, index) => {
      const worker = new Worker(new URL(import.meta.url), { workerData: WORKER_ROLE });
      try {
        for (let next = take(tasks, index); next !== undefined; next = take(tasks, index)) {
          const output = await request(worker, next.task);
          if (output !== '') failures.push({ compiler: next.compiler, project: next.project, output });
        }
      } finally {
        await worker.terminate();
      }
    }),
  );
  return failures;
}

function take<T>(tasks: T[], worker: number): T | undefined {
  return worker % 2 === 0 ? tasks.shift() : tasks.pop();
}

/** The compiler's output for a project: empty when it compiles. */
function request(worker: Worker, task: CompileTask): Promise<string> {
  return new Promise((resolve, reject) => {
    const onMessage = (output: string) => settle(() => resolve(output));
    const onError = (error: Error) => settle(() => reject(error));
    const onExit = (code: number) => settle(() => reject(new Error(`A compile worker exited with ${code}.`)));
    const settle = (then: () => void) => {
      worker.off('message', onMessage).off('error', onError).off('exit', onExit);
      then();
    };
    worker.on('message', onMessage).on('error', onError).on('exit', onExit);
    worker.postMessage(task);
  });
}

// ─── Inside a worker ─────────────────────────────────────────────────────────────────────────────────────────────

/** The part of the compiler API used here, the same from TypeScript 5.0 to 6.0. */
interface TypeScriptApi {
  readonly sys: object;
  /** TypeScript 5.3 and later. */
  readonly JSDocParsingMode?: { readonly ParseForTypeErrors: number };
  getParsedCommandLineOfConfigFile(path: string, options: undefined, host: object): ParsedConfig | undefined;
  getConfigFileParsingDiagnostics(config: ParsedConfig): readonly object[];
  createCompilerHost(options: object): CompilerHost;
  createProgram(options: {
    rootNames: readonly string[];
    options: object;
    host: CompilerHost;
    configFileParsingDiagnostics: readonly object[];
  }): object;
  getPreEmitDiagnostics(program: object): readonly object[];
  formatDiagnostics(diagnostics: readonly object[], host: FormatHost): string;
}

interface ParsedConfig {
  readonly fileNames: readonly string[];
  readonly options: object;
}

/** A language version (before TypeScript 5.0), or the options a file is parsed with. */
type SourceFileOptions =
  | number
  | { readonly languageVersion: number; readonly impliedNodeFormat?: number; readonly jsDocParsingMode?: number };

interface CompilerHost {
  getSourceFile(fileName: string, options: SourceFileOptions, onError?: (message: string) => void, fresh?: boolean): object | undefined;
  jsDocParsingMode?: number;
}

interface FormatHost {
  getCanonicalFileName(fileName: string): string;
  getCurrentDirectory(): string;
  getNewLine(): string;
}

function serveCompileTasks(port: MessagePort): void {
  const require = createRequire(import.meta.url);
  // Parsed (and, once checked, bound) library files, kept while the tasks are of one TypeScript and one target. A
  // parsed file depends on the language version (the target) and the module format it was read in, which the key
  // holds. The language service's document registry also keys on strictness, but the binder ignores alwaysStrict in
  // declaration files (bindInStrictMode), and only those are shared.
  let libraryFiles = new Map<string, object | undefined>();
  let keptFor = '';
  port.on('message', (task: CompileTask) => {
    if (`${task.typescript}|${task.target}` !== keptFor) {
      keptFor = `${task.typescript}|${task.target}`;
      libraryFiles = new Map();
    }
    port.postMessage(compileProject(require(task.typescript) as TypeScriptApi, task.directory, libraryFiles));
  });
}

/** Compiles a project as `tsc -p <directory>` does, and returns what tsc would print. */
function compileProject(ts: TypeScriptApi, directory: string, libraryFiles: Map<string, object | undefined>): string {
  const formatHost: FormatHost = { getCanonicalFileName: (f) => f, getCurrentDirectory: () => directory, getNewLine: () => '\n' };
  const configErrors: object[] = [];
  const configHost = { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (diagnostic: object) => configErrors.push(diagnostic) };
  const config = ts.getParsedCommandLineOfConfigFile(join(directory, 'tsconfig.json'), undefined, configHost);
  if (config === undefined) return ts.formatDiagnostics(configErrors, formatHost).trim();
  const host = ts.createCompilerHost(config.options);
  // As tsc does since TypeScript 5.3: JSDoc is parsed only where it can produce errors.
  if (ts.JSDocParsingMode !== undefined) host.jsDocParsingMode = ts.JSDocParsingMode.ParseForTypeErrors;
  const parse = host.getSourceFile.bind(host);
  const ownFiles = `${directory.split(sep).join('/')}/`; // the compiler's file names have forward slashes
  host.getSourceFile = (fileName, options, onError, fresh) => {
    if (fileName.startsWith(ownFiles) || !fileName.endsWith('.d.ts')) return parse(fileName, options, onError, fresh);
    const { languageVersion, impliedNodeFormat, jsDocParsingMode } =
      typeof options === 'number' ? { languageVersion: options } : options;
    const key = `${fileName}|${languageVersion}|${impliedNodeFormat}|${jsDocParsingMode}`;
    if (!libraryFiles.has(key)) libraryFiles.set(key, parse(fileName, options, onError, fresh));
    return libraryFiles.get(key);
  };
  const configFileParsingDiagnostics = ts.getConfigFileParsingDiagnostics(config);
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options, host, configFileParsingDiagnostics });
  return ts.formatDiagnostics(ts.getPreEmitDiagnostics(program), formatHost).trim();
}

// ─── Reporting ───────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * The same output is reported once, with the combinations it appears in: as settings when they are all the
 * combinations with those settings ("target es2020, default lib (with DOM)"), else as a list.
 */
function describeFailures(failures: readonly Failure[], compilers: readonly string[], projects: readonly Project[]): string {
  const total = compilers.length * projects.length;
  const dimensions = [compilers, ...projects[0]!.settings.map((_, i) => [...new Set(projects.map((p) => p.settings[i]!))])];
  const groups = new Map<string, Failure[]>();
  for (const failure of failures) groups.set(failure.output, [...(groups.get(failure.output) ?? []), failure]);
  const parts = [`websocket-server.ts, copied alone, does not compile in ${failures.length} of ${total} combinations.`];
  for (const [output, group] of groups) {
    const settings = group.map((f) => (f.project === undefined ? undefined : [f.compiler, ...f.project.settings]));
    const seen = dimensions.map((_, i) => new Set(settings.map((s) => s?.[i])));
    let where: string;
    if (!settings.includes(undefined) && seen.reduce((n, values) => n * values.size, 1) === group.length) {
      const narrowed = seen.flatMap((values, i) => (values.size === dimensions[i]!.length ? [] : [[...values].join(' or ')]));
      where = narrowed.length === 0 ? `every combination (${group.length})` : `the ${group.length} with ${narrowed.join(', ')}`;
    } else {
      const names = group.map((f) => `${f.compiler} ${f.project?.name ?? '(the build)'}`);
      const listed = names.length > 12 ? [...names.slice(0, 12), `and ${names.length - 12} more`] : names;
      where = `${group.length}: ${listed.join('; ')}`;
    }
    const lines = output.split('\n');
    const shown = lines.length > 20 ? [...lines.slice(0, 20), `… and ${lines.length - 20} more lines`] : lines;
    parts.push(`In ${where}:\n${shown.map((line) => `  ${line}`).join('\n')}`);
  }
  return parts.join('\n\n');
}

// ─── The tests ───────────────────────────────────────────────────────────────────────────────────────────────────

if (isMainThread) {
  const root = findRoot();

  test('websocket-server.ts declares nothing global, so skipLibCheck hides no error of its making', () => {
    const source = readFileSync(join(root, 'websocket-server.ts'), 'utf8');
    assert.doesNotMatch(source, /^\s*declare\s+(global|module|namespace)\b/m);
  });

  test(
    'websocket-server.ts, copied alone, compiles under TypeScript 5.0, 5.4, 5.7, 5.9, 6.0 and 7.0 × @types/node 20, 22 and 24 × strict on and off × ESM and CommonJS × with and without DOM × target es2020, es2022 and esnext',
    { timeout: 600_000 },
    async (t) => {
      const base = await mkdtemp(join(tmpdir(), 'websocket-server-compile-'));
      t.after(() => rm(base, { recursive: true, force: true }));
      const projects = listProjects(root);
      await Promise.all(projects.map((project) => createProject(root, base, project)));
      const compilers = [...API_COMPILERS, NATIVE_COMPILER].map((name) => `TypeScript ${packageVersion(root, name)}`);
      const [api, native] = await Promise.all([compileWithApi(root, base, projects), compileNative(root, base, projects)]);
      const failures = [...api, ...native];
      if (failures.length > 0) assert.fail(describeFailures(failures, compilers, projects));
    },
  );
} else if (workerData === WORKER_ROLE) {
  serveCompileTasks(parentPort!);
}
