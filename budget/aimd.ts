/**
 * The arithmetic of a target's rate budget, free of I/O: a token bucket whose rate adapts by AIMD (cut
 * multiplicatively on a 429, recovered additively with time), and the fair split of concurrency slots among
 * workers. Every function takes the time (`now`, ms) from its caller, so the shared store can use the database's
 * clock and tests a fake one.
 */

/** A target's configured limit: the most requests per second, and optionally the most requests in flight. */
export interface RateLimit {
  requestsPerSecond: number;
  concurrency?: number | undefined;
  /**
   * The most tokens the bucket holds: a target's documented burst (a plugin declares it; Slack: 20 on POST /Users).
   * More than one keeps the rate whole when each request for a token comes a little late (a database round trip):
   * with one, every late moment is lost. @default `burstSeconds` of the rate, at least 1
   */
  burst?: number | undefined;
}

/** The shared state of one target's bucket. Times are ms since the epoch. */
export interface BucketState {
  /** Requests per second allowed now: learned, never above the configured limit. */
  rate: number;
  /** Tokens in the bucket (one per request). */
  tokens: number;
  /** When `tokens` and `rate` were last brought up to date. */
  updatedAt: number;
  /** No tokens are handed out before this (a `Retry-After` the target asked for). */
  pausedUntil: number;
  /** When the rate was last cut; a burst of 429s answering one burst of requests cuts it once. */
  cutAt: number;
}

/** How the bucket adapts. */
export const AIMD = {
  /** A 429 multiplies the rate by this. */
  decrease: 0.7,
  /** Each second without a 429 adds this share of the configured rate back. */
  increasePerSecond: 0.02,
  /** The rate never falls below this share of the configured rate, nor below `minRate`. */
  floorShare: 0.02,
  minRate: 0.05,
  /** 429s within this long of a cut belong to the same overshoot and do not cut again. */
  cutWindowMs: 200,
  /**
   * The bucket holds at most this many seconds of tokens (the burst after a quiet spell), and at least one: at low
   * rates exactly one, so a late request is never caught up by a burst that a fixed-window limiter would refuse.
   */
  burstSeconds: 0.1,
  /** The longest pause a `Retry-After` imposes on the whole target. */
  maxPauseMs: 60_000,
  /**
   * A worker spaces its own requests so that no window of a second (of `n / rate` seconds, n = ⌊rate⌋) plus this
   * holds more than the rate: the margin for a target counting fixed windows, which requests reaching it up to this
   * much closer together than they were sent (its own scheduling, a loaded machine) would otherwise overrun.
   */
  windowMarginMs: 30,
} as const;

/** A fresh bucket: the configured rate, one token. */
export function newBucket(limit: RateLimit, now: number): BucketState {
  return { rate: limit.requestsPerSecond, tokens: 1, updatedAt: now, pausedUntil: 0, cutAt: 0 };
}

function capacity(rate: number, limit: RateLimit): number {
  return Math.max(1, limit.burst ?? rate * AIMD.burstSeconds);
}

/**
 * The bucket at `now`: the rate recovered additively (up to the configured limit, which may have changed since)
 * and tokens added at that rate, both only for the time since the bucket was last updated that is past any pause.
 */
export function advance(state: BucketState, limit: RateLimit, now: number): BucketState {
  const from = Math.max(state.updatedAt, state.pausedUntil);
  const seconds = Math.max(0, now - from) / 1000;
  const ceiling = limit.requestsPerSecond;
  const rate = Math.min(ceiling, state.rate + ceiling * AIMD.increasePerSecond * seconds);
  // Tokens accrue at the mean rate over the interval (the rate rose linearly across it).
  const tokens = Math.min(capacity(rate, limit), state.tokens + ((state.rate + rate) / 2) * seconds);
  return { ...state, rate, tokens, updatedAt: Math.max(state.updatedAt, now) };
}

/** The outcome of asking for tokens: how many were granted and, when none, how long until one is due. */
export interface Grant {
  state: BucketState;
  granted: number;
  waitMs: number;
}

/** Takes up to `want` whole tokens at `now`. */
export function take(state: BucketState, limit: RateLimit, now: number, want: number): Grant {
  const current = advance(state, limit, now);
  if (now < current.pausedUntil) return { state: current, granted: 0, waitMs: current.pausedUntil - now };
  const granted = Math.max(0, Math.min(Math.floor(want), Math.floor(current.tokens)));
  if (granted > 0) return { state: { ...current, tokens: current.tokens - granted }, granted, waitMs: 0 };
  return { state: current, granted: 0, waitMs: Math.ceil(((1 - current.tokens) / current.rate) * 1000) };
}

