import { pruneHistory, type Db, type PruneResult, type RetentionPolicy } from '../db/index.ts';
import { toApplicationFailure } from './failures.ts';

/** Builds the housekeeping activity: deletes history older than `retention`. */
export function createHousekeepingActivities(deps: { db: Db; retention: RetentionPolicy }) {
  return {
    /** Prunes the outbox and the run history; returns how much it deleted. */
    async pruneHistory(): Promise<PruneResult> {
      try {
        return await pruneHistory(deps.db, deps.retention);
      } catch (error) {
        throw toApplicationFailure(error);
      }
    },
  };
}

/** The housekeeping activity, as workflows see it (by type only). */
export type HousekeepingActivities = ReturnType<typeof createHousekeepingActivities>;
