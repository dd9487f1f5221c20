import type { Client } from '@temporalio/client';
import type { ProviderView } from '../db/index.ts';
import {
  providerSync,
  requestFullSyncUpdate,
  type FlushPolicy,
  type FullSyncRequest,
  type FullSyncTicket,
} from '../workflows/index.ts';
import { createScheduleManager, providerSyncStartOptions, type ScheduleManager } from './schedules.ts';

export { fullSyncWorkflowId } from '../workflows/index.ts';

/** Starts full syncs on Temporal for the API and CLI; the SyncControl the API is given. */
export interface TemporalSyncControl {
  requestFullSync(provider: Pick<ProviderView, 'id' | 'slug'>, request?: FullSyncRequest): Promise<FullSyncTicket>;
  providerChanged(provider: ProviderView): Promise<void>;
  providerDeleted(provider: ProviderView): Promise<void>;
}

/**
 * Builds the Temporal-backed sync control. Every full sync goes through the provider's workflow (the single writer):
 * a manual request starts it if needed and asks it, by update, for a full sync (joining one already under way).
 */
export function createSyncControl(deps: {
  client: Client;
  taskQueue: string;
  schedules?: ScheduleManager;
  flush?: Partial<FlushPolicy>;
}): TemporalSyncControl {
  const { client, taskQueue } = deps;
  const schedules = deps.schedules ?? createScheduleManager({ client, taskQueue });
  return {
    async requestFullSync(provider, request = {}) {
      const handle = await client.workflow.start(providerSync, {
        ...providerSyncStartOptions(provider, taskQueue, deps.flush),
        workflowIdConflictPolicy: 'USE_EXISTING',
      });
      return handle.executeUpdate(requestFullSyncUpdate, { args: [request] });
    },
    async providerChanged(provider) {
      await schedules.upsert(provider);
    },
    async providerDeleted(provider) {
      await schedules.remove(provider);
    },
  };
}
