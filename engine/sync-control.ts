import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { createRun, finishRun, type Db, type ProviderView } from '../db/index.ts';
import { describeError } from '../errors/index.ts';
import { fullSync, SCIM_PROVIDER } from '../workflows/index.ts';

/** Temporal workflow id of a provider's full sync. */
export function fullSyncWorkflowId(slug: string): string {
  return `full-sync:${slug}`;
}

/** Starts full syncs on Temporal for the API and CLI; the SyncControl the API is given. */
export interface TemporalSyncControl {
  requestFullSync(provider: Pick<ProviderView, 'id' | 'slug'>): Promise<{ runId: string; workflowId: string }>;
  providerChanged(provider: ProviderView): Promise<void>;
  providerDeleted(provider: ProviderView): Promise<void>;
}

/** Builds the Temporal-backed sync control. */
export function createSyncControl(deps: { client: Client; db: Db; taskQueue: string }): TemporalSyncControl {
  const { client, db, taskQueue } = deps;
  return {
    async requestFullSync(provider) {
      const workflowId = fullSyncWorkflowId(provider.slug);
      const runId = await createRun(db, provider.id, 'full', workflowId);
      try {
        await client.workflow.start(fullSync, {
          taskQueue,
          workflowId,
          args: [{ providerId: provider.id, runId }],
          memo: { runId },
          typedSearchAttributes: [{ key: SCIM_PROVIDER, value: provider.slug }],
          staticSummary: `Full sync of provider ${provider.slug}`,
          workflowIdConflictPolicy: 'FAIL',
        });
        return { runId, workflowId };
      } catch (error) {
        if (error instanceof WorkflowExecutionAlreadyStartedError) {
          // One full sync per provider at a time: join the running one instead of queueing another.
          await db.query('DELETE FROM sync_runs WHERE id = $1', [runId]);
          const running = await client.workflow.getHandle(workflowId).describe();
          const memo = (running.memo ?? {}) as { runId?: unknown };
          if (typeof memo.runId === 'string') return { runId: memo.runId, workflowId };
        }
        await finishRun(db, runId, 'failed', { code: 'ERR_INTERNAL', message: `could not start the workflow: ${describeError(error)}` }).catch(
          () => undefined,
        );
        throw error;
      }
    },
    // Schedules per provider arrive with incremental sync (issue 4); until then there is nothing to follow.
    async providerChanged() {},
    async providerDeleted() {},
  };
}
