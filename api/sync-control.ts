import type { ProviderView } from '../db/index.ts';

/** What the API asks of the sync engine; the worker side implements it with Temporal. */
export interface SyncControl {
  /**
   * Starts a full sync of the provider (or joins the one requested); resolves once it has started, or with
   * `answer: 'queued'` once its run exists (`queued` says whether it waits for the full sync under way).
   */
  requestFullSync(
    provider: ProviderView,
    request?: { allowDeletions?: boolean; answer?: 'started' | 'queued' },
  ): Promise<{ runId: string; workflowId: string; queued?: boolean | undefined }>;
  /** Called after a provider is created or changed (schedules follow it). */
  providerChanged(provider: ProviderView): Promise<void>;
  /** Called after a provider is deleted. */
  providerDeleted(provider: ProviderView): Promise<void>;
}
