import {
  addCounts,
  dropTakenChanges,
  existingGroupIds,
  finishIncrementalRun,
  getLinks,
  groupsOfUsers,
  loadGroupsByIds,
  loadUsersByIds,
  openIncrementalRun,
  queuedChanges,
  restartIncrementalRun,
  retryingIds,
  saveLinks,
  takeChanges,
  type Link,
  type RunCounts,
} from '../db/index.ts';
import type { ScimflowError } from '../errors/index.ts';
import { BatchRecorder, type LinkWriter } from './batch-recorder.ts';
import type { ChangeWaiter } from './change-waiter.ts';
import { deletionsHeld } from './deletion-guard.ts';
import { deprovisionOne, removalReason } from './deprovision.ts';
import { withFailures } from './failures.ts';
import { beat, cancellation, heartbeating } from './heartbeat.ts';
import type { SyncActivityDeps } from './sync-deps.ts';
import type { RowSync } from './sync-rows.ts';

/** Most objects of each type left retrying by earlier runs that one push sends again. */
const RETRY_WITH_PUSH = 100;

/** How often a waiting activity looks at the queue even without a notification (one may be lost). */
const QUEUE_POLL_MS = 1000;

/** What a push returns: its counters, and how many changes wait for the provider after it (up to a cap). */
export type PushCounts = RunCounts & { queued?: number };

/**
 * Builds the incremental-push activities: pushing changed objects (given, and taken from the provider's queue),
 * waiting for changes to be queued, and the provider workflow's batching window.
 */
