import type { Link, ProviderForSync } from '../db/index.ts';
import type { ScimUser } from '../scim/index.ts';
import type { BatchRecorder } from './batch-recorder.ts';
import { errorScope } from '../errors/index.ts';
import { errorRecord } from './failures.ts';
import { GROUPS, USERS } from './object-kinds.ts';
import type { Target } from './targets.ts';

/** Why a linked object is being removed, for its provisioning event: a mapping skips it, or it left scope. */
export function removalReason(link: Link): { reason: string } {
  return { reason: link.status === 'skipped' ? 'skipped by a mapping' : 'out of scope' };
}

/**
 * The match keys of a link's object that was sent in a create never answered (no remote id, the payload it was sent
 * with kept): its externalId only, which scimflow itself set, so an object someone else made is never taken for it.
 */
function unansweredCreate(link: Link): { externalId: string } | undefined {
  const externalId = link.remoteId ? undefined : link.lastPayload?.['externalId'];
  return typeof externalId === 'string' && externalId !== '' ? { externalId } : undefined;
}

/** Whether a link's object is, or may be, on the target: it has a remote id, or was sent in a create never answered. */
export function mayBeRemote(link: Link): boolean {
  return link.remoteId !== null || unansweredCreate(link) !== undefined;
}

/**
 * The remote object a create never answered made, if the target holds one with the externalId it was sent with (a
 * reset, a crash, a cancellation left its answer unseen); null when it holds none.
 */
async function madeBy(
  target: Target,
  objectType: Link['objectType'],
  sentAs: { externalId: string } | undefined,
): Promise<string | null> {
  if (sentAs === undefined) return null;
  const found = await (objectType === 'user' ? USERS : GROUPS).find(target, sentAs);
  return found && found.resource.externalId === sentAs.externalId ? found.id : null;
}

/**
 * Removes, deactivates or leaves one linked remote object, per the provider's deprovision mode. `target` should be
 * one object's ({@link Target.forObject}): its retry budget is this object's.
 */
export async function deprovisionOne(
  rec: BatchRecorder,
  provider: ProviderForSync,
  target: Target,
  recorded: Link,
  why: Record<string, unknown>,
): Promise<void> {
  const { plugin, ctx } = target;
  const { objectType, localId } = recorded;
  if (!mayBeRemote(recorded)) {
    rec.deletedLinks.push({ objectType, localId });
    return;
  }
  const mode = provider.deprovision;
  if (provider.dryRun) {
    rec.event(
      objectType,
      localId,
      mode === 'deactivate' && objectType === 'user' ? 'deactivate' : mode === 'leave' ? 'skip' : 'delete',
      {
        ...why,
        dryRun: true,
      },
    );
    return;
  }
  // Once found, the link a failure below keeps holds the remote id.
  let link = recorded;
  try {
    const remoteId = recorded.remoteId ?? (await madeBy(target, objectType, unansweredCreate(recorded)));
    if (remoteId === null) {
      rec.deletedLinks.push({ objectType, localId });
      return;
    }
    link = { ...recorded, remoteId };
    if (mode === 'leave') {
      rec.deletedLinks.push({ objectType, localId });
      rec.event(objectType, localId, 'skip', { ...why, deprovision: 'leave', remoteId });
      return;
    }
    // A target that cannot delete users (Slack, Salesforce) deactivates them: the link stays, so the same remote
    // user is reactivated if the person comes back.
    const deactivates =
      objectType === 'user' && (mode === 'deactivate' || (await plugin.capabilities(ctx)).userDelete === 'deactivate');
    if (deactivates) {
      await plugin.deactivateUser(ctx, remoteId, (link.lastPayload as ScimUser | null) ?? null);
      rec.links.push({ ...link, status: 'deactivated', lastPayloadHash: null, lastError: null });
      rec.event(objectType, localId, 'deactivate', {
        ...why,
        remoteId,
        ...(mode === 'deactivate' ? {} : { requested: mode, because: 'the target only deactivates users' }),
      });
    } else {
      if (objectType === 'user') await plugin.deleteUser(ctx, remoteId);
      else await plugin.deleteGroup(ctx, remoteId);
      rec.deletedLinks.push({ objectType, localId });
      rec.event(objectType, localId, 'delete', { ...why, remoteId });
    }
    rec.counts.deleted += 1;
  } catch (error) {
    const scope = errorScope(error);
    if (scope === 'run') throw error;
    // Transient failures that outlasted the budget: still linked, so the next push or full sync removes it.
    if (scope === 'request') rec.retrying(objectType, localId, link, errorRecord(error));
    else rec.fail(objectType, localId, link, errorRecord(error));
  }
}
