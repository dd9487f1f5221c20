import type { ProviderForSync } from '../db/index.ts';
import type { ScimGroup, ScimUser } from '../scim/index.ts';
import type { BatchLookup } from './batch-lookup.ts';
import type { BatchRecorder } from './batch-recorder.ts';
import { eachAsAnswered, eachConcurrently } from './concurrency.ts';
import { beat } from './heartbeat.ts';
import type { BatchItem, ObjectKind } from './object-kinds.ts';
import { syncObject } from './sync-object.ts';
import type { Target } from './targets.ts';

/**
 * Objects of a batch in flight per request slot of the target: most of an object's time under faults is spent
 * waiting out backoffs and `Retry-After`s (93 % of it at 20 % faults), when it holds no slot, so many more objects
 * than slots keep the slots busy.
 */
const OBJECTS_PER_SLOT = 16;

/**
 * Syncs a batch of mapped objects of one kind, many at a time while the target's request slots (the provider's
 * concurrency) bound what is in flight (its objects are independent of each other), each once the lookup of the
 * unlinked ones (together, in parts) has answered for it. Each object has its own retry budget; those whose
 * transient failures outlast it get a second pass, with a fresh budget, once the others are done, and are recorded
 * `retrying` if that fails too.
 */
export async function syncBatch<T extends ScimUser | ScimGroup>(
  lookUp: BatchLookup,
  rec: BatchRecorder,
  provider: ProviderForSync,
  target: Target,
  kind: ObjectKind<T>,
  items: ReadonlyArray<BatchItem<T>>,
): Promise<void> {
  const known = lookUp(provider, target, kind, items);
  let beaten = 0;
  const progressed = (): void => {
    // Heartbeats are for liveness (timeout: a minute); one per object cost more CPU than a fast target's answer.
    if (performance.now() - beaten >= 1000) {
      beaten = performance.now();
      beat();
    }
  };
  const again: Array<BatchItem<T>> = [];
  const inFlight = provider.concurrency * OBJECTS_PER_SLOT;
  // Objects start as their lookups answer (those with none first): one waiting out a 429 holds no place.
  await eachAsAnswered(
    items,
    (item) => known.get(item.localId),
    inFlight,
    async (item, found) => {
      const outcome = await syncObject(rec, provider, target.forObject(), kind, item, found, false);
      if (outcome === 'again') again.push(item);
      else progressed();
    },
  );
  // The retry pass, from the links written meanwhile (a group created before its members failed). What the batch
  // lookup knew may be stale (a create whose answer was lost did happen): look again.
  await eachConcurrently(again, inFlight, async (item) => {
    const link = rec.writtenEarly(item.localId) ?? item.link;
    await syncObject(rec, provider, target.forObject(), kind, { ...item, link }, undefined, true);
    progressed();
  });
}
