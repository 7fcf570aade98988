import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';

/**
 * The hub's keyv store, from `cache.store`: in memory, or Redis so that every hub instance
 * shares one cache. Connectors namespace their keys by connector name.
 */
export function createCache(store: string): Keyv {
  const keyv = store === 'memory' ? new Keyv({ namespace: 'junction' }) : new Keyv({ store: new KeyvRedis(store), namespace: 'junction' });
  // A cache that fails must not fail the call: keyv then answers as a miss, and the error is
  // the store's to log (see Hub).
  keyv.throwOnErrors = false;
  return keyv;
}
