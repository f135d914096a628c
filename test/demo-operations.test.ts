// The chat demo as an operator runs it: `GET /healthz` (200 while serving, 503 while draining), `GET /metrics`
// (the Prometheus text exposition format 0.0.4, from `server.stats`), and `npm start`'s own command. The demo runs
// as a process of its own (build/server.js), as in test/demo-rooms.test.ts; the metrics' formatter is also checked
// in this process against a server whose `stats` the test reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatMetrics, METRICS_CONTENT_TYPE } from '../server-metrics.ts';
import type { ServerStats } from '../websocket-server.ts';
import { joinChat, runScript } from './support/demo.ts';
import { closePayload, Op } from './support/frames.ts';
import { echo, openRaw, openWs, startServer } from './support/harness.ts';
import { rawRequest } from './support/raw-client.ts';
import { until, within } from './support/wait.ts';

const root = fileURLToPath(new URL('../../', import.meta.url)); // from build/test/ to the repository
const demoScript = join(root, 'build/server.js');
const LIMIT = { timeout: 30_000 };

async function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  const response = await within(fetch(`http://127.0.0.1:${port}${path}`), `GET ${path}`);
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.text() };
}

// ---------------------------------------------------------------------------------------------------------------
// A strict reader of the text exposition format 0.0.4: it throws on any line the format does not allow.

const METRIC_NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
const VALUE = '[+-]?(?:\\d+(?:\\.\\d*)?(?:[eE][+-]?\\d+)?|Inf|NaN)';
const HELP_LINE = new RegExp(`^# HELP (${METRIC_NAME}) (.*)$`);
const TYPE_LINE = new RegExp(`^# TYPE (${METRIC_NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SAMPLE_LINE = new RegExp(`^(${METRIC_NAME})(?:\\{(${LABEL}(?:,${LABEL})*)?\\})? (${VALUE})(?: -?\\d+)?$`);

/** The samples of an exposition, by `name` or `name{label="value"}` (one label, as the demo writes), unescaped. */
function readExposition(text: string): Map<string, number> {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed');
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.slice(0, -1).split('\n')) {
    const help = HELP_LINE.exec(line);
    const type = TYPE_LINE.exec(line);
    if (help) continue;
    if (type) {
      assert.ok(!types.has(type[1]!), `one TYPE line for ${type[1]}`);
      if (type[2] === 'counter') assert.match(type[1]!, /_total$/, 'a counter ends in _total');
      types.set(type[1]!, type[2]!);
      continue;
    }
    const sample = SAMPLE_LINE.exec(line);
    assert.ok(sample, `a line of the exposition format: ${JSON.stringify(line)}`);
    assert.ok(types.has(sample[1]!), `${sample[1]} has its TYPE before its samples`);
    const labels = sample[2] === undefined ? '' : `{${sample[2].replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c))}}`;
    assert.ok(!samples.has(sample[1]! + labels), `one sample of ${sample[1]}${labels}`);
    samples.set(sample[1]! + labels, Number(sample[3]));
  }
  return samples;
}

/** What the exposition of `stats` must hold, sample by sample. */
function expectedSamples(stats: ServerStats, draining: number): Map<string, number> {
  const expected = new Map<string, number>([
    ['websocket_connections_open', stats.connectionsOpen],
    ['websocket_connections_total', stats.connectionsTotal],
    ['websocket_messages_in_total', stats.messagesIn],
    ['websocket_messages_out_total', stats.messagesOut],
    ['websocket_bytes_in_total', stats.bytesIn],
    ['websocket_bytes_out_total', stats.bytesOut],
    ['websocket_messages_dropped_total', stats.messagesDropped],
    ['websocket_broadcasts_published_total', stats.broadcastsPublished],
    ['websocket_broadcasts_received_total', stats.broadcastsReceived],
    ['chat_draining', draining],
  ]);
  for (const [code, count] of Object.entries(stats.handshakeFailures)) expected.set(`websocket_handshake_failures_total{code="${code}"}`, count);
  for (const [code, count] of Object.entries(stats.closeCodes)) expected.set(`websocket_clients_closed_total{code="${code}"}`, count);
  return expected;
}

test('the metrics are server.stats, every line valid exposition format 0.0.4, counters ending in _total', LIMIT, async (t) => {
  const h = await startServer(t);
  const ws = await openWs(t, `ws://127.0.0.1:${h.server.port}/`);
  assert.equal(await echo(ws, 'hello'), 'hello');
  ws.close(1000);
  await until(() => h.left.length === 1, 'the client to leave');
  const refused = await within(rawRequest(h.server.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'a refusal');
  assert.equal(refused.status, 426);
  const stats = h.server.stats;
  assert.ok(stats.messagesIn > 0 && Object.keys(stats.handshakeFailures).length > 0 && stats.closeCodes['1000'] === 1);
  assert.deepEqual(readExposition(formatMetrics(stats, false)), expectedSamples(stats, 0));
  assert.deepEqual(readExposition(formatMetrics(stats, true)), expectedSamples(stats, 1));
});

