import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { NodemailerError, SMTPPoolSentMessageInfo, Transporter } from 'nodemailer';
import type nodemailerModule from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser';
import {
  BaseConnector,
  bool,
  connectorConfig,
  type ConnectorDeps,
  ErrorCode,
  HubError,
  positiveInt,
  str,
  UpstreamError,
  urlParts,
  z,
} from '../../src/index.ts';

// nodemailer loads with the first smtp connector: `junction check` and hubs without one do not pay for it.
const require = createRequire(import.meta.url);
let mailer: typeof nodemailerModule | undefined;
const nodemailer = () => (mailer ??= require('nodemailer') as typeof nodemailerModule);

const URL_EXPECTED = 'expected an smtp:// or smtps:// URL';

// RFC 9110 §5.6.2 token characters: what a header name may hold.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers nodemailer writes from the message itself: set through `to`, `subject`, `from`, never `headers`. */
const RESERVED_HEADERS = new Set([
  'to', 'cc', 'bcc', 'from', 'sender', 'subject', 'message-id', 'date', 'mime-version', 'content-type', 'content-transfer-encoding',
]);
/** CR, LF or NUL: what would end a header line and start another one (header injection). */
const LINE_BREAK = /[\r\n\0]/;
/** One DNS label, letters of any script allowed (nodemailer sends IDNs as punycode). */
const LABEL = '[\\p{L}\\p{N}](?:[\\p{L}\\p{N}-]*[\\p{L}\\p{N}])?';
/** A mailbox: a local part without spaces, quotes or separators, `@`, a domain with a dot. */
const ADDRESS = new RegExp(`^[^\\s@<>()",;:\\\\\\[\\]]+@${LABEL}(?:\\.${LABEL})+$`, 'u');
const DOMAIN = new RegExp(`^(\\*\\.)?${LABEL}(?:\\.${LABEL})+$`, 'u');

/** SMTP replies retried: the server may accept the same message later (RFC 5321 §4.2.1). */
const TRANSIENT_REPLIES = new Set([421, 450, 451, 452]);
/**
 * SMTP replies the breaker counts: the server itself is failing (421 service not available,
 * 451 local error in processing, 452 insufficient storage). A 450 (mailbox busy, greylisting)
 * and every 5xx refuse this message, sender or credentials: the server works.
 */
const FAILURE_REPLIES = new Set([421, 451, 452]);
/** nodemailer's codes for "no SMTP answer": connection refused, reset or timed out, DNS. */
const CONNECTION_CODES = new Set(['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EDNS']);
/** Node's codes for a TLS handshake or certificate failure, kept by nodemailer as `originalCode`. */
const TLS_FAILURE = /CERT|SELF_SIGNED|^ERR_TLS_|^ERR_SSL_|^UNABLE_TO_|^EPROTO$/;

