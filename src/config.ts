import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { bool, type CommonOptions, positiveInt, str } from '../connectors/runtime/options.ts';
import { type ConnectorRegistry, loadConnectorTypes } from './connector-registry.ts';
import { DEFAULT_EVENT_LOG, DEFAULT_MAX_AGE_MS, DEFAULT_MAX_EVENTS, eventLogStore } from './events/retention.ts';
import { loadManifest } from './persisted-operations.ts';
import { isSecretPath, REDACTED } from './secrets.ts';

export { ConfigError, type ConfigProblem, formatProblem } from './config-problem.ts';
import { ConfigError, type ConfigProblem } from './config-problem.ts';

const DEFAULT_FILE = 'junction.config.yaml';

// ---- schema -------------------------------------------------------------------------------
// Each option carries its default beside its type; messages read "expected …", and the loader
// appends ", got <value>".

// 0 is allowed: it picks a free port.
const PORT_MESSAGE = 'expected a port number (0-65535)';
const port = z
  .number({ error: PORT_MESSAGE })
  .int({ error: PORT_MESSAGE })
  .min(0, { error: PORT_MESSAGE })
  .max(65535, { error: PORT_MESSAGE });

const globs = z
  .union([str('a glob'), z.array(str('a glob'), { error: 'expected a glob or a list of globs' })], {
    error: 'expected a glob or a list of globs',
  })
  .transform((v) => (Array.isArray(v) ? v : [v]));

const limitsSchema = z
  .strictObject({
    /** Default 12. Deepest nesting of fields an operation may select (introspection excluded). */
    depth: positiveInt().default(12),
    /** Default 30. Most aliased fields in one operation. */
    aliases: positiveInt().default(30),
    /** Default 5000. Most an operation may cost: 1 a field, list fields times their page size. */
    cost: positiveInt().default(5000),
    /** Default 10. Page size assumed for a list field with no `first`/`last`/`limit` argument. */
    listFactor: positiveInt().default(10),
    /** Default 1 MiB. Largest HTTP request body accepted; larger ones get 413. */
    bodyBytes: positiveInt().default(1_048_576),
    /** Default 15000. Most lexical tokens in one document; a longer one is refused before validation. */
    tokens: positiveInt().default(15_000),
    /** Default 50. Most directives (`@include`, `@skip`, …) written in one document. */
    directives: positiveInt().default(50),
    /** Default 10. Most times one selection set may select the same response name (field duplication). */
    duplicateFields: positiveInt().default(10),
    /** Default 64. Deepest bracket nesting in a document's text, and in a request's JSON (variables, extensions). */
    nesting: positiveInt().default(64),
  })
  .prefault({});

const timeoutsSchema = z
  .strictObject({
    /** Default 10000. Time a client has to send its request headers; a slower one gets 408 and is dropped. */
    headersMs: positiveInt().default(10_000),
    /** Default 30000. Time a client has to send its whole request, body included (at least headersMs). */
    requestMs: positiveInt().default(30_000),
  })
  .prefault({});

const rateLimitSchema = z.strictObject({
  /** Requests (HTTP requests, WebSocket operations) a caller may make per second, on average. */
  rps: z.number({ error: 'expected a positive number' }).positive({ error: 'expected a positive number' }),
  /** Default: rps rounded up. Requests a caller may make at once after being idle (the bucket's size). */
  burst: positiveInt().optional(),
  /** Default "subject". One bucket per authenticated subject (anonymous callers: per IP address), or "ip": per IP address. */
  by: z.enum(['subject', 'ip'], { error: 'expected "subject" or "ip"' }).default('subject'),
  /** Default "memory". Or a redis:// URL: every hub instance then shares the buckets. */
  store: z.union([z.literal('memory'), z.url({ protocol: /^rediss?$/ })], { error: 'expected "memory" or a redis:// URL' }).default('memory'),
});

const persistedOperationsSchema = z.strictObject({
  /**
   * The manifest of allowed operations (JSON, relative to the config file): Apollo's
   * `persisted-query-manifest` format, or GraphQL Code Generator's `{ "<hash>": "<document>" }`.
   */
  manifest: str('a path to a manifest file'),
  /** Default "required": only listed operations run. "optional": ids are accepted, any document too. */
  mode: z.enum(['optional', 'required'], { error: 'expected "optional" or "required"' }).default('required'),
});

