import type { ProviderView } from '../db/index.ts';

/** What the API asks of the sync engine; the worker side implements it with Temporal. */
export interface SyncControl {
  /** Starts a full sync of the provider (or joins the one requested); resolves once Temporal accepted it. */
  requestFullSync(
    provider: ProviderView,
    request?: { allowDeletions?: boolean },
  ): Promise<{ runId: string; workflowId: string }>;
  /** Called after a provider is created or changed (schedules follow it). */
  providerChanged(provider: ProviderView): Promise<void>;
  /** Called after a provider is deleted. */
  providerDeleted(provider: ProviderView): Promise<void>;
}
