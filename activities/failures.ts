import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { describeError, errorScope, isScimflowError } from '../errors/index.ts';

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
      nonRetryable: errorScope(error) !== 'request',
      details: [error.details],
      ...(typeof retryAfterMs === 'number' ? { nextRetryDelay: retryAfterMs } : {}),
      ...(error.code === 'ERR_SCIM_RATE_LIMITED' ? { category: 'BENIGN' as const } : {}),
    });
  }
  // Unknown errors (a database hiccup, a bug) stay retryable: Temporal's backoff and attempt cap bound them.
  return ApplicationFailure.create({ message: describeError(error), type: 'ERR_INTERNAL', nonRetryable: false });
}

/** An object's failure as stored on its link and in its `fail` or `retry` event; secret-free. */
export function errorRecord(error: unknown): Record<string, unknown> {
  return isScimflowError(error) ? error.toJSON() : { code: 'ERR_INTERNAL', message: describeError(error) };
}

/**
 * Runs an activity body, converting whatever it throws with {@link toApplicationFailure}; a cancellation (the
 * activity's signal aborted) leaves as it is, so Temporal records the attempt as cancelled.
 */
export async function withFailures<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof CancelledFailure) throw error;
    throw toApplicationFailure(error);
  }
}
