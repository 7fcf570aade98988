import { parseArgs } from 'node:util';
import { type Client, createClient } from 'graphql-ws';
import WebSocket from 'ws';

/**
 * The client side of the webhook → subscriber latency test of `npm run bench` (bench/events.ts),
 * run as its own process, never in the hub's: opens `--count` graphql-ws connections to `--url`,
 * each holding one `subscription { events(source: …) { id payload } }` (the same document, so the
 * hub's fan-out dedupe shares one execution among them), and times every delivery:
 * receive time − the `sentAt` the bench put in the payload just before posting the webhook
 * (both `performance.timeOrigin + performance.now()`, epoch milliseconds, on the same machine).
 *
 * Messages to the parent (IPC): `{type: 'open', connected, failed, ms}` once every connection is
 * acknowledged (or failed); `{type: 'delivered', id, received}` when every connected subscriber
 * got the event whose delivery id is `id`; on `{type: 'report'}`, `{type: 'report', …}` with the
 * latency percentiles over every measured event (delivery ids starting `warm-` are not measured),
 * the number of subscribers each one reached and this process's CPU time since the parent's
 * `{type: 'mark'}`. `{type: 'close'}` ends everything.
 */
const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    source: { type: 'string' },
    count: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '200' },
  },
});
if (!values.url || !values.source || !process.send) throw new Error('run by bench/events.ts: --url, --source and an IPC channel are required');
const send = (message: object) => process.send!(message);

const count = Number(values.count);
const concurrency = Number(values.concurrency);
const query = `subscription { events(source: ${JSON.stringify(values.source)}) { id payload } }`;
const now = () => performance.timeOrigin + performance.now();

const clients: Client[] = [];
let connected = 0;
let failed = 0;
let errors = 0;

/** Per measured delivery id: how many subscribers got it, and each one's latency (ms). */
interface PerEvent {
  received: number;
  latencies: number[];
}
const events = new Map<string, PerEvent>();

interface EventMessage {
  data?: { events?: { id: string; payload: { id?: string; sentAt?: number } } };
}

function onEvent(message: EventMessage) {
  const at = now();
  const payload = message.data?.events?.payload;
  const id = payload?.id;
  if (typeof id !== 'string') return;
  let entry = events.get(id);
  if (!entry) {
    entry = { received: 0, latencies: [] };
    events.set(id, entry);
  }
  entry.received++;
  if (typeof payload!.sentAt === 'number' && !id.startsWith('warm-')) entry.latencies.push(at - payload!.sentAt);
  if (entry.received === connected) send({ type: 'delivered', id, received: entry.received });
}

function open(): Promise<void> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (ok: boolean) => {
      if (settled) return;
      settled = true;
      if (ok) connected++;
      else failed++;
      resolve();
    };
    const client = createClient({
      url: values.url!,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      on: { connected: () => settle(true), closed: () => settle(false), error: () => settle(false) },
    });
    clients.push(client);
    client.subscribe<EventMessage['data']>(
      { query },
      {
        next: (message) => onEvent(message as EventMessage),
        error: () => {
          errors++;
          settle(false);
        },
        complete: () => undefined,
      },
    );
  });
}

const started = performance.now();
for (let i = 0; i < count; i += concurrency) {
  await Promise.all(Array.from({ length: Math.min(concurrency, count - i) }, open));
}
send({ type: 'open', connected, failed, ms: performance.now() - started });

/** CPU use at the parent's `{type: 'mark'}` (the measured events start). */
let mark = process.cpuUsage();

function report() {
  const cpu = process.cpuUsage(mark);
  const measured = [...events].filter(([id]) => !id.startsWith('warm-'));
  const total = measured.reduce((n, [, e]) => n + e.latencies.length, 0);
  const all = new Float64Array(total);
  let at = 0;
  for (const [, e] of measured) {
    all.set(e.latencies, at);
    at += e.latencies.length;
  }
  all.sort();
  const pct = (p: number) => (all.length ? all[Math.min(all.length - 1, Math.floor((p / 100) * all.length))]! : NaN);
  const r = (n: number) => Math.round(n * 10) / 10;
  send({
    type: 'report',
    connected,
    errors,
    samples: all.length,
    p50: r(pct(50)),
    p90: r(pct(90)),
    p99: r(pct(99)),
    max: r(all.length ? all[all.length - 1]! : NaN),
    /** This process's CPU time since the mark, ms: what receiving and timing the events cost here. */
    cpuMs: r((cpu.user + cpu.system) / 1000),
    /** Subscribers reached, per measured event, in the order they were first seen. */
    receivedPerEvent: measured.map(([, e]) => e.received),
  });
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'mark') mark = process.cpuUsage();
  else if (message.type === 'report') report();
  else if (message.type === 'close') {
    void Promise.allSettled(clients.map((c) => c.dispose())).then(() => process.exit(0));
  }
});
