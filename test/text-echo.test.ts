// A text message sent back (or on) from its own message callback is framed from the bytes it arrived as, not
// encoded again (issue 15); nothing of it is held once the callback has returned.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { connectWs, receivedCount, startServer } from './support/harness.ts';
import { within } from './support/wait.ts';

/** Counts the UTF-8 encodings the library can make of a string (`Buffer.byteLength`, `TextEncoder#encodeInto`, `Buffer.from`). */
function countEncodings(): { count: number; restore: () => void } {
  const counter = { count: 0, restore: () => {} };
  const byteLength = Buffer.byteLength;
  const encodeInto = TextEncoder.prototype.encodeInto;
  const from = Buffer.from;
  Buffer.byteLength = ((...args: Parameters<typeof Buffer.byteLength>) => {
    if (typeof args[0] === 'string') counter.count++;
    return byteLength(...args);
  }) as typeof Buffer.byteLength;
  TextEncoder.prototype.encodeInto = function (this: TextEncoder, ...args: Parameters<TextEncoder['encodeInto']>) {
    counter.count++;
    return encodeInto.apply(this, args);
  };
  Buffer.from = ((...args: unknown[]) => {
    if (typeof args[0] === 'string') counter.count++;
    return (from as (...a: unknown[]) => Buffer)(...args);
  }) as typeof Buffer.from;
  counter.restore = () => {
    Buffer.byteLength = byteLength;
    TextEncoder.prototype.encodeInto = encodeInto;
    Buffer.from = from;
  };
  return counter;
}

for (const size of [1024, 64 * 1024, 1024 * 1024]) {
  test(`a ${size}-byte text echoed from its callback, or broadcast, is not encoded again; another string is`, async (t) => {
    const h = await startServer(t, { maxMessageSize: 4 * 1024 * 1024 }, { echo: false });
    const peer = await connectWs(t, h);
    const other = await connectWs(t, h);
    const counts: number[] = [];
    h.server.setFnMessageReceived((client, server, message) => {
      const counter = countEncodings();
      try {
        server.sendMessage(client, message as string); // the very string received
        counts.push(counter.count);
        server.sendMessageToAll(message, client); // relayed to the others
        counts.push(counter.count);
        server.sendMessage(client, `${message as string}!`); // another string: encoded
        counts.push(counter.count);
      } finally {
        counter.restore();
      }
    });
    const text = 'é'.repeat(size / 4) + 'a'.repeat(size / 2);
    peer.ws.send(text);
    await receivedCount(peer, 2);
    await receivedCount(other, 1);
    assert.deepEqual(counts.slice(0, 2), [0, 0], 'no encoding for the received string');
    assert.ok(counts[2]! > 0, 'the spy sees an encoding of a new string');
    assert.equal(peer.inbox[0]!.data.toString('utf8'), text);
    assert.equal(peer.inbox[1]!.data.toString('utf8'), `${text}!`);
    assert.equal(other.inbox[0]!.data.toString('utf8'), text);
    assert.equal(peer.inbox[0]!.isBinary, false);
  });
}

test('after the callback has returned, the same string is encoded like any other: nothing is held', async (t) => {
  const h = await startServer(t, {}, { echo: false });
  const peer = await connectWs(t, h);
  const later = new Promise<number>((resolve) => {
    h.server.setFnMessageReceived((client, server, message) => {
      setImmediate(() => {
        const counter = countEncodings();
        try {
          server.sendMessage(client, message as string);
          resolve(counter.count);
        } finally {
          counter.restore();
        }
      });
    });
  });
  peer.ws.send('x'.repeat(5000));
  assert.ok((await within(later, 'the later send')) > 0);
  await receivedCount(peer, 1);
  assert.equal(peer.inbox[0]!.data.toString(), 'x'.repeat(5000));
});
