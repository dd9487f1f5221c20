import { ApplicationFailure, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ERROR_CODES, ScimflowError, type ErrorCode } from '../errors/index.ts';
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
      try {
        return await handle.executeUpdate(requestFullSyncUpdate, { args: [request] });
      } catch (error) {
        throw refusal(error) ?? error;
      }
    },
    async providerChanged(provider) {
      await schedules.upsert(provider);
    },
    async providerDeleted(provider) {
      await schedules.remove(provider);
    },
  };
}

/**
 * A request the provider workflow refused (its run could not be opened) with one of our codes, as that error; any
 * other failure (ERR_INTERNAL is not one of them) stays as it is: the API logs it and answers 500 without its text.
 */
function refusal(error: unknown): ScimflowError | undefined {
  const cause = error instanceof WorkflowUpdateFailedError ? error.cause : undefined;
  if (!(cause instanceof ApplicationFailure) || !cause.type || !Object.hasOwn(ERROR_CODES, cause.type))
    return undefined;
  return new ScimflowError(cause.type as ErrorCode, cause.message);
}
