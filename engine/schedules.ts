import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  WorkflowNotFoundError,
  type Client,
  type ScheduleOptionsAction,
} from '@temporalio/client';
import { listProviders, type Db, type ProviderView } from '../db/index.ts';
import {
  fullSyncWantedSignal,
  housekeeping,
  providerSync,
  providerSyncWorkflowId,
  SCIM_PROVIDER,
  scheduledFullSync,
  type ProviderSyncInput,
  type ScheduledFullSyncInput,
} from '../workflows/index.ts';

/** Temporal Schedule id of a provider's periodic full sync. */
export function fullSyncScheduleId(slug: string): string {
  return `full-sync-schedule:${slug}`;
}

/** A stable offset in [0, interval) per provider, so hourly syncs of many providers do not all start at :00. */
export function scheduleOffsetMs(slug: string, intervalMs: number): number {
  // A digest, not a short multiplicative hash: slugs that differ only in a last digit must still land far apart.
  const hash = createHash('sha256').update(slug).digest().readUInt32BE(0);
  return Math.floor((hash / 2 ** 32) * (intervalMs / 1000)) * 1000;
}

/** Options of the provider workflow start, shared by the relay, the schedules and manual requests. */
export function providerSyncStartOptions(
  provider: Pick<ProviderView, 'id' | 'slug'>,
  taskQueue: string,
  flush?: ProviderSyncInput['flush'],
) {
  return {
    taskQueue,
    workflowId: providerSyncWorkflowId(provider.slug),
    args: [{ providerId: provider.id, slug: provider.slug, ...(flush ? { flush } : {}) }] as [ProviderSyncInput],
    typedSearchAttributes: [{ key: SCIM_PROVIDER, value: provider.slug }],
    staticSummary: `Sync writer of provider ${provider.slug}`,
  };
}

/** Creates, updates, pauses or deletes the Schedules that ask for periodic full syncs. */
export interface ScheduleManager {
  /**
   * Creates or updates the provider's schedule, paused while the provider is disabled; a new schedule of an enabled
   * provider, or a paused one whose provider is enabled again, also starts a full sync at once.
   */
  upsert(provider: ProviderView): Promise<void>;
  /** Deletes the provider's schedule and ends its sync workflow; either one missing is fine. */
  remove(provider: Pick<ProviderView, 'slug'>): Promise<void>;
}

/** A provider's full-sync interval in milliseconds, from its `fullSyncIntervalMinutes`. */
export function fullSyncIntervalMs(provider: Pick<ProviderView, 'fullSyncIntervalMinutes'>): number {
  return provider.fullSyncIntervalMinutes * 60_000;
}

/** Builds the schedule manager: each schedule runs every `fullSyncIntervalMinutes`, at the provider's own offset. */
export function createScheduleManager(deps: { client: Client; taskQueue: string }): ScheduleManager {
  const { client, taskQueue } = deps;
  const describe = (provider: ProviderView) => {
    const every = fullSyncIntervalMs(provider);
    const action: ScheduleOptionsAction = {
      type: 'startWorkflow',
      workflowType: scheduledFullSync,
      workflowId: `scheduled-full-sync:${provider.slug}`,
      taskQueue,
      args: [{ providerId: provider.id, slug: provider.slug } satisfies ScheduledFullSyncInput],
      typedSearchAttributes: [{ key: SCIM_PROVIDER, value: provider.slug }],
    };
    return {
      spec: { intervals: [{ every, offset: scheduleOffsetMs(provider.slug, every) }] },
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
    };
  };
  return {
    async upsert(provider) {
      const scheduleId = fullSyncScheduleId(provider.slug);
      const wanted = describe(provider);
      const note = provider.enabled ? 'provider enabled' : 'provider disabled';
      const handle = client.schedule.getHandle(scheduleId);
      let wasPaused: boolean;
      try {
        wasPaused = (await handle.describe()).state.paused;
      } catch (error) {
        if (!(error instanceof ScheduleNotFoundError)) throw error;
        // A new provider (or one written without the API) syncs at once, not an interval later.
        await client.schedule.create({
          scheduleId,
          ...wanted,
          typedSearchAttributes: [{ key: SCIM_PROVIDER, value: provider.slug }],
          state: { paused: !provider.enabled, note, triggerImmediately: provider.enabled },
        });
        return;
      }
      // Changes made while a provider was disabled never reached it: enabling it runs a full sync at once. Triggered
      // while still paused (a manual action runs anyway), so if unpausing fails, the next upsert triggers again.
      if (wasPaused && provider.enabled) await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
      await handle.update((previous) => ({
        ...previous,
        ...wanted,
        state: { ...previous.state, paused: !provider.enabled, note },
      }));
    },
    async remove(provider) {
      try {
        await client.schedule.getHandle(fullSyncScheduleId(provider.slug)).delete();
      } catch (error) {
        if (!(error instanceof ScheduleNotFoundError)) throw error;
      }
      try {
        await client.workflow.getHandle(providerSyncWorkflowId(provider.slug)).terminate('provider deleted');
      } catch (error) {
        if (!(error instanceof WorkflowNotFoundError)) throw error;
      }
    },
  };
}

