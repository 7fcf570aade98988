/**
 * Knows the secret values of one configuration and removes them from any text or object
 * before it is logged, returned or exported. Secrets (SPEC §3): every value under an `auth`
 * key, webhook secrets, any key that names a password, secret, token or private key, and the
 * password in a URL's user-info.
 */
export const REDACTED = '[REDACTED]';

// Keys whose own value is a secret, however short.
const SECRET_KEY = /^(.*secrets?|password|passwd|.*token|privateKey|apiKey|key)$/i;

/** Whether a value at this key path is secret by its name alone: under `auth`, or a secret key. */
export function isSecretPath(path: readonly (string | number)[]): boolean {
  return path.some((key) => typeof key === 'string' && (key === 'auth' || SECRET_KEY.test(key)));
}

/** `auth.apiKeys[i].sub` and `.roles`: who a machine client is, shown like any subject or role (its `key` stays secret). */
function isApiKeyIdentity(path: readonly (string | number)[]): boolean {
  return path[0] === 'auth' && path[1] === 'apiKeys' && (path[3] === 'sub' || path[3] === 'roles');
}

function isSecretKey(key: string | number | undefined): boolean {
  return typeof key === 'string' && SECRET_KEY.test(key);
}

export class Secrets {
  readonly #values = new Set<string>();
  #pattern: RegExp | undefined;

  /** Collects every secret value in a parsed configuration. */
  static fromConfig(config: unknown): Secrets {
    const secrets = new Secrets();
    const walk = (value: unknown, path: (string | number)[]): void => {
      if (typeof value === 'string') {
        // Under `auth` but not itself a secret key (an issuer, a claim name): only values long
        // enough not to blank out ordinary words in every log line.
        // A secret key's value, or an item of a list under one (`secret: [old, new]`, rotation).
        const key = typeof path.at(-1) === 'number' ? path.at(-2) : path.at(-1);
        if (isSecretKey(key)) secrets.add(value);
        else if (isSecretPath(path) && value.length >= 6 && !isApiKeyIdentity(path)) secrets.add(value);
        const urlPassword = passwordInUrl(value);
        if (urlPassword) secrets.add(urlPassword);
      } else if (Array.isArray(value)) {
        value.forEach((item, i) => walk(item, [...path, i]));
      } else if (value && typeof value === 'object') {
        for (const [key, item] of Object.entries(value)) walk(item, [...path, key]);
      }
    };
    walk(config, []);
    return secrets;
  }

  add(value: string): void {
    if (value.length === 0 || this.#values.has(value)) return;
    this.#values.add(value);
    // Longest first, so a secret that contains another is removed whole.
    const sorted = [...this.#values].sort((a, b) => b.length - a.length);
    this.#pattern = new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
  }

  get size(): number {
    return this.#values.size;
  }

  scrub(text: string): string {
    let out = text.replace(URL_PASSWORD, (_m, head: string) => `${head}${REDACTED}@`);
    if (this.#pattern) out = out.replace(this.#pattern, REDACTED);
    return out;
  }

  /** A deep copy with every string scrubbed and every secret-named key's value replaced. */
  scrubDeep<T>(value: T, path: (string | number)[] = []): T {
    if (typeof value === 'string') return (isSecretPath(path) ? REDACTED : this.scrub(value)) as T;
    if (Array.isArray(value)) return value.map((v, i) => this.scrubDeep(v, [...path, i])) as T;
    if (value instanceof Error) {
      const { code } = value as { code?: unknown };
      return {
        type: value.name,
        message: this.scrub(value.message),
        ...(code !== undefined && { code }),
        stack: this.scrub(value.stack ?? ''),
      } as T;
    }
    if (value && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.scrubDeep(v, [...path, k]);
      return out as T;
    }
    return value;
  }
}

// scheme://user:password@host — the password part, whatever the scheme.
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi;

function passwordInUrl(value: string): string | undefined {
  const match = /^[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:([^\s@/]+)@/i.exec(value);
  if (match) return match[1];
  // nats://TOKEN@host: NATS reads a user-info without a password as a token.
  return /^nats:\/\/([^\s:/@]+)@/i.exec(value)?.[1];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A URL for a message: its password replaced by [REDACTED] (a value that is no URL, wholly). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = REDACTED;
    return u.toString();
  } catch {
    return REDACTED;
  }
}
