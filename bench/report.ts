import type { ConnectionsResult } from './connections.ts';
import { type BrokerResult, brokersMarkdown } from './brokers.ts';
import type { EventsResult } from './events.ts';
import type { LoadGenerator, RunResult, SampleCheck } from './load.ts';
import type { QueryName } from './workload.ts';

/** bench/results/latest.json. */
export interface Results {
  date: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  settings: {
    quick: boolean;
    nodeOptions: string[];
    /** `--hub-workers`: the hubs ran as `junction serve --workers N` (1: one process). */
    hubWorkers?: number;
    rounds: number;
    warmupSeconds: number;
    durationSeconds: number;
    connections: number;
    subscriptions: number;
    sample: number;
    /** The events step: subscriber counts of the latency test, and measured events per count. */
    eventSubscribers: number[];
    latencyEvents: number;
    /** The load generator of the query runs (and the upstream's plain GET): its name and version, wrk's threads. */
    load: { generator: LoadGenerator; version: string; threads: number | null };
  };
  upstream: { plainGet: RunResult & { path: string } };
  /** The reference and the hub modes. */
  servers: ServerResult[];
  /** Tailcall and the plain Node floor (Q3 only), when measured (bench/peers.ts). */
  peers: ServerResult<PeerId>[];
  /** Peers asked for but not measured, and why (e.g. Tailcall not installed). */
  unavailable: { id: PeerId; label: string; reason: string }[];
  /** Hub req/s ÷ reference req/s, by hub mode and query. */
  ratios: Record<string, Partial<Record<QueryName, number>>>;
  /** Hub req/s ÷ a peer's req/s, by peer, hub mode and query. */
  peerRatios: Partial<Record<PeerId, Record<string, Partial<Record<QueryName, number>>>>>;
  connections: ConnectionsResult | null;
  /** Webhook ingestion and webhook → subscriber latency (bench/events.ts); null with --skip-events. */
  events: EventsResult | null;
  /** Queue connectors: messages consumed and stored per second, @publish latency (bench/brokers.ts); null with --brokers none. */
  brokers: BrokerResult[] | null;
  targets: Target[];
  /** Every sample check passed and no response of any run had a wrong body. */
  bodiesOk: boolean;
}

export type ServerId = 'reference' | 'hub-cache-off' | 'hub-cache-on';
/** Servers measured beside them: Tailcall 1.6.14 and a bare node:http server answering Q3. */
export type PeerId = 'tailcall' | 'node-floor';

export interface ServerResult<Id extends ServerId | PeerId = ServerId> {
  id: Id;
  label: string;
  /**
   * Upstream requests per Q1 request: the first request, then the mean over `requests`
   * sequential ones; null for a server that does not serve Q1 (the plain Node floor).
   */
  q1UpstreamCalls: { first: number; steady: number; requests: number } | null;
  runs: QueryRun[];
  /** RSS after its load runs. */
  rssMB: number;
}

/**
 * One query on one server over every round: req/s and latencies of the median round; requests,
 * errors, non-2xx and mismatches summed over the rounds.
 */
export interface QueryRun extends RunResult {
  query: QueryName;
  /** Req/s of each round. */
  roundsRps: number[];
  /** Sample checks before and after the measured runs, summed over the rounds. */
  before: SampleCheck;
  after: SampleCheck;
  /** Upstream requests during the measured run ÷ GraphQL requests answered. */
  upstreamPerRequest: number;
  bodiesOk: boolean;
}

export interface Target {
  name: string;
  target: string;
  value: string;
  met: boolean;
}

const LABELS: Record<ServerId | PeerId, string> = {
  reference: 'reference (Apollo Server)',
  'hub-cache-off': 'hub, cache off',
  'hub-cache-on': 'hub, cache on',
  tailcall: 'Tailcall',
  'node-floor': 'plain Node http floor',
};
export const labelOf = (id: ServerId | PeerId) => LABELS[id];

/**
 * Issue #13's baseline (wrk, 2 threads, 100 connections, 10 s, each server alone, 2 cores):
 * req/s by query, and Q1's p50/p99 in ms where the issue gives them.
 */
