// The programs the system tests drive, outside npm: Chromium (the demo page in a real browser), redis-server and
// redis-cli (the Redis adapter), the openssl CLI (certificates for the TLS tests), and nginx and HAProxy (the
// README's reverse proxy snippets). `npm test` runs this first,
// so that `npm install && npm test` passes on a fresh Debian or Ubuntu machine: what is missing is installed with
// apt-get when this process may (root, or sudo without a password), and otherwise it stops with the one command
// to run. No test skips when a program is missing; `npm run test:unit` is the run that needs none of them.
//
// Run as a script: `node build/test/support/system-programs.js` (exit 0 when everything is there or was installed).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the browser test finds Chromium: `CHROMIUM_PATH`, or Debian's package. */
export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

interface Program {
  /** What a reader calls it. */
  readonly name: string;
  /** The tests that drive it. */
  readonly usedBy: string;
  /** The Debian/Ubuntu package that brings it. */
  readonly debianPackage: string;
  readonly found: () => boolean;
}

/** Whether an executable of this name is on PATH. */
function onPath(command: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

export const SYSTEM_PROGRAMS: readonly Program[] = [
  { name: `Chromium (${CHROMIUM_PATH})`, usedBy: 'the browser test', debianPackage: 'chromium', found: () => existsSync(CHROMIUM_PATH) },
  { name: 'redis-server', usedBy: 'the Redis tests', debianPackage: 'redis-server', found: () => onPath('redis-server') },
  { name: 'redis-cli', usedBy: 'the Redis tests', debianPackage: 'redis-tools', found: () => onPath('redis-cli') },
  { name: 'openssl', usedBy: 'the TLS tests', debianPackage: 'openssl', found: () => onPath('openssl') },
  { name: 'nginx', usedBy: 'the reverse proxy test', debianPackage: 'nginx', found: () => onPath('nginx') || existsSync('/usr/sbin/nginx') },
  { name: 'haproxy', usedBy: 'the reverse proxy test', debianPackage: 'haproxy', found: () => onPath('haproxy') || existsSync('/usr/sbin/haproxy') },
];

/** The programs not found on this machine. */
export function missingPrograms(): Program[] {
  return SYSTEM_PROGRAMS.filter((program) => !program.found());
}

/** `apt-get` as root, or through `sudo -n` when that works without a password; undefined when neither may. */
function aptGetCommand(): string[] | undefined {
  if (process.platform !== 'linux' || !onPath('apt-get')) return undefined;
  if (process.getuid?.() === 0) return ['apt-get'];
  if (onPath('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore', timeout: 10_000 }).status === 0) return ['sudo', '-n', 'apt-get'];
  return undefined;
}

function run(command: string[]): boolean {
  const [file, ...args] = command as [string, ...string[]];
  const result = spawnSync(file, args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 15 * 60_000,
  });
  return result.status === 0;
}

/** Installs what is missing when it can. Returns the exit code for the script: 0 when nothing is missing now. */
export function provideSystemPrograms(): number {
  const missing = missingPrograms();
  if (missing.length === 0) return 0;
  const packages = [...new Set(missing.map((program) => program.debianPackage))];
  const names = missing.map((program) => `${program.name} (${program.usedBy})`).join(', ');
  const aptGet = aptGetCommand();
  if (aptGet !== undefined && process.env['WEBSOCKET_SERVER_NO_APT'] === undefined) {
    console.log(`npm test: installing ${packages.join(' ')} with apt-get, for ${names}`);
    const installed =
      run([...aptGet, 'update', '-qq']) && run([...aptGet, 'install', '-y', '-qq', '--no-install-recommends', ...packages]);
    const still = missingPrograms();
    if (installed && still.length === 0) return 0;
    console.error(`npm test: apt-get could not provide ${still.map((program) => program.name).join(', ') || packages.join(' ')}.`);
  }
  console.error(
    [
      `npm test needs programs this machine does not have: ${names}.`,
      `On Debian or Ubuntu, install them with:`,
      ``,
      `    sudo apt-get install -y ${packages.join(' ')}`,
      ``,
      `(elsewhere, install them with your package manager; point CHROMIUM_PATH at a Chromium or Chrome binary).`,
      `\`npm run test:unit\` runs every test that needs none of them.`,
    ].join('\n'),
  );
  return 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = provideSystemPrograms();
