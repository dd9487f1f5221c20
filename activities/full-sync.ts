import {
  getLinks,
  listOutOfScopeLinks,
  loadGroupsInRange,
  loadUsersInRange,
  type ObjectType,
  type RunCounts,
} from '../db/index.ts';
import { createBatchLookup } from './batch-lookup.ts';
import { BatchRecorder, LinkWriter } from './batch-recorder.ts';
import { deprovisionOne, removalReason } from './deprovision.ts';
import { withFailures } from './failures.ts';
import { beat, cancellation } from './heartbeat.ts';
import { createIncrementalPushActivities } from './incremental-push.ts';
import { createRunLifecycleActivities } from './run-lifecycle.ts';
import { createRowSync } from './sync-rows.ts';
import type { IdRange, SyncActivityDeps } from './sync-deps.ts';

/** Builds the sync activities (full sync, incremental push). Every input and output is ids, cursors and counts. */
export function createFullSyncActivities(deps: SyncActivityDeps) {
  const { db, targets, mapper, loadProvider } = deps;
  const writer = new LinkWriter(db);
  const rowSync = createRowSync({ db, mapper, lookUp: createBatchLookup() });

  return {
    ...createRunLifecycleActivities(deps),
    ...createIncrementalPushActivities(deps, writer, rowSync),

    /** Brings every in-scope user of a range to the target; one permanent failure never stops the others. */
    async syncUserRange(input: { providerId: string; runId: string; range: IdRange }): Promise<RunCounts> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        const target = targets.get(provider, cancellation());
        const rows = await loadUsersInRange(db, provider.scope, input.range.after, input.range.last);
        const links = await getLinks(
          db,
          provider.id,
          'user',
          rows.map((row) => row.id),
        );
        const rec = new BatchRecorder(db, writer, input.runId, provider.id);
        try {
          await rowSync.users(rec, provider, target, rows, links);
        } finally {
          await rec.flush();
        }
        return rec.counts;
      });
    },

    /** Brings every in-scope group of a range (attributes and members) to the target. */
    async syncGroupRange(input: { providerId: string; runId: string; range: IdRange }): Promise<RunCounts> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        const target = targets.get(provider, cancellation());
        const rows = await loadGroupsInRange(db, provider.scope, input.range.after, input.range.last);
        const links = getLinks(
          db,
          provider.id,
          'group',
          rows.map((row) => row.id),
        );
        const rec = new BatchRecorder(db, writer, input.runId, provider.id);
        try {
          await rowSync.groups(rec, provider, target, rows, links);
        } finally {
          await rec.flush();
        }
        return rec.counts;
      });
    },

    /** Deprovisions one page of linked objects that left scope (or were deleted), per the provider's mode. */
    async deprovisionPage(input: {
      providerId: string;
      runId: string;
      objectType: ObjectType;
      after: string | null;
      limit: number;
    }): Promise<{ counts: RunCounts; next: string | null }> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        const target = targets.get(provider, cancellation());
        const links = await listOutOfScopeLinks(
          db,
          provider.scope,
          provider.id,
          input.objectType,
          input.after,
          input.limit,
        );
        const rec = new BatchRecorder(db, writer, input.runId, provider.id);
        try {
          for (const link of links) {
            beat();
            await deprovisionOne(rec, provider, target.forObject(), link, removalReason(link));
          }
        } finally {
          await rec.flush();
        }
        return { counts: rec.counts, next: links.length === input.limit ? links.at(-1)!.localId : null };
      });
    },
  };
}

/** The sync activities, as workflows see them (by type only). */
export type FullSyncActivities = ReturnType<typeof createFullSyncActivities>;
