import { createClient } from 'graphql-ws';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { gql, startHub, type TestHub } from './helpers.ts';

const SECRET = 'test-signing-secret-0123456789abcdef';
const key = new TextEncoder().encode(SECRET);

function token(claims: Record<string, unknown>, options: { secret?: Uint8Array; expiresIn?: string | number } = {}) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('user-1')
    .setIssuer('https://issuer.test')
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '5m')
    .sign(options.secret ?? key);
}

const bearer = async (claims: Record<string, unknown>) => ({ authorization: `Bearer ${await token(claims)}` });

const sdl = `
type Query {
  public: String!
  me: String @auth(requires: [])
  deals: [String!] @auth(requires: ["sales"])
  leak: String
}
type Report @auth(requires: ["finance"]) { total: Int! }
extend type Query { report: Report }
type Subscription { alerts: String! @auth(requires: ["ops"]) }
`;

const resolvers = `
export default {
  Query: {
    public: () => 'hello',
    me: (_, __, ctx) => ctx.user.id + ':' + ctx.user.roles.join(','),
    deals: () => ['acme'],
    report: () => ({ total: 42 }),
    leak: () => { throw new Error('upstream refused key ${SECRET}'); },
  },
  Subscription: {
    alerts: {
      subscribe: async function* () { yield { alerts: 'disk full' }; },
    },
  },
};
`;

let h: TestHub;
beforeAll(async () => {
  h = await startHub(
    { 'schema/s.graphql': sdl, 'resolvers/r.mjs': resolvers },
    { auth: { jwt: { secret: '${JWT_SECRET}', issuer: 'https://issuer.test' } } },
    { JWT_SECRET: SECRET },
  );
});
afterAll(() => h.stop());

describe('incoming auth over HTTP', () => {
  it('lets an anonymous caller read public fields', async () => {
    expect((await gql(h.url, '{ public }')).body).toEqual({ data: { public: 'hello' } });
  });

  it('refuses an @auth field to an anonymous caller with UNAUTHENTICATED, siblings intact', async () => {
    const r = await gql(h.url, '{ public me }');
    expect(r.body.data).toEqual({ public: 'hello', me: null });
    expect(r.body.errors).toMatchObject([{ message: 'Authentication required', path: ['me'], extensions: { code: 'UNAUTHENTICATED' } }]);
  });

  it('passes the verified user to resolvers', async () => {
    const r = await gql(h.url, '{ me }', undefined, await bearer({ roles: ['sales', 'ops'] }));
    expect(r.body).toEqual({ data: { me: 'user-1:sales,ops' } });
  });

  it('refuses a field to a caller lacking its role with FORBIDDEN', async () => {
    const r = await gql(h.url, '{ public deals }', undefined, await bearer({ roles: ['ops'] }));
    expect(r.body.data).toEqual({ public: 'hello', deals: null });
    expect(r.body.errors).toMatchObject([{ message: 'Requires the role sales', path: ['deals'], extensions: { code: 'FORBIDDEN' } }]);
    const ok = await gql(h.url, '{ deals }', undefined, await bearer({ roles: ['sales'] }));
    expect(ok.body).toEqual({ data: { deals: ['acme'] } });
  });

  it('applies @auth on an object type to each of its fields', async () => {
    const denied = await gql(h.url, '{ report { total } }', undefined, await bearer({ roles: ['sales'] }));
    expect(denied.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const allowed = await gql(h.url, '{ report { total } }', undefined, await bearer({ roles: ['finance'] }));
    expect(allowed.body).toEqual({ data: { report: { total: 42 } } });
  });

  it('requires the admin role for the management API once auth is configured', async () => {
    const anon = await gql(h.url, '{ hub { version } }');
    expect(anon.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const user = await gql(h.url, '{ hub { version } }', undefined, await bearer({ roles: ['sales'] }));
    expect(user.body.errors).toMatchObject([{ message: 'Requires the role admin', extensions: { code: 'FORBIDDEN' } }]);
    const admin = await gql(h.url, '{ hub { version } }', undefined, await bearer({ roles: ['admin'] }));
    expect(admin.body).toEqual({ data: { hub: { version: '0.1.0' } } });
    const mutation = await gql(h.url, 'mutation { resetBreaker(name: "x") { state } }', undefined, await bearer({ roles: [] }));
    expect(mutation.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('answers 401 UNAUTHENTICATED for a token with a bad signature, an expired token, or a wrong issuer', async () => {
    const cases: [string, string][] = [
      [await token({}, { secret: new TextEncoder().encode('another-secret-another-secret!!') }), 'Invalid token: bad signature'],
      [await token({}, { expiresIn: Math.floor(Date.now() / 1000) - 60 }), 'Invalid token: expired'],
      [await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://other').setExpirationTime('5m').sign(key), 'Invalid token: claim "iss" is not accepted'],
      ['not-a-jwt', 'Invalid token: malformed or unverifiable'],
    ];
    for (const [jwt, message] of cases) {
      const r = await gql(h.url, '{ public }', undefined, { authorization: `Bearer ${jwt}` });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      expect(r.body).toEqual({ errors: [{ message, extensions: { code: 'UNAUTHENTICATED' } }] });
    }
    const basic = await gql(h.url, '{ public }', undefined, { authorization: 'Basic dXNlcjpwYXNz' });
    expect(basic.body.errors?.[0]?.message).toBe('Expected "Authorization: Bearer <token>"');
  });

  it('never shows the signing secret: masked in the response, redacted in the log', async () => {
    const r = await gql(h.url, '{ leak }');
    expect(JSON.stringify(r.body)).not.toContain(SECRET);
    expect(r.body.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    const log = h.rawLogs();
    expect(log).toContain('upstream refused key [REDACTED]');
    expect(log).not.toContain(SECRET);
  });
});

describe('incoming auth over WebSocket', () => {
  function subscribeOnce(authorization?: string) {
    return new Promise<{ result?: unknown; error?: unknown; closeCode?: number }>((resolve) => {
      const client = createClient({
        url: h.wsUrl,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        lazy: true,
        connectionParams: authorization ? { authorization } : {},
        on: { closed: (event) => resolve({ closeCode: (event as { code: number }).code }) },
      });
      client.subscribe(
        { query: 'subscription { alerts }' },
        {
          next: (result) => {
            resolve({ result });
            void client.dispose();
          },
          error: (error) => {
            resolve({ error });
            void client.dispose();
          },
          complete: () => undefined,
        },
      );
    });
  }

  it('runs a subscription for a caller with the role, from the connection params token', async () => {
    const { result } = await subscribeOnce(`Bearer ${await token({ roles: ['ops'] })}`);
    expect(result).toEqual({ data: { alerts: 'disk full' } });
  });

  it('refuses the subscription to a caller without the role, with FORBIDDEN', async () => {
    // graphql-ws delivers a subscription that fails to start as one result with errors.
    const { result } = await subscribeOnce(`Bearer ${await token({ roles: ['sales'] })}`);
    expect(result).toMatchObject({ errors: [{ message: 'Requires the role ops', path: ['alerts'], extensions: { code: 'FORBIDDEN' } }] });
  });

  it('closes the connection with 4403 for an invalid token', async () => {
    const { closeCode } = await subscribeOnce('Bearer garbage');
    expect(closeCode).toBe(4403);
  });
});