export const ISSUE_13_BASELINE: Record<ServerId | PeerId, { rps: Partial<Record<QueryName, number>>; q1Latency?: { p50: number; p99: number } }> = {
  reference: { rps: { Q1: 232, Q2: 1532, Q3: 6389 }, q1Latency: { p50: 356, p99: 1040 } },
  'hub-cache-off': { rps: { Q1: 396, Q2: 2534, Q3: 5187 }, q1Latency: { p50: 211, p99: 1190 } },
  'hub-cache-on': { rps: { Q1: 1231, Q2: 3869, Q3: 8047 }, q1Latency: { p50: 73, p99: 983 } },
  tailcall: { rps: { Q1: 14566, Q2: 32155, Q3: 59542 }, q1Latency: { p50: 6, p99: 15 } },
  'node-floor': { rps: { Q3: 33638 } },
};

/** The issue's targets for the hub beside its peers (req/s ratios) and for its latency spread. */
export const PEER_TARGETS = { q1CacheOnToTailcall: 0.3, q3ToNodeFloor: 0.4, p99ToP50: 3 } as const;
/** The p99 ÷ p50 of a run (p50 below 1 ms counted as 1 ms, so that sub-millisecond runs do not blow up). */
export const spreadOf = (run: { p50: number; p99: number }) => run.p99 / Math.max(run.p50, 1);

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–');
const ratio = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '–' : `${n.toFixed(2)}×`);

