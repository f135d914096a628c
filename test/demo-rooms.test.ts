// The chat demo's rooms, over its JSON protocol (see the header of server.ts), as a page would speak it, with `ws`
// clients: one `server.ts` process per test. Every limit the demo sets has a test here that fails without it.
// Negative checks ("nobody else got it") are made once a later message from the same sender has arrived: the
// demo relays each client's messages in order, so an earlier one would have come first.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { joinChat, runScript, type ChatPeer } from './support/demo.ts';
import { until } from './support/wait.ts';

const demoScript = fileURLToPath(new URL('../server.js', import.meta.url)); // build/server.js
const LIMIT = { timeout: 20_000 };

async function startDemo(t: TestContext): Promise<number> {
  return (await runScript(t, demoScript, ['--port', '0'])).port;
}

/** Joins `room` and waits for the join to be announced back. */
async function enter(peer: ChatPeer, room: string): Promise<void> {
  const from = peer.events.length;
  peer.send({ type: 'join', room });
  await peer.next({ type: 'joined', room, id: peer.name }, from);
}

/** Sends a request and waits for the error it is answered with. */
async function refused(peer: ChatPeer, request: Record<string, unknown> | string): Promise<Record<string, unknown>> {
  const from = peer.events.length;
  peer.send(request);
  return peer.next({ type: 'error' }, from);
}

/** Sends a line to the lobby and waits until `witness` has it: whatever `from` sent before has arrived too. */
async function fence(from: ChatPeer, witness: ChatPeer, text = `fence ${Math.random()}`): Promise<void> {
  from.send({ type: 'say', room: 'lobby', text });
  await witness.next({ type: 'message', text, from: from.name });
}

test('a new client is welcomed with the limits, is put in the lobby, and is told the rooms', LIMIT, async (t) => {
  const port = await startDemo(t);
  const alice = await joinChat(t, port);
  assert.deepEqual(alice.events[0]!['limits'], { roomName: 32, roomsPerClient: 8, rooms: 64, fileName: 100 });
  assert.equal(alice.events[0]!['maxMessageSize'], 16 * 1024 * 1024);
  await alice.next({ type: 'joined', room: 'lobby', id: alice.name });
  await alice.next({ type: 'rooms', rooms: [{ name: 'lobby', count: 1 }], more: 0 });
  const bob = await joinChat(t, port);
  await alice.next({ type: 'joined', room: 'lobby', id: bob.name });
  await alice.next({ type: 'members', room: 'lobby', count: 2, members: [alice.name, bob.name] });
  await bob.next({ type: 'rooms', rooms: [{ name: 'lobby', count: 2 }] });
});

test('a line to a room reaches its other members only, in order, and the sender gets no copy', LIMIT, async (t) => {
  const port = await startDemo(t);
  const alice = await joinChat(t, port);
  const bob = await joinChat(t, port);
  const carol = await joinChat(t, port);
  await enter(alice, 'garden');
  await enter(bob, 'garden');
  await enter(carol, 'attic');
  alice.send({ type: 'say', room: 'garden', text: 'first <b>&amp;</b>' });
  alice.send({ type: 'say', room: 'garden', text: 'second' });
  await bob.next({ type: 'message', room: 'garden', from: alice.name, text: 'second' });
  assert.deepEqual(bob.all({ type: 'message', room: 'garden' }).map((event) => event['text']), ['first <b>&amp;</b>', 'second']);
  await fence(alice, carol);
  await fence(alice, bob);
  assert.equal(carol.all({ type: 'message', room: 'garden' }).length, 0, 'a client of another room gets none of it');
  assert.equal(alice.all({ type: 'message', room: 'garden' }).length, 0, 'the sender gets no copy');
});

test('a plain text message, not JSON, is a line to the room joined last (any WebSocket client can chat)', LIMIT, async (t) => {
  const port = await startDemo(t);
  const alice = await joinChat(t, port);
  const bob = await joinChat(t, port);
  await enter(bob, 'garden');
  alice.send('hello lobby');
  await bob.next({ type: 'message', room: 'lobby', from: alice.name, text: 'hello lobby' });
  await enter(alice, 'garden');
  alice.send('{ not json, just braces');
  await bob.next({ type: 'message', room: 'garden', text: '{ not json, just braces' });
  // Leaving the room joined last makes the one joined before it current again.
  alice.send({ type: 'leave', room: 'garden' });
  alice.send('back in the lobby');
  await bob.next({ type: 'message', room: 'lobby', text: 'back in the lobby' });
});

