import type { Link, ObjectType, ProviderForSync } from '../db/index.ts';
import { errorScope, isScimflowError, ScimflowError } from '../errors/index.ts';
import type { BatchLookupResult } from '../plugins/index.ts';
import type { ScimGroup, ScimUser } from '../scim/index.ts';
import type { BatchRecorder } from './batch-recorder.ts';
import { deprovisionOne, mayBeRemote } from './deprovision.ts';
import { errorRecord } from './failures.ts';
import { listedMembers, withoutMembers } from './group-members.ts';
import type { BatchItem, ObjectKind } from './object-kinds.ts';
import { isOwnCreate } from './own-create.ts';
import { payloadHash } from './payload-hash.ts';
import type { Target } from './targets.ts';

/**
 * Adopts the remote object already `known` from a batch lookup (or, when that settled nothing, the one `find`
 * returns), or creates one, adopting after all what `find` sees if the create conflicts.
 */
async function adoptOrCreate<T extends ScimUser | ScimGroup>(
  known: BatchLookupResult<T>,
  find: () => Promise<{ id: string; resource: T } | null>,
  create: () => Promise<{ id: string; resource: T }>,
): Promise<{ id: string; resource: T; adopted: boolean }> {
  const found = known === undefined ? await find() : known;
  if (found) return { ...found, adopted: true };
  try {
    return { ...(await create()), adopted: false };
  } catch (error) {
    // Someone (a crashed earlier attempt, another tool) created it between our lookup and our POST.
    if (isScimflowError(error) && error.code === 'ERR_SCIM_CONFLICT') {
      const again = await find();
      if (again) return { ...again, adopted: true };
    }
    throw error;
  }
}

/** The remote object an unlinked object matches is linked to another directory object already. */
function linkConflict(type: ObjectType, remoteId: string, holder: string): ScimflowError {
  return new ScimflowError(
    'ERR_LINK_CONFLICT',
    `the remote ${type} ${remoteId} this ${type} matches is linked to another directory ${type} (${holder}); it is not adopted twice`,
    { details: { remoteId, linkedTo: holder } },
  );
}

/** How one object's sync ended: `again` when its retry budget ran out and it was left for the retry pass. */
export type ObjectOutcome = 'done' | 'again';

/**
 * Brings one object to the target: skips it when its payload is unchanged, updates it when linked, otherwise
 * adopts a matching remote object (`known` from the batch lookup, else found now) or creates it. A permanent
 * failure (scope `object`) is recorded for this object only; transient ones were retried by the target's client,
 * and when they outlast the object's budget it is left for the retry pass (`again`), or on its `lastChance`
 * recorded as `retrying`. A run-fatal failure is thrown.
 */
