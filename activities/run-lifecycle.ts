import {
  countInScope,
  createRun,
  dropQueuedChanges,
  dropTakenChanges,
  finishRun,
  inTransaction,
  lockOpenRuns,
  refreshSyncStatistics,
  releaseTakenChanges,
  scopeBoundaries,
  setRunTotal,
  startQueuedRun,
  type Db,
  type ObjectType,
  type ProviderForSync,
  type Queryable,
  type RunSummary,
} from '../db/index.ts';
import { withFailures } from './failures.ts';
import { cancellation, keptAlive } from './heartbeat.ts';
import type { FullSyncPlan, IdRange, PlannedRanges, SyncActivityDeps } from './sync-deps.ts';

/** Most objects one range activity owns at a target whose rate is not limited. */
const MAX_RANGE = 25_000;
/** Seconds of requests a range holds at most at a rate-limited target: half of a range's 2-hour start-to-close. */
const RANGE_SECONDS_AT_LIMIT = 3600;

/**
 * Most objects one range activity of a provider owns: {@link MAX_RANGE}, or, at a target whose rate is limited (the
 * provider's budget, else the vendor's documented limits), about an hour of the range's share of that rate (one
 * request an object), and at least a page.
 *
 * Larger ranges run a large directory in fewer rounds, and every round's end cost the target's slots about 0.55 s
 * (scale bench, 100,000 users, 20 ms late: the eight ranges of a round end together, then the next eight are planned,
 * wait for the statistics and ramp up). At 5,000 objects, 100,000 users ran as three rounds; now they are one.
 */
export function mostPerRange(
  rateLimit: { requestsPerSecond: number } | null | undefined,
  concurrency: number,
  pageSize: number,
): number {
  if (!rateLimit) return MAX_RANGE;
  const share = (rateLimit.requestsPerSecond * RANGE_SECONDS_AT_LIMIT) / concurrency;
  return Math.max(pageSize, Math.min(MAX_RANGE, Math.floor(share)));
}

/** Closes a full-sync run with its final status and returns its counters (see `finishFullSync`). */
export async function finishFullSyncRun(
  db: Queryable,
  runId: string,
  status: 'succeeded' | 'failed' | 'cancelled',
  error: Record<string, unknown> | null,
): Promise<RunSummary> {
  const summary = await finishRun(db, runId, status, error);
  await dropTakenChanges(db, runId);
  return summary;
}

/** Why {@link closeAbandonedRuns} closed a run. */
const ABANDONED = {
  code: 'ERR_RUN_ABANDONED',
  message:
    'the workflow running this run ended, or could not start, before the run did (terminated or timed out in Temporal, say): nothing more is sent for it, and the changes it had taken wait for the next push',
} as const;

/**
 * Closes the runs of a provider that a workflow left open, having ended without closing them (terminated in the
 * Temporal UI, say): `cancelled` with ERR_RUN_ABANDONED, and the changes a push among them had taken queued again
 * (taken, they waited for a run that would never end them). Only `runId`, when given. Returns how many it closed.
 */
export async function closeAbandonedRuns(db: Db, providerId: string, runId: string | null): Promise<number> {
  return inTransaction(db, async (client) => {
    const open = await lockOpenRuns(client, providerId, runId);
    for (const id of open) {
      await finishRun(client, id, 'cancelled', ABANDONED);
      await releaseTakenChanges(client, providerId, id);
    }
    return open.length;
  });
}

