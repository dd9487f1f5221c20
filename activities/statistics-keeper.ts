import { refreshSyncStatistics, type Db } from '../db/index.ts';

/** Least time between two checks of one worker: the check is one query, the ANALYZE it may run 0.1-0.3 s. */
const CHECK_INTERVAL_MS = 1000;

/**
 * Keeps the planner statistics of the sync's tables current while a sync writes them, for every range of a worker:
 * renews them when autovacuum's rule says they are stale (`refreshSyncStatistics`), at most one check at a time and
 * one a second. A provider's first sync writes its links after the statistics were taken, so PostgreSQL believes the
 * provider has none; every index on (provider_id, object_type, …) then costs one row, and the one it picks for a
 * page's links or a user's probe may walk all of the provider's links, a little longer with each page written.
 */
export function createStatisticsKeeper(db: Db, clock: () => number = () => performance.now()) {
  let checking: Promise<void> | undefined;
  let checkedAt = -Infinity;
  return {
    /** Renews the statistics if stale, unless a check is under way or was made less than a second ago. */
    refresh(): Promise<void> {
      if (checking !== undefined || clock() - checkedAt < CHECK_INTERVAL_MS) return checking ?? Promise.resolve();
      checkedAt = clock();
      checking = refreshSyncStatistics(db)
        .then(() => undefined)
        .finally(() => {
          checking = undefined;
        });
      return checking;
    },
  };
}

/** Renews the sync's planner statistics when stale; see {@link createStatisticsKeeper}. */
export type StatisticsKeeper = ReturnType<typeof createStatisticsKeeper>;
