import pino, { type DestinationStream, type Level, type Logger } from 'pino';
import type { Secrets } from './secrets.ts';

/**
 * The hub's logger: pino JSON lines on stdout. Every argument passes through the config's
 * Secrets before it is written, so a secret that reaches a log call (inside an error message,
 * a URL, an object) comes out as [REDACTED].
 */
export function createLogger(
  level: Level | 'silent',
  secrets: Secrets,
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level,
      base: { service: 'junction' },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((arg) => secrets.scrubDeep(arg)) as Parameters<typeof method>);
        },
      },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
