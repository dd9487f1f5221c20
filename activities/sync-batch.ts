import type { ProviderForSync } from '../db/index.ts';
import type { ScimGroup, ScimUser } from '../scim/index.ts';
import type { BatchLookup } from './batch-lookup.ts';
import type { BatchRecorder } from './batch-recorder.ts';
import { eachConcurrently } from './concurrency.ts';
import { beat } from './heartbeat.ts';
import type { BatchItem, ObjectKind } from './object-kinds.ts';
import { syncObject } from './sync-object.ts';
import type { Target } from './targets.ts';

/**
 * Syncs a batch of mapped objects of one kind, up to the provider's concurrency at a time (the batch's requests
 * overlap; its objects are independent of each other), after looking up the unlinked ones together.
 */
export async function syncBatch<T extends ScimUser | ScimGroup>(
  lookUp: BatchLookup,
  rec: BatchRecorder,
  provider: ProviderForSync,
  target: Target,
  kind: ObjectKind<T>,
  items: ReadonlyArray<BatchItem<T>>,
): Promise<void> {
  const known = await lookUp(provider, target, kind, items);
  let done = 0;
  let beaten = 0;
  await eachConcurrently(items, provider.concurrency, async (item) => {
    await syncObject(rec, provider, target, kind, item, known.get(item.localId));
    done += 1;
    // Heartbeats are for liveness (timeout: a minute); one per object cost more CPU than a fast target's answer.
    if (performance.now() - beaten >= 1000) {
      beaten = performance.now();
      beat({ done });
    }
  });
}
