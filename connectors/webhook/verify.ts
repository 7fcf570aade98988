// Signature verification for inbound webhooks: one function per scheme, each over the raw body
// bytes exactly as sent. Every comparison is constant-time (`timingSafeEqual` on buffers of the
// same length), every configured secret is tried (rotation), and a timestamp further than the
// tolerance from now, in the past or the future, is refused. Nothing here ever puts a secret, or
// a signature computed with one, into a message.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Why a request was refused (401); also the `reason` label of `junction_events_rejected_total`. */
export type RejectReason = 'missing_header' | 'bad_signature' | 'stale_timestamp';

export type Verdict =
  | { ok: true }
  | {
      ok: false;
      reason: RejectReason;
      /** For the sender: what was wrong, naming the header, never a secret or a signature. */
      message: string;
    };

/** What every scheme needs besides the request. */
export interface VerifyOptions {
  /** The configured secrets, any of which may have signed (as configured: `whsec_…` included). */
  secrets: readonly string[];
  /** Seconds a timestamp may differ from `now`, either way. */
  toleranceSec: number;
  /** Unix seconds; default: the clock. Tests pass the time of a published vector. */
  now?: number;
}

export type HmacAlgorithm = 'sha256' | 'sha1' | 'sha512';

export interface HmacOptions extends VerifyOptions {
  /** The header that carries the signature. */
  header: string;
  algorithm: HmacAlgorithm;
  encoding: 'hex' | 'base64';
  /** Text before the signature in the header (`sha256=`); default none. */
  prefix?: string | undefined;
  /**
   * A header with the send time in Unix seconds. When set, the signed bytes are
   * `<timestamp>.<body>` and a timestamp outside the tolerance is refused.
   */
  timestampHeader?: string | undefined;
}

const OK: Verdict = { ok: true };

const DIGEST_BYTES: Record<HmacAlgorithm, number> = { sha1: 20, sha256: 32, sha512: 64 };

/** GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`. GitHub sends no timestamp. */
export function verifyGithub(body: Buffer, headers: IncomingHttpHeaders, options: VerifyOptions): Verdict {
  const header = one(headers, 'x-hub-signature-256');
  if (header === undefined) return missing('X-Hub-Signature-256');
  const signature = header.startsWith('sha256=') ? decodeHex(header.slice('sha256='.length), 32) : undefined;
  if (!signature) return bad('X-Hub-Signature-256 is not "sha256=" followed by 64 hex digits');
  return anySecret(options.secrets, (secret) => matches(hmac('sha256', secret, [body]), signature))
    ? OK
    : bad('X-Hub-Signature-256 does not match the body');
}

/**
 * Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>,v1=<hex>…`, HMAC-SHA256 of `<t>.<body>`;
 * any `v1` may match (Stripe sends one per active secret while a secret rolls).
 */
export function verifyStripe(body: Buffer, headers: IncomingHttpHeaders, options: VerifyOptions): Verdict {
  const header = one(headers, 'stripe-signature');
  if (header === undefined) return missing('Stripe-Signature');
  let timestamp: string | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (eq === -1) continue;
    if (key === 't') timestamp = value;
    else if (key === 'v1') {
      const signature = decodeHex(value, 32);
      if (signature) signatures.push(signature);
    }
  }
  if (timestamp === undefined || !isUnixSeconds(timestamp)) return bad('Stripe-Signature has no timestamp (t=<unix seconds>)');
  if (signatures.length === 0) return bad('Stripe-Signature has no v1 signature (v1=<64 hex digits>)');
  const signed = [Buffer.from(`${timestamp}.`), body];
  const match = anySecret(options.secrets, (secret) => {
    const expected = hmac('sha256', secret, signed);
    // Every v1 compared, without stopping at the first match.
    return signatures.reduce((found, signature) => matches(expected, signature) || found, false);
  });
  if (!match) return bad('Stripe-Signature does not match the body');
  return fresh(timestamp, options, 'Stripe-Signature');
}

/**
 * Slack: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<body>">` with
 * `X-Slack-Request-Timestamp` (Unix seconds; Slack's own advice is five minutes).
 */
export function verifySlack(body: Buffer, headers: IncomingHttpHeaders, options: VerifyOptions): Verdict {
  const header = one(headers, 'x-slack-signature');
  if (header === undefined) return missing('X-Slack-Signature');
  const timestamp = one(headers, 'x-slack-request-timestamp');
  if (timestamp === undefined) return missing('X-Slack-Request-Timestamp');
  if (!isUnixSeconds(timestamp)) return bad('X-Slack-Request-Timestamp is not a time in Unix seconds');
  const signature = header.startsWith('v0=') ? decodeHex(header.slice('v0='.length), 32) : undefined;
  if (!signature) return bad('X-Slack-Signature is not "v0=" followed by 64 hex digits');
  const signed = [Buffer.from(`v0:${timestamp}:`), body];
  if (!anySecret(options.secrets, (secret) => matches(hmac('sha256', secret, signed), signature))) {
    return bad('X-Slack-Signature does not match the body');
  }
  return fresh(timestamp, options, 'X-Slack-Request-Timestamp');
}

/**
 * Standard Webhooks: `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
 * (space-separated `v1,<base64>`), HMAC-SHA256 of `<id>.<timestamp>.<body>` keyed with the
 * base64 bytes of the secret after its `whsec_` prefix.
 */
