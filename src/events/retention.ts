// Retention settings and their defaults; no store is loaded from here (config.ts imports it).

/** Default 7 days: events older than this (by `receivedAt`) are pruned. */
export const DEFAULT_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;
/** Default 100000: events kept per source, the newest. */
export const DEFAULT_MAX_EVENTS = 100_000;
/** Default event log of a hub: a SQLite file beside the config file. */
export const DEFAULT_EVENT_LOG = 'sqlite:.junction/events.db';

export interface Retention {
  /** Events of a source older than this (ms, by receivedAt) are pruned. */
  maxAgeMs: number;
  /** Most events kept per source; older ones are pruned. */
  maxEvents: number;
}

/** The `eventLog` option: a URL, or the URL with retention. */
export type EventLogConfig = string | { url: string; retention?: Partial<Retention> | undefined };

/** The store a URL names, or undefined for any other scheme. */
export function eventLogStore(url: string): 'sqlite' | 'postgres' | 'redis' | undefined {
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (/^postgres(ql)?:\/\//.test(url)) return 'postgres';
  if (/^rediss?:\/\//.test(url)) return 'redis';
  return undefined;
}

export function normalizeEventLogConfig(config: EventLogConfig): { url: string; retention: Retention } {
  const { url, retention } = typeof config === 'string' ? { url: config, retention: undefined } : config;
  return {
    url,
    retention: { maxAgeMs: retention?.maxAgeMs ?? DEFAULT_MAX_AGE_MS, maxEvents: retention?.maxEvents ?? DEFAULT_MAX_EVENTS },
  };
}
