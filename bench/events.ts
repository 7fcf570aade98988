import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { type Child, cpuMs, ROOT, scrapeMetrics, WEBHOOK } from './servers.ts';

/**
 * The events step of `npm run bench` (README "Performance"): webhook ingestion (signed POSTs
 * answered 202 per second, each durably stored in the SQLite event log) and webhook → subscriber
 * latency with N graphql-ws subscribers to `Subscription.events`, held by a separate process
 * (bench/event-subscribers.ts).
 */
export interface EventsResult {
  /** The webhook connector's name, which is the event log source. */
  source: string;
  /** The store and its own append rate, measured alone in the bench process (no HTTP, no hub). */
  store: StoreAlone;
  ingestion: IngestionResult | null;
  latency: LatencyResult[];
}

export interface StoreAlone {
  kind: 'sqlite';
  synchronous: 'FULL';
  appends: number;
  seconds: number;
  /** Appends per second of SqliteEventLog.append, one after another. */
  perSecond: number;
  /** Mean milliseconds per append. */
  meanMs: number;
}

export interface IngestionResult {
  connections: number;
  /** Seconds of load before the window (longer than asked while connections were being accepted). */
  warmupSeconds: number;
  durationSeconds: number;
  /** 202 answers per second over the measured window. */
  perSecond: number;
  /** 202 answers in each whole second of the window. */
  bySecond: number[];
  /** Latency of the window's POSTs, ms. */
  p50: number;
  p99: number;
  /** 202 answers over the whole run (warm-up, window and the drain after it). */
  accepted: number;
  /** Answers other than 202 (status → count); must be empty. */
  otherStatuses: Record<string, number>;
  /** Connection errors and timeouts; POSTs sent but never answered. Must be 0. */
  errors: number;
  unanswered: number;
  /** Events the log holds for the source after the run, minus before it (`hub { eventSources }`). */
  stored: number;
  /** Every answer was 202, none went unanswered, and the log holds exactly as many events as 202s. */
  allStored: boolean;
  /** The hub's CPU time in the window ÷ its length (100 = one core busy; the hub's JavaScript runs on one). */
  hubCpuPercent: number;
  /** The hub's CPU time per event answered 202 in the window, ms. */
  hubCpuMsPerEvent: number;
  /** Bodies signed before the run, and signed during it because the pool ran out (normally 0). */
  presigned: number;
  signedLate: number;
}