/** Builds the activities that open, plan and close a full-sync run. */
export function createRunLifecycleActivities(deps: SyncActivityDeps) {
  const { db, targets, mapper, loadProvider } = deps;

  /** Up to `count` ranges of `rangeSize` in-scope ids of a type, after `after`. */
  async function rangesAfter(
    provider: ProviderForSync,
    objectType: ObjectType,
    after: string | null,
    rangeSize: number,
    count: number,
  ): Promise<PlannedRanges> {
    const { ids, more } = await scopeBoundaries(db, provider.scope, objectType, after, rangeSize, count);
    const ranges: IdRange[] = [];
    let from = after;
    for (const last of ids) {
      ranges.push({ after: from, last });
      from = last;
    }
    return { ranges, next: more ? from : null };
  }

  return {
    /**
     * Opens a run row for a provider; used by whoever starts a full sync. `queued`: it waits for the full sync under
     * way, and `beginFullSync` marks it running.
     */
    async openFullSyncRun(input: { providerId: string; workflowId: string | null; queued?: boolean }): Promise<string> {
      return withFailures(() =>
        createRun(db, input.providerId, 'full', input.workflowId, input.queued ? 'queued' : 'running'),
      );
    },

    /**
     * Discovers the target, counts the scope, and tells the workflow how to split the work, with the first ranges of
     * each phase: planned here, the groups' first requests need no planning activity once the last users' range ends
     * (it took 0.15-0.35 s there, with its ANALYZE, and nothing was sent meanwhile: scale bench, target 20 ms late).
     * The planner statistics the users' reads need are renewed beside the discovery, if stale (`refreshSyncStatistics`);
     * the groups' ranges renew them again beside their reads, after the users' links were written.
     */
    async beginFullSync(input: { providerId: string; runId: string }): Promise<FullSyncPlan> {
      return withFailures(() =>
        keptAlive(async () => {
          const provider = await loadProvider(input.providerId);
          // Readied beside the planning: the first users' batch waited 40-65 ms for the provider's isolate and compiled
          // mappings. This worker runs some of the first ranges, as a rule; a failure is reported by their batches.
          mapper.prepare?.(provider, 'user').catch(() => undefined);
          const { plugin, ctx } = targets.get(provider, cancellation());
          // Discovery (a request or two to the target) and the reads of the directory overlap.
          const [capabilities, scope] = await Promise.all([
            plugin.capabilities(ctx),
            countInScope(db, provider.scope),
            refreshSyncStatistics(db),
            startQueuedRun(db, input.runId),
          ]);
          // Every change queued so far is in the directory this run is about to read; a target that failed discovery
          // keeps them queued for the pushes.
          await dropQueuedChanges(db, provider.id);
          const total = scope.users + (capabilities.groups ? scope.groups : 0);
          await setRunTotal(db, input.runId, total);
          // Whole rounds of `concurrency` ranges: 100,000 users in ranges of 5,000 at concurrency 8 ran 8, 8, then 4
          // ranges at once, half the target's slots idle through the last third. A range holds at least half a page, not
          // a whole one: 500 groups in ranges of a page (100) ran 5 ranges at concurrency 8, 24 of 64 slots idle. A
          // directory of one page is one range.
          const most = mostPerRange(provider.rateLimit ?? plugin.rateLimits, provider.concurrency, provider.pageSize);
          const rangeSize = (count: number): number => {
            const rounds = Math.max(1, Math.ceil(count / (provider.concurrency * most)));
            const least = count <= provider.pageSize ? provider.pageSize : Math.ceil(provider.pageSize / 2);
            return Math.max(least, Math.ceil(count / (provider.concurrency * rounds)));
          };
          const rangeSizes = { user: rangeSize(scope.users), group: rangeSize(scope.groups) };
          const [user, group] = await Promise.all([
            rangesAfter(provider, 'user', null, rangeSizes.user, provider.concurrency),
            capabilities.groups
              ? rangesAfter(provider, 'group', null, rangeSizes.group, provider.concurrency)
              : undefined,
          ]);
          return {
            slug: provider.slug,
            pageSize: provider.pageSize,
            concurrency: provider.concurrency,
            groups: capabilities.groups,
            total,
            rangeSizes,
            first: group === undefined ? { user } : { user, group },
          };
        }),
      );
    },

    /**
     * Splits the next stretch of in-scope ids into up to `ranges` ranges of `rangeSize`; `next` is null at the end. At
     * the users phase's start (runs planned by older code), first renews the planner statistics its reads need, if
     * stale (`refreshSyncStatistics`); the groups' ranges renew them themselves (see `createRangeSync`).
     */
    async planRanges(input: {
      providerId: string;
      objectType: ObjectType;
      after: string | null;
      rangeSize: number;
      ranges: number;
    }): Promise<PlannedRanges> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        if (input.after === null && input.objectType === 'user') await refreshSyncStatistics(db);
        return rangesAfter(provider, input.objectType, input.after, input.rangeSize, input.ranges);
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
      return withFailures(() => finishFullSyncRun(db, input.runId, input.status, input.error));
    },

    /** Closes a provider's runs left open by a workflow that ended first (see {@link closeAbandonedRuns}). */
    async closeAbandonedRuns(input: { providerId: string; runId?: string }): Promise<number> {
      return withFailures(() => closeAbandonedRuns(db, input.providerId, input.runId ?? null));
    },
  };
}
