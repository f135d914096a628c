// wss://: the options key, cert and tls, the secure getter, TLS failures at start-up and per connection.
// A self-signed certificate for 127.0.0.1 is made with the openssl CLI in a temporary directory.
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as net from 'node:net';
import { after, before, describe, test, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { WebsocketServer } from '../websocket-server.ts';
import { assertOptionError, echo, newWs, openWs, recordingLogger, startServer } from './support/harness.ts';
import { LIMIT, SILENT, until, within } from './support/wait.ts';

const run = promisify(execFile);

interface Credentials {
  dir: string;
  keyPath: string;
  certPath: string;
  key: string;
  cert: string;
  /** A key that does not belong to the certificate. */
  otherKey: string;
  /** The certificate's key, encrypted with the passphrase 'secret'. */
  encryptedKey: string;
}

let credentials: Credentials;

before(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'websocket-server-tls-'));
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  const openssl = (args: string[]): Promise<unknown> => run('openssl', args, { timeout: 20_000 });
  await openssl([
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath,
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1',
  ]);
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', join(dir, 'other.pem')]);
  await openssl(['pkey', '-in', keyPath, '-out', join(dir, 'encrypted.pem'), '-aes256', '-passout', 'pass:secret']);
  const read = (name: string): Promise<string> => readFile(join(dir, name), 'utf8');
  credentials = {
    dir,
    keyPath,
    certPath,
    key: await read('key.pem'),
    cert: await read('cert.pem'),
    otherKey: await read('other.pem'),
    encryptedKey: await read('encrypted.pem'),
  };
});

after(async () => {
  if (credentials !== undefined) await rm(credentials.dir, { recursive: true, force: true });
});

describe('wss:// with key and cert', () => {
  test('a ws client that trusts the certificate connects over wss:// and its messages are echoed', LIMIT, async (t) => {
    const { server, joined } = await startServer(t, { key: credentials.keyPath, cert: credentials.certPath });
    assert.equal(server.secure, true);
    const ws = await openWs(t, `wss://127.0.0.1:${server.port}/secure?x=1`, [], { ca: credentials.cert });
    assert.equal(await echo(ws, 'over TLS'), 'over TLS');
    assert.equal(joined.length, 1);
    assert.equal(joined[0]!.handler.request.path, '/secure');
  });

  for (const form of ['PEM strings', 'Buffers'] as const) {
    test(`key and cert given as ${form} serve wss:// too`, LIMIT, async (t) => {
      const key = form === 'Buffers' ? Buffer.from(credentials.key) : credentials.key;
      const cert = form === 'Buffers' ? Buffer.from(credentials.cert) : credentials.cert;
      const { server } = await startServer(t, { key, cert });
      const ws = await openWs(t, `wss://127.0.0.1:${server.port}/`, [], { ca: credentials.cert });
      assert.equal(await echo(ws, form), form);
    });
  }

  test('the server really presents the certificate: a client that does not trust it fails its TLS handshake', LIMIT, async (t) => {
    const { server, joined } = await startServer(t, { key: credentials.key, cert: credentials.cert });
    const ws = newWs(t, `wss://127.0.0.1:${server.port}/`);
    const [error] = (await within(once(ws, 'error'), 'the TLS failure')) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
    assert.equal(joined.length, 0);
  });

  test('the tls option reaches tls.createServer: an encrypted key opens with its passphrase', LIMIT, async (t) => {
    const { server } = await startServer(t, { key: credentials.encryptedKey, cert: credentials.cert, tls: { passphrase: 'secret' } });
    const ws = await openWs(t, `wss://127.0.0.1:${server.port}/`, [], { ca: credentials.cert });
    assert.equal(await echo(ws, 'unlocked'), 'unlocked');
  });

  test('a plain ws:// client on the TLS port fails, the failure is logged at info, and wss:// keeps working', LIMIT, async (t) => {
    const logger = recordingLogger();
    const { server, joined, errors } = await startServer(t, {
      key: credentials.key, cert: credentials.cert, loglevel: 'info', logger,
    });
    const plain = newWs(t, `ws://127.0.0.1:${server.port}/`);
    let opened = false;
    plain.on('open', () => (opened = true));
    await within(once(plain, 'error'), 'the plain-text client to fail');
    assert.equal(opened, false);
    await until(() => logger.lines.info.some((line) => /^TLS handshake with 127\.0\.0\.1:\d+ failed/.test(line)), 'the info line');
    assert.deepEqual(logger.lines.error, []);
    assert.equal(joined.length, 0);
    assert.deepEqual(errors, []);
    const ws = await openWs(t, `wss://127.0.0.1:${server.port}/`, [], { ca: credentials.cert });
    assert.equal(await echo(ws, 'still here'), 'still here');
  });

  test('without key and cert the server is not secure', LIMIT, () => {
    assert.equal(new WebsocketServer({ logger: SILENT }).secure, false);
  });

  test('attached to a node:https server, the server is secure and serves wss://', LIMIT, async (t) => {
    const app = createHttpsServer({ key: credentials.key, cert: credentials.cert }, (_request, response) => response.end('page'));
    t.after(() => {
      app.closeAllConnections();
      app.close();
    });
    const { server } = await startServer(t, { server: app }, { run: false });
    assert.equal(server.secure, true);
    const started = server.runForever();
    app.listen(0, '127.0.0.1');
    await within(started, 'runForever() to resolve once the app listens');
    const ws = await openWs(t, `wss://127.0.0.1:${server.port}/`, [], { ca: credentials.cert });
    assert.equal(await echo(ws, 'via https'), 'via https');
  });
});

