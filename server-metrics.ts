/**
 * The chat demo's `GET /metrics`: `server.stats` in the Prometheus text exposition format, version 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/), written by hand so that the demo keeps no
 * runtime dependency (`prom-client` would be the one to take in an application that has some).
 *
 * The format, as far as used here: for each metric a `# HELP name text` and a `# TYPE name counter|gauge` line,
 * then one sample per line, `name{label="value",...} number`; a counter's name ends in `_total`; label values
 * escape `\`, `"` and line feeds; names match [a-zA-Z_:][a-zA-Z0-9_:]*; the body ends with a line feed.
 */
import type { ServerStats } from './websocket-server.ts';

/** The content type of the text format: scrapers read the version from it. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Readonly<Record<string, string>>;

interface Metric {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly samples: ReadonlyArray<readonly [labels: Labels, value: number]>;
}

/** A label value as the format quotes it: backslash, double quote and line feed escaped. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes only backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatMetric(metric: Metric): string {
  const lines = [`# HELP ${metric.name} ${escapeHelp(metric.help)}`, `# TYPE ${metric.name} ${metric.type}`];
  for (const [labels, value] of metric.samples) {
    const pairs = Object.entries(labels).map(([name, text]) => `${name}="${escapeLabelValue(text)}"`);
    lines.push(`${metric.name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${value}`);
  }
  return lines.join('\n');
}

/** One sample per key of a count-by-key record, the key as the label `label`, in a stable (sorted) order. */
const byKey = (counts: Readonly<Record<string, number>>, label: string): Array<readonly [Labels, number]> =>
  Object.keys(counts)
    .sort()
    .map((key) => [{ [label]: key }, counts[key]!] as const);

/** The metrics of one server, from its `stats` and whether it is draining, as the body of `GET /metrics`. */
export function formatMetrics(stats: ServerStats, draining: boolean): string {
  const counter = (name: string, help: string, value: number): Metric => ({ name, type: 'counter', help, samples: [[{}, value]] });
  const metrics: Metric[] = [
    { name: 'websocket_connections_open', type: 'gauge', help: 'Clients connected now.', samples: [[{}, stats.connectionsOpen]] },
    counter('websocket_connections_total', 'Clients that completed a handshake.', stats.connectionsTotal),
    counter('websocket_messages_in_total', 'Complete messages received from clients.', stats.messagesIn),
    counter('websocket_messages_out_total', 'Data messages handed to sockets (a broadcast counts once per client).', stats.messagesOut),
    counter('websocket_bytes_in_total', 'Bytes received from clients after their handshakes, as on the wire.', stats.bytesIn),
    counter('websocket_bytes_out_total', 'Bytes of data frames handed to sockets, as on the wire.', stats.bytesOut),
    counter('websocket_messages_dropped_total', 'Messages not sent: to a client not open, or dropped as too slow.', stats.messagesDropped),
    {
      name: 'websocket_handshake_failures_total',
      type: 'counter',
      help: 'Refused handshakes, by error code.',
      samples: byKey(stats.handshakeFailures, 'code'),
    },
    {
      name: 'websocket_clients_closed_total',
      type: 'counter',
      help: 'Clients that left, by close code (1006: no Close frame).',
      samples: byKey(stats.closeCodes, 'code'),
    },
    counter('websocket_broadcasts_published_total', 'Broadcasts handed to the adapter for the other servers.', stats.broadcastsPublished),
    counter('websocket_broadcasts_received_total', 'Broadcasts of other servers received from the adapter.', stats.broadcastsReceived),
    { name: 'chat_draining', type: 'gauge', help: '1 while the demo shuts down (GET /healthz answers 503), else 0.', samples: [[{}, draining ? 1 : 0]] },
  ];
  return `${metrics.map(formatMetric).join('\n')}\n`;
}
