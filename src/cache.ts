import KeyvRedis from '@keyv/redis';
import Keyv, { type Serialize } from 'keyv';
import { isShared } from '../connectors/runtime/shared-value.ts';

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
