/**
 * The hook through which every request attempt to a target passes: a limiter decides when an attempt may start
 * (requests per second, requests in flight) and learns from how it ended. The client takes one; without one,
 * attempts start at once.
 */

/** How one attempt ended, as a limiter needs to know it: the status (0 when no response came) and `Retry-After`. */
export interface AttemptOutcome {
  status: number;
  retryAfterMs?: number | undefined;
}

/** Leave to send one attempt; call `release` exactly once, when its response (or failure) is in. */
export interface LimiterPermit {
  release(outcome: AttemptOutcome): void;
}

/** Grants leave to send request attempts to one target. */
export interface RequestLimiter {
  /** Resolves when an attempt may start; rejects with the signal's reason if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<LimiterPermit>;
}

const NO_PERMIT: LimiterPermit = { release: () => undefined };

/** The default limiter: every attempt may start at once. */
export const unlimited: RequestLimiter = { acquire: () => Promise.resolve(NO_PERMIT) };
