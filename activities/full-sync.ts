import {
  addCounts,
  countOutOfScope,
  getLinks,
  groupsOfUsers,
  listOutOfScopeLinks,
  loadGroupsByIds,
  loadUsersByIds,
  retryingIds,
  type ObjectType,
  type ProviderForSync,
  type RunCounts,
  type RunSummary,
  zeroCounts,
} from '../db/index.ts';
import { createBatchLookup } from './batch-lookup.ts';
import { BatchRecorder, LinkWriter } from './batch-recorder.ts';
import { createChangeWaiter } from './change-waiter.ts';
import { CreatedMembersWriter } from './group-members.ts';
import { guarded, overLimit } from './deletion-guard.ts';
import { deprovisionOne, removalReason } from './deprovision.ts';
import { withFailures } from './failures.ts';
import { enabledOnly } from './provider-enabled.ts';
import { beat, cancellation, keptAlive } from './heartbeat.ts';
import { createIncrementalPushActivities } from './incremental-push.ts';
import { createRunLifecycleActivities, finishFullSyncRun } from './run-lifecycle.ts';
import { createRangeSync } from './range-sync.ts';
import { createStatisticsKeeper } from './statistics-keeper.ts';
import { createRowSync } from './sync-rows.ts';
import type { IdRange, SyncActivityDeps } from './sync-deps.ts';
import type { Target } from './targets.ts';

/** Most objects of each type one run's retry pass sends again. */
const RETRY_PASS_LIMIT = 1000;

/**
 * Turns the counters of objects sent a second time in one run into a change of that run's: they were processed
 * already (`processed` of them), and `retrying` of them were counted retrying.
 */
function sentAgain(counts: RunCounts, processed: number, retrying: number): void {
  counts.processed -= processed;
  counts.retrying -= retrying;
}

