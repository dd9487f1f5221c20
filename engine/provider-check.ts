import type { Client } from '@temporalio/client';
import type { ProviderCheck } from '../auth/check.ts';
import type { ProviderView } from '../db/index.ts';
import type { AuthorisationOutcome } from '../activities/provider-authorisation.ts';
import { checkProvider, completeProviderAuthorisation } from '../workflows/index.ts';

/** Runs a provider's connection check on a worker and waits for the result. */
export type ProviderChecker = (provider: Pick<ProviderView, 'id' | 'slug'>) => Promise<ProviderCheck>;

/** The Temporal-backed checker the API is given. */
export function createProviderChecker(deps: { client: Client; taskQueue: string }): ProviderChecker {
  return async (provider) =>
    deps.client.workflow.execute(checkProvider, {
      taskQueue: deps.taskQueue,
      workflowId: `provider-check:${provider.slug}:${crypto.randomUUID()}`,
      args: [provider.id],
      workflowExecutionTimeout: '2 minutes',
    });
}

/** Completes an interactive authorisation the API accepted, on a worker, and waits for the outcome. */
export type AuthorisationCompleter = (
  provider: Pick<ProviderView, 'id' | 'slug'>,
  redirectUri: string,
) => Promise<AuthorisationOutcome>;

/** The Temporal-backed completer the API is given. */
export function createAuthorisationCompleter(deps: { client: Client; taskQueue: string }): AuthorisationCompleter {
  return async (provider, redirectUri) =>
    deps.client.workflow.execute(completeProviderAuthorisation, {
      taskQueue: deps.taskQueue,
      workflowId: `provider-authorisation:${provider.slug}:${crypto.randomUUID()}`,
      args: [provider.id, redirectUri],
      workflowExecutionTimeout: '2 minutes',
    });
}
