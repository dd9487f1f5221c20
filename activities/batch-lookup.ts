import type { ProviderForSync } from '../db/index.ts';
import { errorScope, ScimRequestError } from '../errors/index.ts';
import { LOOKUP_CHUNK, type BatchLookupResult } from '../plugins/index.ts';
import type { ScimGroup, ScimUser } from '../scim/index.ts';
import type { BatchItem, ObjectKind } from './object-kinds.ts';
import type { Target } from './targets.ts';

/**
 * Looks up, together, the not-yet-linked objects of a batch; see {@link createBatchLookup}. Each object's answer is a
 * promise of its own, settled when the lookup of its part has answered.
 */
export type BatchLookup = <T extends ScimUser | ScimGroup>(
  provider: ProviderForSync,
  target: Target,
  kind: ObjectKind<T>,
  items: ReadonlyArray<BatchItem<T>>,
) => Map<string, Promise<BatchLookupResult<T>>>;

/**
 * Looks up, together, the objects of a batch that would otherwise each be looked up before their create: those
 * with a payload and no remote id, when the plugin can (`findUsers` / `findGroups`), in parts of one combined filter
 * (LOOKUP_CHUNK), each with a retry budget of its own; an object waits only for its own part (a part kept waiting by
 * a 429 holds back its own objects, not the whole page). A target that refuses the batch lookup is remembered (per provider and config
 * version) and its objects are looked up one by one (`findUser` / `findGroup`), as are those the batch lookup could
 * not settle. A run-fatal failure rejects the answers of the part's objects.
 */
export function createBatchLookup(): BatchLookup {
  // Providers (at a config version) whose target refused a batch lookup: they get per-object lookups.
  const refusesBatchLookup = new Map<string, number>();
  return function lookUp<T extends ScimUser | ScimGroup>(
    provider: ProviderForSync,
    target: Target,
    kind: ObjectKind<T>,
    items: ReadonlyArray<BatchItem<T>>,
  ): Map<string, Promise<BatchLookupResult<T>>> {
    const known = new Map<string, Promise<BatchLookupResult<T>>>();
    if (provider.dryRun || refusesBatchLookup.get(provider.id) === provider.configVersion) return known;
    const unlinked = items.flatMap((item) =>
      item.mapped.status === 'ok' && !item.link?.remoteId
        ? [{ localId: item.localId, payload: item.mapped.payload }]
        : [],
    );
    const lookUpPart = async (part: typeof unlinked): Promise<Array<BatchLookupResult<T>> | undefined> => {
      try {
        // With a retry budget of its own, as each object has: on the range's, every page's lookups shared one budget
        // of 8 retries, and once faults had spent it a page's lookup gave up at its first failure.
        return await kind.findMany(
          target.forObject(),
          part.map(({ payload }) => kind.keys(payload, provider.adoptBy)),
        );
      } catch (error) {
        const scope = errorScope(error);
        if (scope === 'run') throw error;
        // A refusal (a 4xx, a 501) means "not this way"; transient failures past the budget, "not now": either way
        // each object is looked up on its own.
        if (scope === 'object' || (error instanceof ScimRequestError && error.status === 501)) {
          refusesBatchLookup.set(provider.id, provider.configVersion);
        }
        return undefined;
      }
    };
    // Even one object gains: its externalId and name go in one request instead of two.
    for (let start = 0; start < unlinked.length; start += LOOKUP_CHUNK) {
      const part = unlinked.slice(start, start + LOOKUP_CHUNK);
      const answer = lookUpPart(part);
      part.forEach(({ localId }, index) => {
        const found = answer.then((results) => results?.[index]);
        // Rejected only by a run-fatal failure, which the objects that await it report; those that never start
        // (the batch stopped first) must not make it an unhandled rejection.
        found.catch(() => undefined);
        known.set(localId, found);
      });
    }
    return known;
  };
}
