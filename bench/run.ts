import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { measureConnections } from './connections.ts';
import { BROKER_TYPES, type BrokerType, measureBrokers } from './brokers.ts';
import { measureEvents } from './events.ts';
import { checkSample, type LoadGenerator, type LoadOptions, measure, type RunResult, type SampleCheck } from './load.ts';
import { startNodeFloor, startTailcall, TAILCALL_MISSING, tailcallVersion } from './peers.ts';
import {
  INGESTION_TARGET,
  labelOf,
  latencyTargetMs,
  markdown,
  PEER_TARGETS,
  type PeerId,
  type QueryRun,
  type Results,
  type ServerId,
  type ServerResult,
  spreadOf,
  svg,
  type Target,
} from './report.ts';
import { type Child, ROOT, rssBytes, startHub, startReference, startUpstream, upstreamCount } from './servers.ts';
import { QUERIES, type Query, type QueryName } from './workload.ts';
import { wrkAvailable } from './wrk.ts';

/**
 * `npm run bench`: the hub beside a reference Apollo Server and its peers (Tailcall 1.6.14 when
 * installed, a plain Node http floor on Q3) on the public graphql-benchmarks workload (README
 * "Performance"). Each server runs in its own process and is measured alone; the load generator
 * is wrk (its own process, bench/wrk.ts) when on PATH, autocannon (in this process) otherwise.
 *
 *   npm run bench                       full run: 3 rounds of (5 s warm-up + 10 s measured) per
 *                                       query and server, 100 connections, 10,000 subscriptions;
 *                                       webhook ingestion and latency with 1,000 and 10,000
 *                                       event subscribers, 50 events each
 *   npm run bench -- --quick            smoke check in under 2 minutes (1 round, 1 + 3 s, 50
 *                                       connections, 500 subscriptions, 200 event subscribers)
 *   --rounds N --duration S --warmup S --connections N --subscriptions N --sample N
 *   --event-subscribers 1000,10000      subscriber counts of the webhook → subscriber latency test
 *                                       (0: none); --latency-events N measured events per count
 *   --skip-events                       no events step (webhook ingestion and latency)
 *   --brokers amqp,nats,mqtt,redis      the brokers step: messages consumed and stored per second and
 *                                       @publish latency per queue connector type ("none" skips it;
 *                                       needs RabbitMQ, NATS JetStream, Mosquitto, Redis locally)
 *   --broker-messages N --publishes N   its sizes (default 10,000 and 500; --quick 1,000 and 50)
 *   --out DIR                           where latest.{json,md,svg} go (default bench/results)
 *   --servers reference,hub-cache-off,hub-cache-on,tailcall,node-floor (or none)   --queries Q1,Q2,Q3
 *                                       (tailcall: when `sh ../shared/bench/tailcall/setup.sh`
 *                                       installed it, else reported as not installed; node-floor
 *                                       runs Q3 only)
 *   --load wrk|autocannon               the load generator (default wrk when on PATH)
 *   --wrk-threads N                     wrk's threads (default 2)
 *   --profile                           run the hubs with --cpu-prof (profiles in OUT/profiles)
 *   --node-options="FLAGS"              node flags for every server under test, hub and reference
 *                                       alike (e.g. --node-options=--max-semi-space-size=64)
 *   --hub-root DIR                      run the hub of another checkout (before/after comparisons)
 *   --hub-workers N                     run the hubs as `junction serve --workers N` (pubsub and
 *                                       eventLog then on the local Redis, as --workers needs)
 *
 * Exits 1 when any response body was wrong, 0 otherwise (targets are reported, not enforced).
 */
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    subscriptions: { type: 'string' },
    sample: { type: 'string' },
    out: { type: 'string' },
    servers: { type: 'string' },
    queries: { type: 'string' },
    profile: { type: 'boolean', default: false },
    'node-options': { type: 'string' },
    'hub-root': { type: 'string' },
    'hub-workers': { type: 'string' },
    'event-subscribers': { type: 'string' },
    'latency-events': { type: 'string' },
    'skip-events': { type: 'boolean', default: false },
    brokers: { type: 'string' },
    'broker-messages': { type: 'string' },
    publishes: { type: 'string' },
    load: { type: 'string' },
    'wrk-threads': { type: 'string' },
  },
});