const wsSchema = z
  .strictObject({
    /** Default 3000. Time a WebSocket has to send `connection_init`; then it is closed with 4408. */
    connectionInitTimeoutMs: positiveInt().default(3_000),
    /** Default 12000. Each WebSocket is pinged this often; one that does not answer within as long is dropped. */
    keepAliveMs: positiveInt().default(12_000),
    /** Default 100. Open WebSockets one IP address may hold; more are refused with HTTP 429. */
    maxConnectionsPerIp: positiveInt().default(100),
    /** Default 100. Operations one WebSocket may run at once; more get RATE_LIMITED. */
    maxSubscriptionsPerConnection: positiveInt().default(100),
  })
  .prefault({});

const responseCacheSchema = z
  .strictObject({
    /** Default true. Cache whole responses of queries whose every field has a cache hint. */
    enabled: bool().default(true),
    /** Default 64 MiB. Memory the cached responses may take; the least recently used go first. */
    maxBytes: positiveInt().default(67_108_864),
  })
  .prefault({});

const corsSchema = z
  .strictObject({
    /** Default []: no cross-origin access. `["*"]` allows any origin. */
    origins: z.array(str('an origin'), { error: 'expected a list of origins' }).default([]),
    /** Default false. Whether browsers may send credentials cross-origin. */
    credentials: bool().default(false),
  })
  .prefault({});

const serverSchema = z
  .strictObject({
    /** Default 4000; `--port` and `PORT` take precedence. 0 picks a free port. */
    port: port.default(4000),
    /** Default: every interface. */
    host: str('a host name or address').optional(),
    /** Default true; false when NODE_ENV=production. Serve GraphiQL to browsers at GET /graphql. */
    graphiql: bool().optional(),
    /** Default true; false when NODE_ENV=production. Answer introspection queries. */
    introspection: bool().optional(),
    /** Default true; false when NODE_ENV=production. "Did you mean …" suggestions in error messages. */
    suggestions: bool().optional(),
    /**
     * Default false. Serve an Apollo Federation v2 subgraph (`_service`, `_entities`, `@key`, …);
     * a binding directive on a `@key` type then resolves its entities.
     */
    federation: bool().default(false),
    /**
     * Default "jit". How queries and mutations over HTTP run: "jit" compiles each document to a
     * function with graphql-jit (cached per document); "graphql-js" interprets it. Subscriptions
     * always run on graphql-js.
     */
    execution: z.enum(['jit', 'graphql-js'], { error: 'expected "jit" or "graphql-js"' }).default('jit'),
    responseCache: responseCacheSchema,
    cors: corsSchema,
    limits: limitsSchema,
    timeouts: timeoutsSchema,
    ws: wsSchema,
    /** Default: none, no per-client limit. A token bucket per caller; over it, RATE_LIMITED (HTTP 429). */
    rateLimit: rateLimitSchema.optional(),
    /** Default: none, any document runs. Trusted documents from a manifest, sent by id. */
    persistedOperations: persistedOperationsSchema.optional(),
    /** Default "info". */
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
        error: 'expected one of fatal, error, warn, info, debug, trace, silent',
      })
      .default('info'),
    /** Default 10000. How long SIGTERM waits for in-flight work before closing anyway. */
    shutdownTimeoutMs: positiveInt().default(10_000),
  })
  .prefault({});

const apiKeySchema = z.strictObject({
  /** The key machine clients send (`X-API-Key`); write it as `${VAR}`, never in the file. At least 16 characters. */
  key: z.string({ error: 'expected an API key' }).min(16, { error: 'expected an API key of at least 16 characters' }),
  /** The caller's subject: `context.user.sub` (and `id`), the rate-limit bucket, the cache keys. */
  sub: str('a subject'),
  /** Default []. The caller's roles, for `@auth(requires:)`. */
  roles: z.array(str('a role'), { error: 'expected a list of roles' }).default([]),
});

