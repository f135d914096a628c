// The third door, in a real browser: headless Chromium loads client.html from server.ts, and two pages chat.
// This test never skips: without Chromium it fails (`npm test` installs Debian's `chromium` first when it may).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runScript } from '../support/demo.ts';
import { startRedis } from '../support/redis-server.ts';
import { CHROMIUM_PATH as CHROMIUM } from '../support/system-programs.ts';

const demoScript = fileURLToPath(new URL('../../server.js', import.meta.url)); // build/server.js
const WAIT = { timeout: 10_000 };

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

test('two pages of client.html chat through server.ts: text both ways, a file as binary, and a close code', { timeout: 90_000 }, async (t) => {
  const demo = await runScript(t, demoScript, ['--port', '0']);
  const browser = await launch();
  t.after(() => browser.close());
  const url = `http://127.0.0.1:${demo.port}/`;

  const alice = await openChat(browser, url);
  const bob = await openChat(browser, url);
  // Chromium offers permessage-deflate and the demo accepts it (RFC 7692): the page shows what was agreed.
  assert.match((await alice.page.textContent('#state')) ?? '', /\(permessage-deflate[^)]*\)/);
  await alice.page.waitForSelector(`#messages li[data-kind=event]:has-text("client ${bob.id} has joined")`, WAIT);

  // Text, typed and sent with the keyboard (Enter submits).
  await alice.page.fill('#text', 'hello from Alice');
  await alice.page.press('#text', 'Enter');
  const atBob = await bob.page.waitForSelector(`#messages li[data-kind=text][data-from="${alice.id}"]`, WAIT);
  assert.match((await atBob.textContent()) ?? '', /hello from Alice/);

  // And back, with characters outside ASCII.
  await bob.page.fill('#text', 'hi Alice 👋 — ça va?');
  await bob.page.click('#send-text');
  const atAlice = await alice.page.waitForSelector(`#messages li[data-kind=text][data-from="${bob.id}"]`, WAIT);
  assert.match((await atAlice.textContent()) ?? '', /hi Alice 👋 — ça va\?/);

  // A small file travels as one binary message and arrives byte for byte.
  // Long enough to be compressed on its way (over the 1 KiB threshold), in both directions.
  const long = `${'the quick brown fox jumps over the lazy dog; '.repeat(200)}end`;
  await alice.page.fill('#text', long);
  await alice.page.press('#text', 'Enter');
  const longAtBob = await bob.page.waitForSelector(`#messages li[data-kind=text][data-from="${alice.id}"]:has-text("lazy dog; end")`, WAIT);
  assert.ok(((await longAtBob.textContent()) ?? '').includes(long), 'the compressed message arrives whole');

  const file = Buffer.alloc(5000);
  for (let i = 0; i < file.length; i++) file[i] = (i * 7 + (i >> 8)) & 0xff;
  await alice.page.setInputFiles('#file', { name: 'pattern.bin', mimeType: 'application/octet-stream', buffer: file });
  await alice.page.click('#send-file');
  const entry = await bob.page.waitForSelector(`#messages li[data-kind=binary][data-from="${alice.id}"]`, WAIT);
  assert.equal(await entry.getAttribute('data-size'), String(file.length));
  assert.match((await entry.textContent()) ?? '', /5000 bytes/);
  const href = await entry.$eval('a.download', (link) => (link as HTMLAnchorElement).href);
  const received = await bob.page.evaluate(async (blobUrl) => {
    const bytes = new Uint8Array(await (await fetch(blobUrl)).arrayBuffer());
    return Array.from(bytes);
  }, href);
  assert.ok(Buffer.from(received).equals(file), 'the downloaded file equals the one sent');

  // Alice disconnects: her page shows 1000; Bob's page hears that she left.
  await alice.page.click('#disconnect');
  const closed = await alice.page.waitForSelector('#messages li[data-kind=close]', WAIT);
  assert.equal(await closed.getAttribute('data-code'), '1000');
  assert.match((await alice.page.textContent('#state')) ?? '', /Closed with code 1000/);
  await bob.page.waitForSelector(`#messages li[data-kind=event]:has-text("Client ${alice.id} left")`, WAIT);

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

test('two browsers on two server.ts processes joined by one Redis chat as one: text and a file cross', { timeout: 90_000 }, async (t) => {
  const redis = await startRedis(t);
  const first = await runScript(t, demoScript, ['--port', '0', '--redis', redis.url]);
  const second = await runScript(t, demoScript, ['--port', '0', '--redis', redis.url]);
  assert.notEqual(first.port, second.port);
  const browser = await launch();
  t.after(() => browser.close());

  const alice = await openChat(browser, `http://127.0.0.1:${first.port}/`);
  const bob = await openChat(browser, `http://127.0.0.1:${second.port}/`);
  // Each server numbers its own clients: the pages show which server they are on.
  assert.equal(alice.id, `1@${first.port}`);
  assert.equal(bob.id, `1@${second.port}`);
  await alice.page.waitForSelector(`#messages li[data-kind=event]:has-text("client ${bob.id} has joined")`, WAIT);

  await alice.page.fill('#text', 'hello from the first server ✓');
  await alice.page.press('#text', 'Enter');
  const atBob = await bob.page.waitForSelector(`#messages li[data-kind=text][data-from="${alice.id}"]`, WAIT);
  assert.match((await atBob.textContent()) ?? '', /hello from the first server ✓/);

  const file = Buffer.alloc(3000);
  for (let i = 0; i < file.length; i++) file[i] = (i * 13 + 5) & 0xff;
  await bob.page.setInputFiles('#file', { name: 'pattern.bin', mimeType: 'application/octet-stream', buffer: file });
  await bob.page.click('#send-file');
  const entry = await alice.page.waitForSelector(`#messages li[data-kind=binary][data-from="${bob.id}"]`, WAIT);
  const href = await entry.$eval('a.download', (link) => (link as HTMLAnchorElement).href);
  const received = await alice.page.evaluate(async (blobUrl) => Array.from(new Uint8Array(await (await fetch(blobUrl)).arrayBuffer())), href);
  assert.ok(Buffer.from(received).equals(file), 'the file sent on the second server arrives whole on the first');
  // The sender's own page shows only its own line, not a copy relayed back.
  assert.equal(await alice.page.locator(`#messages li[data-kind=text][data-from="${alice.id}"]`).count(), 0);

  assert.equal(await first.stop('SIGTERM'), 0);
  assert.equal(await second.stop('SIGTERM'), 0);
});
