/** A token bucket per key (per source token): `rate` requests a second on average, bursts of up to `burst`. */

/** How fast each source may call; both at least 1. */
export interface RateLimit {
  ratePerSecond: number;
  burst: number;
}

/** The answer for one request: allowed, or refused with how many seconds to wait. */
export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/** Buckets per key; `now` is injected (milliseconds) so tests control time. */
export function createRateLimiter(limit: RateLimit, now: () => number = () => performance.now()) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    /**
     * Takes `cost` tokens (at most a burst's worth) from `key`'s bucket, or none; a refusal says when `retryCost`
     * tokens will be there (what the whole request needs when it already took some).
     */
    take(key: string, cost = 1, retryCost = cost): RateDecision {
      const need = Math.min(cost, limit.burst);
      const time = now();
      const bucket = buckets.get(key) ?? { tokens: limit.burst, at: time };
      bucket.tokens = Math.min(limit.burst, bucket.tokens + ((time - bucket.at) / 1000) * limit.ratePerSecond);
      bucket.at = time;
      buckets.set(key, bucket);
      if (bucket.tokens >= need) {
        bucket.tokens -= need;
        return { allowed: true };
      }
      return {
        allowed: false,
        retryAfterSeconds: Math.max(
          1,
          Math.ceil((Math.min(retryCost, limit.burst) - bucket.tokens) / limit.ratePerSecond),
        ),
      };
    },
  };
}
