// The third door, in a real browser: headless Chromium loads client.html from server.ts, and pages chat, in rooms,
// on one server and on two joined by Redis.
// This test never skips: without Chromium it fails (`npm test` installs Debian's `chromium` first when it may).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type ElementHandle, type Page } from 'playwright-core';
import { runScript } from '../support/demo.ts';
import { startServer } from '../support/harness.ts';
import { startRedis, type TestRedis } from '../support/redis-server.ts';
import { CHROMIUM_PATH as CHROMIUM } from '../support/system-programs.ts';

const demoScript = fileURLToPath(new URL('../../server.js', import.meta.url)); // build/server.js
const WAIT = { timeout: 10_000 };
const REDIS_CHANNEL = 'websocket-server:broadcast'; // RedisAdapter's default channel; a topic has `<channel>:topic:<topic>`

async function launch(): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `Chromium is needed at ${CHROMIUM} (Debian: apt-get install -y chromium)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/**
 * Opens the page in its own browser context, connects, and returns the name the server gave it: the client id, or
 * `id@server` when several servers share the chat.
 */
async function openChat(browser: Browser, url: string): Promise<{ page: Page; id: string }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url);
  assert.equal(await page.inputValue('#url'), url.replace(/^http/, 'ws'), 'the page connects back to where it came from');
  await page.click('#connect');
  // The state names the client once the server's welcome has arrived, just after the connection opened.
  await page.waitForSelector('#state[data-state=open]:has-text("as client")', WAIT);
  const state = await page.textContent('#state');
  const id = /as client (\d+(?:@[\w-]+)?)/.exec(state ?? '')?.[1];
  assert.ok(id !== undefined, `the page shows its client name (state: ${state})`);
  return { page, id };
}

/** Joins a room by typing its name in the page's room form (the page trims and lowercases it). */
async function joinByName(page: Page, typed: string, room: string): Promise<void> {
  await page.fill('#room', typed);
  await page.press('#room', 'Enter');
  await page.waitForSelector(`#my-rooms li[data-room="${room}"] input[name=current]:checked`, WAIT);
}

/** The names the page lists in "Who is in #room", once it lists exactly `count` of them. */
async function membersShown(page: Page, room: string, count: number): Promise<string[]> {
  await page.waitForSelector(`#members-heading:has-text("Who is in #${room} (${count})")`, WAIT);
  await page.waitForFunction((n) => document.querySelectorAll('#members li[data-name]').length === n, count, WAIT);
  return page.$$eval('#members li[data-name]', (items) => items.map((item) => (item as HTMLElement).dataset['name'] ?? ''));
}

/** The bytes and the type of the Blob behind a received file's download link. */
async function downloaded(page: Page, entry: ElementHandle): Promise<{ bytes: Buffer; type: string; name: string }> {
  const link = await entry.$('a.download');
  assert.ok(link !== null, 'the file has a download link');
  const name = (await link.getAttribute('download')) ?? '';
  const href = await link.evaluate((anchor) => (anchor as HTMLAnchorElement).href);
  const blob = await page.evaluate(async (url) => {
    const body = await (await fetch(url)).blob();
    return { bytes: Array.from(new Uint8Array(await body.arrayBuffer())), type: body.type };
  }, href);
  return { bytes: Buffer.from(blob.bytes), type: blob.type, name };
}