/** The markdown report: ratios first, then every run, upstream calls, connections, events, targets. */
export function markdown(r: Results): string {
  const lines: string[] = [];
  const s = r.settings;
  const all: ServerResult<ServerId | PeerId>[] = [...r.servers, ...r.peers];
  const load = s.load.generator === 'wrk' ? `${s.load.version}, ${s.load.threads} threads` : s.load.version;
  lines.push(
    `Measured ${r.date.slice(0, 10)} on ${r.machine.cpus} cores (${r.machine.cpuModel}), Node ${r.machine.node}; load: ${load}; ` +
      `${s.connections} connections; ${s.rounds > 1 ? `${s.rounds} rounds of ` : ''}${s.warmupSeconds} s warm-up + ${s.durationSeconds} s measured per query and server` +
      `${s.rounds > 1 ? ' (the servers in turn; the median round shown)' : ''}` +
      `${s.quick ? ' (--quick)' : ''}${s.nodeOptions.length ? `; servers run with \`node ${s.nodeOptions.join(' ')}\`` : ''}` +
      `${(s.hubWorkers ?? 1) > 1 ? `; the hubs run as \`junction serve --workers ${s.hubWorkers}\` (pubsub and eventLog on Redis)` : ''}.`,
  );
  for (const u of r.unavailable) lines.push('', `${u.label}: ${u.reason}.`);
  lines.push(
    '',
    '**Hub ÷ reference, requests per second**',
    '',
    '| query | hub, cache off | hub, cache on | target |',
    '| --- | ---: | ---: | --- |',
  );
  const targets: Record<QueryName, string> = { Q1: '≥ 4× off, ≥ 25× on', Q2: '≥ 3×', Q3: '≥ 1.3×' };
  for (const q of ['Q1', 'Q2', 'Q3'] as const) {
    lines.push(`| ${q} | ${ratio(r.ratios['cache-off']?.[q])} | ${ratio(r.ratios['cache-on']?.[q])} | ${targets[q]} |`);
  }
  if (r.peers.length > 0) {
    const tc = r.peerRatios.tailcall;
    const floor = r.peerRatios['node-floor'];
    lines.push(
      '',
      '**Hub ÷ peers, requests per second**',
      '',
      '| query | ÷ Tailcall, cache off | ÷ Tailcall, cache on | ÷ plain Node floor, cache off | ÷ plain Node floor, cache on | target |',
      '| --- | ---: | ---: | ---: | ---: | --- |',
    );
    const peerTargets: Record<QueryName, string> = {
      Q1: `cache on ≥ ${PEER_TARGETS.q1CacheOnToTailcall}× Tailcall`,
      Q2: '',
      Q3: `≥ ${PEER_TARGETS.q3ToNodeFloor}× plain Node`,
    };
    for (const q of ['Q1', 'Q2', 'Q3'] as const) {
      lines.push(
        `| ${q} | ${ratio(tc?.['cache-off']?.[q])} | ${ratio(tc?.['cache-on']?.[q])} | ${ratio(floor?.['cache-off']?.[q])} | ${ratio(floor?.['cache-on']?.[q])} | ${peerTargets[q]} |`,
      );
    }
  }
  lines.push(
    '',
    `**p99 ÷ p50 latency** (target ≤ ${PEER_TARGETS.p99ToP50} at 100 connections; this run: ${s.connections})`,
    '',
    '| server | Q1 | Q2 | Q3 |',
    '| --- | ---: | ---: | ---: |',
  );
  for (const server of all) {
    const cell = (q: QueryName) => {
      const run = server.runs.find((x) => x.query === q);
      if (!run) return '–';
      const spread = spreadOf(run);
      return spread > PEER_TARGETS.p99ToP50 ? `**${fmt(spread, 1)}**` : fmt(spread, 1);
    };
    lines.push(`| ${server.label} | ${cell('Q1')} | ${cell('Q2')} | ${cell('Q3')} |`);
  }
  lines.push('', ...baselineMarkdown(r, all));
  lines.push(
    '',
    '**Runs**',
    '',
    `| server | query | req/s | p50 ms | p99 ms | p99/p50 | errors | non-2xx | wrong bodies | upstream calls / request |${r.settings.rounds > 1 ? ' req/s by round |' : ''}`,
    `| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${r.settings.rounds > 1 ? ' ---: |' : ''}`,
  );
  for (const server of all) {
    for (const run of server.runs) {
      lines.push(
        `| ${server.label} | ${run.query} | ${fmt(run.rps)} | ${fmt(run.p50, 1)} | ${fmt(run.p99, 1)} | ${fmt(spreadOf(run), 1)} | ` +
          `${fmt(run.errors + run.timeouts)} | ${fmt(run.non2xx)} | ${fmt(run.mismatches + run.before.failed + run.after.failed)} | ${fmt(run.upstreamPerRequest, 2)} |` +
          `${r.settings.rounds > 1 ? ` ${run.roundsRps.map((n) => fmt(n)).join(', ')} |` : ''}`,
      );
    }
  }
  const up = r.upstream.plainGet;
  lines.push(
    '',
    `Upstream alone (plain \`GET ${up.path}\`, ${s.connections} connections): ${fmt(up.rps)} req/s, p50 ${fmt(up.p50, 1)} ms, p99 ${fmt(up.p99, 1)} ms.`,
    '',
    '**Upstream requests per Q1 request** (sequential requests, counted at the upstream)',
    '',
    '| server | first request | each request after |',
    '| --- | ---: | ---: |',
  );
  for (const server of all) {
    const calls = server.q1UpstreamCalls;
    if (calls) lines.push(`| ${server.label} | ${fmt(calls.first, 2)} | ${fmt(calls.steady, 2)} |`);
  }
  const c = r.connections;
  if (c) {
    lines.push(
      '',
      `**Connections**: the hub holding ${fmt(c.connected)} idle graphql-ws connections, one subscription each (${fmt(c.failed)} failed to open)`,
      '',
      '| | RSS MB | heap used MB | event-loop delay p99 ms | max ms |',
      '| --- | ---: | ---: | ---: | ---: |',
      `| idle | ${fmt(c.idle.rssMB, 1)} | ${fmt(c.idle.heapUsedMB, 1)} | ${fmt(c.idle.eventLoopDelayP99Ms, 2)} | ${fmt(c.idle.eventLoopDelayMaxMs, 2)} |`,
      `| ${fmt(c.connected)} subscriptions | ${fmt(c.loaded.rssMB, 1)} | ${fmt(c.loaded.heapUsedMB, 1)} | ${fmt(c.loaded.eventLoopDelayP99Ms, 2)} | ${fmt(c.loaded.eventLoopDelayMaxMs, 2)} |`,
      '',
      `${fmt(c.kibPerSubscription, 1)} KiB per subscription; opening them took ${fmt(c.openSeconds, 1)} s; one message published to all arrived ` +
        `${fmt(c.broadcast.received)}/${fmt(c.connected)} times in ${fmt(c.broadcast.ms)} ms.`,
    );
  }
  if (r.events) lines.push('', ...eventsMarkdown(r.events));
  if (r.brokers) {
    lines.push(
      '',
      '**Queue connectors**: messages preloaded into each broker while the hub was stopped, then consumed by one hub process into its SQLite event log ' +
        '(synchronous = FULL; each message stored, then acknowledged, one at a time per queue to keep its order), timed from the first stored to the last; ' +
        'then sequential `@publish` mutations over HTTP, each answered after the broker confirmed the message (MQTT: at most 1,000 preloaded, Mosquitto\'s default queue of an offline session).',
      '',
      brokersMarkdown(r.brokers),
    );
  }
  lines.push('', '**Targets**', '', '| target | wanted | measured | met |', '| --- | --- | --- | --- |');
  for (const t of r.targets) lines.push(`| ${t.name} | ${t.target} | ${t.value} | ${t.met ? 'yes' : '**no**'} |`);
  lines.push('', `Every checked body correct: ${r.bodiesOk ? 'yes' : '**NO**'}.`);
  return `${lines.join('\n')}\n`;
}