/** Opens `count` TCP connections to the port that never say anything; resolves once all are connected. */
async function silentSockets(t: TestContext, port: number, count: number): Promise<net.Socket[]> {
  const sockets = await Promise.all(
    Array.from({ length: count }, () => {
      const socket = net.connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      return within(once(socket, 'connect').then(() => socket), 'a TCP connection');
    }),
  );
  t.after(() => {
    for (const socket of sockets) socket.destroy();
  });
  return sockets;
}

describe('the TLS handshake is bounded like the rest of the opening handshake', () => {
  test('sockets that never start TLS are all closed within handshakeTimeout (+1 s), counted as timeouts', LIMIT, async (t) => {
    const { server } = await startServer(t, { key: credentials.key, cert: credentials.cert, handshakeTimeout: 500 });
    const sockets = await silentSockets(t, server.port, 200);
    const closed = sockets.map((socket) => once(socket, 'close'));
    await within(Promise.all(closed), 'every silent socket to be closed by the server', 500 + 1_000);
    assert.equal(server.stats.handshakeFailures['WS_ERR_HANDSHAKE_HANDSHAKE_TIMEOUT'], 200);
  });

  test('connections in their TLS handshake count toward maxConnections: one more is closed before TLS', LIMIT, async (t) => {
    const logger = recordingLogger();
    const { server } = await startServer(t, { key: credentials.key, cert: credentials.cert, maxConnections: 5, logger, loglevel: 'info' });
    await silentSockets(t, server.port, 5);
    const [extra] = await silentSockets(t, server.port, 1);
    await within(once(extra!, 'close'), 'the sixth connection to be closed at once');
    assert.equal(server.stats.handshakeFailures['WS_ERR_HANDSHAKE_TOO_MANY_CONNECTIONS'], 1);
    assert.ok(logger.lines.warn.some((line) => /maxConnections \(5\) is reached/.test(line)), 'a warning says the limit is reached');
    // A wss:// client is refused too while they wait.
    await assert.rejects(openWs(t, `wss://127.0.0.1:${server.port}/`, [], { ca: credentials.cert }));
  });
});

