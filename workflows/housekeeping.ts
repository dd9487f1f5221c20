import { proxyActivities } from '@temporalio/workflow';
import type { HousekeepingActivities } from '../activities/index.ts';
import type { PruneResult } from '../db/index.ts';

const activities = proxyActivities<HousekeepingActivities>({
  startToCloseTimeout: '30 minutes',
  retry: { initialInterval: '10 seconds', maximumInterval: '5 minutes', maximumAttempts: 5 },
});

/** What the housekeeping Schedule starts: prunes old outbox rows and sync runs; its result says how many. */
export async function housekeeping(): Promise<PruneResult> {
  return activities.pruneHistory();
}
