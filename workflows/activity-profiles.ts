import type { ActivityOptions } from '@temporalio/workflow';
import { NON_RETRYABLE_CODES } from '../errors/index.ts';

/** Retry profile of activities that only talk to scimflow's own database (short, many attempts). */
export const databaseProfile: ActivityOptions = {
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '30 seconds',
    maximumAttempts: 20,
    nonRetryableErrorTypes: [...NON_RETRYABLE_CODES],
  },
};