const authSchema = z
  .strictObject({
    jwt: z
      .strictObject({
        /** HS256/384/512 shared secret. One of secret, publicKey, jwksUrl. */
        secret: str('a secret').optional(),
        /** PEM (SPKI) public key for RS*, PS*, ES* or EdDSA tokens. */
        publicKey: str('a PEM public key').optional(),
        /** URL of a JSON Web Key Set; keys are fetched and cached. */
        jwksUrl: z.url({ error: 'expected a URL' }).optional(),
        issuer: str('an issuer').optional(),
        audience: str('an audience').optional(),
        /** Default "roles". Dot path of the claim holding the caller's roles. */
        rolesClaim: str('a claim path').default('roles'),
      })
      .superRefine((j, ctx) => {
        const given = (['secret', 'publicKey', 'jwksUrl'] as const).filter((key) => j[key] !== undefined);
        if (given.length === 1) return;
        // Names the keys given, never their values (secrets): the loader adds no ", got …".
        ctx.addIssue({
          code: 'custom',
          message: `expected exactly one of secret, publicKey, jwksUrl, got ${given.length === 0 ? 'none' : given.join(' and ')}`,
          params: { complete: true },
        });
      })
      .optional(),
    /**
     * Default []. Machine clients: each sends its key as `X-API-Key` (HTTP) or `apiKey` (graphql-ws
     * connection params) and is `sub` with `roles`. A request with a bearer token too is judged by the token.
     */
    apiKeys: z.array(apiKeySchema, { error: 'expected a list of { key, sub, roles }' }).default([]),
    /** Default false. When true, requests without a valid token or API key are refused (UNAUTHENTICATED). */
    required: bool().default(false),
  })
  .superRefine((a, ctx) => {
    if (!a.jwt && a.apiKeys.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'expected jwt, apiKeys or both', params: { complete: true } });
    }
    if (new Set(a.apiKeys.map((k) => k.key)).size !== a.apiKeys.length) {
      ctx.addIssue({ code: 'custom', path: ['apiKeys'], message: 'expected every API key to be different', params: { complete: true } });
    }
  });

const PUBSUB_EXPECTED = 'expected "memory", a redis:// URL or a postgres:// URL';

/** `pubsub`: "memory" or a URL; a bad URL is named by its scheme, never the rest (it may hold a password). */
const pubsubSetting = z.string({ error: PUBSUB_EXPECTED }).superRefine((value, ctx) => {
  if (value === 'memory') return;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1];
  if (scheme && /^(rediss?|postgres(ql)?)$/i.test(scheme) && URL.canParse(value)) return;
  ctx.addIssue({
    code: 'custom',
    message: `${PUBSUB_EXPECTED}, got ${scheme ? `${/^(rediss?|postgres(ql)?)$/i.test(scheme) ? 'a malformed' : 'a'} "${scheme}:" URL` : JSON.stringify(value)}`,
    params: { complete: true },
  });
});

const cacheStore = z.union([z.literal('memory'), z.url({ protocol: /^rediss?$/ })], {
  error: 'expected "memory" or a redis:// URL',
});

/** An event log URL: the scheme is named in the message, never the rest (it may hold a password). */
const eventLogUrl = z.string({ error: 'expected a sqlite: path, a postgres:// URL or a redis:// URL' }).superRefine((url, ctx) => {
  if (eventLogStore(url) && url !== 'sqlite:') return;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url)?.[1];
  ctx.addIssue({
    code: 'custom',
    message: `expected a sqlite: path, a postgres:// URL or a redis:// URL, got ${scheme ? `a "${scheme}:" URL` : url === 'sqlite:' ? 'no path' : 'no URL scheme'}`,
    params: { complete: true },
  });
});

const eventLogSchema = z.union(
  [
    eventLogUrl,
    z.strictObject({
      /** The store: a sqlite: path (relative to the config file), a postgres:// or a redis:// URL. */
      url: eventLogUrl,
      retention: z
        .strictObject({
          /** Default 604800000 (7 days). Events older than this are pruned (per source). */
          maxAgeMs: positiveInt().default(DEFAULT_MAX_AGE_MS),
          /** Default 100000. Most events kept per source; the oldest are pruned. */
          maxEvents: positiveInt().default(DEFAULT_MAX_EVENTS),
        })
        .prefault({}),
    }),
  ],
  { error: 'expected a sqlite: path, a postgres:// URL, a redis:// URL or { url, retention }' },
);

/**
 * A connector: `type` picks the schema (its type's, common options included) the rest of the
 * entry is validated against, with the issues keeping their key paths.
 */
const connectorSchema = (registry: ConnectorRegistry) =>
  z.looseObject({ type: str('a connector type') }).transform((c, ctx) => {
    const type = registry.get(c.type);
    if (!type) {
      ctx.addIssue({
        code: 'custom',
        path: ['type'],
        message: `unknown connector type (known: ${registry.names.join(', ')}; add your own under connectorTypes)`,
        input: c.type,
      });
      return z.NEVER;
    }
    const result = type.schema.safeParse(c, { reportInput: true });
    if (result.success) return result.data;
    for (const issue of result.error.issues) ctx.addIssue({ ...issue } as never);
    return z.NEVER;
  });

const connectorName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
  error: 'expected a connector name of letters, digits and _, not starting with a digit',
});

