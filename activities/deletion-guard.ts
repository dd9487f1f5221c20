import { countOutOfScopeRemote, type Db, type ProviderForSync } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';
import { toApplicationFailure } from './failures.ts';

/**
 * The deletion guard: the ERR_DELETION_GUARD error that holds removals back when removing what left the
 * provider's scope, or what a mapping now skips, would delete or deactivate more remote objects than its `deletionLimit` (else null), so a
 * mistaken scope or directory change (an emptied access group, a bad import) cannot wipe a downstream app.
 * `allowDeletions` is a person's one-time consent.
 */
export async function deletionsHeld(
  db: Db,
  provider: ProviderForSync,
  allowDeletions: boolean,
): Promise<ScimflowError | null> {
  if (!guarded(provider, allowDeletions)) return null;
  return overLimit(provider, await countOutOfScopeRemote(db, provider.scope, provider.id));
}

/** Whether the deletion guard applies to a removal by this provider (see `deletionsHeld`). */
export function guarded(provider: ProviderForSync, allowDeletions: boolean): boolean {
  return !allowDeletions && provider.deletionLimit !== null && provider.deprovision !== 'leave' && !provider.dryRun;
}

/** The guard's error when removing `pending` remote objects is more than the provider's limit allows, else null. */
export function overLimit(provider: ProviderForSync, pending: number): ScimflowError | null {
  const limit = provider.deletionLimit;
  if (limit === null || pending <= limit) return null;
  return new ScimflowError(
    'ERR_DELETION_GUARD',
    `removing what left the scope of provider ${provider.slug} (or what its mappings skip) would ` +
      `${provider.deprovision} ${pending} remote objects, more than its deletion limit of ${limit}; nothing was ` +
      `removed. Check the scope, the mappings and the directory, then run ` +
      `\`scimflow sync ${provider.slug} --allow-deletions\` or raise deletionLimit`,
    { details: { pending, limit, provider: provider.slug } },
  );
}

/** Builds the deletion-guard activity. */
export function createDeletionGuardActivities(deps: {
  db: Db;
  loadProvider: (providerId: string) => Promise<ProviderForSync>;
}) {
  return {
    /** Fails with ERR_DELETION_GUARD (not retried) when the full sync must not deprovision; see `deletionsHeld`. */
    async checkDeletionGuard(input: { providerId: string; allowDeletions: boolean }): Promise<void> {
      let held: ScimflowError | null;
      try {
        held = await deletionsHeld(deps.db, await deps.loadProvider(input.providerId), input.allowDeletions);
      } catch (error) {
        throw toApplicationFailure(error);
      }
      if (held) throw toApplicationFailure(held);
    },
  };
}

/** The deletion-guard activity, as workflows see it (by type only). */
export type DeletionGuardActivities = ReturnType<typeof createDeletionGuardActivities>;