export const smtpConfigSchema = connectorConfig({
  /**
   * `smtp://host:587` (STARTTLS) or `smtps://host:465` (TLS from the first byte). Credentials may
   * be given as user-info (`smtp://user:password@host`, URL-encoded), a secret like `auth`.
   */
  url: z.string({ error: URL_EXPECTED }).superRefine((value, ctx) => {
    // Names the scheme at most, never the URL: it may hold a password.
    const { scheme, url } = urlParts(value);
    if ((scheme === 'smtp' || scheme === 'smtps') && url?.hostname) {
      if ((url.pathname !== '' && url.pathname !== '/') || url.search || url.hash) {
        ctx.addIssue({ code: 'custom', message: `${URL_EXPECTED} without a path or query (options are keys of the connector)`, params: { complete: true } });
      }
      return;
    }
    const got = scheme ? `a ${scheme === 'smtp' || scheme === 'smtps' ? 'malformed ' : ''}"${scheme}:" URL` : 'no URL scheme';
    ctx.addIssue({ code: 'custom', message: `${URL_EXPECTED}, got ${got}`, params: { complete: true } });
  }),
  /** The sender of every message: `noreply@example.com` or `"Example" <noreply@example.com>`. */
  from: str('a sender address').refine((from) => singleMailbox(from) !== undefined, {
    error: 'expected one sender address (noreply@example.com or "Example" <noreply@example.com>)',
  }),
  /** Default true. With `smtp://`, STARTTLS is required: a server that does not offer it is an error. */
  requireTLS: bool().default(true),
  tls: z
    .strictObject({
      /** Default true. The server's certificate must be valid for its host name. */
      rejectUnauthorized: bool().default(true),
      /** Default: the system's CAs. A PEM file of CAs to trust instead (relative to the config file). */
      ca: str('a path to a PEM file').optional(),
    })
    .prefault({}),
  /** Default 5. Pooled SMTP connections kept open and used in parallel. */
  connections: positiveInt().default(5),
  /** Default 50. Most recipients of one message; more is BAD_USER_INPUT. */
  maxRecipients: positiveInt().default(50),
  /**
   * Default: any domain. The only recipient domains (`example.com`, `*.example.com` for its
   * subdomains); a message to any other is BAD_USER_INPUT before anything is sent.
   */
  allowDomains: z
    .array(z.string({ error: 'expected a domain name' }).regex(DOMAIN, { error: 'expected a domain name (example.com or *.example.com)' }), {
      error: 'expected a list of domain names',
    })
    .optional(),
}).superRefine((c, ctx) => {
  // Key names only in these messages, never a value: `params.complete` stops the loader adding one.
  if (c.auth && c.auth.type !== 'basic') {
    ctx.addIssue({
      code: 'custom',
      path: ['auth', 'type'],
      message: `expected basic (SMTP AUTH with username and password) for an smtp connector, got ${c.auth.type}`,
      params: { complete: true },
    });
  }
  if (c.auth && URL.canParse(c.url) && new URL(c.url).username) {
    ctx.addIssue({ code: 'custom', path: ['auth'], message: 'expected credentials in the url or in auth, not both', params: { complete: true } });
  }
  if (c.cache) {
    ctx.addIssue({ code: 'custom', path: ['cache'], message: 'does not apply to an smtp connector: sending mail is never cached', params: { complete: true } });
  }
  for (const [name, value] of Object.entries(c.headers)) {
    const problem = headerProblem(name, value);
    if (problem) ctx.addIssue({ code: 'custom', path: ['headers', name], message: `expected ${problem}`, params: { complete: true } });
  }
});
export type SmtpConfig = z.output<typeof smtpConfigSchema>;

/** One message, as `@mail` or a code resolver describes it. */
export interface MailMessage {
  /** One address, a comma-separated list (`"Ann" <ann@example.com>, bob@example.com`) or a list. */
  to: string | readonly string[];
  subject: string;
  text?: string | null | undefined;
  html?: string | null | undefined;
  /** Default: the connector's `from`. */
  from?: string | undefined;
  /** Extra headers of this message, over the connector's `headers`. */
  headers?: Record<string, string> | undefined;
}

/** What the SMTP server accepted (`MailReceipt` in GraphQL). */
export interface MailReceipt {
  /** The Message-ID header, angle brackets included; the same on every attempt of one send. */
  messageId: string;
  /** Recipients the server accepted. */
  accepted: string[];
  /** Recipients the server refused while accepting the others. */
  rejected: string[];
}

/**
 * An SMTP server behind the pipeline: one pooled nodemailer transport (STARTTLS required on
 * smtp:// unless turned off, SMTP AUTH from the URL or `auth: { type: basic }`), every message
 * checked for header injection before anything is sent.
 */
export class SmtpConnector extends BaseConnector<SmtpConfig> {
  readonly #transport: Transporter<SMTPPoolSentMessageInfo>;
  readonly #server: string;
  /** The URL's password decoded: the configured (encoded) one is scrubbed by the hub already. */
  readonly #password: string | undefined;