/**
 * "issue #13 baseline vs now": the issue's figures beside this run's, req/s by query and Q1's
 * p50/p99, for every server the issue measured (a server not measured in this run shows –).
 */
function baselineMarkdown(r: Results, all: ServerResult<ServerId | PeerId>[]): string[] {
  const lines = [
    '**issue #13 baseline vs now** (baseline: wrk, 2 threads, 100 connections, 10 s, each server alone; req/s, and Q1 latency in ms)',
    '',
    '| server | Q1 baseline | Q1 now | Q2 baseline | Q2 now | Q3 baseline | Q3 now | Q1 p50/p99 baseline | Q1 p50/p99 now |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const ids = Object.keys(ISSUE_13_BASELINE) as (ServerId | PeerId)[];
  for (const id of ids) {
    const base = ISSUE_13_BASELINE[id];
    const server = all.find((x) => x.id === id);
    const run = (q: QueryName) => server?.runs.find((x) => x.query === q);
    const cells = (['Q1', 'Q2', 'Q3'] as const).flatMap((q) => {
      const now = run(q);
      const was = base.rps[q];
      return [was === undefined ? '–' : fmt(was), now === undefined ? '–' : fmt(now.rps)];
    });
    const q1 = run('Q1');
    const latencyNow = q1 ? `${fmt(q1.p50, 1)} / ${fmt(q1.p99, 1)}` : '–';
    const latencyWas = base.q1Latency ? `${fmt(base.q1Latency.p50)} / ${fmt(base.q1Latency.p99)}` : '–';
    lines.push(`| ${server?.label ?? labelOf(id)} | ${cells.join(' | ')} | ${latencyWas} | ${latencyNow} |`);
  }
  lines.push('', `Now: ${r.settings.load.generator}, ${r.settings.connections} connections, ${r.settings.durationSeconds} s per run, the servers in turn on the same machine (a shared VM: compare ratios).`);
  return lines;
}

/** The wanted p99 of webhook → subscriber latency for a subscriber count (the issue's targets). */
export const latencyTargetMs = (subscribers: number) => (subscribers <= 1000 ? 50 : 250);
/** The wanted webhook ingestion rate, events stored per second. */
export const INGESTION_TARGET = 3000;

function eventsMarkdown(e: EventsResult): string[] {
  const lines: string[] = [];
  const i = e.ingestion;
  lines.push(
    `**Webhook events**: signed webhooks (\`hmac\`, \`X-Signature: sha256=…\`) to the connector \`${e.source}\`, each durably stored in the SQLite event log ` +
      `(WAL, \`synchronous = FULL\`) before its 202`,
    '',
  );
  if (i) {
    const others = Object.entries(i.otherStatuses).map(([status, n]) => `${fmt(n)}× ${status}`).join(', ') || 'none';
    lines.push(
      '| connections | events/s (202) | each second of the window | POST p50 ms | p99 ms | hub CPU | 202s answered | stored in the log | other answers | errors, unanswered | target |',
      '| ---: | ---: | --- | ---: | ---: | --- | ---: | ---: | --- | ---: | --- |',
      `| ${fmt(i.connections)} | ${fmt(i.perSecond)} | ${i.bySecond.map((n) => fmt(n)).join(', ')} | ${fmt(i.p50, 1)} | ${fmt(i.p99, 1)} | ` +
        `${fmt(i.hubCpuPercent)} % (${fmt(i.hubCpuMsPerEvent, 3)} ms/event) | ${fmt(i.accepted)} | ${fmt(i.stored)} | ${others} | ` +
        `${fmt(i.errors)}, ${fmt(i.unanswered)} | ≥ ${fmt(INGESTION_TARGET)}/s: ${i.perSecond >= INGESTION_TARGET && i.allStored ? 'met' : '**missed**'} |`,
      '',
      `${i.durationSeconds} s measured after ${i.warmupSeconds} s of warm-up; every 202 stored exactly once: ${i.allStored ? 'yes' : '**NO**'}.`,
    );
  }
  lines.push(
    `The event log alone (\`SqliteEventLog.append\` in a loop, no HTTP): ${fmt(e.store.perSecond)} appends/s, ${fmt(e.store.meanMs, 3)} ms each (mostly the fsync of every commit).`,
  );
  if (e.latency.length) {
    lines.push(
      '',
      '**Webhook → subscriber latency**: one signed webhook at a time carrying its send time; every subscriber (graphql-ws, `subscription { events(source: …) { id payload } }`, a separate process) records receive − send',
      '',
      '| subscribers | events | reached every subscriber | fewest reached | p50 ms | p90 ms | p99 ms | max ms | POST 202 p50 ms | executions / event | CPU ms / event: hub, subscriber process | target p99 |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    );
    for (const l of e.latency) {
      const target = latencyTargetMs(l.subscribers);
      const met = l.p99 <= target && l.deliveredToAll === l.events && l.failed === 0;
      lines.push(
        `| ${fmt(l.connected)} | ${fmt(l.events)} | ${fmt(l.deliveredToAll)} | ${fmt(l.minReceived)} | ${fmt(l.p50, 1)} | ${fmt(l.p90, 1)} | ${fmt(l.p99, 1)} | ${fmt(l.max, 1)} | ` +
          `${fmt(l.postP50, 1)} | ${fmt(l.executionsPerEvent, 2)} | ${fmt(l.hubCpuMsPerEvent, 1)}, ${fmt(l.subscriberCpuMsPerEvent, 1)} | ≤ ${target} ms: ${met ? 'met' : '**missed**'} |`,
      );
    }
  }
  return lines;
}

/** A hand-written SVG: one panel per query, a bar per server (peers included), its req/s on it. */
export function svg(r: Results): string {
  const colours: Record<ServerId | PeerId, string> = {
    reference: '#9aa5b1',
    'hub-cache-off': '#3b82f6',
    'hub-cache-on': '#1e3a8a',
    tailcall: '#f59e0b',
    'node-floor': '#10b981',
  };
  const all: ServerResult<ServerId | PeerId>[] = [...r.servers, ...r.peers];
  const barW = 56;
  const gap = 20;
  const panelW = Math.max(260, 40 + all.length * (barW + gap));
  const panelH = 260;
  const top = 56;
  const width = panelW * 3 + 40;
  const height = top + panelH + 80;
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="20" y="24" font-size="16" font-weight="bold">Requests per second (higher is better)</text>`,
    `<text x="20" y="42" fill="#555">${esc(`${r.machine.cpus} cores, ${r.settings.load.generator}, ${r.settings.connections} connections, ${r.settings.rounds > 1 ? `median of ${r.settings.rounds} rounds of ` : ''}${r.settings.durationSeconds} s, ${r.date.slice(0, 10)}`)}</text>`,
  ];
  (['Q1', 'Q2', 'Q3'] as const).forEach((q, p) => {
    const x0 = 20 + p * panelW;
    const bars = all.flatMap((s) => {
      const run = s.runs.find((x) => x.query === q);
      return run ? [{ id: s.id, rps: run.rps }] : [];
    });
    const max = Math.max(1, ...bars.map((b) => b.rps));
    const base = top + panelH;
    parts.push(`<line x1="${x0}" y1="${base}" x2="${x0 + panelW - 20}" y2="${base}" stroke="#333"/>`);
    parts.push(`<text x="${x0 + (panelW - 20) / 2}" y="${base + 20}" text-anchor="middle" font-weight="bold">${q}</text>`);
    bars.forEach((b, i) => {
      const h = Math.round(((panelH - 30) * b.rps) / max);
      const x = x0 + 20 + i * (barW + gap);
      parts.push(`<rect x="${x}" y="${base - h}" width="${barW}" height="${h}" fill="${colours[b.id]}"/>`);
      parts.push(`<text x="${x + barW / 2}" y="${base - h - 6}" text-anchor="middle">${Math.round(b.rps).toLocaleString('en-US')}</text>`);
      // Inside a hub's bar: its ratio to the reference.
      const times = b.id === 'hub-cache-off' || b.id === 'hub-cache-on' ? r.ratios[b.id.replace('hub-', '')]?.[q] : undefined;
      if (times !== undefined && h > 24) {
        parts.push(`<text x="${x + barW / 2}" y="${base - h + 16}" text-anchor="middle" fill="#fff" font-weight="bold">${times.toFixed(1)}×</text>`);
      }
    });
  });
  all.forEach((server, i) => {
    const x = 20 + i * 220;
    const y = top + panelH + 48;
    parts.push(`<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${colours[server.id]}"/>`);
    parts.push(`<text x="${x + 18}" y="${y}">${esc(server.label)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
