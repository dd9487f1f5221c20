import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  continueAsNew,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { DeletionGuardActivities, FullSyncActivities, FullSyncPlan, IdRange } from '../activities/index.ts';
import { NON_RETRYABLE_CODES } from '../errors/index.ts';
import { databaseProfile } from './activity-profiles.ts';

/** Counters a full sync reports. */
export interface FullSyncCounts {
  processed: number;
  created: number;
  updated: number;
  deleted: number;
  skipped: number;
  failed: number;
  /** Objects left retrying (transient failures outlasted their budget); absent in runs started by older code. */
  retrying?: number;
}

type Phase = 'users' | 'groups' | 'deprovision-users' | 'deprovision-groups';

/** Input of `fullSync`: ids only. `resume` is what a continued-as-new run carries over. */
export interface FullSyncInput {
  providerId: string;
  runId: string;
  /** A person allowed this run to remove more objects than the provider's deletion limit. */
  allowDeletions?: boolean | undefined;
  resume?: { plan: FullSyncPlan; phase: Phase; after: string | null; counts: FullSyncCounts; queued?: IdRange[] };
}

/** What a finished full sync returns: the run's counters as stored. */
export interface FullSyncReport extends FullSyncCounts {
  runId: string;
  status: 'succeeded';
  total: number;
  unchanged: number;
}

// A range activity talks to the target for up to thousands of objects (a slow or rate-limited target can take long);
// heartbeats catch a dead worker fast, and a retry resumes from the last heartbeat's resume point. These activities
// heartbeat every 5 s while they make progress (`keptAlive`): a SIGKILLed worker's ranges went on elsewhere after the
// timeout, a minute, and now after 20 s (the worker sends what they record within 2 s: `maxHeartbeatThrottleInterval`).
const vendorCallProfile: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '20 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '2 minutes',
    maximumAttempts: 12,
    nonRetryableErrorTypes: [...NON_RETRYABLE_CODES],
  },
};

const vendor = proxyActivities<FullSyncActivities>(vendorCallProfile);
const database = proxyActivities<FullSyncActivities & DeletionGuardActivities>(databaseProfile);

const PHASE_LABEL: Record<Phase, string> = {
  users: 'Users',
  groups: 'Groups and memberships',
  'deprovision-users': 'Deprovisioning users',
  'deprovision-groups': 'Deprovisioning groups',
};

function add(into: FullSyncCounts, more: FullSyncCounts): void {
  into.processed += more.processed;
  into.created += more.created;
  into.updated += more.updated;
  into.deleted += more.deleted;
  into.skipped += more.skipped;
  into.failed += more.failed;
  into.retrying = (into.retrying ?? 0) + (more.retrying ?? 0);
}

function showProgress(phase: Phase, plan: FullSyncPlan, counts: FullSyncCounts, label = PHASE_LABEL[phase]): void {
  setCurrentDetails(
    `**${label}** — ${counts.processed} / ${plan.total} objects\n\n` +
      `created ${counts.created} · updated ${counts.updated} · deleted ${counts.deleted} · ` +
      `skipped ${counts.skipped} · failed ${counts.failed} · retrying ${counts.retrying ?? 0}`,
  );
}

/** The failure behind an activity failure, as `{ code, message }` (codes, never message parsing). */
export function failureRecord(error: unknown): { code: string; message: string } {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  if (cause instanceof ApplicationFailure) return { code: cause.type ?? 'ERR_INTERNAL', message: cause.message };
  if (cause instanceof Error) return { code: 'ERR_INTERNAL', message: cause.message };
  return { code: 'ERR_INTERNAL', message: String(cause) };
}

/**
 * Full sync of one provider: users, then groups with their members, then deprovisioning of what left scope.
 * Pages the directory by keyset and runs `concurrency` batch activities at a time; continues as new when the
 * history grows, carrying only the cursor and counters.
 */