export function verifyStandard(body: Buffer, headers: IncomingHttpHeaders, options: VerifyOptions): Verdict {
  const id = one(headers, 'webhook-id');
  if (id === undefined) return missing('webhook-id');
  const timestamp = one(headers, 'webhook-timestamp');
  if (timestamp === undefined) return missing('webhook-timestamp');
  const header = one(headers, 'webhook-signature');
  if (header === undefined) return missing('webhook-signature');
  if (!isUnixSeconds(timestamp)) return bad('webhook-timestamp is not a time in Unix seconds');
  const signatures: Buffer[] = [];
  for (const part of header.split(' ')) {
    if (!part.startsWith('v1,')) continue; // other versions (v1a: asymmetric) are not ours
    const signature = decodeBase64(part.slice(3), 32);
    if (signature) signatures.push(signature);
  }
  if (signatures.length === 0) return bad('webhook-signature has no v1 signature ("v1,<base64>")');
  const signed = [Buffer.from(`${id}.${timestamp}.`), body];
  const match = anySecret(options.secrets, (secret) => {
    const expected = hmac('sha256', standardKey(secret), signed);
    return signatures.reduce((found, signature) => matches(expected, signature) || found, false);
  });
  if (!match) return bad('webhook-signature does not match the body');
  return fresh(timestamp, options, 'webhook-timestamp');
}

/** A generic HMAC: `<header>: <prefix><hex or base64 HMAC of the body>` (or of `<timestamp>.<body>`). */
export function verifyHmac(body: Buffer, headers: IncomingHttpHeaders, options: HmacOptions): Verdict {
  const header = one(headers, options.header.toLowerCase());
  if (header === undefined) return missing(options.header);
  let timestamp: string | undefined;
  if (options.timestampHeader !== undefined) {
    timestamp = one(headers, options.timestampHeader.toLowerCase());
    if (timestamp === undefined) return missing(options.timestampHeader);
    if (!isUnixSeconds(timestamp)) return bad(`${options.timestampHeader} is not a time in Unix seconds`);
  }
  const prefix = options.prefix ?? '';
  const size = DIGEST_BYTES[options.algorithm];
  const encoded = header.startsWith(prefix) ? header.slice(prefix.length).trim() : undefined;
  const signature = encoded === undefined ? undefined : options.encoding === 'hex' ? decodeHex(encoded, size) : decodeBase64(encoded, size);
  if (!signature) {
    const what = options.encoding === 'hex' ? `${size * 2} hex digits` : `the base64 of ${size} bytes`;
    return bad(`${options.header} is not ${prefix ? `"${prefix}" followed by ` : ''}${what}`);
  }
  const signed = timestamp === undefined ? [body] : [Buffer.from(`${timestamp}.`), body];
  if (!anySecret(options.secrets, (secret) => matches(hmac(options.algorithm, secret, signed), signature))) {
    return bad(`${options.header} does not match the body`);
  }
  return timestamp === undefined ? OK : fresh(timestamp, options, options.timestampHeader!);
}

/**
 * The HMAC key of a Standard Webhooks secret: the bytes of the base64 after `whsec_` (of the
 * whole string without the prefix, as the reference library does). See `isStandardSecret`.
 */
export function standardKey(secret: string): Buffer {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  return Buffer.from(encoded, 'base64');
}

/** Whether a secret can key the Standard Webhooks scheme: non-empty base64 after `whsec_`. */
export function isStandardSecret(secret: string): boolean {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  return BASE64.test(encoded) && encoded.length % 4 === 0 && encoded.length > 0;
}

// ---- helpers ---------------------------------------------------------------------------------

const HEX = /^[0-9a-fA-F]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/** Unix seconds: digits only (no sign, no fraction), at most 12 of them. */
const UNIX_SECONDS = /^\d{1,12}$/;

/** One header's value: undefined when absent or empty; a repeated header is joined by Node. */
function one(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text === undefined || text.trim() === '' ? undefined : text.trim();
}

function hmac(algorithm: HmacAlgorithm, key: string | Buffer, parts: readonly Buffer[]): Buffer {
  const mac = createHmac(algorithm, key);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/** Constant-time for equal lengths; a length that differs says nothing about the secret. */
function matches(expected: Buffer, given: Buffer): boolean {
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Tries every secret (no early exit, so the time taken does not say which secret matched). */
function anySecret<K>(secrets: readonly K[], test: (secret: K) => boolean): boolean {
  return secrets.reduce((found, secret) => test(secret) || found, false);
}

function decodeHex(text: string, bytes: number): Buffer | undefined {
  return text.length === bytes * 2 && HEX.test(text) ? Buffer.from(text, 'hex') : undefined;
}

function decodeBase64(text: string, bytes: number): Buffer | undefined {
  if (!BASE64.test(text) || text.length % 4 !== 0) return undefined;
  const decoded = Buffer.from(text, 'base64');
  return decoded.length === bytes ? decoded : undefined;
}

function isUnixSeconds(text: string): boolean {
  return UNIX_SECONDS.test(text);
}

/** The timestamp (already checked to be digits) within the tolerance of now, either way. */
function fresh(timestamp: string, options: VerifyOptions, header: string): Verdict {
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const age = now - Number(timestamp);
  if (age > options.toleranceSec) {
    return { ok: false, reason: 'stale_timestamp', message: `${header} is more than ${options.toleranceSec} s old` };
  }
  if (-age > options.toleranceSec) {
    return { ok: false, reason: 'stale_timestamp', message: `${header} is more than ${options.toleranceSec} s in the future` };
  }
  return OK;
}

function missing(header: string): Verdict {
  return { ok: false, reason: 'missing_header', message: `missing ${header} header` };
}

function bad(message: string): Verdict {
  return { ok: false, reason: 'bad_signature', message };
}