test('two pages of client.html chat through server.ts in the lobby: text both ways, a named file, and a close code', { timeout: 90_000 }, async (t) => {
  const demo = await runScript(t, demoScript, ['--port', '0']);
  const browser = await launch();
  t.after(() => browser.close());
  const url = `http://127.0.0.1:${demo.port}/`;

  const alice = await openChat(browser, url);
  const bob = await openChat(browser, url);
  // Chromium offers permessage-deflate and the demo accepts it (RFC 7692): the page shows what was agreed.
  assert.match((await alice.page.textContent('#state')) ?? '', /\(permessage-deflate[^)]*\)/);
  await alice.page.waitForSelector(`#messages li[data-kind=event][data-room=lobby]:has-text("client ${bob.id} has joined")`, WAIT);
  // Both start in the lobby, and each page lists who is there.
  await alice.page.waitForSelector('#my-rooms li[data-room=lobby] input[name=current]:checked', WAIT);
  assert.deepEqual(await membersShown(alice.page, 'lobby', 2), [alice.id, bob.id]);
  assert.match((await alice.page.textContent(`#members li[data-name="${alice.id}"]`)) ?? '', /\(you\)/);

  // Text, typed and sent with the keyboard (Enter submits).
  await alice.page.fill('#text', 'hello from Alice');
  await alice.page.press('#text', 'Enter');
  const atBob = await bob.page.waitForSelector(`#messages li[data-kind=text][data-room=lobby][data-from="${alice.id}"]`, WAIT);
  assert.match((await atBob.textContent()) ?? '', /hello from Alice/);

  // And back, with characters outside ASCII.
  await bob.page.fill('#text', 'hi Alice 👋 — ça va?');
  await bob.page.click('#send-text');
  const atAlice = await alice.page.waitForSelector(`#messages li[data-kind=text][data-from="${bob.id}"]`, WAIT);
  assert.match((await atAlice.textContent()) ?? '', /hi Alice 👋 — ça va\?/);

  // Long enough to be compressed on its way (over the 1 KiB threshold), in both directions.
  const long = `${'the quick brown fox jumps over the lazy dog; '.repeat(200)}end`;
  await alice.page.fill('#text', long);
  await alice.page.press('#text', 'Enter');
  const longAtBob = await bob.page.waitForSelector(`#messages li[data-kind=text][data-from="${alice.id}"]:has-text("lazy dog; end")`, WAIT);
  assert.ok(((await longAtBob.textContent()) ?? '').includes(long), 'the compressed message arrives whole');

  // A file travels as one binary message, arrives byte for byte, and is offered under its name and type.
  const file = Buffer.alloc(5000);
  for (let i = 0; i < file.length; i++) file[i] = (i * 7 + (i >> 8)) & 0xff;
  await alice.page.setInputFiles('#file', { name: 'pattern.bin', mimeType: 'application/octet-stream', buffer: file });
  await alice.page.click('#send-file');
  const entry = await bob.page.waitForSelector(`#messages li[data-kind=binary][data-from="${alice.id}"]`, WAIT);
  assert.equal(await entry.getAttribute('data-size'), String(file.length));
  assert.match((await entry.textContent()) ?? '', /“pattern\.bin”, application\/octet-stream, 4\.9 KiB \(5000 bytes\)/);
  const received = await downloaded(bob.page, entry);
  assert.equal(received.name, 'pattern.bin');
  assert.equal(received.type, 'application/octet-stream');
  assert.ok(received.bytes.equals(file), 'the downloaded file equals the one sent');

  // Alice disconnects: her page shows 1000; Bob's page hears that she left.
  await alice.page.click('#disconnect');
  const closed = await alice.page.waitForSelector('#messages li[data-kind=close]', WAIT);
  assert.equal(await closed.getAttribute('data-code'), '1000');
  assert.match((await alice.page.textContent('#state')) ?? '', /Closed with code 1000/);
  await bob.page.waitForSelector(`#messages li[data-kind=event][data-room=lobby]:has-text("Client ${alice.id} left")`, WAIT);
  assert.deepEqual(await membersShown(bob.page, 'lobby', 1), [bob.id]);

  // The server shuts down: Bob's page shows 1001 and the server's reason.
  assert.equal(await demo.stop('SIGTERM'), 0, 'the demo exits cleanly on SIGTERM');
  const serverClosed = await bob.page.waitForSelector('#messages li[data-kind=close]', WAIT);
  assert.equal(await serverClosed.getAttribute('data-code'), '1001');
  assert.equal(await serverClosed.getAttribute('data-reason'), 'the server is shutting down');
});

test('client.html opened from disk (file://) connects to the demo at the address typed in', { timeout: 60_000 }, async (t) => {
  const demo = await runScript(t, demoScript, ['--port', '0']);
  const browser = await launch();
  t.after(() => browser.close());
  const page = await (await browser.newContext()).newPage();
  await page.goto(new URL('../../../client.html', import.meta.url).href);
  assert.equal(await page.inputValue('#url'), 'ws://127.0.0.1:13254/', 'from disk, the default is the demo port');
  await page.fill('#url', `ws://127.0.0.1:${demo.port}/`);
  await page.press('#url', 'Enter');
  await page.waitForSelector('#state[data-state=open]:has-text("as client")', WAIT);
  assert.match((await page.textContent('#state')) ?? '', /Connected as client \d+/);
});


/** How many servers have subscribed to the Redis channel of a room (`PUBSUB NUMSUB`). */
async function roomSubscribers(redis: TestRedis, room: string): Promise<number> {
  const lines = (await redis.command('PUBSUB', 'NUMSUB', `${REDIS_CHANNEL}:topic:room:${room}`)).trim().split('\n');
  return Number(lines.at(-1));
}

