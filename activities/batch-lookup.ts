import type { ProviderForSync } from '../db/index.ts';
import { errorScope, ScimRequestError } from '../errors/index.ts';
import type { BatchLookupResult } from '../plugins/index.ts';
import type { ScimGroup, ScimUser } from '../scim/index.ts';
import type { BatchItem, ObjectKind } from './object-kinds.ts';
import type { Target } from './targets.ts';

/** Looks up, together, the not-yet-linked objects of a batch; see {@link createBatchLookup}. */
export type BatchLookup = <T extends ScimUser | ScimGroup>(
  provider: ProviderForSync,
  target: Target,
  kind: ObjectKind<T>,
  items: ReadonlyArray<BatchItem<T>>,
) => Promise<Map<string, BatchLookupResult<T>>>;

/**
 * Looks up, together, the objects of a batch that would otherwise each be looked up before their create: those
 * with a payload and no remote id, when the plugin can (`findUsers` / `findGroups`). A target that refuses the
 * batch lookup is remembered (per provider and config version) and its objects are looked up one by one
 * (`findUser` / `findGroup`), as are those the batch lookup could not settle.
 */
export function createBatchLookup(): BatchLookup {
  // Providers (at a config version) whose target refused a batch lookup: they get per-object lookups.
  const refusesBatchLookup = new Map<string, number>();
  return async function lookUp<T extends ScimUser | ScimGroup>(
    provider: ProviderForSync,
    target: Target,
    kind: ObjectKind<T>,
    items: ReadonlyArray<BatchItem<T>>,
  ): Promise<Map<string, BatchLookupResult<T>>> {
    const known = new Map<string, BatchLookupResult<T>>();
    if (provider.dryRun || refusesBatchLookup.get(provider.id) === provider.configVersion) return known;
    const unlinked = items.flatMap((item) =>
      item.mapped.status === 'ok' && !item.link?.remoteId
        ? [{ localId: item.localId, payload: item.mapped.payload }]
        : [],
    );
    // Even one object gains: its externalId and name go in one request instead of two.
    if (unlinked.length === 0) return known;
    try {
      const found = await kind.findMany(
        target,
        unlinked.map(({ payload }) => kind.keys(payload, provider.adoptBy)),
      );
      if (found === undefined) return known;
      for (const [i, { localId }] of unlinked.entries()) known.set(localId, found[i]);
    } catch (error) {
      const scope = errorScope(error);
      if (scope === 'run') throw error;
      // A refusal (a 4xx, a 501) means "not this way"; transient failures past the budget, "not now": either way
      // each object is looked up on its own.
      if (scope === 'object' || (error instanceof ScimRequestError && error.status === 501)) {
        refusesBatchLookup.set(provider.id, provider.configVersion);
      }
    }
    return known;
  };
}