describe('TLS set-up errors make runForever() reject, never fall back to plain text', () => {
  const cases: Array<{ what: string; options: () => { key: string | Buffer; cert: string | Buffer; tls?: object }; message: RegExp }> = [
    {
      what: 'a key file that does not exist',
      options: () => ({ key: join(credentials.dir, 'missing-key.pem'), cert: credentials.certPath }),
      message: /^Cannot start the server: the TLS key file '.*missing-key\.pem' cannot be read \(ENOENT/,
    },
    {
      what: 'a cert path that is a directory',
      options: () => ({ key: credentials.keyPath, cert: credentials.dir }),
      message: /^Cannot start the server: the TLS cert file '.*' cannot be read \(EISDIR/,
    },
    {
      what: 'a garbage PEM key',
      options: () => ({ key: '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n', cert: credentials.cert }),
      message: /^Cannot start the server: the TLS key and certificate cannot be used \(/,
    },
    {
      what: 'a garbage PEM certificate',
      options: () => ({ key: credentials.key, cert: Buffer.from('-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----\n') }),
      message: /^Cannot start the server: the TLS key and certificate cannot be used \(/,
    },
    {
      what: 'a key that does not match the certificate',
      options: () => ({ key: credentials.otherKey, cert: credentials.cert }),
      message: /^Cannot start the server: the TLS key and certificate cannot be used \(.*key values mismatch/,
    },
    {
      what: 'an encrypted key without its passphrase',
      options: () => ({ key: credentials.encryptedKey, cert: credentials.cert }),
      // A wrong passphrase fails AES-CBC's padding check ("bad decrypt"), or, once in about 256 keys, passes it
      // with garbage that the DER decoder then refuses ("unsupported"): OpenSSL 3 says either.
      message: /^Cannot start the server: the TLS key and certificate cannot be used \(.*(bad decrypt|DECODER routines::unsupported)/,
    },
    {
      what: 'an encrypted key with a wrong passphrase',
      options: () => ({ key: credentials.encryptedKey, cert: credentials.cert, tls: { passphrase: 'wrong' } }),
      // A wrong passphrase fails AES-CBC's padding check ("bad decrypt"), or, once in about 256 keys, passes it
      // with garbage that the DER decoder then refuses ("unsupported"): OpenSSL 3 says either.
      message: /^Cannot start the server: the TLS key and certificate cannot be used \(.*(bad decrypt|DECODER routines::unsupported)/,
    },
  ];
  for (const { what, options, message } of cases) {
    test(`${what}: runForever() rejects with a message that says so, and nothing listens`, LIMIT, async (t) => {
      const { server } = await startServer(t, options(), { run: false });
      await assert.rejects(within(server.runForever(), 'runForever() to reject'), (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.match(error.message, message);
        assert.match(error.message, /\.$/);
        return true;
      });
      assert.equal(server.port, 0, 'no port was bound');
      assert.equal(server.clients.length, 0);
    });
  }

  test('a shutdown while the key files are read makes runForever() reject, and nothing listens', LIMIT, async (t) => {
    const { server } = await startServer(t, { key: credentials.keyPath, cert: credentials.certPath }, { run: false });
    const starting = server.runForever();
    await server.shutdownAbruptly();
    await assert.rejects(within(starting, 'runForever() to reject'), /shut down while starting/);
    assert.equal(server.port, 0);
  });

  test('after a failed start, runForever() can be called again (and fails again the same way)', LIMIT, async (t) => {
    const { server } = await startServer(t, { key: credentials.otherKey, cert: credentials.cert }, { run: false });
    await assert.rejects(within(server.runForever(), 'the first start'), /key values mismatch/);
    await assert.rejects(within(server.runForever(), 'the second start'), /key values mismatch/);
  });
});

describe('TLS options are checked by the constructor', () => {
  const pem = '-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n';
  const bad: Array<[Record<string, unknown>, typeof TypeError | typeof RangeError, RegExp]> = [
    [{ key: pem }, TypeError, /'key' needs 'cert'/],
    [{ cert: pem }, TypeError, /'cert' needs 'key'/],
    [{ key: 42, cert: pem }, TypeError, /'key' must be a PEM string, a Buffer or a file path/],
    [{ key: pem, cert: '' }, TypeError, /'cert' must be a PEM string, a Buffer or a file path/],
    [{ tls: { ca: pem } }, TypeError, /'tls' needs 'key' and 'cert'/],
    [{ key: pem, cert: pem, tls: 'yes' }, TypeError, /'tls' must be an object/],
    [{ key: pem, cert: pem, tls: { key: pem } }, TypeError, /give the TLS key as the option 'key'/],
  ];
  for (const [options, ErrorClass, message] of bad) {
    test(`${JSON.stringify(options).replaceAll(pem.replaceAll('\n', '\\n'), 'PEM')} throws a ${ErrorClass.name}`, LIMIT, () => {
      assertOptionError(options, ErrorClass, message);
    });
  }
});
