/**
 * Trusted documents (`server.persistedOperations`): decides, from a manifest of allowed
 * operations, which document a request runs — the one its `extensions.persistedQuery.sha256Hash`
 * names, or the one it sent — or refuses it (PERSISTED_QUERY_NOT_FOUND, or FORBIDDEN when only
 * listed operations may run).
 */
import { readFileSync } from 'node:fs';
import { ErrorCode, HubError } from './errors.ts';

export type PersistedMode = 'optional' | 'required';

/** The operations of a manifest by id. Throws an Error saying what is wrong with the file. */
export function loadManifest(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException;
    throw new Error(code === 'ENOENT' ? `manifest ${file} not found` : `cannot read manifest ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`manifest ${file} is not valid JSON`);
  }
  const operations = new Map<string, string>();
  if (json && typeof json === 'object' && (json as { format?: unknown }).format === 'apollo-persisted-query-manifest') {
    // Apollo's format: { format, version: 1, operations: [{ id, name, type, body }] }.
    const { version, operations: list } = json as { version?: unknown; operations?: unknown };
    if (version !== 1) throw new Error(`manifest ${file}: expected version 1 of apollo-persisted-query-manifest, got ${JSON.stringify(version)}`);
    if (!Array.isArray(list)) throw new Error(`manifest ${file}: expected "operations" to be a list`);
    list.forEach((op: { id?: unknown; body?: unknown }, i) => {
      if (typeof op?.id !== 'string' || typeof op.body !== 'string') throw new Error(`manifest ${file}: operations[${i}] needs a string "id" and "body"`);
      operations.set(op.id, op.body);
    });
  } else if (json && typeof json === 'object' && !Array.isArray(json)) {
    // GraphQL Code Generator's client preset (persistedDocuments): { "<hash>": "<document>" }.
    for (const [id, body] of Object.entries(json)) {
      if (typeof body !== 'string') throw new Error(`manifest ${file}: expected "${id}" to map to a document (a string)`);
      operations.set(id, body);
    }
  } else {
    throw new Error(`manifest ${file}: expected an apollo-persisted-query-manifest or a { "<hash>": "<document>" } map`);
  }
  return operations;
}

export interface OperationRequest {
  query?: unknown;
  extensions?: unknown;
}

export class PersistedOperations {
  readonly mode: PersistedMode;
  readonly #byId: Map<string, string>;
  /** Listed documents by text: a client that sends a listed document whole may run it too. */
  readonly #bodies: Set<string>;

  constructor(manifest: string, mode: PersistedMode) {
    this.mode = mode;
    this.#byId = loadManifest(manifest);
    this.#bodies = new Set(this.#byId.values());
  }

  /**
   * The document to run, or the error to answer with. `undefined` leaves the request as it is
   * (no id and no document: the server's own BAD_REQUEST).
   */
  resolve(request: OperationRequest): { query: string } | HubError | undefined {
    const hash = persistedHash(request.extensions);
    const query = typeof request.query === 'string' && request.query !== '' ? request.query : undefined;
    if (hash !== undefined) {
      const listed = this.#byId.get(hash);
      if (listed !== undefined) return { query: listed };
      if (query === undefined) {
        // Apollo's message and code: Apollo Client's persisted-query link then sends the document.
        return new HubError(ErrorCode.PERSISTED_QUERY_NOT_FOUND, 'PersistedQueryNotFound');
      }
    }
    if (query === undefined) return undefined;
    if (this.mode === 'optional' || this.#bodies.has(query)) return { query };
    return new HubError(
      ErrorCode.FORBIDDEN,
      'Only trusted operations run here: send extensions.persistedQuery.sha256Hash of an operation in the manifest',
    );
  }
}

/** `extensions.persistedQuery.sha256Hash`, Apollo's convention, when a request carries one. */
export function persistedHash(extensions: unknown): string | undefined {
  const persisted = (extensions as { persistedQuery?: { sha256Hash?: unknown } } | null | undefined)?.persistedQuery;
  return typeof persisted?.sha256Hash === 'string' ? persisted.sha256Hash : undefined;
}

/** The extensions without `persistedQuery` (handled here), or undefined when nothing is left. */
export function withoutPersistedQuery(extensions: unknown): Record<string, unknown> | undefined {
  if (!extensions || typeof extensions !== 'object') return undefined;
  const { persistedQuery: _handled, ...rest } = extensions as Record<string, unknown>;
  return Object.keys(rest).length > 0 ? rest : undefined;
}
