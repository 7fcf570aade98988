const SHARED = Symbol('junction.cache.shared');

/**
 * Marks a value the in-memory store may keep as it is, without serialising it: the caller hands
 * it over and nothing changes it afterwards (the connector runtime freezes what it caches). A
 * hit then costs a Map lookup instead of a JSON parse of the whole value. Redis stores, and
 * values not marked (a code resolver's own `ctx.cache.set`), are serialised as always.
 */
export function shared<T extends object>(value: T): T {
  Object.defineProperty(value, SHARED, { value: true });
  return value;
}

export function isShared(value: unknown): boolean {
  return typeof value === 'object' && value !== null && SHARED in value;
}
