import type { ConnectionsResult } from './connections.ts';
import type { EventsResult } from './events.ts';
import type { RunResult, SampleCheck } from './load.ts';
import type { QueryName } from './workload.ts';

/** bench/results/latest.json. */
export interface Results {
  date: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  settings: {
    quick: boolean;
    nodeOptions: string[];
    rounds: number;
    warmupSeconds: number;
    durationSeconds: number;
    connections: number;
    subscriptions: number;
    sample: number;
    /** The events step: subscriber counts of the latency test, and measured events per count. */
    eventSubscribers: number[];
    latencyEvents: number;
  };
  upstream: { plainGet: RunResult & { path: string } };
  servers: ServerResult[];
  /** Hub req/s ÷ reference req/s, by hub mode and query. */
  ratios: Record<string, Partial<Record<QueryName, number>>>;
  connections: ConnectionsResult | null;
  /** Webhook ingestion and webhook → subscriber latency (bench/events.ts); null with --skip-events. */
  events: EventsResult | null;
  targets: Target[];
  /** Every sample check passed and no response of any run had a wrong body. */
  bodiesOk: boolean;
}

export type ServerId = 'reference' | 'hub-cache-off' | 'hub-cache-on';

export interface ServerResult {
  id: ServerId;
  label: string;
  /** Upstream requests per Q1 request: the first request, then the mean over `requests` sequential ones. */
  q1UpstreamCalls: { first: number; steady: number; requests: number };
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

const LABELS: Record<ServerId, string> = {
  reference: 'reference (Apollo Server)',
  'hub-cache-off': 'hub, cache off',
  'hub-cache-on': 'hub, cache on',
};
export const labelOf = (id: ServerId) => LABELS[id];

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–');
const ratio = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '–' : `${n.toFixed(2)}×`);

