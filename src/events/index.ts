// The durable event log (SPEC §6): every inbound event is appended here before it is
// acknowledged, then read and watched by the `events` queries and subscriptions.
import type { EventLog } from '../../connectors/runtime/contract.ts';
import type { EventLogOptions, EventLogStore } from './common.ts';
import { PostgresEventLog } from './postgres.ts';
import { RedisEventLog } from './redis.ts';
import { SqliteEventLog, sqliteFile } from './sqlite.ts';
import { type EventLogConfig, eventLogStore, normalizeEventLogConfig } from './retention.ts';

export { CursorExpiredError, EventLogClosedError, InvalidCursorError } from './errors.ts';
export type { EventLogOptions, EventLogStore } from './common.ts';
export { DEFAULT_EVENT_LOG, DEFAULT_MAX_AGE_MS, DEFAULT_MAX_EVENTS, type EventLogConfig, type Retention } from './retention.ts';
export type { EventLog, EventQuery, EventSourceStats, NewEvent, StoredEvent } from '../../connectors/runtime/contract.ts';

/**
 * The log the `eventLog` option names; `sqlite:` paths resolve against `baseDir` (the config
 * file's folder). Nothing is opened or connected until the log is first used.
 */
export function createEventLog(config: EventLogConfig, baseDir: string, options: EventLogOptions = {}): EventLog & EventLogStore {
  const { url, retention } = normalizeEventLogConfig(config);
  switch (eventLogStore(url)) {
    case 'sqlite':
      return new SqliteEventLog(sqliteFile(url, baseDir), retention, options);
    case 'postgres':
      return new PostgresEventLog(url, retention, options);
    case 'redis':
      return new RedisEventLog(url, retention, options);
    default:
      throw new TypeError(`unsupported event log URL scheme "${url.split(':')[0]}:" (expected sqlite:, postgres:// or redis://)`);
  }
}
