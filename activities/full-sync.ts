import {
  addCounts,
  getLinks,
  groupsOfUsers,
  listOutOfScopeLinks,
  loadGroupsByIds,
  loadGroupsInRange,
  loadUsersByIds,
  loadUsersInRange,
  retryingIds,
  type ObjectType,
  type ProviderForSync,
  type RunCounts,
  zeroCounts,
} from '../db/index.ts';
import { createBatchLookup } from './batch-lookup.ts';
import { BatchRecorder, LinkWriter } from './batch-recorder.ts';
import { createChangeWaiter } from './change-waiter.ts';
import { deprovisionOne, removalReason } from './deprovision.ts';
import { eachConcurrently } from './concurrency.ts';
import { withFailures } from './failures.ts';
import { beat, cancellation, lastResumePoint, markResumePoint } from './heartbeat.ts';
import { inputHash, pushedFrom } from './input-hash.ts';
import { createIncrementalPushActivities } from './incremental-push.ts';
import { createRunLifecycleActivities } from './run-lifecycle.ts';
import { createRowSync } from './sync-rows.ts';
import type { IdRange, SyncActivityDeps } from './sync-deps.ts';

/**
 * Directory rows a range activity reads at a time (ten pages, at most 1,000): the unchanged among them are settled
 * together, and a retry resumes after the last finished stretch.
 */
function stretchRows(pageSize: number): number {
  return Math.min(1000, pageSize * 10);
}

/** Where a range activity got to: the last id of its last finished stretch, and its counts so far. */
interface RangeProgress {
  after: string | null;
  counts: RunCounts;
}

/**
 * Runs `handle` over a range's rows, read `size` at a time (the next read overlapping the current stretch),
 * from the resume point of an earlier attempt if there is one, marking a new one after each stretch.
 */
async function inStretches<R extends { id: string }>(
  range: IdRange,
  size: number,
  read: (after: string | null, limit: number) => Promise<R[]>,
  handle: (rows: R[], counts: RunCounts) => Promise<void>,
): Promise<RunCounts> {
  const resumed = lastResumePoint() as RangeProgress | undefined;
  const counts = resumed?.counts ? addCounts(zeroCounts(), resumed.counts) : zeroCounts();
  let next = read(resumed?.counts ? resumed.after : range.after, size);
  for (;;) {
    const rows = await next;
    if (rows.length === 0) break;
    const last = rows.at(-1)!.id;
    next = rows.length === size ? read(last, size) : Promise.resolve([]);
    // A failure of this stretch ends the activity; the read already under way must not become an unhandled rejection.
    next.catch(() => undefined);
    await handle(rows, counts);
    // A copy: the heartbeat may be sent later, after the next stretch changed `counts`.
    markResumePoint({ after: last, counts: { ...counts } } satisfies RangeProgress);
  }
  return counts;
}

/** Pages of one range activity in flight at a time. */
const PAGES_IN_FLIGHT = 2;

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
  const { db, targets, mapper, loadProvider } = deps;
  const writer = new LinkWriter(db);
  const rowSync = createRowSync({ db, mapper, lookUp: createBatchLookup() });

  /**
   * Runs `sync` over `rows` a page (the provider's page size) at a time, each page flushed and added to `counts`.
   * Two pages overlap: the next one starts while the last objects of the one before wait out their backoffs.
   */
  const inPages = async <R>(
    runId: string,
    provider: ProviderForSync,
    rows: readonly R[],
    counts: RunCounts,
    sync: (rec: BatchRecorder, page: R[]) => Promise<void>,
  ): Promise<void> => {
    const pages: R[][] = [];
    for (let start = 0; start < rows.length; start += provider.pageSize)
      pages.push(rows.slice(start, start + provider.pageSize));
    await eachConcurrently(pages, PAGES_IN_FLIGHT, async (page) => {
      const rec = new BatchRecorder(db, writer, runId, provider.id);
      try {
        await sync(rec, page);
      } finally {
        await rec.flush();
      }
      addCounts(counts, rec.counts);
    });
  };

  return {
    ...createRunLifecycleActivities(deps),
    ...createIncrementalPushActivities(deps, writer, rowSync, createChangeWaiter(db)),

    /**
     * Brings every in-scope user of a range to the target; one permanent failure never stops the others. Reads the
     * range in stretches, skips the users pushed from the same input without mapping them, syncs the rest in
     * batches of the provider's page size, and heartbeats a resume point after each stretch: a retry (a worker
     * killed mid-range) starts there, and the links in PostgreSQL make redoing the stretch in flight harmless.
     */
    async syncUserRange(input: { providerId: string; runId: string; range: IdRange }): Promise<RunCounts> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        const target = targets.get(provider, cancellation());
        return inStretches(
          input.range,
          stretchRows(provider.pageSize),
          (after, limit) => loadUsersInRange(db, provider.scope, after, input.range.last, limit),
          async (rows, counts) => {
            const ids = rows.map((row) => row.id);
            const [version, known] = await Promise.all([
              rowSync.inputVersion(provider),
              getLinks(db, provider.id, 'user', ids, { withPayload: false }),
            ]);
            const pending = rows.filter(
              (row) => !pushedFrom(known.get(row.id), version === null ? null : inputHash(version, row)),
            );
            const unchanged = new BatchRecorder(db, writer, input.runId, provider.id);
            unchanged.counts.processed = rows.length - pending.length;
            await unchanged.flush();
            addCounts(counts, unchanged.counts);
            await inPages(input.runId, provider, pending, counts, async (rec, page) => {
              const links = await getLinks(
                db,
                provider.id,
                'user',
                page.map((row) => row.id),
              );
              await rowSync.users(rec, provider, target, page, links);
            });
          },
        );
      });
    },

    /** Brings every in-scope group of a range (attributes and members) to the target, as `syncUserRange` users. */
    async syncGroupRange(input: { providerId: string; runId: string; range: IdRange }): Promise<RunCounts> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        const target = targets.get(provider, cancellation());
        return inStretches(
          input.range,
          stretchRows(provider.pageSize),
          (after, limit) => loadGroupsInRange(db, provider.scope, after, input.range.last, limit),
          async (rows, counts) => {
            await inPages(input.runId, provider, rows, counts, async (rec, page) => {
              const links = getLinks(
                db,
                provider.id,
                'group',
                page.map((row) => row.id),
              );
              await rowSync.groups(rec, provider, target, page, links);
            });
          },
        );
      });
    },

    /**
     * The run's retry pass, before it removes anything: sends the in-scope objects left retrying again (users, then
     * groups with the groups of users who appeared only now), each with a fresh budget, and returns the change to
     * the run's counters (nothing is processed twice; what finishes leaves `retrying`).
     */
    async retryUnfinished(input: { providerId: string; runId: string; groups: boolean }): Promise<RunCounts> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
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
        const appeared = userRec.events.filter((e) => e.action === 'create' || e.action === 'adopt');
        const retrying = await retryingIds(db, provider.id, 'group', RETRY_PASS_LIMIT);
        // The groups of users who appeared only now were synced without them: sent again for their members, and
        // counted once all the same (only a failure now is added).
        const related = (
          await groupsOfUsers(
            db,
            appeared.map((e) => e.localId),
          )
        ).filter((id) => !retrying.includes(id));
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