export interface LatencyResult {
  subscribers: number;
  connected: number;
  failed: number;
  openSeconds: number;
  /** Measured events (after the warm-up events), posted one at a time. */
  events: number;
  /** Measured events every connected subscriber received. */
  deliveredToAll: number;
  /** The fewest subscribers one measured event reached. */
  minReceived: number;
  /** Webhook POST sent → event received by the subscriber, over every (event, subscriber), ms. */
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** The 202 answer to each of those POSTs, ms (the append's fsync is in it). */
  postP50: number;
  postP99: number;
  /** CPU time per measured event (the 20 ms pauses between events are idle), ms: the hub's and the subscriber process's. */
  hubCpuMsPerEvent: number;
  subscriberCpuMsPerEvent: number;
  /** Executions of the subscription document per event (fan-out dedupe: 1 for any number of subscribers). */
  executionsPerEvent: number;
}

export interface EventsOptions {
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** Subscriber counts for the latency test, in turn (e.g. 1000, 10000). */
  subscribers: number[];
  /** Measured events per subscriber count. */
  latencyEvents: number;
  /** Seconds of the store-alone measurement. */
  storeSeconds: number;
  log: (line: string) => void;
}

const now = () => performance.timeOrigin + performance.now();
const round1 = (n: number) => Math.round(n * 10) / 10;
const sign = (body: string) => `${WEBHOOK.prefix}${createHmac('sha256', WEBHOOK.secret).update(body).digest('hex')}`;
const pct = (sorted: Float64Array, p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN);

export async function measureEvents(hub: Child, options: EventsOptions): Promise<EventsResult> {
  const { log } = options;
  const store = await storeAlone(options.storeSeconds);
  log(`  event log alone (SqliteEventLog.append, synchronous = FULL): ${Math.round(store.perSecond)} appends/s, ${store.meanMs} ms each`);

  let ingestion: IngestionResult | null = null;
  if (options.durationSeconds > 0) {
    ingestion = await ingest(hub, options);
    log(
      `  ingestion (${ingestion.connections} connections): ${Math.round(ingestion.perSecond)} events/s answered 202, p50 ${ingestion.p50} ms, p99 ${ingestion.p99} ms; ` +
        `${ingestion.accepted} answered 202, ${ingestion.stored} stored, other answers ${JSON.stringify(ingestion.otherStatuses)}, ` +
        `errors ${ingestion.errors}, unanswered ${ingestion.unanswered}; hub CPU ${ingestion.hubCpuPercent} % (${ingestion.hubCpuMsPerEvent} ms per event)${ingestion.allStored ? '' : ' — NOT every 202 stored exactly once'}`,
    );
  }

  const latency: LatencyResult[] = [];
  for (const count of options.subscribers) {
    const r = await measureLatency(hub, count, options.latencyEvents, log);
    latency.push(r);
    log(
      `  ${r.connected} subscribers: webhook → subscriber p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms over ${r.events} events; ` +
        `${r.deliveredToAll}/${r.events} reached all (fewest ${r.minReceived}); POST p50 ${r.postP50} ms; ${r.executionsPerEvent} executions per event; ` +
        `CPU per event: hub ${r.hubCpuMsPerEvent} ms, subscriber process ${r.subscriberCpuMsPerEvent} ms`,
    );
  }
  return { source: WEBHOOK.source, store, ingestion, latency };
}

/** SqliteEventLog.append one after another for `seconds`, in a temporary file on the same disk as the hub's. */
async function storeAlone(seconds: number): Promise<StoreAlone> {
  const { SqliteEventLog } = await import('../src/events/sqlite.ts');
  const dir = mkdtempSync(path.join(tmpdir(), 'junction-bench-store-'));
  const store = new SqliteEventLog(path.join(dir, 'events.db'), { maxAgeMs: 7 * 24 * 3600_000, maxEvents: 10_000_000 }, { pruneIntervalMs: 0 });
  try {
    await store.append({ source: 'alone', type: 'warm', deliveryId: 'warm', payload: {} }); // opens the file
    let appends = 0;
    const started = performance.now();
    const until = started + seconds * 1000;
    while (performance.now() < until) {
      await store.append({ source: 'alone', type: 'bench.ingest', deliveryId: `alone-${appends}`, payload: { type: 'bench.ingest', id: `alone-${appends}`, n: appends } });
      appends++;
    }
    const elapsed = (performance.now() - started) / 1000;
    return { kind: 'sqlite', synchronous: 'FULL', appends, seconds: round1(elapsed), perSecond: appends / elapsed, meanMs: Math.round(((elapsed * 1000) / appends) * 1000) / 1000 };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function graphql<T>(hub: Child, query: string): Promise<T> {
  const res = await fetch(hub.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  const body = (await res.json()) as { data?: T; errors?: unknown };
  if (res.status !== 200 || body.errors || !body.data) throw new Error(`${query}: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  return body.data;
}

/** Events the log holds for the bench's source (`hub { eventSources { source count } }`). */
async function storedCount(hub: Child): Promise<number> {
  const data = await graphql<{ hub: { eventSources: { source: string; count: number }[] } }>(hub, '{ hub { eventSources { source count } } }');
  return data.hub.eventSources.find((s) => s.source === WEBHOOK.source)?.count ?? 0;
}

const webhookUrl = (hub: Child) => new URL(`/webhooks/${WEBHOOK.source}`, hub.url).href;

/** Longest warm-up while waiting for every connection's first answer, and longest drain. */
const MAX_WARMUP_MS = 60_000;
const MAX_DRAIN_MS = 30_000;
/** Bodies signed ahead per second of run: above any rate this machine reaches. */
const PRESIGN_PER_SECOND = 6_000;

/**
 * Distinct signed webhooks (a unique `id` in each body, so none is a duplicate) over
 * `connections` keep-alive connections with autocannon, bodies and signatures computed before the
 * run. 202s are counted over a measured window after the warm-up. When the window closes, every
 * connection's next request is a `GET /healthz` instead of a webhook, and the run stops only once
 * every webhook sent has been answered: then the number of 202s must be exactly the number of
 * events the log gained.
 */
async function ingest(hub: Child, options: EventsOptions): Promise<IngestionResult> {
  const { connections } = options;
  const run = Date.now().toString(36);
  const poolSize = Math.ceil((options.warmupSeconds + options.durationSeconds + 2) * PRESIGN_PER_SECOND);
  const pool: { body: string; signature: string }[] = [];
  const make = (i: number) => {
    const body = JSON.stringify({ type: 'bench.ingest', id: `ingest-${run}-${i}`, n: i });
    return { body, signature: sign(body) };
  };
  for (let i = 0; i < poolSize; i++) pool.push(make(i));
  const before = await storedCount(hub);
  const url = new URL(webhookUrl(hub));

  let next = 0;
  let signedLate = 0;
  let sent = 0;
  let answered = 0;
  let accepted = 0;
  let draining = false;
  let windowStart: number | undefined;
  let windowEnd = Infinity;
  let inWindow = 0;
  const bySecond = Array.from({ length: Math.ceil(options.durationSeconds) }, () => 0);
  const otherStatuses: Record<string, number> = {};
  const latencies: number[] = [];
  let lastWasEvent = false;
  let errors = 0;

  type Context = { kind?: 'event' | 'drain' };
  const instance = autocannon(
    {
      url: url.origin,
      connections,
      duration: (MAX_WARMUP_MS + MAX_DRAIN_MS) / 1000 + options.durationSeconds + 30, // stopped below
      requests: [
        {
          method: 'POST',
          path: url.pathname,
          setupRequest: (req, context: Context) => {
            if (draining) {
              context.kind = 'drain';
              return { ...req, method: 'GET', path: '/healthz', headers: {}, body: '' };
            }
            const i = next++;
            let entry = pool[i];
            if (entry === undefined) {
              entry = make(i);
              signedLate++;
            }
            context.kind = 'event';
            sent++;
            return {
              ...req,
              method: 'POST',
              path: url.pathname,
              headers: { 'content-type': 'application/json', [WEBHOOK.header]: entry.signature },
              body: entry.body,
            };
          },
          onResponse: (status: number, _body: string, context: Context) => {
            lastWasEvent = context.kind === 'event';
            if (!lastWasEvent) return;
            answered++;
            if (status === 202) {
              accepted++;
              const at = performance.now();
              if (windowStart !== undefined && at < windowEnd) {
                inWindow++;
                const second = Math.floor((at - windowStart) / 1000);
                if (second < bySecond.length) bySecond[second]!++;
              }
            } else {
              otherStatuses[status] = (otherStatuses[status] ?? 0) + 1;
            }
          },
        },
      ],
    },
    () => undefined,
  );

  const started = performance.now();
  const connected = new Set<unknown>();
  instance.on('response', (client: unknown, _status: number, _bytes: number, responseTime: number) => {
    if (windowStart === undefined) connected.add(client);
    else if (lastWasEvent && performance.now() < windowEnd) latencies.push(responseTime);
  });
  instance.on('reqError', () => {
    errors++;
  });

  // Warm-up: until its time is up and every connection has had an answer.
  while (performance.now() - started < options.warmupSeconds * 1000 || (connected.size < connections && performance.now() - started < MAX_WARMUP_MS)) {
    await sleep(20);
  }
  windowStart = performance.now();
  windowEnd = windowStart + options.durationSeconds * 1000;
  const cpu0 = cpuMs(hub.pid);
  await sleep(options.durationSeconds * 1000);
  const seconds = (performance.now() - windowStart) / 1000;
  const hubCpu = cpuMs(hub.pid) - cpu0;
  draining = true;
  const drainDeadline = performance.now() + MAX_DRAIN_MS;
  while (answered < sent && performance.now() < drainDeadline) await sleep(20);
  instance.stop();

  const stored = (await storedCount(hub)) - before;
  const sorted = Float64Array.from(latencies).sort();
  const unanswered = sent - answered;
  return {
    connections,
    warmupSeconds: round1((windowStart - started) / 1000),
    durationSeconds: options.durationSeconds,
    perSecond: inWindow / options.durationSeconds, // only answers before windowEnd are counted
    bySecond,
    p50: round1(pct(sorted, 50)),
    p99: round1(pct(sorted, 99)),
    accepted,
    otherStatuses,
    errors,
    unanswered,
    stored,
    allStored: stored === accepted && unanswered === 0 && errors === 0 && Object.keys(otherStatuses).length === 0,
    hubCpuPercent: Math.round(hubCpu / seconds / 10),
    hubCpuMsPerEvent: inWindow ? Math.round((hubCpu / inWindow) * 1000) / 1000 : 0,
    presigned: poolSize,
    signedLate,
  };
}

type FromSubscribers =
  | { type: 'open'; connected: number; failed: number; ms: number }
  | { type: 'delivered'; id: string; received: number }
  | {
      type: 'report';
      connected: number;
      errors: number;
      samples: number;
      p50: number;
      p90: number;
      p99: number;
      max: number;
      cpuMs: number;
      receivedPerEvent: number[];
    };

/** The subscriber process's messages, waited for by type (and predicate). */
function inbox(child: ChildProcess) {
  const messages: FromSubscribers[] = [];
  let wake: (() => void) | undefined;
  child.on('message', (m: FromSubscribers) => {
    messages.push(m);
    wake?.();
  });
  return async <T extends FromSubscribers['type']>(type: T, timeoutMs: number, match: (m: Extract<FromSubscribers, { type: T }>) => boolean = () => true) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = messages.findIndex((m) => m.type === type && match(m as Extract<FromSubscribers, { type: T }>));
      if (index >= 0) return messages.splice(index, 1)[0] as Extract<FromSubscribers, { type: T }>;
      if (Date.now() >= deadline || child.exitCode !== null) return undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, Math.min(200, Math.max(0, deadline - Date.now())));
      });
    }
  };
}

async function metric(hub: Child, name: string): Promise<number> {
  return (await scrapeMetrics(hub.url)).get(`${name}{source="${WEBHOOK.source}"}`) ?? 0;
}

/** Posts one signed event; resolves with the 202's latency. */
async function postEvent(hub: Child, id: string): Promise<{ status: number; ms: number }> {
  const sentAt = now();
  const body = JSON.stringify({ type: 'bench.latency', id, sentAt });
  const res = await fetch(webhookUrl(hub), { method: 'POST', headers: { 'content-type': 'application/json', [WEBHOOK.header]: sign(body) }, body });
  await res.arrayBuffer();
  return { status: res.status, ms: now() - sentAt };
}

const WARM_EVENTS = 3;

/**
 * `count` subscribers (bench/event-subscribers.ts, its own process) to one source; once the hub
 * counts them all, a few warm-up events (each must reach every subscriber), then `events`
 * measured ones, one at a time: each is posted with its send time in the payload, and the next
 * goes once every subscriber has it (or after 10 s).
 */
async function measureLatency(hub: Child, count: number, events: number, log: (line: string) => void): Promise<LatencyResult> {
  const client = spawn(
    process.execPath,
    ['--import', 'tsx', 'bench/event-subscribers.ts', '--url', hub.url.replace(/^http/, 'ws'), '--source', WEBHOOK.source, '--count', String(count)],
    { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  const exited = new Promise<void>((resolve) => client.once('exit', () => resolve()));
  const next = inbox(client);
  try {
    const opened = await next('open', 300_000);
    if (!opened) throw new Error('the event subscriber process did not open its connections within 300 s');
    log(`  ${opened.connected} subscribers open (${opened.failed} failed) in ${(opened.ms / 1000).toFixed(1)} s`);
    const deadline = Date.now() + 60_000;
    while ((await metric(hub, 'junction_event_subscribers')) < opened.connected && Date.now() < deadline) await sleep(200);

    const tag = `${count}-${Date.now().toString(36)}`;
    for (let i = 0; i < WARM_EVENTS; i++) {
      const id = `warm-${tag}-${i}`;
      const post = await postEvent(hub, id);
      if (post.status !== 202) throw new Error(`a warm-up webhook was answered ${post.status}`);
      if (!(await next('delivered', 30_000, (m) => m.id === id))) log(`  warm-up event ${i + 1} did not reach every subscriber within 30 s`);
    }

    const executions0 = await metric(hub, 'junction_event_subscription_executions_total');
    client.send({ type: 'mark' });
    const hubCpu0 = cpuMs(hub.pid);
    const posts: number[] = [];
    let deliveredToAll = 0;
    for (let i = 0; i < events; i++) {
      const id = `lat-${tag}-${i}`;
      const post = await postEvent(hub, id);
      if (post.status !== 202) throw new Error(`a webhook was answered ${post.status}`);
      posts.push(post.ms);
      if (await next('delivered', 10_000, (m) => m.id === id)) deliveredToAll++;
      await sleep(20);
    }
    const hubCpu = cpuMs(hub.pid) - hubCpu0;
    const executions = (await metric(hub, 'junction_event_subscription_executions_total')) - executions0;
    client.send({ type: 'report' });
    const report = await next('report', 30_000);
    if (!report) throw new Error('the event subscriber process sent no report');
    const sortedPosts = Float64Array.from(posts).sort();
    return {
      subscribers: count,
      connected: opened.connected,
      failed: opened.failed,
      openSeconds: round1(opened.ms / 1000),
      events,
      deliveredToAll,
      minReceived: report.receivedPerEvent.length < events ? 0 : Math.min(...report.receivedPerEvent),
      samples: report.samples,
      p50: report.p50,
      p90: report.p90,
      p99: report.p99,
      max: report.max,
      postP50: round1(pct(sortedPosts, 50)),
      postP99: round1(pct(sortedPosts, 99)),
      hubCpuMsPerEvent: events ? round1(hubCpu / events) : 0,
      subscriberCpuMsPerEvent: events ? round1(report.cpuMs / events) : 0,
      executionsPerEvent: events ? Math.round((executions / events) * 100) / 100 : 0,
    };
  } finally {
    if (client.connected) client.send({ type: 'close' });
    const timer = setTimeout(() => client.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
    // The next count starts from a hub that has let go of these subscribers.
    const deadline = Date.now() + 30_000;
    while ((await metric(hub, 'junction_event_subscribers').catch(() => 0)) > 0 && Date.now() < deadline) await sleep(200);
  }
}
