import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BreakerState, Connector, ConnectorStatus, ConnectorTestResult } from '../connectors/runtime/contract.ts';
import { gql, startHub, type TestHub } from './helpers.ts';

/**
 * A connector whose health the test sets: the hub's management API and /readyz are what is
 * under test here, not a connector (none exists in the registry yet).
 */
class SwitchableConnector implements Connector {
  readonly type = 'test';
  healthy = true;
  breaker: BreakerState = 'OPEN';
  constructor(
    readonly name: string,
    readonly required: boolean,
  ) {}
  async start() {}
  async close() {}
  status(): ConnectorStatus {
    return {
      name: this.name,
      type: this.type,
      required: this.required,
      healthy: this.healthy,
      lastError: this.healthy ? null : 'connection refused',
      breaker: { state: this.breaker },
      requests: 7,
      failures: this.healthy ? 0 : 3,
      cache: null,
      pool: null,
    };
  }
  async check(): Promise<ConnectorTestResult> {
    return { ok: this.healthy, latencyMs: 1.5, error: this.healthy ? null : 'connection refused' };
  }
  resetBreaker() {
    this.breaker = 'CLOSED';
    return { state: this.breaker };
  }
}

const crm = new SwitchableConnector('crm', true);
const mail = new SwitchableConnector('mail', false);
let h: TestHub;
beforeAll(async () => {
  h = await startHub({}, {}, {}, { crm, mail });
});
afterAll(() => h.stop());

describe('management API and readiness', () => {
  it('lists connectors with their status', async () => {
    const r = await gql(h.url, '{ hub { connectors { name type required healthy lastError breaker { state } requests failures cache { hits } } } }');
    expect(r.body).toEqual({
      data: {
        hub: {
          connectors: [
            { name: 'crm', type: 'test', required: true, healthy: true, lastError: null, breaker: { state: 'OPEN' }, requests: 7, failures: 0, cache: null },
            { name: 'mail', type: 'test', required: false, healthy: true, lastError: null, breaker: { state: 'OPEN' }, requests: 7, failures: 0, cache: null },
          ],
        },
      },
    });
    const one = await gql(h.url, '{ hub { connector(name: "mail") { name } none: connector(name: "nope") { name } } }');
    expect(one.body).toEqual({ data: { hub: { connector: { name: 'mail' }, none: null } } });
  });

  it('runs a health check and resets a breaker on demand', async () => {
    const test = await gql(h.url, 'mutation { testConnector(name: "crm") { name ok latencyMs error } }');
    expect(test.body).toEqual({ data: { testConnector: { name: 'crm', ok: true, latencyMs: 1.5, error: null } } });
    const reset = await gql(h.url, 'mutation { resetBreaker(name: "crm") { state } }');
    expect(reset.body).toEqual({ data: { resetBreaker: { state: 'CLOSED' } } });
  });

  it('answers an unknown connector name with BAD_USER_INPUT naming the configured ones', async () => {
    const r = await gql(h.url, 'mutation { resetBreaker(name: "crn") { state } }');
    expect(r.body.errors).toMatchObject([
      { message: 'No connector named "crn" (configured: crm, mail)', extensions: { code: 'BAD_USER_INPUT', argument: 'name' } },
    ]);
  });

  it('/readyz answers 503 while a required connector is unhealthy, and ignores optional ones', async () => {
    mail.healthy = false;
    const optionalDown = await fetch(`${h.origin}/readyz`);
    expect(optionalDown.status).toBe(200);

    crm.healthy = false;
    const requiredDown = await fetch(`${h.origin}/readyz`);
    expect(requiredDown.status).toBe(503);
    expect(await requiredDown.json()).toEqual({
      status: 'not ready',
      connectors: [
        { name: 'crm', type: 'test', required: true, healthy: false, lastError: 'connection refused' },
        { name: 'mail', type: 'test', required: false, healthy: false, lastError: 'connection refused' },
      ],
    });

    crm.healthy = true;
    expect((await fetch(`${h.origin}/readyz`)).status).toBe(200);
  });
});
