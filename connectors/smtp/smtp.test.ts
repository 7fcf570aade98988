// `type: smtp` and `@mail`, end to end: a real hub over real HTTP sends through nodemailer to a
// real SMTP server (smtp-server, in process) that requires STARTTLS (a self-signed certificate
// made by openssl for this run) and AUTH PLAIN/LOGIN. Every assertion is what the client or the
// SMTP server saw.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config.ts';
import { gql, startHub, type TestHub } from '../../test/helpers.ts';

const USER = 'mailer';
// Characters that must be URL-encoded in smtp://user:password@host: the hub knows the encoded form.
const PASSWORD = 'pa$$:w0rd/S3cret';
const WRONG_PASSWORD = 'wrong-Pa55word';
const API_KEY = 'ops-api-key-0123456789';
const AS_OPS = { 'x-api-key': API_KEY };

let certDir: string;
let certFile: string;
let keyFile: string;

interface Received {
  from: string;
  to: string[];
  raw: string;
  secure: boolean;
  user: string | undefined;
}

/** A real SMTP server on 127.0.0.1 and what it saw. */
interface TestSmtp {
  port: number;
  received: Received[];
  /** Every MAIL FROM, accepted or not: a message the hub tried to send. */
  mailFrom: number;
  /** AUTH attempts, by user name. */
  auths: string[];
  /** RCPT TO attempts by address. */
  rcpt: string[];
  /** DATA attempts, each with its Message-ID header. */
  data: string[];
  stop(): Promise<void>;
}

async function startSmtp(options: Partial<SMTPServerOptions> = {}): Promise<TestSmtp> {
  const { readFileSync } = await import('node:fs');
  const state: Omit<TestSmtp, 'port' | 'stop'> = { received: [], mailFrom: 0, auths: [], rcpt: [], data: [] };
  let flakyOnce = true;
  const server = new SMTPServer({
    key: readFileSync(keyFile),
    cert: readFileSync(certFile),
    authMethods: ['PLAIN', 'LOGIN'],
    // AUTH only once STARTTLS is done (smtp-server's default, stated here on purpose).
    allowInsecureAuth: false,
    closeTimeout: 200,
    logger: false,
    onAuth(auth, _session, callback) {
      state.auths.push(auth.username ?? '');
      if (auth.username === USER && auth.password === PASSWORD) return callback(null, { user: USER });
      callback(Object.assign(new Error('5.7.8 Authentication credentials invalid'), { responseCode: 535 }));
    },
    onMailFrom(_address, _session, callback) {
      state.mailFrom++;
      callback();
    },
    onRcptTo(address, _session, callback) {
      state.rcpt.push(address.address);
      if (address.address.startsWith('nobody@')) {
        return callback(Object.assign(new Error('5.1.1 <nobody@example.com>: Recipient address rejected: no such user'), { responseCode: 550 }));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        state.data.push(header(raw, 'Message-ID') ?? '');
        const to = session.envelope.rcptTo.map((r) => r.address);
        if (to.some((t) => t.startsWith('flaky@')) && flakyOnce) {
          flakyOnce = false;
          return callback(Object.assign(new Error('4.3.0 Temporary local problem, try again'), { responseCode: 451 }));
        }
        state.received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to,
          raw,
          secure: session.secure,
          user: session.user as string | undefined,
        });
        callback(null, 'Queued as 4F2A');
      });
    },
    ...options,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return Object.assign(state, {
    port,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }) as TestSmtp;
}