export async function fullSync(input: FullSyncInput): Promise<FullSyncReport> {
  const { providerId, runId } = input;
  try {
    const plan = input.resume?.plan ?? (await vendor.beginFullSync({ providerId, runId }));
    const counts: FullSyncCounts = input.resume?.counts ?? {
      processed: 0,
      created: 0,
      updated: 0,
      deleted: 0,
      skipped: 0,
      failed: 0,
      retrying: 0,
    };
    const phases: Phase[] = plan.groups
      ? ['users', 'groups', 'deprovision-users', 'deprovision-groups']
      : ['users', 'deprovision-users'];
    let after = input.resume?.after ?? null;
    // How many links of each type are out of scope, once `prepareRemovals` has counted them.
    let outOfScope: Record<'user' | 'group', number> | null = null;
    // The run's counters as stored, when `prepareRemovals` closed it (it does when nothing is out of scope).
    let closed: Awaited<ReturnType<FullSyncActivities['prepareRemovals']>>['finished'];
    for (let p = Math.max(phases.indexOf(input.resume?.phase ?? 'users'), 0); p < phases.length; p += 1) {
      const phase = phases[p]!;
      showProgress(phase, plan, counts);
      if (phase === 'users' || phase === 'groups') {
        const objectType = phase === 'users' ? 'user' : 'group';
        // A sliding window: a new batch starts as soon as any of the `concurrency` running ones ends, so one slow
        // batch never idles the others.
        const queue: IdRange[] = [...(input.resume?.phase === phase ? (input.resume.queued ?? []) : [])];
        const running = new Set<Promise<void>>();
        let exhausted = input.resume?.phase === phase && input.resume.after === null && queue.length > 0;
        // The phase's first ranges, planned with the run (a run continued as new has its own queue).
        const first = input.resume === undefined ? plan.first?.[objectType] : undefined;
        if (first) {
          queue.push(...first.ranges);
          after = first.next;
          exhausted = first.next === null;
        }
        for (;;) {
          const draining = workflowInfo().continueAsNewSuggested;
          while (!draining && running.size < plan.concurrency) {
            if (queue.length === 0 && !exhausted) {
              const page = await database.planRanges({
                providerId,
                objectType,
                after,
                rangeSize: plan.rangeSizes?.[objectType] ?? plan.pageSize,
                ranges: plan.concurrency,
              });
              queue.push(...page.ranges);
              after = page.next;
              exhausted = page.next === null;
            }
            const range = queue.shift();
            if (!range) break;
            const batch: Promise<void> = (
              phase === 'users'
                ? vendor.syncUserRange({ providerId, runId, range })
                : vendor.syncGroupRange({ providerId, runId, range })
            ).then((result) => {
              add(counts, result);
              running.delete(batch);
              showProgress(phase, plan, counts);
            });
            running.add(batch);
          }
          if (running.size === 0) {
            if (draining && (queue.length > 0 || !exhausted)) {
              await continueAsNew<typeof fullSync>({ ...input, resume: { plan, phase, after, counts, queued: queue } });
            }
            break;
          }
          await Promise.race(running);
        }
        after = null;
        continue;
      }
      if (phase === 'deprovision-users' && input.resume?.phase !== phase) {
        const allowDeletions = input.allowDeletions ?? false;
        if (patched('removals-prepared-at-once')) {
          // The retry pass, the guard and what is out of scope, in one activity (one round trip, not four).
          showProgress(phase, plan, counts, 'Retrying what transient failures left unfinished');
          const prepared = await vendor.prepareRemovals({ providerId, runId, groups: plan.groups, allowDeletions });
          add(counts, prepared.counts);
          outOfScope = prepared.outOfScope;
          closed = prepared.finished;
        } else {
          // The run's retry pass: what transient failures left retrying goes once more before the run ends.
          if (patched('retry-pass')) {
            showProgress(phase, plan, counts, 'Retrying what transient failures left unfinished');
            add(counts, await vendor.retryUnfinished({ providerId, runId, groups: plan.groups }));
          }
          // Checked once, before anything is removed; a run resumed mid-removal passed it already.
          await database.checkDeletionGuard({ providerId, allowDeletions });
        }
      }
      // A type with nothing out of scope needs no page (unknown in a run resumed mid-removal: it pages).
      if (outOfScope?.[phase === 'deprovision-users' ? 'user' : 'group'] === 0) continue;
      do {
        if (workflowInfo().continueAsNewSuggested) {
          await continueAsNew<typeof fullSync>({ ...input, resume: { plan, phase, after, counts } });
        }
        const page = await vendor.deprovisionPage({
          providerId,
          runId,
          objectType: phase === 'deprovision-users' ? 'user' : 'group',
          after,
          limit: plan.pageSize,
        });
        add(counts, page.counts);
        after = page.next;
        showProgress(phase, plan, counts);
      } while (after !== null);
      after = null;
    }
    const s = closed ?? (await database.finishFullSync({ runId, status: 'succeeded', error: null }));
    return {
      runId,
      status: 'succeeded',
      total: s.total,
      processed: s.processed,
      created: s.created,
      updated: s.updated,
      deleted: s.deleted,
      skipped: s.skipped,
      failed: s.failed,
      retrying: s.retrying,
      unchanged: s.unchanged,
    };
  } catch (error) {
    if (error instanceof ContinueAsNew) throw error;
    if (isCancellation(error)) {
      await CancellationScope.nonCancellable(() =>
        database.finishFullSync({ runId, status: 'cancelled', error: null }),
      );
      throw error;
    }
    const record = failureRecord(error);
    // A provider disabled meanwhile stopped the run: someone ended it, nothing failed.
    const stopped = record.code === 'ERR_PROVIDER_DISABLED';
    await database.finishFullSync({ runId, status: stopped ? 'cancelled' : 'failed', error: record });
    setCurrentDetails(`**${stopped ? 'Stopped' : 'Failed'}** — ${record.code}: ${record.message}`);
    throw ApplicationFailure.nonRetryable(record.message, record.code);
  }
}