const quick = values.quick;
const number = (value: string | undefined, fallback: number, name: string): number => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a number, got ${JSON.stringify(value)}`);
  return n;
};
const nodeOptions = (values['node-options'] ?? '').split(/\s+/).filter(Boolean);

/** The load generator: --load, else wrk when it is on PATH, else autocannon. */
function loadSettings(): Results['settings']['load'] {
  const hasWrk = wrkAvailable();
  const generator = (values.load ?? (hasWrk ? 'wrk' : 'autocannon')) as LoadGenerator;
  if (generator !== 'wrk' && generator !== 'autocannon') throw new Error(`--load: expected wrk or autocannon, got ${JSON.stringify(values.load)}`);
  if (generator === 'wrk') {
    if (!hasWrk) throw new Error('--load wrk: wrk is not on PATH (apt-get install -y wrk)');
    // `wrk --version` prints `wrk debian/4.1.0-3+b2 [epoll] Copyright …` then its usage, and exits 1.
    const version = /^wrk \S+/.exec(spawnSync('wrk', ['--version'], { encoding: 'utf8' }).stdout)?.[0] ?? 'wrk';
    return { generator, version, threads: Math.max(1, Math.round(number(values['wrk-threads'], 2, 'wrk-threads'))) };
  }
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/autocannon/package.json'), 'utf8')) as { version: string };
  return { generator, version: `autocannon ${pkg.version} (in the bench process)`, threads: null };
}

const settings = {
  quick,
  nodeOptions,
  hubWorkers: Math.max(1, Math.round(number(values['hub-workers'], 1, 'hub-workers'))),
  rounds: Math.max(1, Math.round(number(values.rounds, quick ? 1 : 3, 'rounds'))),
  warmupSeconds: number(values.warmup, quick ? 1 : 5, 'warmup'),
  durationSeconds: number(values.duration, quick ? 3 : 10, 'duration'),
  connections: number(values.connections, quick ? 50 : 100, 'connections'),
  subscriptions: number(values.subscriptions, quick ? 500 : 10_000, 'subscriptions'),
  sample: number(values.sample, quick ? 20 : 100, 'sample'),
  eventSubscribers: (values['event-subscribers'] ?? (quick ? '200' : '1000,10000'))
    .split(',')
    .filter((n) => n.trim() !== '')
    .map((n) => Math.round(number(n.trim(), 0, 'event-subscribers')))
    .filter((n) => n > 0),
  latencyEvents: Math.max(1, Math.round(number(values['latency-events'], quick ? 20 : 50, 'latency-events'))),
  load: loadSettings(),
};
/** What every load run of the query step shares. */
const loadBase: Pick<LoadOptions, 'generator' | 'wrkThreads' | 'connections'> = {
  generator: settings.load.generator,
  ...(settings.load.threads !== null && { wrkThreads: settings.load.threads }),
  connections: settings.connections,
};
const skipEvents = values['skip-events'];
const brokerTypes = (values.brokers ?? BROKER_TYPES.join(','))
  .split(',')
  .map((t) => t.trim())
  .filter((t) => t !== '' && t !== 'none');
for (const t of brokerTypes) {
  if (!(BROKER_TYPES as readonly string[]).includes(t)) throw new Error(`--brokers: expected some of ${BROKER_TYPES.join(', ')} (or none), got ${JSON.stringify(t)}`);
}
const brokerMessages = Math.max(1, Math.round(number(values['broker-messages'], quick ? 1000 : 10_000, 'broker-messages')));
const brokerPublishes = Math.max(1, Math.round(number(values.publishes, quick ? 50 : 500, 'publishes')));
const windowSeconds = quick ? 2 : 5;
const outDir = path.resolve(values.out ?? path.join(ROOT, 'bench/results'));
const ALL_SERVERS: readonly ServerId[] = ['reference', 'hub-cache-off', 'hub-cache-on'];
const ALL_PEERS: readonly PeerId[] = ['tailcall', 'node-floor'];
type AnyId = ServerId | PeerId;
const ALL_IDS: readonly AnyId[] = [...ALL_SERVERS, ...ALL_PEERS];
const isPeer = (id: AnyId): id is PeerId => (ALL_PEERS as readonly AnyId[]).includes(id);
const asked = values.servers === undefined ? ALL_IDS : values.servers.split(',').filter((s) => s !== '' && s !== 'none');
for (const id of asked) if (!(ALL_IDS as readonly string[]).includes(id)) throw new Error(`--servers: unknown server "${id}" (${ALL_IDS.join(', ')})`);
const queries = values.queries ? QUERIES.filter((q) => values.queries!.split(',').includes(q.name)) : QUERIES;
/** The plain Node floor answers Q3 only; every other server every query. */
const servesQuery = (id: AnyId, query: QueryName) => id !== 'node-floor' || query === 'Q3';
/** Tailcall's version when installed (checked only when it is asked for). */
const tailcall = asked.includes('tailcall') ? tailcallVersion() : undefined;
const unavailable: Results['unavailable'] = [];
if (asked.includes('tailcall') && tailcall === undefined) unavailable.push({ id: 'tailcall', label: 'Tailcall 1.6.14', reason: TAILCALL_MISSING });
const serverIds = (asked as readonly AnyId[]).filter((id) => (id !== 'tailcall' || tailcall !== undefined) && queries.some((q) => servesQuery(id, q.name)));
const profileDir = path.join(outDir, 'profiles');
const hubRoot = values['hub-root'] ? path.resolve(values['hub-root']) : undefined;
const hubNodeArgs = [...nodeOptions, ...(values.profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [])];

const log = (line: string) => process.stdout.write(`${line}\n`);
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

const children = new Set<Child>();
async function started(child: Promise<Child>): Promise<Child> {
  const c = await child;
  children.add(c);
  return c;
}
async function stopped(child: Child): Promise<void> {
  children.delete(child);
  await child.stop();
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.allSettled([...children].map((c) => c.stop())).then(() => process.exit(130));
  });
}

async function post(url: string, body: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  await res.arrayBuffer();
}

/** Upstream requests made by the first Q1 request and, on average, by `n` sequential ones after it. */
async function q1UpstreamCalls(upstream: string, graphql: string, n = 20): Promise<NonNullable<ServerResult['q1UpstreamCalls']>> {
  const q1 = QUERIES.find((q) => q.name === 'Q1')!;
  const c0 = await upstreamCount(upstream);
  await post(graphql, q1.body);
  const c1 = await upstreamCount(upstream);
  for (let i = 0; i < n; i++) await post(graphql, q1.body);
  const c2 = await upstreamCount(upstream);
  return { first: c1 - c0, steady: round((c2 - c1) / n), requests: n };
}

interface OneRun extends RunResult {
  before: SampleCheck;
  after: SampleCheck;
  upstreamCalls: number;
}

/** One measured run of one query on one server, with sample checks before and after. */
async function measureOnce(server: Child, upstream: string, query: Query): Promise<OneRun> {
  const before = await checkSample(server.url, query, settings.sample);
  if (before.failed > 0) log(`    ${query.name}: ${before.failed}/${before.checked} sample bodies WRONG: ${before.firstFailure}`);
  // Every response of the run is compared byte for byte with the body the sample found correct.
  const expectBody = before.body ?? JSON.stringify(query.expected);
  let u0: Promise<number> = Promise.resolve(0);
  const run = await measure(server.url, {
    ...loadBase,
    body: query.body,
    warmup: settings.warmupSeconds,
    duration: settings.durationSeconds,
    expectBody,
    onWindow: () => {
      u0 = upstreamCount(upstream);
    },
  });
  const u1 = await upstreamCount(upstream);
  const after = await checkSample(server.url, query, settings.sample);
  if (after.failed > 0) log(`    ${query.name}: ${after.failed}/${after.checked} sample bodies WRONG after the run: ${after.firstFailure}`);
  return { ...run, before, after, upstreamCalls: u1 - (await u0) };
}

/** The rounds of one query on one server: median req/s (latencies of that round), everything else summed. */
function combine(query: QueryName, runs: OneRun[]): QueryRun {
  const byRps = [...runs].sort((a, b) => a.rps - b.rps);
  const median = byRps[Math.floor((byRps.length - 1) / 2)]!;
  const sum = (f: (r: OneRun) => number) => runs.reduce((n, r) => n + f(r), 0);
  const checks = (which: 'before' | 'after'): SampleCheck => {
    const failure = runs.find((r) => r[which].firstFailure)?.[which].firstFailure;
    return { checked: sum((r) => r[which].checked), failed: sum((r) => r[which].failed), ...(failure !== undefined && { firstFailure: failure }) };
  };
  const before = checks('before');
  const after = checks('after');
  const requests = sum((r) => r.requests);
  const mismatches = sum((r) => r.mismatches);
  return {
    query,
    rps: median.rps,
    roundsRps: runs.map((r) => Math.round(r.rps)),
    p50: median.p50,
    p99: median.p99,
    requests,
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    mismatches,
    warmupSeconds: Math.max(...runs.map((r) => r.warmupSeconds)),
    before,
    after,
    upstreamPerRequest: requests > 0 ? round(sum((r) => r.upstreamCalls) / requests) : 0,
    bodiesOk: before.failed === 0 && after.failed === 0 && mismatches === 0,
  };
}

function startServer(id: AnyId, upstream: string): Promise<Child> {
  switch (id) {
    case 'reference':
      return started(startReference(upstream, { nodeArgs: nodeOptions }));
    case 'hub-cache-off':
    case 'hub-cache-on':
      return started(startHub(upstream, id === 'hub-cache-on' ? 'cache-on' : 'cache-off', { nodeArgs: hubNodeArgs, hubRoot, workers: settings.hubWorkers }));
    case 'tailcall':
      // The bench's own upstream, the process the hub and the reference call.
      return started(startTailcall(upstream));
    case 'node-floor':
      return started(startNodeFloor({ nodeArgs: nodeOptions }));
  }
}

/** A server's label in the report: Tailcall's carries the version its binary reports. */
const labelFor = (id: AnyId) => (id === 'tailcall' && tailcall ? tailcall.replace(/^tailcall v/, 'Tailcall ') : labelOf(id));

/**
 * Starts every server (each its own process, idle while another is loaded), counts their Q1
 * upstream calls, then measures round after round, each query on each server in turn: a
 * machine whose speed drifts then shifts every server alike, and the median round is reported.
 */
async function measureServers(upstream: string): Promise<ServerResult<AnyId>[]> {
  const children = new Map<AnyId, Child>();
  try {
    const calls = new Map<AnyId, ServerResult['q1UpstreamCalls']>();
    for (const id of serverIds) {
      const child = await startServer(id, upstream);
      children.set(id, child);
      if (!servesQuery(id, 'Q1')) {
        calls.set(id, null);
        continue;
      }
      const c = await q1UpstreamCalls(upstream, child.url);
      calls.set(id, c);
      log(`${labelFor(id)}: Q1 upstream calls: first request ${c.first}, then ${c.steady} per request`);
    }
    const runs = new Map<string, OneRun[]>();
    for (let r = 1; r <= settings.rounds; r++) {
      if (settings.rounds > 1) log(`round ${r} of ${settings.rounds}:`);
      for (const query of queries) {
        for (const id of serverIds) {
          if (!servesQuery(id, query.name)) continue;
          const run = await measureOnce(children.get(id)!, upstream, query);
          const key = `${id} ${query.name}`;
          runs.set(key, [...(runs.get(key) ?? []), run]);
          log(
            `  ${query.name} ${labelFor(id)}: ${Math.round(run.rps)} req/s, p50 ${run.p50} ms, p99 ${run.p99} ms, ` +
              `errors ${run.errors + run.timeouts}, non-2xx ${run.non2xx}, wrong bodies ${run.mismatches + run.before.failed + run.after.failed}, ` +
              `upstream calls/request ${run.requests ? round(run.upstreamCalls / run.requests) : 0}`,
          );
        }
      }
    }
    return serverIds.map((id) => ({
      id,
      label: labelFor(id),
      q1UpstreamCalls: calls.get(id)!,
      runs: queries.filter((q) => servesQuery(id, q.name)).map((q) => combine(q.name, runs.get(`${id} ${q.name}`)!)),
      rssMB: round(rssBytes(children.get(id)!.pid) / 1024 / 1024, 1),
    }));
  } finally {
    for (const child of children.values()) await stopped(child);
  }
}

function targetsOf(r: Omit<Results, 'targets' | 'bodiesOk'>): Target[] {
  const targets: Target[] = [];
  const off = r.servers.find((s) => s.id === 'hub-cache-off');
  const on = r.servers.find((s) => s.id === 'hub-cache-on');
  if (off?.q1UpstreamCalls) {
    const { steady } = off.q1UpstreamCalls;
    targets.push({ name: 'Q1 upstream calls per request, cache off', target: '2', value: String(steady), met: steady === 2 });
  }
  if (on?.q1UpstreamCalls) {
    const { first, steady } = on.q1UpstreamCalls;
    targets.push({ name: 'Q1 upstream calls per request, cache on', target: '2 first, then 0', value: `${first} (first), ${steady} (then)`, met: first <= 2 && steady === 0 });
  }
  const want: [QueryName, string, number][] = [
    // Issue #13's targets.
    ['Q1', 'cache-off', 4],
    ['Q1', 'cache-on', 25],
    ['Q2', 'cache-off', 3],
    ['Q2', 'cache-on', 3],
    ['Q3', 'cache-off', 1.3],
    ['Q3', 'cache-on', 1.3],
  ];
  for (const [q, mode, min] of want) {
    const value = r.ratios[mode]?.[q];
    if (value === undefined) continue;
    targets.push({ name: `${q} vs reference, ${mode.replace('-', ' ')}`, target: `≥ ${min}×`, value: `${value.toFixed(2)}×`, met: value >= min });
  }
  const q1ToTailcall = r.peerRatios.tailcall?.['cache-on']?.Q1;
  if (q1ToTailcall !== undefined) {
    const min = PEER_TARGETS.q1CacheOnToTailcall;
    targets.push({ name: 'Q1 vs Tailcall, cache on', target: `≥ ${min}×`, value: `${q1ToTailcall.toFixed(2)}×`, met: q1ToTailcall >= min });
  }
  for (const mode of ['cache-off', 'cache-on']) {
    const value = r.peerRatios['node-floor']?.[mode]?.Q3;
    if (value === undefined) continue;
    const min = PEER_TARGETS.q3ToNodeFloor;
    targets.push({ name: `Q3 vs plain Node http floor, ${mode.replace('-', ' ')}`, target: `≥ ${min}×`, value: `${value.toFixed(2)}×`, met: value >= min });
  }
  for (const s of [off, on]) {
    if (!s || s.runs.length === 0) continue;
    const worst = s.runs.reduce((w, run) => (spreadOf(run) > spreadOf(w) ? run : w));
    const spread = spreadOf(worst);
    const max = PEER_TARGETS.p99ToP50;
    targets.push({
      name: `p99/p50, ${s.label} (worst query, ${r.settings.connections} connections)`,
      target: `≤ ${max}`,
      value: `${spread.toFixed(1)} (${worst.query}: ${worst.p99}/${worst.p50} ms)`,
      met: spread <= max,
    });
  }
  if (r.events) {
    const i = r.events.ingestion;
    if (i) {
      targets.push({
        name: 'webhook ingestion, events stored per second (SQLite, synchronous = FULL)',
        target: `≥ ${INGESTION_TARGET.toLocaleString('en-US')}/s, every 202 stored`,
        value: `${Math.round(i.perSecond).toLocaleString('en-US')}/s; ${i.accepted.toLocaleString('en-US')} 202s, ${i.stored.toLocaleString('en-US')} stored`,
        met: i.perSecond >= INGESTION_TARGET && i.allStored,
      });
    }
    for (const l of r.events.latency) {
      const wanted = latencyTargetMs(l.subscribers);
      targets.push({
        name: `webhook → subscriber p99, ${l.subscribers.toLocaleString('en-US')} subscribers`,
        target: `≤ ${wanted} ms, every event to every subscriber`,
        value: `${l.p99} ms (p50 ${l.p50} ms); ${l.deliveredToAll}/${l.events} events to all`,
        met: l.p99 <= wanted && l.deliveredToAll === l.events && l.failed === 0,
      });
    }
  }
  if (r.connections) {
    const c = r.connections;
    targets.push({
      name: `hub RSS with ${c.connected.toLocaleString('en-US')} idle subscriptions`,
      target: '≤ 300 MB (10,000 subscriptions)',
      value: `${c.loaded.rssMB} MB`,
      met: c.loaded.rssMB <= 300 && c.failed === 0 && c.broadcast.received === c.connected,
    });
  }
  return targets;
}

async function main(): Promise<number> {
  const began = performance.now();
  log(
    `bench: ${settings.connections} connections, ${settings.warmupSeconds} s warm-up + ${settings.durationSeconds} s per run, ` +
      `${settings.subscriptions} subscriptions${quick ? ' (quick)' : ''}`,
  );
  log(`load generator: ${settings.load.version}${settings.load.threads !== null ? `, ${settings.load.threads} threads` : ''}`);
  for (const u of unavailable) log(`${u.label}: ${u.reason}`);
  const upstream = await started(startUpstream());
  let result: Results;
  try {
    log(`upstream ${upstream.url}:`);
    const plainPath = '/posts';
    const plain: RunResult = await measure(`${upstream.url}${plainPath}`, {
      ...loadBase,
      method: 'GET',
      warmup: Math.min(2, settings.warmupSeconds),
      duration: Math.min(10, settings.durationSeconds),
    });
    log(`  plain GET ${plainPath}: ${Math.round(plain.rps)} req/s, p50 ${plain.p50} ms, p99 ${plain.p99} ms`);

    const measured = await measureServers(upstream.url);
    const servers = measured.filter((s): s is ServerResult => !isPeer(s.id));
    const peers = measured.filter((s): s is ServerResult<PeerId> => isPeer(s.id));

    /** Each hub mode's req/s ÷ `against`'s, by mode ('cache-off', 'cache-on') and query. */
    const hubRatios = (against: ServerResult<AnyId>) => {
      const out: Record<string, Partial<Record<QueryName, number>>> = {};
      for (const s of servers) {
        if (s.id === 'reference') continue;
        const mode = s.id.replace('hub-', '');
        out[mode] = {};
        for (const run of s.runs) {
          const other = against.runs.find((x) => x.query === run.query);
          if (other && other.rps > 0) out[mode]![run.query] = round(run.rps / other.rps);
        }
      }
      return out;
    };
    const reference = servers.find((s) => s.id === 'reference');
    const ratios: Results['ratios'] = reference ? hubRatios(reference) : {};
    const peerRatios: Results['peerRatios'] = {};
    for (const peer of peers) peerRatios[peer.id] = hubRatios(peer);

    let connections: Results['connections'] = null;
    if (settings.subscriptions > 0) {
      log(`connections (hub, cache off, ${settings.subscriptions} subscriptions):`);
      const hub = await started(startHub(upstream.url, 'cache-off', { nodeArgs: hubNodeArgs, hubRoot, workers: settings.hubWorkers }));
      try {
        connections = await measureConnections(hub, settings.subscriptions, windowSeconds, log);
      } finally {
        await stopped(hub);
      }
    }

    let events: Results['events'] = null;
    if (!skipEvents) {
      log(`events (hub, cache off; webhooks to "bench"; ${settings.eventSubscribers.join(', ') || 'no'} subscribers):`);
      const hub = await started(startHub(upstream.url, 'cache-off', { nodeArgs: hubNodeArgs, hubRoot, workers: settings.hubWorkers, webhook: true }));
      try {
        events = await measureEvents(hub, {
          connections: settings.connections,
          warmupSeconds: settings.warmupSeconds,
          durationSeconds: settings.durationSeconds,
          subscribers: settings.eventSubscribers,
          latencyEvents: settings.latencyEvents,
          storeSeconds: quick ? 1 : 3,
          log,
        });
      } finally {
        await stopped(hub);
      }
    }

    let brokers: Results['brokers'] = null;
    if (brokerTypes.length > 0) {
      log(`brokers (${brokerTypes.join(', ')}: ${brokerMessages} messages preloaded each, ${brokerPublishes} @publish mutations each):`);
      brokers = await measureBrokers({ messages: brokerMessages, publishes: brokerPublishes, types: brokerTypes as BrokerType[], hubRoot });
      for (const b of brokers) log(`  ${b.type}: ${b.perSecond}/s stored; @publish p50 ${b.publish.p50} ms, p99 ${b.publish.p99} ms`);
    }

    const partial = {
      date: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
        memoryGiB: Math.round(totalmem() / 1024 ** 3),
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
      },
      settings,
      upstream: { plainGet: { path: plainPath, ...plain } },
      servers,
      peers,
      unavailable,
      ratios,
      peerRatios,
      connections,
      events,
      brokers,
    };
    const bodiesOk = measured.every((s) => s.runs.every((run) => run.bodiesOk));
    result = { ...partial, targets: targetsOf(partial), bodiesOk };
  } finally {
    await stopped(upstream);
  }

  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  const table = markdown(result);
  writeFileSync(path.join(outDir, 'latest.md'), table);
  writeFileSync(path.join(outDir, 'latest.svg'), svg(result));
  log('');
  log(table);
  log(`results: ${path.relative(process.cwd(), outDir) || '.'}/latest.{json,md,svg} (${Math.round((performance.now() - began) / 1000)} s)`);
  if (!result.bodiesOk) log('bench: some response bodies were WRONG (see above)');
  return result.bodiesOk ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (error: unknown) => {
    await Promise.allSettled([...children].map((c) => c.stop()));
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
