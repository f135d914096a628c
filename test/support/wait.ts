// Bounded waiting for tests: every wait ends by itself with a readable error.
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../websocket-server.ts';

/** Per-test limit for `node:test`: no test may hang. */
export const LIMIT = { timeout: 10_000 };

/** How long to keep listening after an event to be sure it does not happen a second time. */
export const SETTLE_MS = 150;

/** A logger that drops everything, for servers whose log lines a test does not read. */
export const SILENT: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Rejects with a readable message when `promise` does not settle within `ms`. */
export async function within<T>(promise: Promise<T>, what: string, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Timed out after ${ms} ms waiting for ${what}.`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `condition` every 5 ms until it holds, for at most `ms`. */
export async function until(condition: () => boolean, what: string, ms = 5_000): Promise<void> {
  for (let waited = 0; !condition(); waited += 5) {
    if (waited >= ms) throw new Error(`Timed out after ${ms} ms waiting for ${what}.`);
    await delay(5);
  }
}