test('on two server.ts joined by Redis, two pages in one room exchange a line and a named file; a page in another room gets neither', { timeout: 90_000 }, async (t) => {
  const redis = await startRedis(t);
  const first = await runScript(t, demoScript, ['--port', '0', '--redis', redis.url]);
  const second = await runScript(t, demoScript, ['--port', '0', '--redis', redis.url]);
  assert.notEqual(first.port, second.port);
  const browser = await launch();
  t.after(() => browser.close());

  const alice = await openChat(browser, `http://127.0.0.1:${first.port}/`);
  const bob = await openChat(browser, `http://127.0.0.1:${second.port}/`);
  const carol = await openChat(browser, `http://127.0.0.1:${second.port}/`);
  // Each server numbers its own clients: the pages show which server they are on.
  assert.deepEqual([alice.id, bob.id, carol.id], [`1@${first.port}`, `1@${second.port}`, `2@${second.port}`]);

  // Alice opens #garden, typed loosely: the page trims and lowercases the name.
  await joinByName(alice.page, '  Garden ', 'garden');
  // Bob's page, on the other server, lists the garden (the servers share their rooms) and joins it from there.
  await bob.page.click('#rooms li[data-room=garden] button[data-action=join]', WAIT);
  await bob.page.waitForSelector('#my-rooms li[data-room=garden] input[name=current]:checked', WAIT);
  await joinByName(carol.page, 'attic', 'attic');
  // Who is in the garden, and how many are in each room, is the same seen from either server.
  assert.deepEqual((await membersShown(bob.page, 'garden', 2)).sort(), [alice.id, bob.id].sort());
  assert.deepEqual((await membersShown(alice.page, 'garden', 2)).sort(), [alice.id, bob.id].sort());
  for (const [room, count] of [['garden', 2], ['lobby', 3], ['attic', 1]] as const) {
    await carol.page.waitForSelector(`#rooms li[data-room=${room}][data-count="${count}"]`, WAIT);
    await alice.page.waitForSelector(`#rooms li[data-room=${room}][data-count="${count}"]`, WAIT);
  }
  // Both servers have the garden's channel: what one publishes there from now on reaches the other.
  for (let attempt = 0; attempt < 200 && (await roomSubscribers(redis, 'garden')) < 2; attempt++) await delay(25);
  assert.equal(await roomSubscribers(redis, 'garden'), 2, 'both servers subscribed to the garden');
  assert.equal(await roomSubscribers(redis, 'attic'), 1, 'only the second server has a client in the attic');

  await alice.page.fill('#text', 'hello garden ✓');
  await alice.page.press('#text', 'Enter');
  const line = await bob.page.waitForSelector(`#messages li[data-kind=text][data-room=garden][data-from="${alice.id}"]`, WAIT);
  assert.match((await line.textContent()) ?? '', /hello garden ✓/);

  const text = Buffer.from('Les poires sont mûres.\n', 'utf8');
  await bob.page.setInputFiles('#file', { name: 'notes été.txt', mimeType: 'text/plain', buffer: text });
  await bob.page.click('#send-file');
  const entry = await alice.page.waitForSelector(`#messages li[data-kind=binary][data-room=garden][data-from="${bob.id}"]`, WAIT);
  assert.equal(await entry.getAttribute('data-name'), 'notes été.txt');
  assert.equal(await entry.getAttribute('data-mime'), 'text/plain');
  const received = await downloaded(alice.page, entry);
  assert.deepEqual([received.name, received.type], ['notes été.txt', 'text/plain'], 'offered under its name, with its type');
  assert.ok(received.bytes.equals(text), 'the file sent on the second server arrives whole on the first');

  // Alice and Bob each write in the lobby: once Carol has both lines, anything of theirs for the garden would
  // have reached her before (each sender's messages arrive in order).
  for (const [who, fence] of [[alice, 'alice in the lobby'], [bob, 'bob in the lobby']] as const) {
    await who.page.check('#my-rooms li[data-room=lobby] input[name=current]');
    await who.page.fill('#text', fence);
    await who.page.press('#text', 'Enter');
    await carol.page.waitForSelector(`#messages li[data-kind=text][data-room=lobby]:has-text("${fence}")`, WAIT);
  }
  assert.equal(await carol.page.locator('#messages li[data-room=garden]').count(), 0, 'the attic page got nothing of the garden');
  assert.equal(await carol.page.locator('#messages li[data-kind=binary]').count(), 0, 'nor its file');
  // The senders' own pages show their own line, not a copy relayed back.
  assert.equal(await alice.page.locator(`#messages li[data-kind=text][data-from="${alice.id}"]`).count(), 0);

  // Alice leaves the garden: Bob's page, on the other server, hears it and lists only himself.
  await bob.page.check('#my-rooms li[data-room=garden] input[name=current]');
  await alice.page.click('#my-rooms li[data-room=garden] button[data-action=leave]');
  await bob.page.waitForSelector(`#messages li[data-kind=event][data-room=garden]:has-text("Client ${alice.id} left #garden")`, WAIT);
  assert.deepEqual(await membersShown(bob.page, 'garden', 1), [bob.id]);
  await alice.page.waitForSelector('#my-rooms li[data-room=garden]', { ...WAIT, state: 'detached' });

  // The first server stops: it says goodbye, and the second's pages no longer count its client.
  assert.equal(await first.stop('SIGTERM'), 0);
  await carol.page.waitForSelector('#rooms li[data-room=lobby][data-count="2"]', WAIT);
  assert.equal(await second.stop('SIGTERM'), 0);
});

