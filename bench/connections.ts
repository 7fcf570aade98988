import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Child, ROOT, rssBytes, scrapeMetrics } from './servers.ts';

/** The hub's memory and event-loop delay, idle and then holding `count` idle subscriptions. */
export interface ConnectionsResult {
  subscriptions: number;
  connected: number;
  failed: number;
  /** Seconds the client process took to open every connection and subscribe. */
  openSeconds: number;
  idle: Snapshot;
  loaded: Snapshot;
  /** (loaded − idle RSS) ÷ connected, in KiB. */
  kibPerSubscription: number;
  /** One message published to every subscription: how many arrived and how long the last took. */
  broadcast: { received: number; ms: number };
}

export interface Snapshot {
  rssMB: number;
  heapUsedMB: number;
  /** Event-loop delay over the measuring window (prom-client's monitorEventLoopDelay), ms. */
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  eventLoopDelayMeanMs: number;
}

type FromClient = { type: 'open'; connected: number; failed: number; ms: number } | { type: 'delivered'; received: number; ms: number };

const MB = 1024 * 1024;

/**
 * The prom-client event-loop histogram restarts at every scrape, so a scrape, `windowSeconds`
 * of quiet, and a second scrape measure that window alone.
 */
async function snapshot(hub: Child, windowSeconds: number): Promise<Snapshot> {
  await scrapeMetrics(hub.url);
  await sleep(windowSeconds * 1000);
  const m = await scrapeMetrics(hub.url);
  const ms = (name: string) => Math.round((m.get(name) ?? NaN) * 1000 * 100) / 100;
  return {
    rssMB: Math.round((rssBytes(hub.pid) / MB) * 10) / 10,
    heapUsedMB: Math.round(((m.get('nodejs_heap_size_used_bytes') ?? NaN) / MB) * 10) / 10,
    eventLoopDelayP99Ms: ms('nodejs_eventloop_lag_p99_seconds'),
    eventLoopDelayMaxMs: ms('nodejs_eventloop_lag_max_seconds'),
    eventLoopDelayMeanMs: ms('nodejs_eventloop_lag_mean_seconds'),
  };
}

async function subscriptionsStarted(hub: Child): Promise<number> {
  const m = await scrapeMetrics(hub.url);
  let total = 0;
  for (const [key, value] of m) {
    if (key.startsWith('junction_graphql_operations_total{') && key.includes('type="subscription"') && key.includes('outcome="success"')) total += value;
  }
  return total;
}

/**
 * Opens `count` graphql-ws connections to the hub from a separate client process
 * (bench/subscribers.ts), each holding one subscription, and measures the hub before and after.
 */
export async function measureConnections(hub: Child, count: number, windowSeconds: number, log: (line: string) => void): Promise<ConnectionsResult> {
  const idle = await snapshot(hub, windowSeconds);
  log(`  idle: RSS ${idle.rssMB} MB, event-loop delay p99 ${idle.eventLoopDelayP99Ms} ms`);

  const client = spawn(process.execPath, ['--import', 'tsx', 'bench/subscribers.ts', '--url', hub.url.replace(/^http/, 'ws'), '--count', String(count)], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => client.once('exit', () => resolve()));
  const messages: FromClient[] = [];
  let wake: (() => void) | undefined;
  client.on('message', (message: FromClient) => {
    messages.push(message);
    wake?.();
  });
  const next = async <T extends FromClient['type']>(type: T, timeoutMs: number): Promise<Extract<FromClient, { type: T }> | undefined> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = messages.findIndex((m) => m.type === type);
      if (index >= 0) return messages.splice(index, 1)[0] as Extract<FromClient, { type: T }>;
      if (Date.now() >= deadline || client.exitCode !== null) return undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.min(1000, deadline - Date.now()));
      });
    }
  };

  try {
    const opened = await next('open', 300_000);
    if (!opened) throw new Error('the subscriber process did not open its connections within 300 s');
    log(`  ${opened.connected} connections open (${opened.failed} failed) in ${(opened.ms / 1000).toFixed(1)} s`);
    // graphql-ws does not acknowledge a subscribe: the hub's own counter says when all started.
    const deadline = Date.now() + 60_000;
    while ((await subscriptionsStarted(hub)) < opened.connected && Date.now() < deadline) await sleep(200);
    await sleep(Math.min(5, windowSeconds) * 1000);
    const loaded = await snapshot(hub, windowSeconds);
    log(`  with ${opened.connected} idle subscriptions: RSS ${loaded.rssMB} MB, event-loop delay p99 ${loaded.eventLoopDelayP99Ms} ms`);

    client.send({ type: 'expect' });
    const res = await fetch(hub.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'mutation { postMessage(text: "hello, subscribers") { id } }' }),
    });
    if (res.status !== 200) throw new Error(`postMessage answered ${res.status}: ${await res.text()}`);
    let delivered = await next('delivered', 30_000);
    if (!delivered) {
      client.send({ type: 'report' });
      delivered = await next('delivered', 5_000);
    }
    const broadcast = { received: delivered?.received ?? 0, ms: Math.round(delivered?.ms ?? NaN) };
    log(`  one message to every subscription: ${broadcast.received}/${opened.connected} delivered in ${broadcast.ms} ms`);
    return {
      subscriptions: count,
      connected: opened.connected,
      failed: opened.failed,
      openSeconds: Math.round(opened.ms / 100) / 10,
      idle,
      loaded,
      kibPerSubscription: opened.connected ? Math.round((((loaded.rssMB - idle.rssMB) * 1024) / opened.connected) * 10) / 10 : 0,
      broadcast,
    };
  } finally {
    if (client.connected) client.send({ type: 'close' });
    const timer = setTimeout(() => client.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
}
