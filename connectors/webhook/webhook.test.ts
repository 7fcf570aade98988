// `type: webhook`: signatures checked against each ecosystem's own signing code and published
// vectors (verify.ts called directly), then every answer end to end through a real hub over
// real HTTP, with what was stored read back from the hub's event log.
import { execFileSync } from 'node:child_process';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { sign as githubSign } from '@octokit/webhooks-methods';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.ts';
import { gql, startHub, type TestHub } from '../../test/helpers.ts';
import { parseBody } from './connector.ts';
import { verifyGithub, verifyHmac, verifySlack, verifyStandard, verifyStripe } from './verify.ts';

const stripeWebhooks = Stripe.webhooks;

// Published vectors.
const GITHUB_VECTOR = {
  secret: "It's a Secret to Everybody",
  body: 'Hello, World!',
  signature: 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
};
const STANDARD_VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
// docs.slack.dev/authentication/verifying-requests-from-slack, the worked example.
const SLACK_VECTOR = {
  secret: '8f742231b10e8888abcd99yyyzzz85a5',
  timestamp: '1531420618',
  body:
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
  signature: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
};

/** Slack's documented scheme: `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<body>`. */
function slackSign(secret: string, timestamp: number | string, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

/** The README's command line: `printf %s "$BODY" | openssl dgst -sha256 -hmac "$SECRET"`, its hex. */
function opensslHex(secret: string, body: string, algorithm = 'sha256'): string {
  const out = execFileSync('openssl', ['dgst', `-${algorithm}`, '-hmac', secret], { input: body }).toString();
  return out.trim().split(/\s+/).at(-1)!;
}

const buf = (text: string) => Buffer.from(text);
const T0 = 1_800_000_000; // a fixed "now" for the unit tests

describe('verify.ts with the ecosystems’ own signers and published vectors', () => {
  describe('github', () => {
    const opts = (secrets: string[]) => ({ secrets, toleranceSec: 300 });
    it('accepts GitHub’s published vector, and @octokit/webhooks-methods signs it the same', async () => {
      expect(await githubSign(GITHUB_VECTOR.secret, GITHUB_VECTOR.body)).toBe(GITHUB_VECTOR.signature);
      expect(verifyGithub(buf(GITHUB_VECTOR.body), { 'x-hub-signature-256': GITHUB_VECTOR.signature }, opts([GITHUB_VECTOR.secret]))).toEqual({ ok: true });
    });

    it('accepts any configured secret (rotation) and refuses every other one', async () => {
      const body = '{"action":"opened"}';
      const old = await githubSign('old-secret', body);
      const next = await githubSign('new-secret', body);
      expect(verifyGithub(buf(body), { 'x-hub-signature-256': old }, opts(['new-secret', 'old-secret']))).toEqual({ ok: true });
      expect(verifyGithub(buf(body), { 'x-hub-signature-256': next }, opts(['new-secret', 'old-secret']))).toEqual({ ok: true });
      expect(verifyGithub(buf(body), { 'x-hub-signature-256': old }, opts(['new-secret']))).toEqual({
        ok: false,
        reason: 'bad_signature',
        message: 'X-Hub-Signature-256 does not match the body',
      });
    });

    it('verifies the raw bytes: one byte changed, or the same JSON re-serialized, does not match', async () => {
      const body = '{"a": 1}';
      const signature = await githubSign('s3cret-value', body);
      for (const other of ['{"a": 2}', '{"a":1}', `${body}\n`]) {
        expect(verifyGithub(buf(other), { 'x-hub-signature-256': signature }, opts(['s3cret-value'])).ok).toBe(false);
      }
    });

    it('names a missing or malformed header', () => {
      const body = buf(GITHUB_VECTOR.body);
      expect(verifyGithub(body, {}, opts(['x-secret']))).toEqual({ ok: false, reason: 'missing_header', message: 'missing X-Hub-Signature-256 header' });
      expect(verifyGithub(body, { 'x-hub-signature-256': '' }, opts(['x-secret']))).toEqual({
        ok: false,
        reason: 'missing_header',
        message: 'missing X-Hub-Signature-256 header',
      });
      const malformed = { ok: false, reason: 'bad_signature', message: 'X-Hub-Signature-256 is not "sha256=" followed by 64 hex digits' };
      for (const value of [
        GITHUB_VECTOR.signature.replace('sha256=', 'sha1='),
        GITHUB_VECTOR.signature.slice(0, -2),
        `${GITHUB_VECTOR.signature}00`,
        GITHUB_VECTOR.signature.replace(/.$/, 'z'),
        'sha256=',
        GITHUB_VECTOR.signature.slice('sha256='.length),
      ]) {
        expect(verifyGithub(body, { 'x-hub-signature-256': value }, opts([GITHUB_VECTOR.secret]))).toEqual(malformed);
      }
    });
  });

  describe('stripe', () => {
    const secret = 'whsec_test_secret_one';
    const payload = JSON.stringify({ id: 'evt_1', object: 'event', type: 'invoice.paid' });
    const opts = (secrets: string[], now = T0) => ({ secrets, toleranceSec: 300, now });

    it('accepts stripe’s generateTestHeaderString, with any configured secret', () => {
      const header = stripeWebhooks.generateTestHeaderString({ payload, secret, timestamp: T0 });
      expect(verifyStripe(buf(payload), { 'stripe-signature': header }, opts([secret]))).toEqual({ ok: true });
      expect(verifyStripe(buf(payload), { 'stripe-signature': header }, opts(['whsec_other', secret]))).toEqual({ ok: true });
      expect(verifyStripe(buf(payload), { 'stripe-signature': header }, opts(['whsec_other']))).toEqual({
        ok: false,
        reason: 'bad_signature',
        message: 'Stripe-Signature does not match the body',
      });
    });

    it('accepts a header with several v1 signatures when any one matches (Stripe rolling a secret)', () => {
      const mine = stripeWebhooks.generateTestHeaderString({ payload, secret, timestamp: T0 });
      const theirs = stripeWebhooks.generateTestHeaderString({ payload, secret: 'whsec_not_mine', timestamp: T0 });
      const v1 = (h: string) => h.split(',').find((p) => p.startsWith('v1='))!;
      const both = `t=${T0},${v1(theirs)},${v1(mine)},v0=abc`;
      expect(verifyStripe(buf(payload), { 'stripe-signature': both }, opts([secret]))).toEqual({ ok: true });
      expect(verifyStripe(buf(payload), { 'stripe-signature': `t=${T0},${v1(theirs)}` }, opts([secret])).ok).toBe(false);
    });

    it('refuses a timestamp older than the tolerance, or as far in the future; accepts the edges', () => {
      const at = (timestamp: number) => ({ 'stripe-signature': stripeWebhooks.generateTestHeaderString({ payload, secret, timestamp }) });
      expect(verifyStripe(buf(payload), at(T0 - 300), opts([secret]))).toEqual({ ok: true });
      expect(verifyStripe(buf(payload), at(T0 + 300), opts([secret]))).toEqual({ ok: true });
      expect(verifyStripe(buf(payload), at(T0 - 301), opts([secret]))).toEqual({
        ok: false,
        reason: 'stale_timestamp',
        message: 'Stripe-Signature is more than 300 s old',
      });
      expect(verifyStripe(buf(payload), at(T0 + 301), opts([secret]))).toEqual({
        ok: false,
        reason: 'stale_timestamp',
        message: 'Stripe-Signature is more than 300 s in the future',
      });
    });

    it('names a missing or malformed header', () => {
      const header = stripeWebhooks.generateTestHeaderString({ payload, secret, timestamp: T0 });
      const v1 = header.split(',').find((p) => p.startsWith('v1='))!;
      expect(verifyStripe(buf(payload), {}, opts([secret]))).toEqual({ ok: false, reason: 'missing_header', message: 'missing Stripe-Signature header' });
      const noTimestamp = { ok: false, reason: 'bad_signature', message: 'Stripe-Signature has no timestamp (t=<unix seconds>)' };
      expect(verifyStripe(buf(payload), { 'stripe-signature': v1 }, opts([secret]))).toEqual(noTimestamp);
      expect(verifyStripe(buf(payload), { 'stripe-signature': `t=-5,${v1}` }, opts([secret]))).toEqual(noTimestamp);
      expect(verifyStripe(buf(payload), { 'stripe-signature': `t=1.5,${v1}` }, opts([secret]))).toEqual(noTimestamp);
      expect(verifyStripe(buf(payload), { 'stripe-signature': 'garbage' }, opts([secret]))).toEqual(noTimestamp);
      const noV1 = { ok: false, reason: 'bad_signature', message: 'Stripe-Signature has no v1 signature (v1=<64 hex digits>)' };
      expect(verifyStripe(buf(payload), { 'stripe-signature': `t=${T0}` }, opts([secret]))).toEqual(noV1);
      expect(verifyStripe(buf(payload), { 'stripe-signature': `t=${T0},v1=zz` }, opts([secret]))).toEqual(noV1);
    });
  });

  describe('slack', () => {
    const opts = (secrets: string[], now: number) => ({ secrets, toleranceSec: 300, now });

    it('accepts Slack’s documented example', () => {
      expect(slackSign(SLACK_VECTOR.secret, SLACK_VECTOR.timestamp, SLACK_VECTOR.body)).toBe(SLACK_VECTOR.signature);
      const headers = { 'x-slack-signature': SLACK_VECTOR.signature, 'x-slack-request-timestamp': SLACK_VECTOR.timestamp };
      expect(verifySlack(buf(SLACK_VECTOR.body), headers, opts([SLACK_VECTOR.secret], Number(SLACK_VECTOR.timestamp) + 60))).toEqual({ ok: true });
      // The same request five minutes and one second later is a replay.
      expect(verifySlack(buf(SLACK_VECTOR.body), headers, opts([SLACK_VECTOR.secret], Number(SLACK_VECTOR.timestamp) + 301))).toEqual({
        ok: false,
        reason: 'stale_timestamp',
        message: 'X-Slack-Request-Timestamp is more than 300 s old',
      });
    });

    it('refuses a wrong secret, a future timestamp, and names missing or malformed headers', () => {
      const body = '{"type":"event_callback"}';
      const good = { 'x-slack-signature': slackSign('slack-signing', T0, body), 'x-slack-request-timestamp': String(T0) };
      expect(verifySlack(buf(body), good, opts(['other', 'slack-signing'], T0))).toEqual({ ok: true });
      expect(verifySlack(buf(body), good, opts(['other'], T0))).toEqual({ ok: false, reason: 'bad_signature', message: 'X-Slack-Signature does not match the body' });
      const future = { 'x-slack-signature': slackSign('slack-signing', T0 + 301, body), 'x-slack-request-timestamp': String(T0 + 301) };
      expect(verifySlack(buf(body), future, opts(['slack-signing'], T0))).toEqual({
        ok: false,
        reason: 'stale_timestamp',
        message: 'X-Slack-Request-Timestamp is more than 300 s in the future',
      });
      expect(verifySlack(buf(body), { 'x-slack-request-timestamp': String(T0) }, opts(['slack-signing'], T0))).toEqual({
        ok: false,
        reason: 'missing_header',
        message: 'missing X-Slack-Signature header',
      });
      expect(verifySlack(buf(body), { 'x-slack-signature': good['x-slack-signature'] }, opts(['slack-signing'], T0))).toEqual({
        ok: false,
        reason: 'missing_header',
        message: 'missing X-Slack-Request-Timestamp header',
      });
      expect(verifySlack(buf(body), { ...good, 'x-slack-request-timestamp': 'yesterday' }, opts(['slack-signing'], T0))).toEqual({
        ok: false,
        reason: 'bad_signature',
        message: 'X-Slack-Request-Timestamp is not a time in Unix seconds',
      });
      expect(verifySlack(buf(body), { ...good, 'x-slack-signature': good['x-slack-signature'].replace('v0=', 'v1=') }, opts(['slack-signing'], T0))).toEqual({
        ok: false,
        reason: 'bad_signature',
        message: 'X-Slack-Signature is not "v0=" followed by 64 hex digits',
      });
    });
  });

  describe('standard (Standard Webhooks)', () => {
    const opts = (secrets: string[], now: number) => ({ secrets, toleranceSec: 300, now });
    const vectorHeaders = {
      'webhook-id': STANDARD_VECTOR.id,
      'webhook-timestamp': String(STANDARD_VECTOR.timestamp),
      'webhook-signature': STANDARD_VECTOR.signature,
    };

    it('accepts the published vector, and standardwebhooks’ Webhook.sign signs it the same', () => {
      const signed = new Webhook(STANDARD_VECTOR.secret).sign(STANDARD_VECTOR.id, new Date(STANDARD_VECTOR.timestamp * 1000), STANDARD_VECTOR.body);
      expect(signed).toBe(STANDARD_VECTOR.signature);
      expect(verifyStandard(buf(STANDARD_VECTOR.body), vectorHeaders, opts([STANDARD_VECTOR.secret], STANDARD_VECTOR.timestamp))).toEqual({ ok: true });
    });

    it('accepts one matching signature among several (space-separated, other versions skipped), and any configured secret', () => {
      const other = 'whsec_' + Buffer.from('another key of enough bytes!').toString('base64');
      const theirs = new Webhook(other).sign(STANDARD_VECTOR.id, new Date(STANDARD_VECTOR.timestamp * 1000), STANDARD_VECTOR.body);
      const headers = { ...vectorHeaders, 'webhook-signature': `v1a,AAAA ${theirs} ${STANDARD_VECTOR.signature}` };
      expect(verifyStandard(buf(STANDARD_VECTOR.body), headers, opts([STANDARD_VECTOR.secret], STANDARD_VECTOR.timestamp))).toEqual({ ok: true });
      expect(verifyStandard(buf(STANDARD_VECTOR.body), { ...vectorHeaders, 'webhook-signature': theirs }, opts([STANDARD_VECTOR.secret, other], STANDARD_VECTOR.timestamp))).toEqual({ ok: true });
      expect(verifyStandard(buf(STANDARD_VECTOR.body), { ...vectorHeaders, 'webhook-signature': theirs }, opts([STANDARD_VECTOR.secret], STANDARD_VECTOR.timestamp))).toEqual({
        ok: false,
        reason: 'bad_signature',
        message: 'webhook-signature does not match the body',
      });
    });

    it('signs the id and the timestamp too: changing either breaks the signature', () => {
      const now = STANDARD_VECTOR.timestamp;
      expect(verifyStandard(buf(STANDARD_VECTOR.body), { ...vectorHeaders, 'webhook-id': 'msg_other' }, opts([STANDARD_VECTOR.secret], now)).ok).toBe(false);
      expect(verifyStandard(buf(STANDARD_VECTOR.body), { ...vectorHeaders, 'webhook-timestamp': String(now + 1) }, opts([STANDARD_VECTOR.secret], now)).ok).toBe(false);
    });

    it('refuses timestamps beyond the tolerance either way', () => {
      const body = buf(STANDARD_VECTOR.body);
      expect(verifyStandard(body, vectorHeaders, opts([STANDARD_VECTOR.secret], STANDARD_VECTOR.timestamp + 300))).toEqual({ ok: true });
      expect(verifyStandard(body, vectorHeaders, opts([STANDARD_VECTOR.secret], STANDARD_VECTOR.timestamp + 301))).toEqual({
        ok: false,
        reason: 'stale_timestamp',
        message: 'webhook-timestamp is more than 300 s old',
      });
      expect(verifyStandard(body, vectorHeaders, opts([STANDARD_VECTOR.secret], STANDARD_VECTOR.timestamp - 301))).toEqual({
        ok: false,
        reason: 'stale_timestamp',
        message: 'webhook-timestamp is more than 300 s in the future',
      });
    });

    it('names each missing header and a malformed one', () => {
      const body = buf(STANDARD_VECTOR.body);
      const now = STANDARD_VECTOR.timestamp;
      for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
        const headers: Record<string, string> = { ...vectorHeaders };
        delete headers[name];
        expect(verifyStandard(body, headers, opts([STANDARD_VECTOR.secret], now))).toEqual({ ok: false, reason: 'missing_header', message: `missing ${name} header` });
      }
      expect(verifyStandard(body, { ...vectorHeaders, 'webhook-timestamp': '2021-02-26' }, opts([STANDARD_VECTOR.secret], now))).toEqual({
        ok: false,
        reason: 'bad_signature',
        message: 'webhook-timestamp is not a time in Unix seconds',
      });
      for (const signature of ['g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=', 'v1,not base64!', 'v1,AAAA', 'v2,' + STANDARD_VECTOR.signature.slice(3)]) {
        expect(verifyStandard(body, { ...vectorHeaders, 'webhook-signature': signature }, opts([STANDARD_VECTOR.secret], now))).toEqual({
          ok: false,
          reason: 'bad_signature',
          message: 'webhook-signature has no v1 signature ("v1,<base64>")',
        });
      }
    });
  });

  describe('hmac', () => {
    const base = { secrets: ['hmac-secret'], toleranceSec: 300, now: T0, header: 'X-Signature', algorithm: 'sha256' as const, encoding: 'hex' as const };

    it('accepts what openssl dgst -hmac computes, with and without a prefix, for sha256, sha1 and sha512', () => {
      const body = '{"type":"order.created","id":"o-1"}';
      for (const algorithm of ['sha256', 'sha1', 'sha512'] as const) {
        const hex = opensslHex('hmac-secret', body, algorithm);
        expect(verifyHmac(buf(body), { 'x-signature': hex }, { ...base, algorithm })).toEqual({ ok: true });
        expect(verifyHmac(buf(body), { 'x-signature': `${algorithm}=${hex}` }, { ...base, algorithm, prefix: `${algorithm}=` })).toEqual({ ok: true });
        const b64 = Buffer.from(hex, 'hex').toString('base64');
        expect(verifyHmac(buf(body), { 'x-signature': b64 }, { ...base, algorithm, encoding: 'base64' })).toEqual({ ok: true });
      }
    });

    it('refuses a wrong secret, a missing prefix, a wrong encoding; names the configured header', () => {
      const body = '{"type":"t"}';
      const hex = opensslHex('hmac-secret', body);
      expect(verifyHmac(buf(body), { 'x-signature': opensslHex('wrong-secret', body) }, base)).toEqual({
        ok: false,
        reason: 'bad_signature',
        message: 'X-Signature does not match the body',
      });
      expect(verifyHmac(buf(body), { 'x-signature': hex }, { ...base, prefix: 'sha256=' })).toEqual({
        ok: false,
        reason: 'bad_signature',
        message: 'X-Signature is not "sha256=" followed by 64 hex digits',
      });
      expect(verifyHmac(buf(body), { 'x-signature': hex }, { ...base, encoding: 'base64' })).toEqual({
        ok: false,
        reason: 'bad_signature',
        message: 'X-Signature is not the base64 of 32 bytes',
      });
      expect(verifyHmac(buf(body), {}, base)).toEqual({ ok: false, reason: 'missing_header', message: 'missing X-Signature header' });
    });

    it('with timestampHeader, signs "<timestamp>.<body>" and refuses a stale or missing timestamp', () => {
      const body = '{"type":"t"}';
      const opts = { ...base, timestampHeader: 'X-Timestamp' };
      const at = (ts: number) => ({ 'x-timestamp': String(ts), 'x-signature': opensslHex('hmac-secret', `${ts}.${body}`) });
      expect(verifyHmac(buf(body), at(T0), opts)).toEqual({ ok: true });
      expect(verifyHmac(buf(body), { ...at(T0), 'x-timestamp': String(T0 + 1) }, opts)).toEqual({ ok: false, reason: 'bad_signature', message: 'X-Signature does not match the body' });
      expect(verifyHmac(buf(body), at(T0 - 301), opts)).toEqual({ ok: false, reason: 'stale_timestamp', message: 'X-Timestamp is more than 300 s old' });
      expect(verifyHmac(buf(body), at(T0 + 301), opts)).toEqual({ ok: false, reason: 'stale_timestamp', message: 'X-Timestamp is more than 300 s in the future' });
      expect(verifyHmac(buf(body), { 'x-signature': at(T0)['x-signature'] }, opts)).toEqual({ ok: false, reason: 'missing_header', message: 'missing X-Timestamp header' });
    });
  });

  it('parses a body only when it is UTF-8 JSON within the nesting limit', () => {
    expect(parseBody(buf('{"a":[1,{"b":"]]]]"}]}'))).toEqual({ a: [1, { b: ']]]]' }] });
    expect(parseBody(Buffer.from([0x7b, 0xff, 0x7d]))).toBe('the body is not valid UTF-8');
    expect(parseBody(buf('{"a":'))).toBe('the body is not valid JSON');
    expect(parseBody(buf(''))).toBe('the body is not valid JSON');
    expect(parseBody(buf(`${'['.repeat(100)}${']'.repeat(100)}`))).toEqual(expect.any(Array));
    expect(parseBody(buf(`${'['.repeat(101)}${']'.repeat(101)}`))).toBe('the body is nested deeper than 100 levels');
    // Brackets inside strings (escaped quotes included) do not count.
    expect(parseBody(buf(JSON.stringify({ s: `\\"${'['.repeat(500)}` })))).toEqual({ s: `\\"${'['.repeat(500)}` });
    expect(parseBody(buf(`payload=${encodeURIComponent('{"x":1}')}`), 'application/x-www-form-urlencoded')).toEqual({ x: 1 });
    expect(parseBody(buf('other=1'), 'application/x-www-form-urlencoded')).toBe('the form body has no "payload" field');
  });
});