/** Tokens reserved: how many, and for each how long after `now` it may be spent. */
export interface Reservation extends Grant {
  dueMs: number[];
}

/**
 * Reserves up to `want` whole tokens that are due within `aheadMs` of `now`, each with the delay (ms, rounded up)
 * after which it may be spent: the bucket goes into debt for those not yet there. A requester that asks about a
 * round trip before it needs a token then sends on time; with `take` each token due later than the ask is handed
 * out a round trip late, and that time is lost. When no token is due that soon, `waitMs` says when to ask again.
 */
export function reserve(state: BucketState, limit: RateLimit, now: number, want: number, aheadMs: number): Reservation {
  const current = advance(state, limit, now);
  // Tokens accrue only after a pause; a token is due once the bucket holds one whole token.
  const dueAfter = (tokens: number): number =>
    Math.max(0, current.pausedUntil - now) + (tokens >= 1 ? 0 : ((1 - tokens) / current.rate) * 1000);
  const dueMs: number[] = [];
  let tokens = current.tokens;
  while (dueMs.length < Math.floor(want) && dueAfter(tokens) <= aheadMs) {
    dueMs.push(Math.ceil(dueAfter(tokens)));
    tokens -= 1;
  }
  if (dueMs.length > 0) return { state: { ...current, tokens }, granted: dueMs.length, waitMs: 0, dueMs };
  return { state: current, granted: 0, waitMs: Math.max(1, Math.ceil(dueAfter(tokens) - aheadMs)), dueMs };
}

/**
 * How long from `now` until one more request may go without `sent` (this worker's send times, oldest first) holding
 * more than n = max(1, ⌊limit⌋) requests within n / limit seconds plus `marginMs`, `limit` being the target's
 * requests per second; 0 when it may go now. A token due on time is not enough for a target counting fixed windows:
 * a worker that wakes late for one request and on time for the next sends two where one was due, and a fixed window
 * refuses the one that overruns it.
 */
export function windowWait(sent: readonly number[], limit: number, now: number, marginMs: number): number {
  const n = Math.max(1, Math.floor(limit));
  if (sent.length < n) return 0;
  return Math.max(0, sent[sent.length - n]! + (n / limit) * 1000 + marginMs - now);
}

/**
 * The target answered 429 at `now`: cut the rate (once per overshoot), empty the bucket, and pause the whole target
 * for `retryAfterMs` (capped) when the target said how long.
 */
export function throttled(
  state: BucketState,
  limit: RateLimit,
  now: number,
  retryAfterMs: number | undefined,
): BucketState {
  const current = advance(state, limit, now);
  const floor = Math.max(AIMD.minRate, limit.requestsPerSecond * AIMD.floorShare);
  const cut = now - current.cutAt >= AIMD.cutWindowMs;
  const pause = retryAfterMs === undefined ? 0 : Math.min(Math.max(0, retryAfterMs), AIMD.maxPauseMs);
  return {
    ...current,
    rate: cut ? Math.max(floor, current.rate * AIMD.decrease) : current.rate,
    cutAt: cut ? now : current.cutAt,
    tokens: Math.min(current.tokens, 0),
    pausedUntil: Math.max(current.pausedUntil, now + pause),
  };
}

/**
 * Splits `capacity` concurrency slots among holders by max-min fairness: nobody gets more than it wants, and what
 * one leaves is shared among the rest. Returns each holder's share, in the order given.
 */
export function fairShares(capacity: number, wants: readonly number[]): number[] {
  const shares: number[] = wants.map(() => 0);
  let left = Math.max(0, Math.floor(capacity));
  let open = wants.map((want, index) => ({ want: Math.max(0, Math.floor(want)), index })).filter((h) => h.want > 0);
  while (left > 0 && open.length > 0) {
    const each = Math.max(1, Math.floor(left / open.length));
    for (const holder of open) {
      if (left === 0) break;
      const give = Math.min(each, holder.want - shares[holder.index]!, left);
      shares[holder.index]! += give;
      left -= give;
    }
    open = open.filter((holder) => shares[holder.index]! < holder.want);
  }
  return shares;
}
