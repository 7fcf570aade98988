// Request-scoped helpers of the binding directives: their DataLoaders and their stale marks.
import DataLoader from 'dataloader';
import { type GraphQLResolveInfo, responsePathAsArray } from 'graphql';
import type { HubContext } from './contract.ts';

/**
 * The DataLoader named `id` for this GraphQL request, created on first use. One request's
 * loaders never serve another request: batching and dedupe happen within a request, sharing
 * across requests is the pipeline's job (in-flight dedupe and cache).
 */
export function requestLoader<K, V>(
  ctx: HubContext,
  id: string,
  batch: (keys: readonly K[]) => Promise<readonly (V | Error)[]>,
  cacheKeyFn?: (key: K) => string,
): DataLoader<K, V, unknown> {
  let loader = ctx.loaders.get(id) as DataLoader<K, V, unknown> | undefined;
  if (!loader) {
    loader = new DataLoader<K, V, unknown>(batch, cacheKeyFn ? { cacheKeyFn } : {});
    ctx.loaders.set(id, loader);
  }
  return loader;
}

/** Records that the field at `info.path` was served stale (breaker open): `extensions.stale`. */
export function markStale(ctx: HubContext, info: GraphQLResolveInfo, stale: boolean, connector: string): void {
  if (stale) ctx.stale.push({ path: responsePathAsArray(info.path), connector });
}