/** Builds the sync activities (full sync, incremental push). Every input and output is ids, cursors and counts. */
export function createFullSyncActivities(deps: SyncActivityDeps) {
  const { db, targets, mapper } = deps;
  // Every full-sync activity stops before it sends anything for a provider disabled meanwhile (a run queued for one
  // ends before it starts).
  const loadProvider = enabledOnly(deps.loadProvider);
  const writer = new LinkWriter(db);
  const rowSync = createRowSync({
    db,
    mapper,
    lookUp: createBatchLookup(),
    createdMembers: new CreatedMembersWriter(db),
  });
  const ranges = createRangeSync({ db, writer, rowSync, mapper, statistics: createStatisticsKeeper(db) });

  /** Runs a range activity's `work` on a target leased for it (sockets of its own), released when it ends. */
  async function inLease<T>(provider: ProviderForSync, work: (target: Target) => Promise<T>): Promise<T> {
    const leased = targets.lease(provider, cancellation());
    try {
      return await work(leased);
    } finally {
      leased.release();
    }
  }

  /**
   * The run's retry pass, before it removes anything: sends the in-scope objects left retrying again (users, then
   * groups with the groups of users who appeared only now), each with a fresh budget, and returns the change to
   * the run's counters (nothing is processed twice; what finishes leaves `retrying`).
   */
  async function retryPass(provider: ProviderForSync, input: { runId: string; groups: boolean }): Promise<RunCounts> {
    const target = targets.get(provider, cancellation());
    const userIds = await retryingIds(db, provider.id, 'user', RETRY_PASS_LIMIT);
    const rows = await loadUsersByIds(db, provider.scope, userIds);
    const userRec = new BatchRecorder(db, writer, input.runId, provider.id);
    try {
      if (rows.length > 0) {
        await rowSync.users(userRec, provider, target, rows, await getLinks(db, provider.id, 'user', userIds));
      }
      sentAgain(userRec.counts, rows.length, rows.length);
    } finally {
      await userRec.flush();
    }
    const counts = { ...userRec.counts };
    if (!input.groups) return counts;
    const appeared = userRec.appeared();
    const retrying = await retryingIds(db, provider.id, 'group', RETRY_PASS_LIMIT);
    // The groups of users who appeared only now were synced without them: sent again for their members, and
    // counted once all the same (only a failure now is added).
    const related = (await groupsOfUsers(db, appeared)).filter((id) => !retrying.includes(id));
    for (const [ids, count] of [
      [retrying, (c: RunCounts, n: number) => sentAgain(c, n, n)],
      [related, (c: RunCounts) => Object.assign(c, { ...zeroCounts(), failed: c.failed, retrying: c.retrying })],
    ] as const) {
      const rows = await loadGroupsByIds(db, provider.scope, ids);
      if (rows.length === 0) continue;
      const rec = new BatchRecorder(db, writer, input.runId, provider.id);
      try {
        await rowSync.groups(rec, provider, target, rows, getLinks(db, provider.id, 'group', ids));
        count(rec.counts, rows.length);
      } finally {
        await rec.flush();
      }
      addCounts(counts, rec.counts);
    }
    return counts;
  }

  return {
    ...createRunLifecycleActivities({ ...deps, loadProvider }),
    ...createIncrementalPushActivities(deps, writer, rowSync, createChangeWaiter(db)),

    /** Brings every in-scope user of a range to the target (see `createRangeSync`). */
    async syncUserRange(input: { providerId: string; runId: string; range: IdRange }): Promise<RunCounts> {
      return withFailures(() =>
        keptAlive(async () => {
          const provider = await loadProvider(input.providerId);
          return inLease(provider, (target) => ranges.users(provider, target, input.runId, input.range));
        }),
      );
    },

    /** Brings every in-scope group of a range (attributes and members) to the target, as `syncUserRange` users. */
    async syncGroupRange(input: { providerId: string; runId: string; range: IdRange }): Promise<RunCounts> {
      return withFailures(() =>
        keptAlive(async () => {
          const provider = await loadProvider(input.providerId);
          return inLease(provider, (target) => ranges.groups(provider, target, input.runId, input.range));
        }),
      );
    },

    /** The run's retry pass as an activity of its own (see `retryPass`); runs started before `prepareRemovals` call it. */
    async retryUnfinished(input: { providerId: string; runId: string; groups: boolean }): Promise<RunCounts> {
      return withFailures(() => keptAlive(async () => retryPass(await loadProvider(input.providerId), input)));
    },

    /**
     * What a full sync does before it removes anything, in one activity: the retry pass, then the deletion guard
     * (failing with ERR_DELETION_GUARD), then how many links of each type are out of scope: a type with none needs no
     * deprovisioning page. Returns the retry pass's change to the run's counters, and those numbers. With nothing out
     * of scope (nearly every run) it also closes the run as `finishFullSync` would, and returns its counters as stored
     * (`finished`): one activity and workflow task fewer after the run's last request.
     */
    async prepareRemovals(input: {
      providerId: string;
      runId: string;
      groups: boolean;
      allowDeletions: boolean;
    }): Promise<{ counts: RunCounts; outOfScope: Record<ObjectType, number>; finished?: RunSummary }> {
      return withFailures(() =>
        keptAlive(async () => {
          const provider = await loadProvider(input.providerId);
          const counts = await retryPass(provider, input);
          const { user, group } = await countOutOfScope(db, provider.scope, provider.id);
          const held = guarded(provider, input.allowDeletions) ? overLimit(provider, user.remote + group.remote) : null;
          if (held) throw held;
          const outOfScope = { user: user.links, group: group.links };
          if (user.links + group.links > 0) return { counts, outOfScope };
          return { counts, outOfScope, finished: await finishFullSyncRun(db, input.runId, 'succeeded', null) };
        }),
      );
    },

    /** Deprovisions one page of linked objects that left scope (or were deleted), per the provider's mode. */
    async deprovisionPage(input: {
      providerId: string;
      runId: string;
      objectType: ObjectType;
      after: string | null;
      limit: number;
    }): Promise<{ counts: RunCounts; next: string | null }> {
      return withFailures(() =>
        keptAlive(async () => {
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
        }),
      );
    },
  };
}

/** The sync activities, as workflows see them (by type only). */
export type FullSyncActivities = ReturnType<typeof createFullSyncActivities>;