test('join and leave are announced to the room, the one who joins or leaves included, and members follow', LIMIT, async (t) => {
  const port = await startDemo(t);
  const alice = await joinChat(t, port);
  const bob = await joinChat(t, port);
  await enter(alice, 'garden');
  await enter(bob, 'garden');
  await alice.next({ type: 'joined', room: 'garden', id: bob.name });
  await alice.next({ type: 'members', room: 'garden', count: 2, members: [alice.name, bob.name] });
  const from = alice.events.length;
  bob.send({ type: 'leave', room: 'garden' });
  await bob.next({ type: 'left', room: 'garden', id: bob.name });
  await alice.next({ type: 'left', room: 'garden', id: bob.name }, from);
  await alice.next({ type: 'members', room: 'garden', count: 1, members: [alice.name] }, from);
  await alice.next({ type: 'rooms', rooms: [{ name: 'lobby', count: 2 }, { name: 'garden', count: 1 }] }, from);
  // Joining a room one is in again changes nothing and answers with its members.
  const again = alice.events.length;
  alice.send({ type: 'join', room: 'garden' });
  await alice.next({ type: 'members', room: 'garden', count: 1 }, again);
  assert.equal(alice.all({ type: 'joined', room: 'garden', id: alice.name }).length, 1);
  const error = await refused(bob, { type: 'leave', room: 'garden' });
  assert.equal(error['code'], 'not-in-room');
});

test('a client that disconnects leaves its rooms: their members hear it, and an empty room is gone', LIMIT, async (t) => {
  const port = await startDemo(t);
  const alice = await joinChat(t, port);
  const bob = await joinChat(t, port);
  await enter(bob, 'garden');
  await alice.next({ type: 'rooms', rooms: [{ name: 'lobby', count: 2 }, { name: 'garden', count: 1 }] });
  const from = alice.events.length;
  bob.socket.close(1000);
  await alice.next({ type: 'left', room: 'lobby', id: bob.name }, from);
  await alice.next({ type: 'rooms', rooms: [{ name: 'lobby', count: 1 }], more: 0 }, from);
  assert.equal(alice.all({ type: 'left', room: 'garden' }).length, 0, 'not a member of the garden, alice hears nothing of it');
});

test('a room name has 1 to 32 characters: 33 are refused with bad-room, 32 are fine', LIMIT, async (t) => {
  const alice = await joinChat(t, await startDemo(t));
  const long = await refused(alice, { type: 'join', room: 'a'.repeat(33) });
  assert.equal(long['code'], 'bad-room');
  assert.equal(long['request'], 'join');
  assert.match(String(long['text']), /1 to 32 characters, not 33/);
  assert.equal((await refused(alice, { type: 'join', room: '' }))['code'], 'bad-room');
  await enter(alice, 'b'.repeat(32));
});

test('a room name has only a-z, 0-9, - and _, and begins with a letter or a digit; others are refused', LIMIT, async (t) => {
  const alice = await joinChat(t, await startDemo(t));
  for (const room of ['Garden', 'the garden', 'room:x', 'café', 'a/b', '-lead', '_lead', 'tab\t', '<script>', 'x\u202e']) {
    const error = await refused(alice, { type: 'join', room });
    assert.equal(error['code'], 'bad-room', `${JSON.stringify(room)} is refused`);
    assert.equal(error['room'], undefined, 'an invalid name is not echoed as a room');
  }
  for (const room of [42, null, ['lobby'], { name: 'lobby' }, undefined]) {
    assert.equal((await refused(alice, { type: 'join', room }))['code'], 'bad-room', `${JSON.stringify(room)} is refused`);
  }
  await enter(alice, 'a-b_c-9');
  await enter(alice, '9lives');
  assert.equal(alice.all({ type: 'joined', id: alice.name }).length, 3, 'lobby and the two valid rooms, nothing else');
});

test('a client may be in 8 rooms at once: a ninth is refused with too-many-rooms until it leaves one', LIMIT, async (t) => {
  const alice = await joinChat(t, await startDemo(t));
  for (let i = 1; i <= 7; i++) await enter(alice, `room-${i}`); // and the lobby: 8
  const error = await refused(alice, { type: 'join', room: 'room-8' });
  assert.equal(error['code'], 'too-many-rooms');
  assert.equal(error['room'], 'room-8');
  alice.send({ type: 'leave', room: 'lobby' });
  await enter(alice, 'room-8');
});

