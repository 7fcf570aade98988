import { BoundedMap } from './bounded-map.ts';
import type { ResponsePlan } from './cache-policy.ts';

/** A serialized response as the HTTP layer sent it: replayed byte for byte on a hit. */
export interface CachedResponse {
  body: string;
  headers: readonly (readonly [string, string])[];
  /** For the metrics of a hit. */
  operationName: string | null;
}

interface Entry extends CachedResponse {
  /** Epoch ms after which the entry is a miss. */
  expires: number;
  touches: ReadonlySet<string>;
  bytes: number;
}

/** One GraphQL request over HTTP, as far as its answer depends on it. */
export interface ResponseRequest {
  query: string;
  operationName: string | undefined;
  variables: unknown;
}

/** Plans learned by query text and operation name (documents seen most recently kept). */
const MAX_PLANS = 1000;

/**
 * `server.responseCache`: whole serialized responses of cacheable queries (src/cache-policy.ts),
 * in this process's memory, up to `maxBytes` (least recently used dropped first), each for its
 * plan's TTL. The key holds the query text, operation name, variables, the `Accept` header (the
 * content type depends on it) and, for a plan that varies by caller, the caller's identity.
 *
 * A request learns its document's plan on its first execution (`learn`); from then on an
 * identical request is answered from here before Apollo Server parses anything.
 */
export class ResponseCache {
  readonly #maxBytes: number;
  readonly #entries = new Map<string, Entry>();
  readonly #plans = new BoundedMap<string, ResponsePlan | null>(MAX_PLANS);
  #bytes = 0;
  /**
   * Bumped by every invalidation: a response whose execution began before one may hold what
   * the mutation changed, and is not stored.
   */
  #generation = 0;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get generation(): number {
    return this.#generation;
  }

  /** The plan learned for this document and operation: null when not cacheable, undefined when not yet known. */
  plan(query: string, operationName: string | undefined): ResponsePlan | null | undefined {
    return this.#plans.get(`${operationName ?? ''}\0${query}`);
  }

  learn(query: string, operationName: string | undefined, plan: ResponsePlan | null): void {
    this.#plans.set(`${operationName ?? ''}\0${query}`, plan);
  }

  /** `caller`: the caller's identity, used only when the plan varies by caller. */
  keyOf(request: ResponseRequest, plan: ResponsePlan, caller: string, accept: string): string {
    return `${accept}\0${plan.perCaller ? caller : ''}\0${request.operationName ?? ''}\0${JSON.stringify(request.variables ?? null)}\0${request.query}`;
  }

  get(key: string): CachedResponse | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    this.#entries.delete(key);
    if (entry.expires <= Date.now()) {
      this.#bytes -= entry.bytes;
      return undefined;
    }
    this.#entries.set(key, entry);
    return entry;
  }

  /** Stores a response unless an invalidation happened since `generation` (read when its execution began). */
  set(key: string, plan: ResponsePlan, response: CachedResponse, generation: number): void {
    if (generation !== this.#generation) return;
    // UTF-16 strings: about two bytes a character, the key's and the body's.
    const bytes = 2 * (key.length + response.body.length);
    if (bytes > this.#maxBytes) return;
    this.#drop(key);
    this.#entries.set(key, { ...response, expires: Date.now() + plan.ttlMs, touches: plan.touches, bytes });
    this.#bytes += bytes;
    for (const oldest of this.#entries.keys()) {
      if (this.#bytes <= this.#maxBytes) break;
      this.#drop(oldest);
    }
  }

  /** Drops every response that selected one of `names` (types, or `Type.field` coordinates); how many. */
  invalidate(names: readonly string[]): number {
    if (names.length === 0) return 0;
    this.#generation++;
    let dropped = 0;
    for (const [key, entry] of this.#entries) {
      if (names.some((n) => entry.touches.has(n))) {
        this.#drop(key);
        dropped++;
      }
    }
    return dropped;
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }
}