describe('webhook config', () => {
  const parse = (connector: Record<string, unknown>) => parseConfig({ connectors: { hooks: { type: 'webhook', ...connector } } }, { file: 'junction.config.yaml', baseDir: '/tmp', env: {} });
  const problems = async (connector: Record<string, unknown>) => {
    const error = await parse(connector).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  };

  it('applies the defaults', async () => {
    const config = await parse({ scheme: 'github', secret: 'abc' });
    expect(config.connectors.hooks).toMatchObject({ scheme: 'github', secret: 'abc', toleranceSec: 300, maxBodyBytes: 1048576 });
  });

  it('refuses bad keys by path, never showing a secret', async () => {
    expect(await problems({ scheme: 'gitlab', secret: 'very-secret-1' })).toEqual([
      'connectors.hooks.scheme: expected one of github, stripe, slack, standard, hmac, got "gitlab"',
    ]);
    expect(await problems({ scheme: 'github' })).toEqual(['connectors.hooks.secret: expected a secret (a non-empty string) or a list of them, got nothing']);
    expect(await problems({ scheme: 'github', secret: [] })).toEqual(['connectors.hooks.secret: expected at least one secret, got [REDACTED]']);
    expect(await problems({ scheme: 'github', secret: ['ok-secret', ''] })).toEqual(['connectors.hooks.secret.1: expected a secret, got [REDACTED]']);
    expect(await problems({ scheme: 'hmac', secret: 'very-secret-2' })).toEqual(['connectors.hooks.header: expected the signature header name (required with scheme hmac)']);
    expect(await problems({ scheme: 'github', secret: 'very-secret-3', prefix: 'sha256=', algorithm: 'sha1' })).toEqual([
      'connectors.hooks.algorithm: is for scheme hmac only (scheme is github)',
      'connectors.hooks.prefix: is for scheme hmac only (scheme is github)',
    ]);
    expect(await problems({ scheme: 'hmac', secret: 'very-secret-4', header: 'X Sig', algorithm: 'md5', encoding: 'utf8' })).toEqual([
      'connectors.hooks.header: expected a header name (letters, digits and !#$%&\'*+-.^_`|~), got "X Sig"',
      'connectors.hooks.algorithm: expected sha256, sha1 or sha512, got "md5"',
      'connectors.hooks.encoding: expected hex or base64, got "utf8"',
    ]);
    expect(await problems({ scheme: 'standard', secret: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_not base64!'] })).toEqual([
      'connectors.hooks.secret: expected a Standard Webhooks secret: whsec_ followed by base64',
    ]);
    expect(await problems({ scheme: 'slack', secret: 'very-secret-5', toleranceSec: 0, maxBodyBytes: 'big' })).toEqual([
      'connectors.hooks.toleranceSec: expected a positive integer, got 0',
      'connectors.hooks.maxBodyBytes: expected a positive integer, got "big"',
    ]);
  });
});

// ---- end to end ------------------------------------------------------------------------------

const SECRETS = {
  github: ['gh-old-secret-value', 'gh-new-secret-value'],
  stripe: 'whsec_stripe_test_secret_value',
  slack: 'slack-signing-secret-value',
  standard: 'whsec_' + Buffer.from('standard webhooks key, 32 bytes').toString('base64'),
  demo: 'demo-hmac-secret-value',
  custom: 'custom-hmac-secret-value',
};

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

const answers: Answer[] = [];

async function post(h: TestHub, name: string, body: string | Buffer, headers: Record<string, string> = {}, path = ''): Promise<Answer> {
  const res = await fetch(`${h.origin}/webhooks/${name}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  const answer = { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as unknown) : undefined };
  answers.push(answer);
  return answer;
}

const now = () => Math.floor(Date.now() / 1000);

describe('webhooks end to end (real hub, real HTTP, the hub’s event log)', () => {
  let h: TestHub;
  const stored = (source: string) => h.hub.eventLog.read({ source, limit: 100 });

  beforeAll(async () => {
    h = await startHub(
      { 'schema/app.graphql': 'type Query { hello: String }' },
      {
        connectors: {
          gh: { type: 'webhook', scheme: 'github', secret: SECRETS.github },
          pay: { type: 'webhook', scheme: 'stripe', secret: SECRETS.stripe },
          chat: { type: 'webhook', scheme: 'slack', secret: SECRETS.slack },
          std: { type: 'webhook', scheme: 'standard', secret: SECRETS.standard },
          demo: { type: 'webhook', scheme: 'hmac', secret: SECRETS.demo, header: 'X-Signature', prefix: 'sha256=', encoding: 'hex', maxBodyBytes: 256 },
          custom: {
            type: 'webhook',
            scheme: 'hmac',
            secret: SECRETS.custom,
            header: 'X-Custom-Signature',
            algorithm: 'sha512',
            encoding: 'base64',
            typeHeader: 'X-Event-Type',
            idHeader: 'X-Delivery',
            timestampHeader: 'X-Timestamp',
          },
        },
      },
    );
  }, 60_000);
  afterAll(async () => {
    await h?.stop();
  });

  describe('github', () => {
    const payload = JSON.stringify({ action: 'opened', issue: { number: 7 } });

    it('stores a signed delivery (202), answers a redelivery 200 and stores it once', async () => {
      const delivery = randomUUID();
      const headers = { 'x-hub-signature-256': await githubSign(SECRETS.github[1]!, payload), 'x-github-event': 'issues', 'x-github-delivery': delivery };
      const first = await post(h, 'gh', payload, headers);
      expect(first.status).toBe(202);
      expect(first.body).toEqual({ id: expect.any(String), duplicate: false });
      const again = await post(h, 'gh', payload, headers);
      expect(again).toMatchObject({ status: 200, body: { id: (first.body as { id: string }).id, duplicate: true } });

      const events = await stored('gh');
      expect(events).toEqual([
        { id: (first.body as { id: string }).id, source: 'gh', type: 'issues.opened', deliveryId: delivery, receivedAt: expect.any(String), payload: JSON.parse(payload) },
      ]);
    });

    it('accepts the older secret during a rotation; an event without action is typed by X-GitHub-Event alone', async () => {
      const body = JSON.stringify({ zen: 'Keep it logically awesome.', hook_id: 1 });
      const answer = await post(h, 'gh', body, { 'x-hub-signature-256': await githubSign(SECRETS.github[0]!, body), 'x-github-event': 'ping', 'x-github-delivery': 'ping-1' });
      expect(answer.status).toBe(202);
      expect((await stored('gh')).at(-1)).toMatchObject({ type: 'ping', deliveryId: 'ping-1' });
    });

    it('accepts GitHub’s form content type (payload=<json>), signed over the form bytes', async () => {
      const form = `payload=${encodeURIComponent(JSON.stringify({ action: 'created', n: 1 }))}`;
      const answer = await post(h, 'gh', form, {
        'content-type': 'application/x-www-form-urlencoded',
        'x-hub-signature-256': await githubSign(SECRETS.github[0]!, form),
        'x-github-event': 'star',
        'x-github-delivery': 'form-1',
      });
      expect(answer.status).toBe(202);
      expect((await stored('gh')).at(-1)).toMatchObject({ type: 'star.created', deliveryId: 'form-1', payload: { action: 'created', n: 1 } });
    });

    it('answers 401 naming what was wrong, and stores nothing', async () => {
      const before = (await stored('gh')).length;
      const ok = { 'x-github-event': 'issues', 'x-github-delivery': randomUUID() };
      expect(await post(h, 'gh', payload, ok)).toMatchObject({ status: 401, body: { error: 'missing X-Hub-Signature-256 header' } });
      expect(await post(h, 'gh', payload, { ...ok, 'x-hub-signature-256': await githubSign('not-the-secret', payload) })).toMatchObject({
        status: 401,
        body: { error: 'X-Hub-Signature-256 does not match the body' },
      });
      expect(await post(h, 'gh', payload, { ...ok, 'x-hub-signature-256': 'sha256=nope' })).toMatchObject({
        status: 401,
        body: { error: 'X-Hub-Signature-256 is not "sha256=" followed by 64 hex digits' },
      });
      // Signed for other bytes.
      expect(await post(h, 'gh', `${payload} `, { ...ok, 'x-hub-signature-256': await githubSign(SECRETS.github[0]!, payload) })).toMatchObject({ status: 401 });
      expect(await stored('gh')).toHaveLength(before);
    });

    it('answers 400 for a signed body that is not JSON or lacks the GitHub headers, and stores nothing', async () => {
      const before = (await stored('gh')).length;
      // @octokit/webhooks-methods refuses to sign an empty payload: node:crypto signs that one.
      const sign = async (body: string) => (body ? githubSign(SECRETS.github[0]!, body) : `sha256=${createHmac('sha256', SECRETS.github[0]!).digest('hex')}`);
      const signed = async (body: string, headers: Record<string, string>) => post(h, 'gh', body, { 'x-hub-signature-256': await sign(body), ...headers });
      const ok = { 'x-github-event': 'issues', 'x-github-delivery': randomUUID() };
      expect(await signed('{"action":', ok)).toMatchObject({ status: 400, body: { error: 'the body is not valid JSON' } });
      expect(await signed('', ok)).toMatchObject({ status: 400, body: { error: 'the body is not valid JSON' } });
      expect(await signed(`${'['.repeat(5000)}${']'.repeat(5000)}`, ok)).toMatchObject({ status: 400, body: { error: 'the body is nested deeper than 100 levels' } });
      expect(await signed(payload, { 'x-github-delivery': randomUUID() })).toMatchObject({ status: 400, body: { error: 'missing X-GitHub-Event header' } });
      expect(await signed(payload, { 'x-github-event': 'issues' })).toMatchObject({ status: 400, body: { error: 'missing X-GitHub-Delivery header' } });
      expect(await signed(payload, { ...ok, 'x-github-delivery': 'd'.repeat(257) })).toMatchObject({
        status: 400,
        body: { error: 'the delivery id is longer than 256 characters' },
      });
      expect(await signed('payload=x', { ...ok, 'content-type': 'application/x-www-form-urlencoded' })).toMatchObject({ status: 400, body: { error: 'the body is not valid JSON' } });
      expect(await stored('gh')).toHaveLength(before);
    });

    it('signs invalid UTF-8 like any bytes, then answers 400', async () => {
      const body = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
      const sig = `sha256=${createHmac('sha256', SECRETS.github[0]!).update(body).digest('hex')}`;
      // The octokit signer takes text only; node:crypto signs the raw bytes for this one.
      const answer = await post(h, 'gh', body, { 'x-hub-signature-256': sig, 'x-github-event': 'issues', 'x-github-delivery': randomUUID() });
      expect(answer).toMatchObject({ status: 400, body: { error: 'the body is not valid UTF-8' } });
    });
  });

  describe('stripe', () => {
    it('stores an event signed by stripe’s own test header, typed and identified by the event itself', async () => {
      const payload = JSON.stringify({ id: 'evt_123', object: 'event', type: 'invoice.paid', data: { object: { id: 'in_1' } } });
      const header = stripeWebhooks.generateTestHeaderString({ payload, secret: SECRETS.stripe });
      const first = await post(h, 'pay', payload, { 'stripe-signature': header });
      expect(first).toMatchObject({ status: 202, body: { duplicate: false } });
      // Stripe retries with a new signature and timestamp: still the same event.
      const retry = await post(h, 'pay', payload, { 'stripe-signature': stripeWebhooks.generateTestHeaderString({ payload, secret: SECRETS.stripe, timestamp: now() - 10 }) });
      expect(retry).toMatchObject({ status: 200, body: { id: (first.body as { id: string }).id, duplicate: true } });
      expect(await stored('pay')).toEqual([
        { id: (first.body as { id: string }).id, source: 'pay', type: 'invoice.paid', deliveryId: 'evt_123', receivedAt: expect.any(String), payload: JSON.parse(payload) },
      ]);
    });

    it('answers 401 for stale and future timestamps, 400 for an event without type or id', async () => {
      const payload = JSON.stringify({ id: 'evt_old', type: 'invoice.paid' });
      const at = (timestamp: number, body = payload) => ({ 'stripe-signature': stripeWebhooks.generateTestHeaderString({ payload: body, secret: SECRETS.stripe, timestamp }) });
      expect(await post(h, 'pay', payload, at(now() - 3600))).toMatchObject({ status: 401, body: { error: 'Stripe-Signature is more than 300 s old' } });
      expect(await post(h, 'pay', payload, at(now() + 3600))).toMatchObject({ status: 401, body: { error: 'Stripe-Signature is more than 300 s in the future' } });
      expect(await post(h, 'pay', payload, {})).toMatchObject({ status: 401, body: { error: 'missing Stripe-Signature header' } });
      const noType = JSON.stringify({ id: 'evt_x' });
      expect(await post(h, 'pay', noType, at(now(), noType))).toMatchObject({ status: 400, body: { error: 'the body has no "type" (a Stripe event)' } });
      const noId = JSON.stringify({ type: 'invoice.paid' });
      expect(await post(h, 'pay', noId, at(now(), noId))).toMatchObject({ status: 400, body: { error: 'the body has no "id" (a Stripe event)' } });
      const list = '[1,2]';
      expect(await post(h, 'pay', list, at(now(), list))).toMatchObject({ status: 400, body: { error: 'the body has no "type" (a Stripe event)' } });
      expect(await stored('pay')).toHaveLength(1);
    });
  });

  describe('slack', () => {
    const signed = (body: string, ts = now()) => ({ 'x-slack-signature': slackSign(SECRETS.slack, ts, body), 'x-slack-request-timestamp': String(ts) });

    it('answers the url_verification challenge (signed) without storing it', async () => {
      const body = JSON.stringify({ token: 'Jhj5dZrVaK7ZwHHjRyZWjbDl', challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P', type: 'url_verification' });
      expect(await post(h, 'chat', body, signed(body))).toMatchObject({ status: 200, body: { challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P' } });
      expect(await post(h, 'chat', body, {})).toMatchObject({ status: 401, body: { error: 'missing X-Slack-Signature header' } });
      const noChallenge = JSON.stringify({ type: 'url_verification' });
      expect(await post(h, 'chat', noChallenge, signed(noChallenge))).toMatchObject({ status: 400, body: { error: 'url_verification without a "challenge"' } });
      expect(await stored('chat')).toEqual([]);
    });

    it('stores an event callback by event.type and event_id, once', async () => {
      const body = JSON.stringify({ type: 'event_callback', event_id: 'Ev08MFMKH6', event: { type: 'app_mention', text: 'hi' } });
      const first = await post(h, 'chat', body, signed(body));
      expect(first).toMatchObject({ status: 202, body: { duplicate: false } });
      // Slack's retry (X-Slack-Retry-Num) is signed again.
      expect(await post(h, 'chat', body, { ...signed(body), 'x-slack-retry-num': '1' })).toMatchObject({ status: 200, body: { duplicate: true } });
      expect(await stored('chat')).toMatchObject([{ type: 'app_mention', deliveryId: 'Ev08MFMKH6', payload: JSON.parse(body) }]);
    });

    it('answers 401 for a replay older than five minutes, 400 without event_id or event.type', async () => {
      const body = JSON.stringify({ type: 'event_callback', event_id: 'Ev2', event: { type: 'message' } });
      expect(await post(h, 'chat', body, signed(body, now() - 600))).toMatchObject({ status: 401, body: { error: 'X-Slack-Request-Timestamp is more than 300 s old' } });
      const noId = JSON.stringify({ type: 'event_callback', event: { type: 'message' } });
      expect(await post(h, 'chat', noId, signed(noId))).toMatchObject({ status: 400, body: { error: 'the body has no "event_id" (a Slack Events API callback)' } });
      const noType = JSON.stringify({ type: 'event_callback', event_id: 'Ev3', event: {} });
      expect(await post(h, 'chat', noType, signed(noType))).toMatchObject({ status: 400, body: { error: 'the body has no "event.type" (a Slack Events API callback)' } });
      expect(await stored('chat')).toHaveLength(1);
    });
  });

  describe('standard', () => {
    const wh = new Webhook(SECRETS.standard);
    const signed = (id: string, body: string, at = new Date()) => ({
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': wh.sign(id, at, body),
    });

    it('stores an event signed by standardwebhooks, by its type and webhook-id, once', async () => {
      const body = JSON.stringify({ type: 'user.created', data: { id: 'u1' } });
      const first = await post(h, 'std', body, signed('msg_1', body));
      expect(first).toMatchObject({ status: 202, body: { duplicate: false } });
      expect(await post(h, 'std', body, signed('msg_1', body))).toMatchObject({ status: 200, body: { duplicate: true } });
      expect(await stored('std')).toMatchObject([{ type: 'user.created', deliveryId: 'msg_1', payload: { type: 'user.created', data: { id: 'u1' } } }]);
    });

    it('answers 401 for a stale timestamp or a missing header, 400 without a type', async () => {
      const body = JSON.stringify({ type: 'user.deleted' });
      expect(await post(h, 'std', body, signed('msg_2', body, new Date(Date.now() - 3_600_000)))).toMatchObject({ status: 401, body: { error: 'webhook-timestamp is more than 300 s old' } });
      const { 'webhook-id': _id, ...noId } = signed('msg_2', body);
      expect(await post(h, 'std', body, noId)).toMatchObject({ status: 401, body: { error: 'missing webhook-id header' } });
      const untyped = JSON.stringify({ data: 1 });
      expect(await post(h, 'std', untyped, signed('msg_3', untyped))).toMatchObject({ status: 400, body: { error: 'the body has no "type" (Standard Webhooks)' } });
      expect(await stored('std')).toHaveLength(1);
    });
  });

  describe('hmac', () => {
    const demo = (body: string) => ({ 'x-signature': `sha256=${opensslHex(SECRETS.demo, body)}` });

    it('stores by the body’s type and id; without an id, the same bytes are the same delivery', async () => {
      const withId = JSON.stringify({ type: 'order.created', id: 42, total: 10 });
      expect(await post(h, 'demo', withId, demo(withId))).toMatchObject({ status: 202 });
      const noId = JSON.stringify({ type: 'order.updated', total: 11 });
      const first = await post(h, 'demo', noId, demo(noId));
      expect(first).toMatchObject({ status: 202 });
      expect(await post(h, 'demo', noId, demo(noId))).toMatchObject({ status: 200, body: { id: (first.body as { id: string }).id, duplicate: true } });
      expect(await stored('demo')).toMatchObject([
        { type: 'order.created', deliveryId: '42' },
        { type: 'order.updated', deliveryId: `sha256:${createHash('sha256').update(noId).digest('hex')}` },
      ]);
    });

    it('answers 401 without the prefix or the header, 400 without a type, 413 over maxBodyBytes, all storing nothing', async () => {
      const before = (await stored('demo')).length;
      const body = JSON.stringify({ type: 'order.created', id: 'x1' });
      expect(await post(h, 'demo', body, { 'x-signature': opensslHex(SECRETS.demo, body) })).toMatchObject({
        status: 401,
        body: { error: 'X-Signature is not "sha256=" followed by 64 hex digits' },
      });
      expect(await post(h, 'demo', body)).toMatchObject({ status: 401, body: { error: 'missing X-Signature header' } });
      const untyped = JSON.stringify({ id: 'x2' });
      expect(await post(h, 'demo', untyped, demo(untyped))).toMatchObject({
        status: 400,
        body: { error: 'the body has no "type" (set typeHeader when the type is sent in a header)' },
      });
      const big = JSON.stringify({ type: 'big', pad: 'x'.repeat(300) });
      expect(await post(h, 'demo', big, demo(big))).toMatchObject({ status: 413, body: { error: 'body over the limit of 256 bytes' } });
      expect(await stored('demo')).toHaveLength(before);
    });

    it('reads the type and id from the configured headers; signs "<timestamp>.<body>" with timestampHeader', async () => {
      const body = '[1,2,3]';
      const sig = (ts: number) => createHmac('sha512', SECRETS.custom).update(`${ts}.${body}`).digest('base64');
      const ts = now();
      const headers = { 'x-custom-signature': sig(ts), 'x-timestamp': String(ts), 'x-event-type': 'batch.ready', 'x-delivery': 'b-1' };
      expect(await post(h, 'custom', body, headers)).toMatchObject({ status: 202 });
      expect(await stored('custom')).toMatchObject([{ type: 'batch.ready', deliveryId: 'b-1', payload: [1, 2, 3] }]);
      const { 'x-delivery': _d, ...noDelivery } = headers;
      expect(await post(h, 'custom', body, noDelivery)).toMatchObject({ status: 400, body: { error: 'missing X-Delivery header' } });
      const { 'x-event-type': _t, ...noType } = headers;
      expect(await post(h, 'custom', body, noType)).toMatchObject({ status: 400, body: { error: 'missing X-Event-Type header' } });
      const old = now() - 1000;
      expect(await post(h, 'custom', body, { ...headers, 'x-custom-signature': sig(old), 'x-timestamp': String(old) })).toMatchObject({
        status: 401,
        body: { error: 'X-Timestamp is more than 300 s old' },
      });
      expect(await stored('custom')).toHaveLength(1);
    });
  });

  it('answers 405 for other methods, 404 for an unknown source or a path below one', async () => {
    const get = await fetch(`${h.origin}/webhooks/gh`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect(await post(h, 'nobody', '{}')).toMatchObject({ status: 404, body: { error: 'no connector named "nobody" receives webhooks here' } });
    expect(await post(h, 'gh', '{}', {}, '/extra')).toMatchObject({ status: 404, body: { error: 'not found; send POST /webhooks/gh' } });
  });

  it('shows the counts in hub { connectors } and in /metrics, and no secret anywhere', async () => {
    const r = await gql(
      h.url,
      '{ hub { connectors { name type healthy webhook { received stored duplicates rejected rejectedByReason { reason count } lastEventAt } } } }',
    );
    expect(r.body.errors).toBeUndefined();
    const byName = Object.fromEntries((r.body.data!.hub as { connectors: { name: string; webhook: unknown }[] }).connectors.map((c) => [c.name, c]));
    const gh = await stored('gh');
    expect(byName.gh).toEqual({
      name: 'gh',
      type: 'webhook',
      healthy: true,
      webhook: {
        received: 16,
        stored: 3,
        duplicates: 1,
        rejected: 12,
        rejectedByReason: [
          { reason: 'missing_header', count: 1 },
          { reason: 'bad_signature', count: 3 },
          { reason: 'malformed', count: 8 },
        ],
        lastEventAt: gh.at(-1)!.receivedAt,
      },
    });
    expect(byName.pay).toMatchObject({ webhook: { received: 8, stored: 1, duplicates: 1, rejected: 6 } });

    const metrics = await (await fetch(`${h.origin}/metrics`)).text();
    expect(metrics).toContain('junction_events_received_total{source="gh"} 16');
    expect(metrics).toContain('junction_events_stored_total{source="gh"} 3');
    expect(metrics).toContain('junction_events_duplicate_total{source="gh"} 1');
    expect(metrics).toContain('junction_events_rejected_total{source="gh",reason="bad_signature"} 3');
    expect(metrics).toContain('junction_events_rejected_total{source="pay",reason="stale_timestamp"} 2');

    const everything = [h.rawLogs(), metrics, JSON.stringify(r.body), ...answers.map((a) => JSON.stringify(a.body))].join('\n');
    for (const secret of Object.values(SECRETS).flat()) expect(everything).not.toContain(secret);
    expect(h.rawLogs()).toContain('webhook refused');
  });
});

describe('when the event log cannot store, or the source is over its rate limit', () => {
  const sendTo = async (h: TestHub, name: string, secret: string, delivery: string) => {
    const body = JSON.stringify({ action: 'opened' });
    return post(h, name, body, { 'x-hub-signature-256': await githubSign(secret, body), 'x-github-event': 'issues', 'x-github-delivery': delivery });
  };

  it('answers 503 with Retry-After (the sender retries), never 500; the breaker then answers at once', async () => {
    const h = await startHub(
      { 'schema/app.graphql': 'type Query { hello: String }' },
      { connectors: { gh: { type: 'webhook', scheme: 'github', secret: 'gh-secret-for-503', breaker: { volumeThreshold: 2, windowMs: 600_000, resetTimeoutMs: 120_000 } } } },
    );
    try {
      await h.hub.eventLog.close();
      for (const delivery of ['d-1', 'd-2']) {
        const answer = await sendTo(h, 'gh', 'gh-secret-for-503', delivery);
        expect(answer).toMatchObject({ status: 503, body: { error: 'the event could not be stored; retry later' } });
        expect(answer.headers.get('retry-after')).toBe('5');
      }
      // Two failures out of two: the breaker is open, and says when to come back.
      const open = await sendTo(h, 'gh', 'gh-secret-for-503', 'd-3');
      expect(open).toMatchObject({ status: 503, body: { error: 'the event could not be stored; retry later' } });
      expect(open.headers.get('retry-after')).toBe('120');
      const r = await gql(h.url, '{ hub { connector(name: "gh") { healthy breaker { state } failures lastError webhook { received stored rejectedByReason { reason count } } } } }');
      expect(r.body.data!.hub).toMatchObject({
        connector: {
          healthy: false,
          breaker: { state: 'OPEN' },
          failures: 3,
          lastError: expect.any(String),
          webhook: { received: 3, stored: 0, rejectedByReason: [{ reason: 'unavailable', count: 3 }] },
        },
      });
      expect(h.rawLogs()).toContain('webhook event not stored');
      expect(h.rawLogs()).not.toContain('gh-secret-for-503');
    } finally {
      await h.stop();
    }
  }, 60_000);

  it('answers 429 with Retry-After over the connector’s rateLimit, storing nothing', async () => {
    const h = await startHub(
      { 'schema/app.graphql': 'type Query { hello: String }' },
      // One event per 1000 s: the second one is over the limit however slow the machine.
      { connectors: { gh: { type: 'webhook', scheme: 'github', secret: 'gh-secret-for-429', rateLimit: { rps: 0.001, burst: 1 } } } },
    );
    try {
      expect(await sendTo(h, 'gh', 'gh-secret-for-429', 'r-1')).toMatchObject({ status: 202 });
      const over = await sendTo(h, 'gh', 'gh-secret-for-429', 'r-2');
      expect(over).toMatchObject({ status: 429, body: { error: "over this webhook source's rate limit; retry later" } });
      expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await h.hub.eventLog.read({ source: 'gh', limit: 10 })).toMatchObject([{ deliveryId: 'r-1' }]);
    } finally {
      await h.stop();
    }
  }, 60_000);
});
