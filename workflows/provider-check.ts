import { proxyActivities } from '@temporalio/workflow';
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
