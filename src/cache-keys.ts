import type Keyv from 'keyv';

/**
 * Remembers which keys each owner (a connector by name, or `field:Type.field` for a code
 * resolver's `@cache`) set in the hub's keyv store, so that a mutation's `@invalidates` can
 * delete what those owners cached. Only keys set by this process are known: with a shared Redis
 * store, what another instance cached stays until its TTL.
 */
export class CacheKeys {
  readonly #store: Keyv;
  /** Owner → key → when it expires (epoch ms); expired keys are pruned as the index grows. */
  readonly #keys = new Map<string, Map<string, number>>();
  #size = 0;
  #pruneAt = 1024;

  constructor(store: Keyv) {
    this.#store = store;
  }

  /**
   * The store as one owner sees it: the same store, whose `set` also records the key under the
   * owner `ownerOf` names for it (undefined: not recorded).
   */
  view(ownerOf: (key: string) => string | undefined): Keyv {
    const store = this.#store;
    const view = Object.create(store) as Keyv;
    view.set = ((key: string, value: unknown, ttl?: number) => {
      const owner = ownerOf(key);
      if (owner !== undefined) this.#record(owner, key, ttl);
      return store.set(key, value, ttl);
    }) as Keyv['set'];
    return view;
  }

  /** Deletes every key the owners set. */
  async drop(owners: Iterable<string>): Promise<void> {
    const keys: string[] = [];
    for (const owner of owners) {
      const owned = this.#keys.get(owner);
      if (!owned) continue;
      keys.push(...owned.keys());
      this.#size -= owned.size;
      this.#keys.delete(owner);
    }
    if (keys.length > 0) await this.#store.delete(keys);
  }

  #record(owner: string, key: string, ttl: number | undefined): void {
    let owned = this.#keys.get(owner);
    if (!owned) this.#keys.set(owner, (owned = new Map()));
    if (!owned.has(key)) this.#size++;
    owned.set(key, ttl === undefined ? Infinity : Date.now() + ttl);
    if (this.#size >= this.#pruneAt) this.#prune();
  }

  /** Forgets keys past their TTL (the store dropped them); the next prune waits for twice as many. */
  #prune(): void {
    const now = Date.now();
    for (const [owner, owned] of this.#keys) {
      for (const [key, expires] of owned) {
        if (expires > now) continue;
        owned.delete(key);
        this.#size--;
      }
      if (owned.size === 0) this.#keys.delete(owner);
    }
    this.#pruneAt = Math.max(1024, 2 * this.#size);
  }
}