/** One header's value from a raw message (unfolded). */
function header(raw: string, name: string): string | undefined {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

const SDL = `
type Query { ping: String }
type Mutation {
  notify(email: String!, name: String!): MailReceipt
    @mail(connector: "mail", to: "{args.email}", subject: "Hello {args.name}",
          text: "Hi {args.name}, from {context.user.sub}", html: "<p>Hi <b>{args.name}</b></p>")
  broadcast(emails: [String!]!): MailReceipt
    @mail(connector: "mail", to: "{args.emails}", subject: "News", text: "Same text for all")
}
`;

function mailConfig(port: number, extra: Record<string, unknown> = {}, password = PASSWORD) {
  return {
    type: 'smtp',
    url: `smtp://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    from: '"Junction" <noreply@example.com>',
    tls: { ca: certFile },
    retry: { attempts: 2, baseDelayMs: 5, maxDelayMs: 20 },
    ...extra,
  };
}

async function hubFor(port: number, extra: Record<string, unknown> = {}, password = PASSWORD): Promise<TestHub> {
  return startHub({ 'schema/mail.graphql': SDL }, {
    auth: { apiKeys: [{ key: API_KEY, sub: 'ops', roles: ['admin'] }] },
    connectors: { mail: mailConfig(port, extra, password) },
  });
}

const notify = (email: string, name = 'Ann') =>
  `mutation { notify(email: ${JSON.stringify(email)}, name: ${JSON.stringify(name)}) { messageId accepted rejected } }`;

beforeAll(() => {
  certDir = mkdtempSync(path.join(tmpdir(), 'junction-smtp-'));
  certFile = path.join(certDir, 'cert.pem');
  keyFile = path.join(certDir, 'key.pem');
  // A self-signed certificate for 127.0.0.1 (and localhost), valid one day: the hub trusts it
  // through tls.ca, with rejectUnauthorized left at its default (true).
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '1',
    '-keyout', keyFile, '-out', certFile, '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ], { stdio: 'ignore' });
});

afterAll(() => rmSync(certDir, { recursive: true, force: true }));

describe('@mail through a real SMTP server (STARTTLS, AUTH)', () => {
  let smtp: TestSmtp;
  let h: TestHub;
  beforeAll(async () => {
    smtp = await startSmtp();
    h = await hubFor(smtp.port);
  });
  afterAll(async () => {
    await h?.stop();
    await smtp?.stop();
  });

  it('sends the message over STARTTLS after AUTH, and answers the receipt from the server', async () => {
    const r = await gql(h.url, notify('ann@example.com', 'Ann <3'), undefined, AS_OPS);
    expect(r.body.errors).toBeUndefined();
    const receipt = r.body.data!.notify as { messageId: string; accepted: string[]; rejected: string[] };
    expect(receipt).toEqual({ messageId: expect.stringMatching(/^<[0-9a-f-]{36}@example\.com>$/), accepted: ['ann@example.com'], rejected: [] });

    expect(smtp.received).toHaveLength(1);
    const [mail] = smtp.received;
    expect(mail).toMatchObject({ from: 'noreply@example.com', to: ['ann@example.com'], secure: true, user: USER });
    expect(header(mail!.raw, 'From')).toBe('Junction <noreply@example.com>');
    expect(header(mail!.raw, 'To')).toBe('ann@example.com');
    expect(header(mail!.raw, 'Subject')).toBe('Hello Ann <3');
    expect(header(mail!.raw, 'Message-ID')).toBe(receipt.messageId);
    expect(header(mail!.raw, 'Content-Type')).toMatch(/^multipart\/alternative;/);
    // The text part as written, the caller's subject from the context; in the HTML part the
    // argument is escaped, so it cannot add markup.
    expect(mail!.raw).toContain('Hi Ann <3, from ops');
    expect(mail!.raw).toContain('<p>Hi <b>Ann &lt;3</b></p>');
  });

  it('sends to every address of a list argument, and lists a refused recipient in the receipt', async () => {
    const before = smtp.received.length;
    const r = await gql(h.url, 'mutation { broadcast(emails: ["ann@example.com", "Bob <bob@example.org>", "nobody@example.com"]) { accepted rejected } }', undefined, AS_OPS);
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data!.broadcast).toEqual({ accepted: ['ann@example.com', 'bob@example.org'], rejected: ['nobody@example.com'] });
    expect(smtp.received.slice(before).map((m) => m.to)).toEqual([['ann@example.com', 'bob@example.org']]);
    expect(header(smtp.received.at(-1)!.raw, 'To')).toBe('ann@example.com, Bob <bob@example.org>, nobody@example.com');
  });

  it('refuses header injection and anything that is not e-mail addresses with BAD_USER_INPUT, sending nothing', async () => {
    const before = { mailFrom: smtp.mailFrom, received: smtp.received.length };
    const cases: [string, string, RegExp][] = [
      // The exact string: a Bcc smuggled in through the recipient argument.
      ['a@b.c\r\nBcc: x@y.z', 'Ann', /^mail: to must not contain a line break \(CR or LF\); nothing was sent$/],
      ['a@b.c\nBcc: x@y.z', 'Ann', /line break/],
      ['ann@example.com', 'Ann\r\nBcc: x@y.z', /^mail: subject must be text without a line break \(CR or LF\); nothing was sent$/],
      ['not an address', 'Ann', /^mail: to must be a list of e-mail addresses/],
      ['undisclosed: x@y.z;', 'Ann', /^mail: to must be a list of e-mail addresses/],
      ['', 'Ann', /^mail: to names no recipient/],
    ];
    for (const [email, name, message] of cases) {
      const r = await gql(h.url, notify(email, name), undefined, AS_OPS);
      expect(r.body.data).toEqual({ notify: null });
      expect(r.body.errors).toHaveLength(1);
      expect(r.body.errors![0]!.message).toMatch(message);
      expect(r.body.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', connector: 'mail' });
    }
    // The server saw no message at all: not even a MAIL FROM.
    expect({ mailFrom: smtp.mailFrom, received: smtp.received.length }).toEqual(before);
  });

  it('a 550 for the only recipient is UPSTREAM_ERROR with the SMTP code, not retried', async () => {
    const attempts = smtp.rcpt.filter((a) => a === 'nobody@example.com').length;
    const r = await gql(h.url, notify('nobody@example.com'), undefined, AS_OPS);
    expect(r.body.data).toEqual({ notify: null });
    expect(r.body.errors![0]!.extensions).toEqual({
      code: 'UPSTREAM_ERROR',
      connector: 'mail',
      status: 550,
      smtpCode: 550,
      enhancedCode: '5.1.1',
      rejected: ['nobody@example.com'],
    });
    expect(r.body.errors![0]!.message).toMatch(/^mail: the SMTP server refused .*550 5\.1\.1 <nobody@example\.com>: Recipient address rejected: no such user/);
    expect(smtp.rcpt.filter((a) => a === 'nobody@example.com').length).toBe(attempts + 1);
  });

  it('a 451 is retried: the server answers 451 once, then accepts the same message', async () => {
    const before = smtp.data.length;
    const retries = h.logs.filter((l) => l.msg === 'retrying').length;
    const r = await gql(h.url, notify('flaky@example.com'), undefined, AS_OPS);
    expect(r.body.errors).toBeUndefined();
    const receipt = r.body.data!.notify as { messageId: string; accepted: string[] };
    expect(receipt.accepted).toEqual(['flaky@example.com']);
    // Two DATA attempts at the server, carrying the same Message-ID: one retry.
    expect(smtp.data.slice(before)).toEqual([receipt.messageId, receipt.messageId]);
    expect(h.logs.filter((l) => l.msg === 'retrying')).toHaveLength(retries + 1);
    expect(smtp.received.at(-1)!.to).toEqual(['flaky@example.com']);
  });

  it('testConnector is ok, and hub.connectors shows the connector healthy', async () => {
    const r = await gql(h.url, 'mutation { testConnector(name: "mail") { ok error } }', undefined, AS_OPS);
    expect(r.body.data!.testConnector).toEqual({ ok: true, error: null });
    const s = await gql(h.url, '{ hub { connectors { name type healthy breaker { state } } } }', undefined, AS_OPS);
    expect((s.body.data!.hub as { connectors: unknown[] }).connectors).toEqual([{ name: 'mail', type: 'smtp', healthy: true, breaker: { state: 'CLOSED' } }]);
  });

  it('never shows the password, in logs, errors or the management API', async () => {
    const s = await gql(h.url, '{ hub { connectors { lastError } } }', undefined, AS_OPS);
    const seen = JSON.stringify(s.body) + h.rawLogs();
    for (const secret of [PASSWORD, encodeURIComponent(PASSWORD)]) expect(seen).not.toContain(secret);
  });
});

describe('smtp failures: credentials, TLS, an unreachable server', () => {
  it('a wrong password is UPSTREAM_ERROR with 535, tried once; testConnector reports it; no password shown', async () => {
    const smtp = await startSmtp();
    const h = await hubFor(smtp.port, {}, WRONG_PASSWORD);
    try {
      const r = await gql(h.url, notify('ann@example.com'), undefined, AS_OPS);
      expect(r.body.data).toEqual({ notify: null });
      expect(r.body.errors![0]!.extensions).toEqual({ code: 'UPSTREAM_ERROR', connector: 'mail', status: 535, smtpCode: 535, enhancedCode: '5.7.8' });
      expect(r.body.errors![0]!.message).toMatch(/^mail: the SMTP server refused AUTH \w+: 535 5\.7\.8 Authentication credentials invalid$/);
      // Not retried: one AUTH attempt, no message.
      expect(smtp.auths).toEqual([USER]);
      expect(smtp.mailFrom).toBe(0);

      const t = await gql(h.url, 'mutation { testConnector(name: "mail") { ok error } }', undefined, AS_OPS);
      expect(t.body.data!.testConnector).toEqual({ ok: false, error: expect.stringMatching(/535 5\.7\.8 Authentication credentials invalid/) });
      // A refusal is not an outage: the breaker did not count it.
      const s = await gql(h.url, '{ hub { connectors { breaker { state } failures lastError } } }', undefined, AS_OPS);
      expect((s.body.data!.hub as { connectors: unknown[] }).connectors).toEqual([
        { breaker: { state: 'CLOSED' }, failures: 0, lastError: expect.stringMatching(/535/) },
      ]);
      const seen = JSON.stringify([r.body, t.body, s.body]) + h.rawLogs();
      for (const secret of [WRONG_PASSWORD, encodeURIComponent(WRONG_PASSWORD)]) expect(seen).not.toContain(secret);
    } finally {
      await h.stop();
      await smtp.stop();
    }
  });

  it('requireTLS (the default) refuses a server without STARTTLS before sending credentials', async () => {
    // A server that cannot do STARTTLS at all, and would take AUTH in the clear.
    const smtp = await startSmtp({ disabledCommands: ['STARTTLS'], allowInsecureAuth: true });
    const h = await hubFor(smtp.port);
    try {
      const r = await gql(h.url, notify('ann@example.com'), undefined, AS_OPS);
      expect(r.body.data).toEqual({ notify: null });
      // nodemailer asks for STARTTLS although it is not offered, and stops at the refusal.
      expect(r.body.errors![0]!.extensions).toEqual({ code: 'UPSTREAM_ERROR', connector: 'mail', status: 500, smtpCode: 500 });
      expect(r.body.errors![0]!.message).toBe('mail: the SMTP server refused STARTTLS: 500 Error: command not recognized');
      expect(smtp.auths).toEqual([]);
      expect(smtp.mailFrom).toBe(0);
    } finally {
      await h.stop();
      await smtp.stop();
    }
  });

  it('refuses a certificate it cannot verify (rejectUnauthorized defaults to true)', async () => {
    const smtp = await startSmtp();
    const h = await startHub({ 'schema/mail.graphql': SDL }, {
      auth: { apiKeys: [{ key: API_KEY, sub: 'ops', roles: ['admin'] }] },
      connectors: { mail: { ...mailConfig(smtp.port), tls: {} } },
    });
    try {
      const r = await gql(h.url, notify('ann@example.com'), undefined, AS_OPS);
      expect(r.body.errors![0]!.extensions).toEqual({ code: 'UPSTREAM_ERROR', connector: 'mail' });
      expect(r.body.errors![0]!.message).toBe(`mail: TLS with the SMTP server 127.0.0.1:${smtp.port} failed: self-signed certificate`);
      // Not retried (it cannot get better), and no credentials were sent.
      expect(smtp.auths).toEqual([]);
      expect(h.logs.filter((l) => l.msg === 'retrying')).toEqual([]);
    } finally {
      await h.stop();
      await smtp.stop();
    }
  });

  it('a stopped server is UPSTREAM_ERROR, and after breaker.volumeThreshold failures CIRCUIT_OPEN', async () => {
    const smtp = await startSmtp();
    const h = await hubFor(smtp.port, { breaker: { volumeThreshold: 3, resetTimeoutMs: 600_000 } });
    try {
      const ok = await gql(h.url, 'mutation { testConnector(name: "mail") { ok error } }', undefined, AS_OPS);
      expect(ok.body.data!.testConnector).toEqual({ ok: true, error: null });
      await smtp.stop();

      for (let i = 0; i < 3; i++) {
        const r = await gql(h.url, notify('ann@example.com'), undefined, AS_OPS);
        expect(r.body.data).toEqual({ notify: null });
        expect(r.body.errors![0]!.extensions).toEqual({ code: 'UPSTREAM_ERROR', connector: 'mail' });
        expect(r.body.errors![0]!.message).toMatch(new RegExp(`^mail: cannot reach the SMTP server 127\\.0\\.0\\.1:${smtp.port}: .*ECONNREFUSED`));
      }
      const open = await gql(h.url, notify('ann@example.com'), undefined, AS_OPS);
      expect(open.body.errors![0]!.extensions).toEqual({ code: 'CIRCUIT_OPEN', connector: 'mail' });

      const s = await gql(h.url, '{ hub { connectors { healthy breaker { state } failures lastError } } }', undefined, AS_OPS);
      expect((s.body.data!.hub as { connectors: unknown[] }).connectors).toEqual([
        { healthy: false, breaker: { state: 'OPEN' }, failures: 4, lastError: expect.stringMatching(/ECONNREFUSED/) },
      ]);
      const t = await gql(h.url, 'mutation { testConnector(name: "mail") { ok error } }', undefined, AS_OPS);
      expect(t.body.data!.testConnector).toEqual({ ok: false, error: expect.stringMatching(/ECONNREFUSED/) });
      const seen = JSON.stringify([s.body, t.body, open.body]) + h.rawLogs();
      for (const secret of [PASSWORD, encodeURIComponent(PASSWORD)]) expect(seen).not.toContain(secret);
    } finally {
      await h.stop();
    }
  });
});

describe('smtp configuration and @mail at build time', () => {
  const parse = (connector: Record<string, unknown>) =>
    parseConfig({ connectors: { mail: { type: 'smtp', ...connector } } }, { file: 'junction.config.yaml', baseDir: '/tmp', env: {} });
  async function problems(connector: Record<string, unknown>): Promise<string[]> {
    const error = await parse(connector).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }

  it('applies the defaults', async () => {
    const config = await parse({ url: 'smtp://mail.example.com', from: 'noreply@example.com' });
    expect(config.connectors.mail).toMatchObject({ requireTLS: true, tls: { rejectUnauthorized: true }, connections: 5, maxRecipients: 50 });
  });

  it('names each bad key, never the URL or a credential', async () => {
    expect(await problems({ url: 'http://user:hunter22@mail.example.com', from: 'not an address' })).toEqual([
      'connectors.mail.url: expected an smtp:// or smtps:// URL, got a "http:" URL',
      'connectors.mail.from: expected one sender address (noreply@example.com or "Example" <noreply@example.com>), got "not an address"',
    ]);
    expect(await problems({ url: 'smtp://mail.example.com', from: 'a@example.com', auth: { type: 'bearer', token: 'tok-123456' } })).toEqual([
      'connectors.mail.auth.type: expected basic (SMTP AUTH with username and password) for an smtp connector, got bearer',
    ]);
    expect(await problems({ url: 'smtp://u:p@mail.example.com', from: 'a@example.com', auth: { type: 'basic', username: 'u', password: 'p' } })).toEqual([
      'connectors.mail.auth: expected credentials in the url or in auth, not both',
    ]);
    expect(await problems({ url: 'smtp://mail.example.com', from: 'a@example.com', headers: { 'X-Tag': 'a\r\nBcc: x@y.z', Bcc: 'x@y.z' } })).toEqual([
      'connectors.mail.headers.X-Tag: expected a header value without a line break (CR or LF)',
      'connectors.mail.headers.Bcc: expected a header other than To, Cc, Bcc, From, Sender, Subject, Message-ID, Date and the MIME headers (the message sets them)',
    ]);
  });

  it('@mail binds Mutation fields returning MailReceipt only, named with their location', async () => {
    const smtp = { type: 'smtp', url: 'smtp://127.0.0.1:1', from: 'noreply@example.com' };
    const bad = `type Query {
  send(to: String!): MailReceipt @mail(connector: "mail", to: "{args.to}", subject: "Hi", text: "x")
}
type Mutation {
  other(to: String!): String @mail(connector: "mail", to: "{args.who}", subject: "Hi")
}
`;
    const error = await startHub({ 'schema/bad.graphql': bad }, { connectors: { mail: smtp } }).then(() => undefined, (e: Error) => e);
    expect(error?.message.split('\n')).toEqual([
      'schema/bad.graphql:2:3: Query.send @mail: @mail binds Mutation fields only (sending an e-mail is a mutation)',
      'schema/bad.graphql:5:3: Mutation.other @mail: the field must return MailReceipt, not String',
      'schema/bad.graphql:5:3: Mutation.other @mail: needs text, html or both',
      'schema/bad.graphql:5:3: Mutation.other @mail: {args.who} names an argument the field does not have (arguments: to)',
    ]);
  });
});
