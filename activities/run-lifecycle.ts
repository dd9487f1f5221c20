import {
  countInScope,
  createRun,
  dropQueuedChanges,
  dropTakenChanges,
  finishRun,
  refreshSyncStatistics,
  scopeBoundaries,
  setRunTotal,
  type ObjectType,
  type RunSummary,
} from '../db/index.ts';
import { withFailures } from './failures.ts';
import { cancellation } from './heartbeat.ts';
import type { FullSyncPlan, IdRange, SyncActivityDeps } from './sync-deps.ts';

/** Most objects one range activity owns. */
const MAX_RANGE = 5000;

/** Builds the activities that open, plan and close a full-sync run. */
export function createRunLifecycleActivities(deps: SyncActivityDeps) {
  const { db, targets, loadProvider } = deps;
  return {
    /** Opens a run row for a provider; used by whoever starts a full sync. */
    async openFullSyncRun(input: { providerId: string; workflowId: string | null }): Promise<string> {
      return withFailures(() => createRun(db, input.providerId, 'full', input.workflowId));
    },

    /** Discovers the target, counts the scope, and tells the workflow how to split the work. */
    async beginFullSync(input: { providerId: string; runId: string }): Promise<FullSyncPlan> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        const { plugin, ctx } = targets.get(provider, cancellation());
        const capabilities = await plugin.capabilities(ctx);
        // Every change queued so far is in the directory this run is about to read.
        await dropQueuedChanges(db, provider.id);
        const scope = await countInScope(db, provider.scope);
        const total = scope.users + (capabilities.groups ? scope.groups : 0);
        await setRunTotal(db, input.runId, total);
        // Whole rounds of `concurrency` ranges: 100,000 users in ranges of 5,000 at concurrency 8 ran 8, 8, then 4
        // ranges at once, half the target's slots idle through the last third. A range holds at least half a page, not
        // a whole one: 500 groups in ranges of a page (100) ran 5 ranges at concurrency 8, 24 of 64 slots idle. A
        // directory of one page is one range.
        const rangeSize = (count: number): number => {
          const rounds = Math.max(1, Math.ceil(count / (provider.concurrency * MAX_RANGE)));
          const least = count <= provider.pageSize ? provider.pageSize : Math.ceil(provider.pageSize / 2);
          return Math.max(least, Math.ceil(count / (provider.concurrency * rounds)));
        };
        return {
          slug: provider.slug,
          pageSize: provider.pageSize,
          concurrency: provider.concurrency,
          groups: capabilities.groups,
          total,
          rangeSizes: { user: rangeSize(scope.users), group: rangeSize(scope.groups) },
        };
      });
    },

    /**
     * Splits the next stretch of in-scope ids into up to `ranges` ranges of `rangeSize`; `next` is null at the end. At
     * the users phase's start, first renews the planner statistics its reads need, if stale (`refreshSyncStatistics`).
     * The groups phase is planned as the users phase starts, before the users' links are written: its ranges renew the
     * statistics themselves (see `createRangeSync`).
     */
    async planRanges(input: {
      providerId: string;
      objectType: ObjectType;
      after: string | null;
      rangeSize: number;
      ranges: number;
    }): Promise<{ ranges: IdRange[]; next: string | null }> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        if (input.after === null && input.objectType === 'user') await refreshSyncStatistics(db);
        const { ids, more } = await scopeBoundaries(
          db,
          provider.scope,
          input.objectType,
          input.after,
          input.rangeSize,
          input.ranges,
        );
        const ranges: IdRange[] = [];
        let after = input.after;
        for (const last of ids) {
          ranges.push({ after, last });
          after = last;
        }
        return { ranges, next: more ? after : null };
      });
    },

    /**
     * Closes the run with its final status and returns its counters. The queued changes a push that failed or gave way
     * had taken are dropped with it, as its ids were: the next full sync brings them (a change after it, the next push).
     */
    async finishFullSync(input: {
      runId: string;
      status: 'succeeded' | 'failed' | 'cancelled';
      error: Record<string, unknown> | null;
    }): Promise<RunSummary> {
      return withFailures(async () => {
        const summary = await finishRun(db, input.runId, input.status, input.error);
        await dropTakenChanges(db, input.runId);
        return summary;
      });
    },
  };
}
