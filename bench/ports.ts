// A free loopback port, for the benchmark processes that must choose one before they listen.
import { createServer } from 'node:net';

/** A port of 127.0.0.1 that was free a moment ago: bound with port 0, then released. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
