import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.ts';
import { Secrets } from '../src/secrets.ts';

describe('Secrets: what is redacted', () => {
  const secrets = Secrets.fromConfig({
    auth: { jwt: { secret: 'hs256-signing-secret', issuer: 'https://login.example.com', rolesClaim: 'roles' } },
    connectors: {
      crm: { type: 'http', baseUrl: 'https://api.crm.example', auth: { type: 'bearer', token: 'tok' } },
      db: { type: 'sql', url: 'postgres://app:pg-pass-123@db.internal:5432/app' },
      hooks: { type: 'webhook', secret: 'whsec_abc' },
      rotated: { type: 'webhook', secret: ['old12', 'new34'] },
      bus: { type: 'nats', url: 'nats://s3cr3t-token@nats.internal:4222' },
    },
  });

  it('removes every secret value from text, however short a secret-named value is', () => {
    const text = 'sent hs256-signing-secret with tok to https://login.example.com, hook whsec_abc';
    expect(secrets.scrub(text)).toBe('sent [REDACTED] with [REDACTED] to [REDACTED], hook [REDACTED]');
  });

  it('removes every secret of a list (rotation), however short', () => {
    expect(secrets.scrub('tried old12 then new34')).toBe('tried [REDACTED] then [REDACTED]');
  });

  it('removes the password of any URL, configured or not', () => {
    expect(secrets.scrub('connect postgres://app:pg-pass-123@db.internal:5432/app failed')).toBe(
      'connect postgres://app:[REDACTED]@db.internal:5432/app failed',
    );
    expect(secrets.scrub('redis://:other-pass@cache:6379')).toBe('redis://:[REDACTED]@cache:6379');
    expect(secrets.scrub('pg-pass-123 alone')).toBe('[REDACTED] alone');
  });

  it('removes a NATS token given as the URL user-info (nats://TOKEN@host)', () => {
    expect(secrets.scrub('auth failed with s3cr3t-token at nats.internal')).toBe('auth failed with [REDACTED] at nats.internal');
  });

  it('keeps short ordinary words under auth (a claim name) out of the word list', () => {
    expect(secrets.scrub('roles were checked')).toBe('roles were checked');
  });

  it('replaces secret-named keys in objects and scrubs errors', () => {
    const out = secrets.scrubDeep({ auth: { token: 'x' }, password: 'p', note: 'tok', err: new Error('bad whsec_abc') });
    expect(out).toMatchObject({ auth: { token: '[REDACTED]' }, password: '[REDACTED]', note: '[REDACTED]' });
    expect((out.err as unknown as { message: string }).message).toBe('bad [REDACTED]');
  });

  it('collects secrets after ${VAR} substitution, so a secret from the environment is known', async () => {
    const config = await parseConfig(
      { auth: { jwt: { secret: '${JWT_SECRET}' } } },
      { file: 'junction.config.yaml', baseDir: '/tmp', env: { JWT_SECRET: 'from-the-environment' } },
    );
    expect(Secrets.fromConfig(config).scrub('key from-the-environment')).toBe('key [REDACTED]');
  });
});