test('a server holds 64 rooms: a 65th is refused with room-limit, but joining one that exists still works', LIMIT, async (t) => {
  const port = await startDemo(t);
  const peers: ChatPeer[] = [];
  for (let i = 0; i < 9; i++) peers.push(await joinChat(t, port));
  // 9 clients × 7 rooms of their own, and the lobby: 64 rooms.
  for (const [i, peer] of peers.entries()) {
    for (let j = 0; j < 7; j++) peer.send({ type: 'join', room: `r${i}-${j}` });
  }
  for (const [i, peer] of peers.entries()) await peer.next({ type: 'joined', room: `r${i}-6`, id: peer.name });
  const newcomer = await joinChat(t, port);
  const error = await refused(newcomer, { type: 'join', room: 'one-too-many' });
  assert.equal(error['code'], 'room-limit');
  assert.match(String(error['text']), /64 rooms/);
  await enter(newcomer, 'r0-0');
  // A room that empties makes space for a new one.
  peers[8]!.send({ type: 'leave', room: 'r8-6' });
  await peers[8]!.next({ type: 'left', room: 'r8-6' });
  await enter(newcomer, 'one-too-many');
});

test('a line or a file for a room the client is not in is refused with not-in-room and reaches nobody', LIMIT, async (t) => {
  const port = await startDemo(t);
  const alice = await joinChat(t, port);
  const bob = await joinChat(t, port);
  await enter(bob, 'garden');
  const line = await refused(alice, { type: 'say', room: 'garden', text: 'let me in' });
  assert.deepEqual([line['code'], line['request'], line['room']], ['not-in-room', 'say', 'garden']);
  const file = await refused(alice, { type: 'file', room: 'garden', name: 'a.txt' });
  assert.deepEqual([file['code'], file['request']], ['not-in-room', 'file']);
  // Announced while in the room, sent after leaving it: refused too.
  await enter(alice, 'attic');
  alice.send({ type: 'file', room: 'attic', name: 'late.txt' });
  alice.send({ type: 'leave', room: 'attic' });
  const late = alice.events.length;
  alice.socket.send(Buffer.from('late'));
  assert.equal((await alice.next({ type: 'error' }, late))['code'], 'not-in-room');
  await fence(alice, bob);
  assert.equal(bob.all({ type: 'message', room: 'garden' }).length, 0);
  assert.equal(bob.files.length, 0);
});

test('a client in no room is told no-room for a line or a file', LIMIT, async (t) => {
  const alice = await joinChat(t, await startDemo(t));
  alice.send({ type: 'leave', room: 'lobby' });
  await alice.next({ type: 'left', room: 'lobby', id: alice.name });
  assert.equal((await refused(alice, 'anyone?'))['code'], 'no-room');
  assert.equal((await refused(alice, { type: 'say', text: 'anyone?' }))['code'], 'no-room');
  const from = alice.events.length;
  alice.socket.send(Buffer.from([1, 2, 3]));
  assert.equal((await alice.next({ type: 'error' }, from))['code'], 'no-room');
});

test('requests it does not understand are answered with an error, and the connection stays open', LIMIT, async (t) => {
  const port = await startDemo(t);
  const alice = await joinChat(t, port);
  const bob = await joinChat(t, port);
  assert.equal((await refused(alice, { type: 'shout', text: 'x' }))['code'], 'unknown-request');
  assert.equal((await refused(alice, { type: 7 }))['code'], 'bad-request');
  assert.equal((await refused(alice, { room: 'lobby' }))['code'], 'bad-request');
  assert.equal((await refused(alice, { type: 'say', text: 12 }))['code'], 'bad-request');
  assert.equal((await refused(alice, { type: 'say', text: '' }))['code'], 'bad-request');
  assert.equal((await refused(alice, { type: 'file', name: 12 }))['code'], 'bad-file');
  assert.equal((await refused(alice, '{"type":"__proto__","room":"lobby"}'))['code'], 'unknown-request');
  // Arrays and other JSON that is no object are lines, like any text.
  alice.send('["join","garden"]');
  await bob.next({ type: 'message', text: '["join","garden"]' });
  alice.send({ type: 'say', room: 'lobby', text: 'still here' });
  await bob.next({ type: 'message', text: 'still here' });
});