  constructor(name: string, config: SmtpConfig, deps: ConnectorDeps) {
    super(name, config, deps);
    const url = new URL(config.url);
    const secure = url.protocol === 'smtps:';
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = url.port ? Number(url.port) : secure ? 465 : 587;
    this.#server = `${url.hostname}:${port}`;
    const auth =
      config.auth?.type === 'basic'
        ? { user: config.auth.username, pass: config.auth.password }
        : url.username
          ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) }
          : undefined;
    this.#password = auth?.pass || undefined;
    let ca: string | undefined;
    if (config.tls.ca) {
      const file = path.resolve(deps.baseDir, config.tls.ca);
      try {
        ca = readFileSync(file, 'utf8');
      } catch (error) {
        throw new Error(`connector ${name}: cannot read tls.ca ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
    }
    this.#transport = nodemailer().createTransport({
      pool: true,
      host,
      port,
      secure,
      requireTLS: !secure && config.requireTLS,
      tls: { rejectUnauthorized: config.tls.rejectUnauthorized, ...(ca !== undefined && { ca }) },
      ...(auth && { auth }),
      maxConnections: config.connections,
      // The pipeline retries (with its backoff, its deadline and its metrics), not the pool.
      maxRequeues: 0,
      connectionTimeout: config.timeoutMs,
      greetingTimeout: config.timeoutMs,
      socketTimeout: config.timeoutMs,
      // A message is built from the strings given only: no file or URL is ever read into it.
      disableFileAccess: true,
      disableUrlAccess: true,
      logger: false,
    });
  }

  /**
   * Sends one message through the pipeline: not cached, retried on transient failures (421, 450,
   * 451, 452, no answer, a timeout) with the same Message-ID. Throws BAD_USER_INPUT, before
   * anything is sent, for a line break in any header field, a recipient that is not an e-mail
   * address, too many recipients or a domain outside `allowDomains`.
   */
  async send(message: MailMessage): Promise<MailReceipt> {
    const mail = this.#check(message);
    const messageId = `<${randomUUID()}@${mail.domain}>`;
    const outcome = await this.call({
      key: `mail ${messageId}`,
      safe: false,
      retryable: true,
      attempt: async (signal) => {
        try {
          const info = await this.#transport.sendMail({ ...mail.fields, messageId, signal });
          return { messageId: info.messageId || messageId, accepted: addresses(info.accepted), rejected: addresses(info.rejected) };
        } catch (error) {
          if (signal.aborted) throw error; // the pipeline makes it UPSTREAM_TIMEOUT
          throw this.#upstreamError(error as NodemailerError);
        }
      },
    });
    return outcome.value;
  }

  #check(message: MailMessage) {
    const refuse = (text: string) => new HubError(ErrorCode.BAD_USER_INPUT, `${this.name}: ${text}; nothing was sent`, { connector: this.name });
    const from = message.from ?? this.config.from;
    if (LINE_BREAK.test(from)) throw refuse('from must not contain a line break (CR or LF)');
    const sender = singleMailbox(from);
    if (!sender) throw refuse('from must be one e-mail address');

    const to = typeof message.to === 'string' ? message.to : message.to.join(', ');
    if (LINE_BREAK.test(to)) throw refuse('to must not contain a line break (CR or LF)');
    const parsed = addressparser(to);
    if (parsed.length === 0) throw refuse('to names no recipient');
    const recipients: string[] = [];
    for (const entry of parsed) {
      if (entry.group !== undefined || !ADDRESS.test(entry.address)) throw refuse('to must be a list of e-mail addresses (ann@example.com, "Bob" <bob@example.com>)');
      recipients.push(entry.address);
    }
    if (recipients.length > this.config.maxRecipients) throw refuse(`to names ${recipients.length} recipients, more than maxRecipients (${this.config.maxRecipients})`);
    const allow = this.config.allowDomains;
    if (allow) {
      const outside = recipients.find((r) => !domainAllowed(r.slice(r.lastIndexOf('@') + 1), allow));
      if (outside) throw refuse(`recipient domain ${outside.slice(outside.lastIndexOf('@') + 1)} is not in allowDomains`);
    }

    if (typeof message.subject !== 'string' || LINE_BREAK.test(message.subject)) throw refuse('subject must be text without a line break (CR or LF)');
    const text = message.text ?? undefined;
    const html = message.html ?? undefined;
    if (text === undefined && html === undefined) throw refuse('a message needs text, html or both');

    const headers = { ...this.config.headers, ...message.headers };
    for (const [name, value] of Object.entries(headers)) {
      const problem = headerProblem(name, value);
      if (problem) throw refuse(`header ${LINE_BREAK.test(name) ? '(name with a line break)' : name}: expected ${problem}`);
    }
    return {
      domain: sender.address.slice(sender.address.lastIndexOf('@') + 1),
      fields: {
        from,
        to: parsed.map((a) => ({ name: a.name, address: a.address! })),
        subject: message.subject,
        ...(text !== undefined && { text }),
        ...(html !== undefined && { html }),
        headers,
      },
    };
  }

  #upstreamError(error: NodemailerError): UpstreamError {
    const code = error.responseCode;
    if (typeof code === 'number' && code >= 400) {
      const reply = this.#clean(error.response ?? `${code}`);
      const command = typeof error.command === 'string' && /^[A-Z]+(?: [A-Z]+)?$/.test(error.command) ? error.command : undefined;
      const enhancedCode = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply)?.[1];
      const rejected = Array.isArray(error.rejected) && error.rejected.length > 0 ? error.rejected.map(String) : undefined;
      return new UpstreamError(this.name, `${this.name}: the SMTP server refused ${command ?? 'the message'}: ${reply}`, {
        status: code,
        transient: TRANSIENT_REPLIES.has(code),
        countsAsFailure: FAILURE_REPLIES.has(code),
        details: { smtpCode: code, ...(enhancedCode && { enhancedCode }), ...(rejected && { rejected }) },
      });
    }
    const reason = this.#clean(error.message);
    if (TLS_FAILURE.test(error.originalCode ?? '') || error.code === 'ETLS' || error.code === 'EREQUIRETLS') {
      // The certificate is refused (self-signed, expired, another host's) or the handshake fails:
      // trying again changes nothing, and the connector cannot work until it is fixed.
      return new UpstreamError(this.name, `${this.name}: TLS with the SMTP server ${this.#server} failed: ${reason}`, { transient: false, countsAsFailure: true });
    }
    if (CONNECTION_CODES.has(error.code ?? '')) {
      return new UpstreamError(this.name, `${this.name}: cannot reach the SMTP server ${this.#server}: ${reason}`, { transient: true, countsAsFailure: true });
    }
    if (error.code === 'EPROTOCOL') {
      // The server answers, but not SMTP as it must be: it is failing.
      return new UpstreamError(this.name, `${this.name}: the SMTP server ${this.#server} failed: ${reason}`, { transient: false, countsAsFailure: true });
    }
    return new UpstreamError(this.name, `${this.name}: sending failed: ${reason}`, { transient: false, countsAsFailure: false });
  }

  /** One line of upstream text, shortened, with no secret (the hub scrubs again anyway). */
  #clean(text: string): string {
    let out = this.deps.scrub(text.replace(/\s+/g, ' ').trim().slice(0, 300));
    if (this.#password) out = out.split(this.#password).join('[REDACTED]');
    return out;
  }

  /** Connects, greets, upgrades to TLS and authenticates on a connection of its own (nodemailer `verify()`). */
  protected async ping(signal: AbortSignal): Promise<void> {
    try {
      await Promise.race([
        this.#transport.verify(),
        new Promise<never>((_, reject) => {
          if (signal.aborted) reject(signal.reason);
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
      ]);
    } catch (error) {
      if (signal.aborted) throw error;
      throw new Error(this.#upstreamError(error as NodemailerError).message);
    }
  }

  override async close(): Promise<void> {
    await super.close();
    this.#transport.close();
  }
}

/** The one mailbox of an address text, or undefined when it is not exactly one valid address. */
function singleMailbox(text: string): { name: string; address: string } | undefined {
  if (LINE_BREAK.test(text)) return undefined;
  const parsed = addressparser(text);
  const [only] = parsed;
  if (parsed.length !== 1 || !only || only.group !== undefined || !ADDRESS.test(only.address)) return undefined;
  return { name: only.name, address: only.address };
}

function domainAllowed(domain: string, allow: readonly string[]): boolean {
  const d = domain.toLowerCase();
  return allow.some((a) => {
    const rule = a.toLowerCase();
    return rule.startsWith('*.') ? d.endsWith(rule.slice(1)) : d === rule;
  });
}

/** Why a header cannot be sent (as "expected …" text), or undefined when it can. */
function headerProblem(name: string, value: string): string | undefined {
  if (!HEADER_NAME.test(name)) return 'a header name (letters, digits and !#$%&\'*+-.^_`|~)';
  if (RESERVED_HEADERS.has(name.toLowerCase())) return 'a header other than To, Cc, Bcc, From, Sender, Subject, Message-ID, Date and the MIME headers (the message sets them)';
  if (typeof value !== 'string' || LINE_BREAK.test(value)) return 'a header value without a line break (CR or LF)';
  return undefined;
}

function addresses(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((a) => (typeof a === 'string' ? a : String((a as { address?: unknown }).address ?? '')));
}
