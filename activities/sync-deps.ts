import type { Db, ProviderForSync } from '../db/index.ts';
import type { PayloadMapper } from './mapper.ts';
import type { TargetPool } from './targets.ts';

/** What the sync activities are built from. */
export interface SyncActivityDeps {
  db: Db;
  targets: TargetPool;
  mapper: PayloadMapper;
  /** Loads a provider with its secret decrypted (worker side only). */
  loadProvider: (providerId: string) => Promise<ProviderForSync>;
  /** Aborts when the worker starts shutting down: an activity that only waits for changes then ends at once. */
  stopping?: AbortSignal;
}

/** A half-open keyset range of directory ids: `after < id <= last`. */
export interface IdRange {
  after: string | null;
  last: string;
}

/** What a full sync needs to know to plan itself; ids and numbers only, never objects or secrets. */
export interface FullSyncPlan {
  slug: string;
  pageSize: number;
  concurrency: number;
  groups: boolean;
  total: number;
  /**
   * Objects per range activity, by type: large, so that scheduling is paid per thousands of objects, but at least
   * `concurrency` ranges when there are enough objects. Absent in plans made by older code: `pageSize` then.
   */
  rangeSizes?: { user: number; group: number };
  /**
   * The first ranges of each phase (as `planRanges` gives them), planned with the run: the users' and the groups'
   * first requests wait for no planning activity. Absent in plans made by older code: each phase plans its own.
   */
  first?: { user: PlannedRanges; group?: PlannedRanges };
}

/** Ranges of one object type in id order, and the id to plan the next ones after (null: none are left). */
export interface PlannedRanges {
  ranges: IdRange[];
  next: string | null;
}