const SCHEDULE_PREFIX = fullSyncScheduleId('');

/**
 * Makes Temporal match the database, at startup: every provider gets its schedule (created, updated or paused; an
 * enabled provider whose schedule is new or was paused also gets a full sync at once, see `upsert`),
 * and the schedule and workflow of a provider that is gone (deleted while Temporal was down, or by SQL) are
 * removed, so nothing keeps syncing to an endpoint nobody configures any more. Only schedules that start work on
 * this task queue are touched: other deployments may share the namespace.
 */
export async function reconcileSchedules(deps: {
  client: Client;
  db: Db;
  taskQueue: string;
}): Promise<{ upserted: number; removed: number }> {
  const manager = createScheduleManager(deps);
  const providers = await listProviders(deps.db);
  for (const provider of providers) await manager.upsert(provider);
  const known = new Set(providers.map((provider) => provider.slug));
  let removed = 0;
  for await (const summary of deps.client.schedule.list()) {
    if (!summary.scheduleId.startsWith(SCHEDULE_PREFIX)) continue;
    const slug = summary.scheduleId.slice(SCHEDULE_PREFIX.length);
    if (known.has(slug)) continue;
    const { action } = await deps.client.schedule.getHandle(summary.scheduleId).describe();
    if (action.type !== 'startWorkflow' || action.taskQueue !== deps.taskQueue) continue;
    await manager.remove({ slug });
    removed += 1;
  }
  return { upserted: providers.length, removed };
}

/**
 * Temporal Schedule id of the housekeeping that prunes old outbox rows and sync runs; one per task queue, since
 * each scimflow deployment sharing a Temporal namespace has its own task queue and its own database.
 */
export function housekeepingScheduleId(taskQueue: string): string {
  return `housekeeping:${taskQueue}`;
}

/** Creates the housekeeping Schedule (every 6 hours) unless it exists; run at startup by every process. */
export async function ensureHousekeepingSchedule(deps: { client: Client; taskQueue: string }): Promise<void> {
  try {
    await deps.client.schedule.create({
      scheduleId: housekeepingScheduleId(deps.taskQueue),
      spec: { intervals: [{ every: '6 hours' }] },
      action: {
        type: 'startWorkflow',
        workflowType: housekeeping,
        workflowId: housekeepingScheduleId(deps.taskQueue),
        taskQueue: deps.taskQueue,
        args: [],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      state: { note: 'prunes dispatched outbox rows and old sync runs' },
    });
  } catch (error) {
    // Another process created it first, or an earlier start did: either way it is there.
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
  }
}

/** Activities of the schedule kick workflow; they use the worker's own Temporal client. */
export function createScheduleActivities(deps: { db: Db }) {
  return {
    /**
     * Signals-with-start the provider workflow that a full sync is wanted (coalesced there), unless the provider is
     * gone or disabled: a kick that was already under way when its provider was deleted must not start its workflow
     * again after the deletion terminated it.
     */
    async wantFullSync(input: ScheduledFullSyncInput): Promise<void> {
      const { rows } = await deps.db.query('SELECT 1 FROM providers WHERE id = $1 AND slug = $2 AND enabled', [
        input.providerId,
        input.slug,
      ]);
      if (rows.length === 0) return;
      const { client, info } = Context.current();
      await client.workflow.signalWithStart(providerSync, {
        ...providerSyncStartOptions({ id: input.providerId, slug: input.slug }, info.taskQueue),
        signal: fullSyncWantedSignal,
        signalArgs: [],
      });
    },
  };
}

/** The schedule activities, as workflows see them (by type only). */
export type ScheduleActivities = ReturnType<typeof createScheduleActivities>;
