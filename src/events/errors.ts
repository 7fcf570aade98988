import { ErrorCode, HubError } from '../errors.ts';

/**
 * `read` with an `after` cursor below what retention removed: events after the cursor are gone,
 * and answering the rest would skip them silently. `extensions`: `code: CURSOR_EXPIRED`,
 * `source`, `after`, and `oldest`, the oldest id still retained (null when none is).
 */
export class CursorExpiredError extends HubError {
  constructor(source: string, after: string, oldest: string | null) {
    super(
      ErrorCode.CURSOR_EXPIRED,
      `Cursor "${after}" of source "${source}" has expired: events after it were removed by the event log's retention. ` +
        'Read again without `after` to start from the oldest event retained.',
      { source, after, oldest },
    );
    this.name = 'CursorExpiredError';
  }
}

/** A cursor that is not one this log hands out (`extensions.code: BAD_USER_INPUT`). */
export class InvalidCursorError extends HubError {
  constructor(source: string, after: string, why: string) {
    super(ErrorCode.BAD_USER_INPUT, `Invalid cursor "${after.length > 60 ? `${after.slice(0, 57)}...` : after}" for source "${source}": ${why}`, { source });
    this.name = 'InvalidCursorError';
  }
}

/** An operation on a log after `close()`. */
export class EventLogClosedError extends Error {
  constructor() {
    super('the event log is closed');
    this.name = 'EventLogClosedError';
  }
}
