// `npm run bench` in a tiny mode, as CI runs it: it must complete, every body it checked must be
// correct, the hub must make exactly 2 upstream calls per Q1 request with the cache off, and every
// webhook answered 202 must be in the event log. The figures themselves are reported by the bench
// (README "Performance"), not asserted here.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Results } from '../bench/report.ts';
import { ROOT } from './helpers.ts';

const out = mkdtempSync(path.join(tmpdir(), 'junction-bench-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => {
      child.kill('SIGINT');
      reject(new Error(`the bench did not finish within 240 s\n${output}`));
    }, 240_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('npm run bench (tiny mode)', () => {
  it('completes, checks every body, counts 2 upstream calls per Q1 request, and writes every section', async () => {
    const { code, output } = await runBench([
      '--quick', '--warmup', '0.5', '--duration', '1', '--connections', '10', '--subscriptions', '50', '--sample', '5',
      '--event-subscribers', '50', '--latency-events', '5', '--out', out,
      // The same servers and load generator on every machine: wrk and Tailcall are the bench's, when installed.
      '--load', 'autocannon', '--servers', 'reference,hub-cache-off,hub-cache-on',
      '--broker-messages', '200', '--publishes', '5',
    ]);
    expect(code, output).toBe(0);
    const results = JSON.parse(readFileSync(path.join(out, 'latest.json'), 'utf8')) as Results;

    expect(results.bodiesOk).toBe(true);
    expect(results.servers.map((s) => s.id)).toEqual(['reference', 'hub-cache-off', 'hub-cache-on']);
    for (const server of results.servers) {
      expect(server.runs.map((r) => r.query)).toEqual(['Q1', 'Q2', 'Q3']);
      for (const run of server.runs) {
        expect(run.bodiesOk, `${server.id} ${run.query}`).toBe(true);
        expect(run.requests, `${server.id} ${run.query}`).toBeGreaterThan(0);
        expect(run.before.failed + run.after.failed + run.mismatches + run.non2xx + run.errors).toBe(0);
      }
    }
    const calls = Object.fromEntries(results.servers.map((s) => [s.id, s.q1UpstreamCalls]));
    expect(calls['hub-cache-off']).toMatchObject({ first: 2, steady: 2 });
    expect(calls['hub-cache-on']).toMatchObject({ first: 2, steady: 0 });
    expect(calls.reference).toMatchObject({ first: 11, steady: 11 });

    expect(results.upstream.plainGet.rps).toBeGreaterThan(0);
    // Every queue type consumed its whole backlog (the step waits for all of it) and confirmed every publish.
    expect(results.brokers?.map((b) => [b.type, b.messages, b.publish.count])).toEqual([
      ['amqp', 200, 5],
      ['nats', 200, 5],
      ['mqtt', 200, 5],
      ['redis', 200, 5],
    ]);
    for (const b of results.brokers ?? []) expect(b.perSecond, b.type).toBeGreaterThan(0);
    expect(Object.keys(results.ratios)).toEqual(['cache-off', 'cache-on']);
    expect(Object.keys(results.ratios['cache-off']!)).toEqual(['Q1', 'Q2', 'Q3']);
    expect(results.connections).toMatchObject({ subscriptions: 50, connected: 50, failed: 0, broadcast: { received: 50 } });
    expect(results.connections!.loaded.rssMB).toBeGreaterThan(0);
    expect(results.connections!.loaded.eventLoopDelayP99Ms).toBeGreaterThan(0);
    // Webhook events: distinct signed POSTs, every one answered 202 and stored exactly once; the
    // latency test's subscribers (a separate process) each got every event, from one execution.
    const events = results.events!;
    expect(events).not.toBeNull();
    expect(events.store.appends).toBeGreaterThan(0);
    const ingestion = events.ingestion!;
    expect(ingestion.accepted).toBeGreaterThan(0);
    expect(ingestion).toMatchObject({ otherStatuses: {}, errors: 0, unanswered: 0, allStored: true });
    expect(ingestion.stored).toBe(ingestion.accepted);
    expect(ingestion.perSecond).toBeGreaterThan(0);
    expect(events.latency).toHaveLength(1);
    expect(events.latency[0]).toMatchObject({ subscribers: 50, connected: 50, failed: 0, events: 5, deliveredToAll: 5, minReceived: 50, samples: 250, executionsPerEvent: 1 });
    expect(events.latency[0]!.p99).toBeGreaterThan(0);
    expect(results.targets.map((t) => t.name)).toEqual(
      expect.arrayContaining(['webhook ingestion, events stored per second (SQLite, synchronous = FULL)', 'webhook → subscriber p99, 50 subscribers']),
    );
    expect(results.targets.length).toBeGreaterThan(8);

    const table = readFileSync(path.join(out, 'latest.md'), 'utf8');
    expect(table).toContain('Hub ÷ reference');
    expect(table).toContain('**Webhook events**');
    expect(table).toContain('**Webhook → subscriber latency**');
    expect(output).toContain('Hub ÷ reference'); // the table is printed too
    expect(existsSync(path.join(out, 'latest.svg'))).toBe(true);
    expect(readFileSync(path.join(out, 'latest.svg'), 'utf8')).toMatch(/^<svg[^>]*>[\s\S]*<\/svg>\n$/);
  }, 300_000);
});