/** `connectorTypes`: type name → module path, relative to the config file. */
const connectorTypesSchema = z
  .record(
    z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, { error: 'expected a type name of letters, digits, - and _, starting with a letter' }),
    str('a module path (.ts, .js or .mjs)'),
    { error: 'expected a mapping of type names to module paths' },
  )
  .default({});

export const configSchema = (registry: ConnectorRegistry) => z.strictObject({
  server: serverSchema,
  auth: authSchema.optional(),
  cache: z
    .strictObject({
      /** Default "memory". Or a redis:// URL: every hub instance then shares one cache. */
      store: cacheStore.default('memory'),
    })
    .prefault({}),
  /**
   * Default "memory" (this process only). The hub's pub/sub (`context.pubsub`, `deps.pubsub`,
   * `Subscription.connectorStatus`): a redis:// (rediss://) URL, PUBLISH/SUBSCRIBE, or a
   * postgres:// (postgresql://) URL, LISTEN/NOTIFY (messages under 8000 bytes as JSON), shares
   * every publish with every hub instance on the same server.
   */
  pubsub: pubsubSetting.default('memory'),
  /**
   * Default "sqlite:.junction/events.db" (relative to the config file). The durable event log
   * webhooks and queues append to: a sqlite: path, a postgres:// or redis:// URL, or
   * { url, retention: { maxAgeMs, maxEvents } }.
   */
  eventLog: eventLogSchema.default(DEFAULT_EVENT_LOG),
  /** Default ["schema/**\/*.graphql"], relative to the config file. */
  schema: globs.default(['schema/**/*.graphql']),
  /** Default ["resolvers/**\/*"] (.ts, .js, .mjs), relative to the config file. */
  resolvers: globs.default(['resolvers/**/*']),
  /** Default {}. Connector types of the user's own: type name → module (see README). */
  connectorTypes: connectorTypesSchema,
  connectors: z.record(connectorName, connectorSchema(registry)).default({}),
});

type ParsedConfig = z.output<ReturnType<typeof configSchema>>;

/** The options whose default is on in development and off when NODE_ENV=production. */
const DEVELOPMENT_ONLY = ['graphiql', 'introspection', 'suggestions'] as const;

export type HubConfig = Omit<ParsedConfig, 'connectors' | 'server'> & {
  /** `server`, its NODE_ENV-dependent defaults resolved. */
  server: Omit<ParsedConfig['server'], (typeof DEVELOPMENT_ONLY)[number]> & Record<(typeof DEVELOPMENT_ONLY)[number], boolean>;
  /** NODE_ENV was "production" when the config was loaded. */
  production: boolean;
  connectors: Record<string, CommonOptions>;
  /** The connector types this config can use: the built-in ones and its `connectorTypes`. */
  registry: ConnectorRegistry;
  /** Folder that relative paths resolve against. */
  baseDir: string;
  /** File the config came from, or "(defaults)". */
  file: string;
};

// ---- loading ------------------------------------------------------------------------------

export interface LoadOptions {
  /** `--config`; else `JUNCTION_CONFIG`; else ./junction.config.yaml if present; else defaults. */
  configPath?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export async function loadConfig(options: LoadOptions = {}): Promise<HubConfig> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit = options.configPath ?? env.JUNCTION_CONFIG;
  const file = path.resolve(cwd, explicit ?? DEFAULT_FILE);
  // Relative to the working directory when inside it, else absolute ("../.." names nothing).
  const relative = path.relative(cwd, file);
  const shown = relative && relative.split(path.sep)[0] !== '..' && !path.isAbsolute(relative) ? relative : file;

  if (!existsSync(file)) {
    if (explicit) throw new ConfigError([{ file: shown, path: '', message: 'file not found' }]);
    return parseConfig({}, { file: '(defaults)', baseDir: cwd, env });
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const reason = code === 'EISDIR' ? 'is a folder, not a file' : code === 'EACCES' ? 'permission denied' : message;
    throw new ConfigError([{ file: shown, path: '', message: `cannot read: ${reason}` }]);
  }
  // yaml gives each error its line and column only through a LineCounter (or prettyErrors,
  // which also appends a source excerpt to the message).
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const at = lines.linePos(e.pos[0]);
        return {
          file: `${shown}:${at.line}:${at.col}`,
          path: '',
          message: `invalid YAML: ${e.message.split('\n')[0]}`,
        };
      }),
    );
  }
  return parseConfig(doc.toJS() ?? {}, { file: shown, baseDir: path.dirname(file), env });
}

/**
 * Substitutes the environment into a parsed document, loads its `connectorTypes` modules,
 * validates it and resolves its paths.
 */