export async function syncObject<T extends ScimUser | ScimGroup>(
  rec: BatchRecorder,
  provider: ProviderForSync,
  target: Target,
  kind: ObjectKind<T>,
  { localId, mapped, link, detail = {}, inputHash = null, members }: BatchItem<T>,
  known: BatchLookupResult<T>,
  lastChance: boolean,
): Promise<ObjectOutcome> {
  const { type } = kind;
  if (mapped.status === 'error') {
    rec.fail(type, localId, link, { ...mapped.error });
    return 'done';
  }
  if (mapped.status === 'skip') {
    // A create never answered may have made the object: it goes the same way, found by the externalId it was sent with.
    const remote = link !== undefined && mayBeRemote(link) && link.status !== 'deactivated';
    if (remote && !provider.dryRun) {
      // Not removed here: marked, and removed with what left scope, through the deletion guard (a full sync in its
      // deprovisioning phase, an incremental push with its other removals), so a bad mapping edit cannot wipe a target.
      const marked: Link = { ...link, status: 'skipped', lastPayloadHash: null, lastError: null };
      rec.links.push(marked);
      rec.removalsBySkip.push(marked);
      rec.event(type, localId, 'skip', { mapping: mapped.mapping, remoteId: link.remoteId, removal: 'pending' });
    } else if (remote) {
      await deprovisionOne(rec, provider, target, link, { skippedBy: mapped.mapping });
    } else {
      // A deactivated user (only users are) keeps its link, so that it is not deprovisioned twice.
      if (link?.status !== 'deactivated') rec.links.push(rec.link(type, localId, { status: 'skipped' }));
      rec.event(type, localId, 'skip', { mapping: mapped.mapping });
      rec.counts.skipped += 1;
    }
    return 'done';
  }
  const payload = mapped.payload;
  // A group whose members go in chunks is unchanged only when the members wanted are too.
  const hash = members ? payloadHash({ payload, members: members.wanted }) : payloadHash(payload);
  // Such a group's links keep no members: provider_group_members holds what was sent.
  const kept = (resource: T): T => (members ? withoutMembers(resource) : resource);
  if (link?.status === 'ok' && link.remoteId && link.lastPayloadHash === hash) {
    // Unchanged all the same (a mapping edit that changed nothing here): next time it is not even mapped.
    if (inputHash !== null && link.inputHash !== inputHash && !provider.dryRun)
      rec.pushedFrom(type, localId, inputHash);
    return 'done';
  }
  if (provider.dryRun) {
    rec.event(type, localId, link?.remoteId ? 'update' : 'create', { dryRun: true });
    rec.counts[link?.remoteId ? 'updated' : 'created'] += 1;
    return 'done';
  }
  const synced = (remoteId: string): Link =>
    rec.link(type, localId, { remoteId, lastPayloadHash: hash, lastPayload: payload, inputHash });
  // The remote object linked to now and what it holds, for the link of an object that does not finish: an object
  // created or adopted before a later request failed keeps its remote id, so it is never created a second time.
  let linked = { remoteId: link?.remoteId ?? null, lastPayload: link?.lastPayload ?? null };
  const linkNow = (remote: { id: string; resource: T }): Link => {
    linked = { remoteId: remote.id, lastPayload: kept(remote.resource) };
    return rec.link(type, localId, linked);
  };
  // A create is logged with the first link written for it, in the same statement: the run's counters are recounted
  // from the log, and a worker dying after the POST must not leave a created object out of them.
  let createLogged = false;
  // Whether this attempt sent a create of `payload` (its answer may have been lost, and the remote object found later).
  let createSent = false;
  try {
    let remoteId = link?.remoteId ?? null;
    let action: 'update' | 'adopt' | 'create' = 'update';
    if (remoteId) {
      try {
        // A link written before members went in chunks lists what was sent: that is what the group holds.
        const listed = link?.lastPayload?.['members'];
        if (members && Array.isArray(listed)) await members.holds(listedMembers({ members: listed }));
        await kind.update(target, remoteId, payload, (link?.lastPayload as T | null) ?? null);
        // A group deleted behind our back answers 404 here when only its members changed.
        if (members) await members.send(target, remoteId);
      } catch (error) {
        // The remote object was deleted behind our back: provision it again.
        if (!(isScimflowError(error) && error.code === 'ERR_SCIM_NOT_FOUND')) throw error;
        remoteId = null;
      }
    }
    if (!remoteId) {
      const keys = kind.keys(payload, provider.adoptBy);
      // A link whose remote object vanished was not looked up with the batch: `known` is only for unlinked objects.
      const remote = await adoptOrCreate(
        link?.remoteId ? undefined : known,
        () => kind.find(target, keys),
        // A group whose members take more requests is linked before they are sent.
        async () => {
          const first = members ? await members.first() : undefined;
          const body = first ? { ...payload, members: first.map((value) => ({ value })) } : payload;
          // Written before the POST: should its answer never come (a reset after the target wrote, a crash, a
          // cancellation), the link keeps what was sent, so the object is found again (adopted, or removed if it
          // leaves the directory meanwhile) rather than left on the target unknown.
          linked = { remoteId: null, lastPayload: kept(payload) };
          await rec.saveNow(rec.link(type, localId, { ...linked, status: 'creating' }));
          createSent = true;
          const created = await kind.create(target, body, (created) => {
            createLogged = true;
            return rec.saveNow(linkNow(created), { remoteId: created.id, ...detail });
          });
          if (members && first) {
            await members.created(first);
            if (first.length === members.chunk) {
              createLogged = true;
              await rec.saveNow(linkNow(created), { remoteId: created.id, ...detail });
            }
          }
          return created;
        },
      );
      remoteId = remote.id;
      if (remote.adopted) {
        action = 'adopt';
        // Claimed before anything is sent to it: two directory objects (userNames differing only in case) never
        // both take one remote object, nor does the second overwrite the first.
        const holder = await rec.claim(rec.link(type, localId, { remoteId, lastPayload: kept(remote.resource) }));
        if (holder !== null) throw linkConflict(type, remoteId, holder);
        linkNow(remote);
        if (!members && isOwnCreate(remote.resource, payload, createSent, link)) {
          // Our own create, whose answer was lost: the target holds the payload already, so nothing is written again.
          action = 'create';
        } else {
          // What the adopted group lists is what it holds (none listed: a target without member read-back).
          if (members) await members.holds(listedMembers(remote.resource as ScimGroup));
          await kind.update(target, remoteId, payload, remote.resource);
        }
      } else {
        action = 'create';
      }
      if (members) await members.send(target, remoteId);
    }
    // A created object's link is written at once, not at batch end (not awaited: the next requests overlap it).
    if (action === 'create') rec.saveSoon(synced(remoteId), createLogged ? undefined : { remoteId, ...detail });
    else rec.links.push(synced(remoteId));
    if (action !== 'create') rec.event(type, localId, action, { remoteId, ...detail });
    rec.counts[action === 'create' ? 'created' : 'updated'] += 1;
  } catch (error) {
    const scope = errorScope(error);
    if (scope === 'run') throw error;
    const kept = rec.link(type, localId, linked);
    if (scope === 'object') rec.fail(type, localId, kept, errorRecord(error));
    else if (!lastChance) return 'again';
    else rec.retrying(type, localId, kept, errorRecord(error));
  }
  return 'done';
}