test('a label value with a quote, a backslash or a line feed is escaped, and reads back as it was', () => {
  const code = 'a"b\\c\nd';
  const stats: ServerStats = {
    connectionsOpen: 0, connectionsTotal: 0, messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0, messagesDropped: 0,
    handshakeFailures: { [code]: 3 }, closeCodes: {}, broadcastsPublished: 0, broadcastsReceived: 0,
  };
  const text = formatMetrics(stats, false);
  assert.ok(text.includes('websocket_handshake_failures_total{code="a\\"b\\\\c\\nd"} 3'), text);
  assert.equal(readExposition(text).get(`websocket_handshake_failures_total{code="${code}"}`), 3);
});

test("the demo's GET /metrics answers in the exposition format's content type, with its clients counted", LIMIT, async (t) => {
  const demo = await runScript(t, demoScript, ['--port', '0']);
  await joinChat(t, demo.port);
  const metrics = await get(demo.port, '/metrics');
  assert.equal(metrics.status, 200);
  assert.equal(metrics.type, METRICS_CONTENT_TYPE);
  assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
  const samples = readExposition(metrics.body);
  assert.equal(samples.get('websocket_connections_open'), 1);
  assert.equal(samples.get('websocket_connections_total'), 1);
  assert.equal(samples.get('chat_draining'), 0);
});

test("the demo's GET /healthz answers 200 while it serves, and 503 while its connections drain after SIGTERM", LIMIT, async (t) => {
  const demo = await runScript(t, demoScript, ['--port', '0']);
  assert.deepEqual(await get(demo.port, '/healthz'), { status: 200, type: 'text/plain; charset=utf-8', body: 'ok\n' });
  // A client that never answers the server's Close keeps the shutdown draining (for up to closeTimeout).
  const raw = await openRaw(t, demo.port);
  const exited = once(demo.child, 'exit');
  demo.child.kill('SIGTERM');
  const close = await within(raw.closeFrame(), 'the Close frame of the shutdown');
  assert.equal(close.code, 1001);
  const draining = await get(demo.port, '/healthz');
  assert.deepEqual(draining, { status: 503, type: 'text/plain; charset=utf-8', body: 'draining\n' });
  assert.equal(readExposition((await get(demo.port, '/metrics')).body).get('chat_draining'), 1);
  raw.sendFrame({ opcode: Op.CLOSE, payload: closePayload(1001) }); // the last connection closes: the demo ends
  // Within closeTimeout (5 s) and a margin: a client attached through a node:http server is seen to have closed
  // only at closeTimeout (a behaviour of the library, not of the demo).
  const [code] = (await within(exited, 'the demo to exit', 15_000)) as [number | null];
  assert.equal(code, 0);
});

test("npm start's command starts the demo from a clone, on this Node", LIMIT, async (t) => {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [program, script, ...args] = manifest.scripts['start']!.split(' ');
  assert.equal(program, 'node');
  // A copy of what a clone has at its top (the demo's sources, the launcher, tsconfigs, package.json): on Node 20
  // the launcher compiles into build/, which must not be this run's build/.
  const clone = mkdtempSync(join(tmpdir(), 'demo-start-'));
  t.after(() => rmSync(clone, { recursive: true, force: true }));
  for (const entry of readdirSync(root)) {
    const isFile = statSync(join(root, entry)).isFile();
    if (isFile || entry === 'adapters' || entry === 'scripts') cpSync(join(root, entry), join(clone, entry), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(clone, 'node_modules'));
  const demo = await runScript(t, join(clone, script!), [...args, '--port', '0'], clone);
  assert.match(demo.output(), /Chat demo: open http:\/\/127\.0\.0\.1:\d+\//);
  assert.equal((await get(demo.port, '/healthz')).status, 200);
  const peer = await joinChat(t, demo.port);
  assert.equal(peer.events[0]!['type'], 'welcome');
  assert.equal(await demo.stop(), 0);
});
