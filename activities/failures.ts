import { ApplicationFailure } from '@temporalio/common';
import { describeError, isScimflowError, NON_RETRYABLE_CODES } from '../errors/index.ts';

/**
 * Converts an error leaving an activity into an ApplicationFailure whose `type` is our code, so the workflow and
 * the retry policy read codes, never messages. Details are our own secret-free `details`.
 */
export function toApplicationFailure(error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  if (isScimflowError(error)) {
    const retryAfterMs = (error as { retryAfterMs?: unknown }).retryAfterMs;
    return ApplicationFailure.create({
      message: error.message,
      type: error.code,
      nonRetryable: !error.retryable || NON_RETRYABLE_CODES.includes(error.code),
      details: [error.details],
      ...(typeof retryAfterMs === 'number' ? { nextRetryDelay: retryAfterMs } : {}),
      ...(error.code === 'ERR_SCIM_RATE_LIMITED' ? { category: 'BENIGN' as const } : {}),
    });
  }
  // Unknown errors (a database hiccup, a bug) stay retryable: Temporal's backoff and attempt cap bound them.
  return ApplicationFailure.create({ message: describeError(error), type: 'ERR_INTERNAL', nonRetryable: false });
}