export async function parseConfig(
  raw: unknown,
  where: { file: string; baseDir: string; env?: NodeJS.ProcessEnv },
): Promise<HubConfig> {
  const problems: ConfigProblem[] = [];
  const substituted = substituteEnv(raw, where.env ?? process.env, [], (p, message) =>
    problems.push({ file: where.file, path: p.join('.'), message }),
  );
  if (problems.length > 0) throw new ConfigError(problems);

  // The connector types come first: every connector entry is validated by its type's schema.
  const entries = connectorTypesSchema.safeParse((substituted as { connectorTypes?: unknown } | null)?.connectorTypes, { reportInput: true });
  if (!entries.success) {
    throw new ConfigError(entries.error.issues.flatMap((issue) => describeIssue({ ...issue, path: ['connectorTypes', ...issue.path] }, where.file)));
  }
  const { registry, problems: typeProblems } = await loadConnectorTypes(entries.data, where.baseDir);
  if (typeProblems.length > 0) {
    throw new ConfigError(typeProblems.map((p) => ({ file: where.file, path: `connectorTypes.${p.key}`, message: `${p.file}: ${p.message}` })));
  }

  const result = configSchema(registry).safeParse(substituted, { reportInput: true });
  if (!result.success) {
    throw new ConfigError(result.error.issues.flatMap((issue) => describeIssue(issue, where.file)));
  }
  const config = result.data;
  const resolve = (globs: string[]) => globs.map((g) => toPosix(path.resolve(where.baseDir, g)));
  const production = (where.env ?? process.env).NODE_ENV === 'production';
  const server = { ...config.server };
  for (const key of DEVELOPMENT_ONLY) server[key] ??= !production;
  if (server.persistedOperations) {
    // Read now, so `junction check` and start-up both name a missing or malformed manifest.
    const manifest = path.resolve(where.baseDir, server.persistedOperations.manifest);
    server.persistedOperations = { ...server.persistedOperations, manifest };
    try {
      loadManifest(manifest);
    } catch (error) {
      throw new ConfigError([{ file: where.file, path: 'server.persistedOperations.manifest', message: (error as Error).message }]);
    }
  }
  return {
    ...config,
    server: server as HubConfig['server'],
    production,
    registry,
    schema: resolve(config.schema),
    resolvers: resolve(config.resolvers),
    baseDir: where.baseDir,
    file: where.file,
  };
}

function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}

function describeIssue(issue: z.core.$ZodIssue, file: string): ConfigProblem[] {
  const keyPath = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      file,
      path: keyPath ? `${keyPath}.${key}` : key,
      message: 'unknown key',
    }));
  }
  if (issue.code === 'custom' && issue.params?.complete) return [{ file, path: keyPath, message: issue.message }];
  const input = (issue as { input?: unknown }).input;
  const got =
    input === undefined
      ? 'got nothing'
      : `got ${isSecretPath(issue.path.map((k) => (typeof k === 'symbol' ? '' : k))) ? REDACTED : show(input)}`;
  return [{ file, path: keyPath, message: `${issueMessage(issue)}, ${got}` }];
}

/** The schema's own message, or a readable one in place of zod's generic "Invalid input: …". */
function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key') {
    // A connector name: the key's own issue says what a name may be.
    return issue.issues[0]?.message ?? 'invalid key';
  }
  if (!issue.message.startsWith('Invalid input')) return issue.message;
  if (issue.code === 'invalid_type') return `expected ${EXPECTED[issue.expected] ?? issue.expected}`;
  return 'invalid value';
}

const EXPECTED: Record<string, string> = {
  object: 'a mapping of keys to values',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
};

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

// `${VAR}`, `${VAR:-default}`; `$${` escapes a literal `${`.
const PLACEHOLDER = /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function substituteEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  at: (string | number)[],
  fail: (path: (string | number)[], message: string) => void,
): unknown {
  if (typeof value === 'string') {
    let whole = false;
    const out = value.replace(PLACEHOLDER, (match, escaped: string, name: string, fallback?: string) => {
      if (escaped) return match.slice(1);
      whole = match === value;
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      fail(at, `environment variable ${name} is not set (write \${${name}:-default} for a default)`);
      return '';
    });
    // A value that is one placeholder takes the type its text spells: "${PORT:-4000}" is 4000.
    return whole && /^(-?\d+(\.\d+)?|true|false)$/.test(out) ? JSON.parse(out) : out;
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, [...at, i], fail));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, [...at, k], fail)]),
    );
  }
  return value;
}
