import KeyvRedis from '@keyv/redis';
import Keyv, { type Serialize } from 'keyv';

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

/**
 * The hub's keyv store, from `cache.store`: in memory, or Redis so that every hub instance
 * shares one cache. Connectors namespace their keys by connector name.
 */
export function createCache(store: string): Keyv {
  const keyv = store === 'memory' ? new Keyv({ namespace: 'junction' }) : new Keyv({ store: new KeyvRedis(store), namespace: 'junction' });
  if (store === 'memory') {
    // keyv's Map store keeps whatever the serialiser returns; a string is parsed again on get.
    const serialize = keyv.serialize!;
    keyv.serialize = ((data) => (isShared(data.value) ? data : serialize(data))) as Serialize;
  }
  // A cache that fails must not fail the call: keyv then answers as a miss, and the error is
  // the store's to log (see Hub).
  keyv.throwOnErrors = false;
  return keyv;
}

function isShared(value: unknown): boolean {
  return typeof value === 'object' && value !== null && SHARED in value;
}