test('client.html shows what a hostile server sends as text only, and saves its files under a clean name', { timeout: 60_000 }, async (t) => {
  // A server of the tests' own serves the page and then sends it everything a page should not trust.
  const page = readFileSync(new URL('../../../client.html', import.meta.url));
  const http = createServer((_request, response) => response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(page));
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  // Not awaited: the WebSocket's socket counts as a connection of `http` until the server under test is shut down.
  t.after(() => {
    http.closeAllConnections();
    http.close();
  });
  const h = await startServer(t, { server: http }, { echo: false });
  const me = '<img src=x onerror="window.pwned=1">';
  const hostile: Array<string | Buffer> = [
    JSON.stringify({ type: 'welcome', id: me, maxMessageSize: -5, limits: 'none', text: '<script>window.pwned=2</script>' }),
    JSON.stringify({ type: 'joined', room: 'lobby', id: me, text: '<b>joined</b>' }),
    JSON.stringify({ type: 'joined', room: '"><img src=x onerror="window.pwned=3">', id: me }),
    JSON.stringify({ type: 'members', room: 'lobby', count: 1e300, members: ['<b>bold</b>', 42, {}, 'x'.repeat(5000)] }),
    JSON.stringify({ type: 'rooms', rooms: [{ name: 'lobby', count: '7' }, { name: '<svg onload="window.pwned=4">', count: 1 }, null, 'str'], more: -1 }),
    JSON.stringify({ type: 'message', room: 'lobby', from: '<img src=x onerror="window.pwned=5">', text: '<img src=x onerror="window.pwned=6">' }),
    'not json <script>window.pwned=7</script>',
    JSON.stringify({ type: 'file', room: 'lobby', from: 'mallory', name: '../../evil\u202egpj.html', mime: 'text/html', size: 1 }),
    Buffer.from('<script>window.pwned=8</script>'),
    Buffer.from([1, 2, 3]), // no file event before it
    JSON.stringify({ type: 'error', code: '<i>', text: '<img src=x onerror="window.pwned=9">' }),
    JSON.stringify({ type: '__proto__', text: 'the end' }),
  ];
  h.server.setFnNewClient((client, server) => {
    for (const message of hostile) server.sendMessage(client, message);
  });
  const browser = await launch();
  t.after(() => browser.close());
  const tab = await (await browser.newContext()).newPage();
  await tab.goto(`http://127.0.0.1:${h.server.port}/`);
  await tab.click('#connect');
  await tab.waitForSelector('#messages li:has-text("the end")', WAIT);

  assert.equal(await tab.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined, 'no script of the server ran');
  assert.equal(await tab.locator('main img, main script, main svg, main b, main i').count(), 0, 'no element of the server was made');
  assert.match((await tab.textContent('#state')) ?? '', /Connected as client <img src=x onerror="window\.pwned=1">/);
  assert.match((await tab.textContent('#messages')) ?? '', /<img src=x onerror="window\.pwned=6">/, 'shown as text');
  // Only valid room names are taken; counts that are not counts are 0; names are cut to 100 characters.
  assert.deepEqual(await tab.$$eval('#rooms li[data-room]', (items) => items.map((item) => [(item as HTMLElement).dataset['room'], (item as HTMLElement).dataset['count']])), [['lobby', '0']]);
  assert.deepEqual(await tab.$$eval('#my-rooms li[data-room]', (items) => items.map((item) => (item as HTMLElement).dataset['room'])), ['lobby']);
  const members = await tab.$$eval('#members li[data-name]', (items) => items.map((item) => (item as HTMLElement).dataset['name'] ?? ''));
  assert.deepEqual(members, ['<b>bold</b>', '?', '?', 'x'.repeat(100)]);
  // The file: a name without path or bidi trick, its type shown, but an HTML download is saved as bytes.
  const files = await tab.$$('#messages li[data-kind=binary]');
  assert.equal(files.length, 2);
  const evil = await downloaded(tab, files[0]!);
  assert.equal(evil.name, '.._.._evilgpj.html');
  assert.equal(await files[0]!.getAttribute('data-mime'), 'text/html');
  assert.equal(evil.type, 'application/octet-stream', 'an active type is not given to the Blob');
  assert.equal((await downloaded(tab, files[1]!)).name, 'file.bin', 'a file without its event gets a plain name');
});