/** The markdown report: ratios first, then every run, upstream calls, connections, targets. */
export function markdown(r: Results): string {
  const lines: string[] = [];
  const s = r.settings;
  lines.push(
    `Measured ${r.date.slice(0, 10)} on ${r.machine.cpus} cores (${r.machine.cpuModel}), Node ${r.machine.node}; ` +
      `${s.connections} connections; ${s.rounds > 1 ? `${s.rounds} rounds of ` : ''}${s.warmupSeconds} s warm-up + ${s.durationSeconds} s measured per query and server` +
      `${s.rounds > 1 ? ' (the servers in turn; the median round shown)' : ''}` +
      `${s.quick ? ' (--quick)' : ''}${s.nodeOptions.length ? `; servers run with \`node ${s.nodeOptions.join(' ')}\`` : ''}.`,
    '',
    '**Hub ÷ reference, requests per second**',
    '',
    '| query | hub, cache off | hub, cache on | target |',
    '| --- | ---: | ---: | --- |',
  );
  const targets: Record<QueryName, string> = { Q1: '≥ 3× off, ≥ 10× on', Q2: '≥ 1.5×', Q3: '≥ 1.2×' };
  for (const q of ['Q1', 'Q2', 'Q3'] as const) {
    lines.push(`| ${q} | ${ratio(r.ratios['cache-off']?.[q])} | ${ratio(r.ratios['cache-on']?.[q])} | ${targets[q]} |`);
  }
  lines.push(
    '',
    '**Runs**',
    '',
    `| server | query | req/s | p50 ms | p99 ms | p99/p50 | errors | non-2xx | wrong bodies | upstream calls / request |${r.settings.rounds > 1 ? ' req/s by round |' : ''}`,
    `| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${r.settings.rounds > 1 ? ' ---: |' : ''}`,
  );
  for (const server of r.servers) {
    for (const run of server.runs) {
      lines.push(
        `| ${server.label} | ${run.query} | ${fmt(run.rps)} | ${fmt(run.p50)} | ${fmt(run.p99)} | ${fmt(run.p99 / Math.max(run.p50, 1), 1)} | ` +
          `${fmt(run.errors + run.timeouts)} | ${fmt(run.non2xx)} | ${fmt(run.mismatches + run.before.failed + run.after.failed)} | ${fmt(run.upstreamPerRequest, 2)} |` +
          `${r.settings.rounds > 1 ? ` ${run.roundsRps.map((n) => fmt(n)).join(', ')} |` : ''}`,
      );
    }
  }
  const up = r.upstream.plainGet;
  lines.push(
    '',
    `Upstream alone (plain \`GET ${up.path}\`, ${s.connections} connections): ${fmt(up.rps)} req/s, p50 ${fmt(up.p50)} ms, p99 ${fmt(up.p99)} ms.`,
    '',
    '**Upstream requests per Q1 request** (sequential requests, counted at the upstream)',
    '',
    '| server | first request | each request after |',
    '| --- | ---: | ---: |',
  );
  for (const server of r.servers) {
    lines.push(`| ${server.label} | ${fmt(server.q1UpstreamCalls.first, 2)} | ${fmt(server.q1UpstreamCalls.steady, 2)} |`);
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
  lines.push('', '**Targets**', '', '| target | wanted | measured | met |', '| --- | --- | --- | --- |');
  for (const t of r.targets) lines.push(`| ${t.name} | ${t.target} | ${t.value} | ${t.met ? 'yes' : '**no**'} |`);
  lines.push('', `Every checked body correct: ${r.bodiesOk ? 'yes' : '**NO**'}.`);
  return `${lines.join('\n')}\n`;
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

/** A hand-written SVG: one panel per query, a bar per server, its req/s on it. */
export function svg(r: Results): string {
  const colours: Record<ServerId, string> = { reference: '#9aa5b1', 'hub-cache-off': '#3b82f6', 'hub-cache-on': '#1e3a8a' };
  const panelW = 260;
  const panelH = 260;
  const top = 56;
  const barW = 56;
  const gap = 20;
  const width = panelW * 3 + 40;
  const height = top + panelH + 80;
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="20" y="24" font-size="16" font-weight="bold">Requests per second (higher is better)</text>`,
    `<text x="20" y="42" fill="#555">${esc(`${r.machine.cpus} cores, ${r.settings.connections} connections, ${r.settings.rounds > 1 ? `median of ${r.settings.rounds} rounds of ` : ''}${r.settings.durationSeconds} s, ${r.date.slice(0, 10)}`)}</text>`,
  ];
  (['Q1', 'Q2', 'Q3'] as const).forEach((q, p) => {
    const x0 = 20 + p * panelW;
    const bars = r.servers.map((s) => ({ id: s.id, rps: s.runs.find((run) => run.query === q)?.rps ?? 0 }));
    const max = Math.max(1, ...bars.map((b) => b.rps));
    const base = top + panelH;
    parts.push(`<line x1="${x0}" y1="${base}" x2="${x0 + panelW - 20}" y2="${base}" stroke="#333"/>`);
    parts.push(`<text x="${x0 + (panelW - 20) / 2}" y="${base + 20}" text-anchor="middle" font-weight="bold">${q}</text>`);
    bars.forEach((b, i) => {
      const h = Math.round(((panelH - 30) * b.rps) / max);
      const x = x0 + 20 + i * (barW + gap);
      parts.push(`<rect x="${x}" y="${base - h}" width="${barW}" height="${h}" fill="${colours[b.id]}"/>`);
      parts.push(`<text x="${x + barW / 2}" y="${base - h - 6}" text-anchor="middle">${Math.round(b.rps).toLocaleString('en-US')}</text>`);
      const times = b.id === 'reference' ? undefined : r.ratios[b.id.replace('hub-', '')]?.[q];
      if (times !== undefined && h > 24) {
        parts.push(`<text x="${x + barW / 2}" y="${base - h + 16}" text-anchor="middle" fill="#fff" font-weight="bold">${times.toFixed(1)}×</text>`);
      }
    });
  });
  const ids = r.servers.map((s) => s.id);
  ids.forEach((id, i) => {
    const x = 20 + i * 220;
    const y = top + panelH + 48;
    parts.push(`<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${colours[id]}"/>`);
    parts.push(`<text x="${x + 18}" y="${y}">${esc(labelOf(id))}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
