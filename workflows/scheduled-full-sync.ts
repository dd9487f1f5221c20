import { proxyActivities } from '@temporalio/workflow';
import type { ScheduleActivities } from '../engine/schedules.ts';

/** Input of `scheduledFullSync`: which provider the schedule belongs to. */
export interface ScheduledFullSyncInput {
  providerId: string;
  slug: string;
}

const control = proxyActivities<ScheduleActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10 },
});

/**
 * What a provider's Schedule starts: a Schedule can only start a workflow, so this one asks the provider workflow
 * (signal-with-start) for a full sync, which coalesces with one already wanted or running.
 */
export async function scheduledFullSync(input: ScheduledFullSyncInput): Promise<void> {
  await control.wantFullSync(input);
}
