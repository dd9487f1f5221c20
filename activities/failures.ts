import { ApplicationFailure } from '@temporalio/common';
import {
  describeError,
  isScimflowError,
  NON_RETRYABLE_CODES,
  type ErrorCode,
  type ScimflowError,
} from '../errors/index.ts';

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

// Errors that end the whole run: every further request would fail the same way.
const RUN_FATAL: ReadonlySet<ErrorCode> = new Set([
  'ERR_SCIM_UNAUTHORIZED',
  'ERR_CONFIG',
  'ERR_AUTH_TOKEN',
  'ERR_AUTH_INVALID_CLIENT',
  'ERR_AUTH_REAUTHORIZE',
]);

/** True when `error` fails only the object it arose for: the run goes on with the others. */
export function isPermanentForObject(error: unknown): error is ScimflowError {
  return isScimflowError(error) && !error.retryable && !RUN_FATAL.has(error.code);
}

/** An object's failure as stored on its link and in its `fail` event. */
export function errorRecord(
  error: ScimflowError | { code: string; message: string; mapping?: string | null; path?: string },
): Record<string, unknown> {
  return isScimflowError(error) ? error.toJSON() : { ...error };
}

/** Runs an activity body, converting whatever it throws with {@link toApplicationFailure}. */
export async function withFailures<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw toApplicationFailure(error);
  }
}