export function createIncrementalPushActivities(
  deps: SyncActivityDeps,
  writer: LinkWriter,
  rowSync: RowSync,
  waiter: ChangeWaiter,
) {
  const { db, targets, loadProvider } = deps;
  return {
    /**
     * Waits up to `waitMs` for changes queued for the provider (heartbeating: a full sync asked for meanwhile cancels
     * the wait) and returns how many wait, counted up to `cap`; 0 when the time is up with none.
     */
    async awaitChanges(input: { providerId: string; waitMs: number; cap: number }): Promise<{ queued: number }> {
      return withFailures(async () => {
        const deadline = Date.now() + input.waitMs;
        const signal = cancellation();
        // A wait also ends when the worker starts stopping (the SDK cancels activities only after its grace time).
        const either = [signal, deps.stopping].filter((s) => s !== undefined);
        const waitSignal = either.length > 1 ? AbortSignal.any(either) : either[0];
        for (;;) {
          const wait = await waiter.subscribe(
            input.providerId,
            Math.max(0, Math.min(QUEUE_POLL_MS, deadline - Date.now())),
            waitSignal,
          );
          try {
            const queued = await queuedChanges(db, input.providerId, input.cap);
            // A shutting-down worker is not held by a wait (its grace time is for work): the next wait runs elsewhere.
            if (queued > 0 || Date.now() >= deadline || deps.stopping?.aborted) return { queued };
            beat();
            await wait.woken;
          } finally {
            wait.stop();
          }
          signal?.throwIfAborted();
        }
      });
    },

    /**
     * Pushes the current state of the given users and groups (an incremental batch), recorded as run `runId` of
     * kind `incremental`: in-scope objects are created or updated, objects that left scope or were deleted are
     * deprovisioned per the provider's mode. Users are written before groups (so new members exist), and users
     * leave only after their groups dropped them; groups of users who appeared or left are re-sent too.
     */
    async pushChanges(input: {
      providerId: string;
      runId: string;
      workflowId: string;
      userIds: string[];
      groupIds: string[];
      /** Also take up to this many changes queued for the provider (a retried attempt takes the same ones again). */
      take?: number;
      /** Count the changes still queued afterwards up to this (returned as `queued`). */
      queuedCap?: number;
    }): Promise<PushCounts> {
      // Heartbeating all along: a push cancelled for a full sync stops at once, even in the middle of a slow request.
      return withFailures(() =>
        heartbeating(async () => {
          const provider = await loadProvider(input.providerId);
          await openIncrementalRun(db, input.runId, provider.id, input.workflowId);
          // A retried attempt pushes again what the earlier ones got to, and counts it once, afresh.
          const earlier = await restartIncrementalRun(db, input.runId);
          const taken = input.take
            ? await takeChanges(db, provider.id, input.runId, input.take)
            : { userIds: [], groupIds: [] };
          const target = targets.get(provider, cancellation());
          // Checked once, at the first removal: above the deletion limit every removal of this batch is held back
          // (recorded as skipped, the run failed) until a full sync is allowed to make them.
          let guard: Promise<ScimflowError | null> | undefined;
          const removeOrHold = async (rec: BatchRecorder, link: Link): Promise<void> => {
            guard ??= deletionsHeld(db, provider, false);
            const held = await guard;
            if (!held) return deprovisionOne(rec, provider, target.forObject(), link, removalReason(link));
            rec.event(link.objectType, link.localId, 'skip', { reason: 'deletion guard', remoteId: link.remoteId });
            rec.counts.skipped += 1;
          };
          // Objects an earlier run left retrying go again with this push, not only with the next full sync.
          const [retryingUsers, retryingGroups] = await Promise.all([
            retryingIds(db, provider.id, 'user', RETRY_WITH_PUSH),
            retryingIds(db, provider.id, 'group', RETRY_WITH_PUSH),
          ]);
          const userIds = [
            ...new Set([...input.userIds, ...taken.userIds, ...retryingUsers, ...earlier.userIds]),
          ].sort();
          const rows = await loadUsersByIds(db, provider.scope, userIds);
          const userLinks = await getLinks(db, provider.id, 'user', userIds);
          const userRec = new BatchRecorder(db, writer, input.runId, provider.id);
          try {
            await rowSync.users(userRec, provider, target, rows, userLinks);
          } finally {
            // Flushed before the groups so the links of users adopted just now count as members.
            await userRec.flush();
          }
          const inScope = new Set(rows.map((row) => row.id));
          const leaving = userIds.flatMap((id) => {
            const link = userLinks.get(id);
            return !inScope.has(id) && link && link.status !== 'deactivated' ? [link] : [];
          });
          // Users a mapping now skips leave like users out of scope: after their groups, through the guard.
          leaving.push(...userRec.removalsBySkip);
          const counts = { ...userRec.counts };
          const { groups: withGroups } = await target.plugin.capabilities(target.ctx);
          if (withGroups) {
            const related = await groupsOfUsers(db, [...userRec.appeared(), ...leaving.map((link) => link.localId)]);
            const groupIds = [
              ...new Set([...input.groupIds, ...taken.groupIds, ...retryingGroups, ...earlier.groupIds, ...related]),
            ].sort();
            const groupRows = await loadGroupsByIds(db, provider.scope, groupIds);
            const linksOfGroups = getLinks(db, provider.id, 'group', groupIds);
            const groupRec = new BatchRecorder(db, writer, input.runId, provider.id);
            try {
              await rowSync.groups(groupRec, provider, target, groupRows, linksOfGroups);
              const groupLinks = await linksOfGroups;
              const groupsInScope = new Set(groupRows.map((row) => row.id));
              // A group outside the filter stays on the target as last synced unless the provider says otherwise;
              // one deleted from the directory goes.
              const outOfScope = groupIds.flatMap((id) => {
                const link = groupsInScope.has(id) ? undefined : groupLinks.get(id);
                return link ? [link] : [];
              });
              // Their marks are written before the guard may count what is pending (the batch is flushed only later).
              const skipped = groupRec.removalsBySkip;
              await saveLinks(db, skipped);
              const kept = new Set(
                provider.scope.removeGroupsLeavingFilter
                  ? []
                  : await existingGroupIds(
                      db,
                      outOfScope.map((link) => link.localId),
                    ),
              );
              for (const link of outOfScope) if (!kept.has(link.localId)) await removeOrHold(groupRec, link);
              for (const link of skipped) await removeOrHold(groupRec, link);
            } finally {
              await groupRec.flush();
            }
            addCounts(counts, groupRec.counts);
          }
          const leaveRec = new BatchRecorder(db, writer, input.runId, provider.id);
          try {
            for (const link of leaving) {
              beat();
              await removeOrHold(leaveRec, link);
            }
          } finally {
            await leaveRec.flush();
          }
          addCounts(counts, leaveRec.counts);
          const held = guard ? await guard : null;
          // A push that touched nothing of the provider (changes outside its scope) leaves no run behind.
          await finishIncrementalRun(db, input.runId, held ? 'failed' : 'succeeded', held ? held.toJSON() : null);
          if (input.take === undefined) return counts;
          await dropTakenChanges(db, input.runId);
          return { ...counts, queued: await queuedChanges(db, provider.id, input.queuedCap ?? 1) };
        }),
      );
    },

    /**
     * Waits `ms` (run as a local activity): the provider workflow's batching window. Server timers fire up to a
     * second late, which would put a floor under incremental latency; a local wait is as precise as the worker's clock.
     */
    async holdOff(ms: number): Promise<void> {
      await new Promise((resolve) => setTimeout(resolve, ms));
    },
  };
}
