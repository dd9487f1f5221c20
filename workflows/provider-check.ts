import { proxyActivities } from '@temporalio/workflow';
import type { AuthorisationOutcome, ProviderAuthorisationActivities } from '../activities/provider-authorisation.ts';
import type { ProviderCheckActivities } from '../activities/provider-check.ts';
import type { ProviderCheck } from '../auth/check.ts';

const activities = proxyActivities<ProviderCheckActivities>({
  startToCloseTimeout: '1 minute',
  // The check reports failures itself; a retry would only hide how long the first attempt took.
  retry: { maximumAttempts: 1 },
});

/**
 * Checks a provider's connection on a worker (only workers decrypt secrets): token, then ServiceProviderConfig.
 * Its input and result carry ids and secret-free messages only.
 */
export async function checkProvider(providerId: string): Promise<ProviderCheck> {
  return activities.checkProviderConnection(providerId);
}

const authorisation = proxyActivities<ProviderAuthorisationActivities>({
  startToCloseTimeout: '1 minute',
  // An authorization code works once: a second attempt could only be refused.
  retry: { maximumAttempts: 1 },
});

/**
 * Completes an interactive OAuth authorisation on a worker (the code exchange needs the client secret). Its input is
 * the provider id and the redirect URI; the code and PKCE verifier stay sealed in the database.
 */
export async function completeProviderAuthorisation(
  providerId: string,
  redirectUri: string,
): Promise<AuthorisationOutcome> {
  return authorisation.completeProviderAuthorisation(providerId, redirectUri);
}
