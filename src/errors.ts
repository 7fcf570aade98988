import { GraphQLError, type GraphQLFormattedError } from 'graphql';

/**
 * The public list of `extensions.code` values (SPEC §5). This enum is the API; the classes
 * below are not. A test checks that every code here is documented in the README.
 */
export const ErrorCode = {
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  QUERY_TOO_COMPLEX: 'QUERY_TOO_COMPLEX',
  RATE_LIMITED: 'RATE_LIMITED',
  UPSTREAM_ERROR: 'UPSTREAM_ERROR',
  UPSTREAM_TIMEOUT: 'UPSTREAM_TIMEOUT',
  CIRCUIT_OPEN: 'CIRCUIT_OPEN',
  /**
   * An `after` cursor of the event log older than its retention: events after it were pruned, so
   * reading on from it would skip them. Read again without `after` (from the oldest retained).
   */
  CURSOR_EXPIRED: 'CURSOR_EXPIRED',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
  /** The request is not a GraphQL document (Apollo Server's code). */
  GRAPHQL_PARSE_FAILED: 'GRAPHQL_PARSE_FAILED',
  /** The document does not validate against the schema (Apollo Server's code). */
  GRAPHQL_VALIDATION_FAILED: 'GRAPHQL_VALIDATION_FAILED',
  /** The HTTP request itself is malformed: no query, bad JSON, body too large (Apollo's code). */
  BAD_REQUEST: 'BAD_REQUEST',
  /** `operationName` names no operation of the document (Apollo Server's code). */
  OPERATION_RESOLUTION_FAILURE: 'OPERATION_RESOLUTION_FAILURE',
  /**
   * `extensions.persistedQuery.sha256Hash` names no operation of `server.persistedOperations`'
   * manifest, and no document was sent (Apollo's code; HTTP status 200, as Apollo answers it).
   */
  PERSISTED_QUERY_NOT_FOUND: 'PERSISTED_QUERY_NOT_FOUND',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const publicCodes = new Set<string>(Object.values(ErrorCode));

/** An error the hub raises on purpose: its message is safe to show to the client. */
export class HubError extends GraphQLError {
  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { ...extensions, code } });
    this.name = 'HubError';
  }
}

const MASKED_MESSAGE = 'Internal server error';

/**
 * Finds the public code an error carries, looking through the wrappers graphql-js and Apollo
 * put around it (a validation rule's QUERY_TOO_COMPLEX arrives inside Apollo's ValidationError).
 */
function publicCodeOf(error: unknown): string | undefined {
  let found: string | undefined;
  for (let e: unknown = error, hops = 0; e && hops < 5; hops++) {
    const code = (e as GraphQLError).extensions?.code;
    if (typeof code === 'string' && publicCodes.has(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR) {
      // The innermost public code wins over a generic wrapper code.
      found = found === undefined || isGenericCode(found) ? code : found;
    }
    e = (e as GraphQLError).originalError;
  }
  return found;
}

function isGenericCode(code: string): boolean {
  return code === ErrorCode.GRAPHQL_VALIDATION_FAILED;
}

export interface FormatErrorOptions {
  /** Called with every error that gets masked, so the full detail reaches the log. */
  onMasked(error: unknown): void;
  /** Removes configured secret values from text. */
  scrub(text: string): string;
}

/**
 * The one place where errors become what a client sees: a known code keeps its message;
 * anything else is a bug, masked as INTERNAL_SERVER_ERROR and logged in full.
 */
export function formatError(
  formatted: GraphQLFormattedError,
  error: unknown,
  options: FormatErrorOptions,
): GraphQLFormattedError {
  const code = publicCodeOf(error);
  if (code === undefined) {
    options.onMasked(error);
    return {
      message: MASKED_MESSAGE,
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
    };
  }
  const { stacktrace: _stack, http: _http, ...extensions } = formatted.extensions ?? {};
  return {
    ...formatted,
    message: options.scrub(formatted.message),
    extensions: { ...extensions, code },
  };
}