/** Announces and sends a file from `from`, and returns the `file` event and the bytes `to` received. */
async function sendFile(from: ChatPeer, to: ChatPeer, request: Record<string, unknown>, bytes: Buffer): Promise<[Record<string, unknown>, Buffer]> {
  const start = to.events.length;
  const files = to.files.length;
  from.send({ type: 'file', room: 'lobby', ...request });
  from.socket.send(bytes);
  const event = await to.next({ type: 'file', from: from.name }, start);
  await until(() => to.files.length > files, 'the file itself');
  return [event, to.files[files]!];
}

test('a file keeps its announced name and type; the file event comes first, then the bytes', LIMIT, async (t) => {
  const port = await startDemo(t);
  const alice = await joinChat(t, port);
  const bob = await joinChat(t, port);
  const bytes = Buffer.from('été, ½ and 🍐\n', 'utf8');
  const [event, received] = await sendFile(alice, bob, { name: 'notes été 🍐.txt', mime: 'text/plain' }, bytes);
  assert.deepEqual(
    { room: event['room'], name: event['name'], mime: event['mime'], size: event['size'] },
    { room: 'lobby', name: 'notes été 🍐.txt', mime: 'text/plain', size: bytes.length },
  );
  assert.ok(received.equals(bytes));
  assert.equal(bob.events[bob.filesAt[0]! - 1], event, 'the file event is the last text message before the bytes');
  // A file sent without a file request before it: for the current room, as file.bin.
  const from = bob.events.length;
  alice.socket.send(Buffer.from([9, 9]));
  const plain = await bob.next({ type: 'file', from: alice.name }, from);
  assert.deepEqual([plain['name'], plain['mime'], plain['size'], plain['room']], ['file.bin', 'application/octet-stream', 2, 'lobby']);
  assert.equal(alice.files.length, 0, 'the sender gets no copy');
});

test('a file name loses path separators, control characters and invisible ones, and is cut to 100 characters', LIMIT, async (t) => {
  const port = await startDemo(t);
  const alice = await joinChat(t, port);
  const bob = await joinChat(t, port);
  const cases: Array<[string, string]> = [
    ['../../etc/passwd', '.._.._etc_passwd'],
    ['C:\\Windows\\win.ini', 'C__Windows_win.ini'],
    ['bell\u0007tab\tnl\n.txt', 'bell_tab_nl_.txt'],
    ['del\u007f c1\u0085.txt', 'del_ c1_.txt'],
    ['invoice\u202etxt.exe', 'invoicetxt.exe'],
    ['zero\u200bwidth\ufeff.png', 'zerowidth.png'],
    ['a<b>c:d"e|f?g*h.txt', 'a_b_c_d_e_f_g_h.txt'],
    ['  spaced out.txt  ', 'spaced out.txt'],
    ['..', 'file'],
    ['', 'file'],
    ['lone\ud800surrogate.txt', 'lone_surrogate.txt'],
    [`${'n'.repeat(150)}.tar.gz`, `${'n'.repeat(97)}.gz`],
    [`${'🍐'.repeat(120)}`, '🍐'.repeat(100)],
    ['e\u0301.txt', 'é.txt'],
  ];
  for (const [sent, expected] of cases) {
    const [event] = await sendFile(alice, bob, { name: sent }, Buffer.from('x'));
    assert.equal(event['name'], expected, `${JSON.stringify(sent)} is offered as ${JSON.stringify(expected)}`);
    assert.ok(Array.from(String(event['name'])).length <= 100);
  }
});

test('a file type is kept when it is a plausible type/subtype (in lower case, without parameters), else octet-stream', LIMIT, async (t) => {
  const port = await startDemo(t);
  const alice = await joinChat(t, port);
  const bob = await joinChat(t, port);
  const cases: Array<[unknown, string]> = [
    ['image/png', 'image/png'],
    ['Text/Plain; charset=UTF-8', 'text/plain'],
    ['application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
    ['application/ld+json', 'application/ld+json'],
    ['', 'application/octet-stream'],
    ['text', 'application/octet-stream'],
    ['evil/thing', 'application/octet-stream'],
    ['text/plain/extra', 'application/octet-stream'],
    ['text/<script>', 'application/octet-stream'],
    ['text/plain\r\nX-Injected: 1', 'application/octet-stream'],
    [`text/${'x'.repeat(200)}`, 'application/octet-stream'],
    [42, 'application/octet-stream'],
    [undefined, 'application/octet-stream'],
  ];
  for (const [sent, expected] of cases) {
    const [event] = await sendFile(alice, bob, { name: 'f', mime: sent }, Buffer.from('x'));
    assert.equal(event['mime'], expected, `${JSON.stringify(sent)} is sent on as ${expected}`);
  }
});
