/**
 * The shared store of every target's rate budget: one row per target origin holding its token bucket, and leases of
 * its concurrency slots. Each change is one short transaction on the target's row, timed by the database's clock so
 * that workers on different machines agree.
 */
import {
  fairShares,
  newBucket,
  reserve,
  throttled,
  type BucketState,
  type BudgetStore,
  type RateLimit,
  type Reservation,
} from '../budget/index.ts';
import { inTransaction, type Db } from './pool.ts';

interface BudgetRow {
  rate: number | null;
  tokens: number;
  updated_at: Date;
  paused_until: Date;
  cut_at: Date;
  now: Date;
}

interface LeaseRow {
  holder: string;
  slots: number;
  wanted: number;
}

/** What a worker asks of a target's concurrency slots: how many it uses now and how many it would use. */
export interface LeaseRequest {
  holder: string;
  capacity: number;
  inFlight: number;
  wanted: number;
  ttlMs: number;
}

// Creates the row when missing and locks it either way; returns it with the database's time.
const LOCK_BUDGET = `
  INSERT INTO rate_budgets (target) VALUES ($1)
  ON CONFLICT (target) DO UPDATE SET target = EXCLUDED.target
  RETURNING rate, tokens, updated_at, paused_until, cut_at, clock_timestamp() AS now`;

function toState(row: BudgetRow, limit: RateLimit): BucketState {
  if (row.rate === null) return newBucket(limit, row.now.getTime());
  return {
    rate: row.rate,
    tokens: row.tokens,
    updatedAt: row.updated_at.getTime(),
    pausedUntil: row.paused_until.getTime(),
    cutAt: row.cut_at.getTime(),
  };
}

async function changeBucket<R extends { state: BucketState }>(
  db: Db,
  target: string,
  change: (state: BucketState, now: number) => R,
  limit: RateLimit,
): Promise<R> {
  return inTransaction(db, async (client) => {
    const row = (await client.query<BudgetRow>(LOCK_BUDGET, [target])).rows[0]!;
    const result = change(toState(row, limit), row.now.getTime());
    const { state } = result;
    await client.query(
      `UPDATE rate_budgets SET rate = $2, tokens = $3, updated_at = to_timestamp($4 / 1000.0),
              paused_until = to_timestamp($5 / 1000.0), cut_at = to_timestamp($6 / 1000.0)
        WHERE target = $1`,
      [target, state.rate, state.tokens, state.updatedAt, state.pausedUntil, state.cutAt],
    );
    return result;
  });
}

/** Reserves up to `want` tokens of the target's bucket that are due within `aheadMs` (see `reserve`). */
export function takeRateTokens(
  db: Db,
  target: string,
  limit: RateLimit,
  want: number,
  aheadMs: number,
): Promise<Reservation> {
  return changeBucket(db, target, (state, now) => reserve(state, limit, now, want, aheadMs), limit);
}

/** Records that the target answered 429: its rate is cut and, given a `Retry-After`, it is paused for everyone. */
export async function recordRateThrottled(
  db: Db,
  target: string,
  limit: RateLimit,
  retryAfterMs: number | undefined,
): Promise<BucketState> {
  const { state } = await changeBucket(
    db,
    target,
    (current, now) => ({ state: throttled(current, limit, now, retryAfterMs) }),
    limit,
  );
  return state;
}

/**
 * Renews `request.holder`'s lease of the target's concurrency slots and returns how many it holds now: its fair
 * share of `capacity` among the live holders' wants, within what the others leave free, and never fewer than it
 * has in flight. Expired leases (of workers that died) are dropped first. A holder that wants none gives its lease up.
 */
export async function leaseRateSlots(db: Db, target: string, request: LeaseRequest): Promise<number> {
  return inTransaction(db, async (client) => {
    await client.query(LOCK_BUDGET, [target]);
    const { rows } = await client.query<LeaseRow>(
      `WITH expired AS (DELETE FROM rate_budget_leases WHERE target = $1 AND expires_at < clock_timestamp())
       SELECT holder, slots, wanted FROM rate_budget_leases
        WHERE target = $1 AND expires_at >= clock_timestamp() AND holder <> $2`,
      [target, request.holder],
    );
    const wanted = Math.max(request.wanted, request.inFlight);
    const shares = fairShares(request.capacity, [wanted, ...rows.map((row) => Math.max(row.wanted, row.slots))]);
    const free = request.capacity - rows.reduce((sum, row) => sum + row.slots, 0);
    const slots = Math.max(request.inFlight, Math.min(shares[0]!, free));
    if (slots === 0 && wanted === 0) {
      await client.query('DELETE FROM rate_budget_leases WHERE target = $1 AND holder = $2', [target, request.holder]);
      return 0;
    }
    await client.query(
      `INSERT INTO rate_budget_leases (target, holder, slots, wanted, expires_at)
       VALUES ($1, $2, $3, $4, clock_timestamp() + $5 * interval '1 millisecond')
       ON CONFLICT (target, holder) DO UPDATE
         SET slots = EXCLUDED.slots, wanted = EXCLUDED.wanted, expires_at = EXCLUDED.expires_at`,
      [target, request.holder, slots, wanted, request.ttlMs],
    );
    return slots;
  });
}

/** Gives `holder`'s concurrency slots of the target back at once (a worker shutting down). */
export async function releaseRateSlots(db: Db, target: string, holder: string): Promise<void> {
  await db.query('DELETE FROM rate_budget_leases WHERE target = $1 AND holder = $2', [target, holder]);
}

/** The rate budgets' shared store on this database. */
export function createRateBudgetStore(db: Db): BudgetStore {
  return {
    take: (target, limit, want, aheadMs) => takeRateTokens(db, target, limit, want, aheadMs),
    throttled: (target, limit, retryAfterMs) => recordRateThrottled(db, target, limit, retryAfterMs),
    lease: (target, request) => leaseRateSlots(db, target, request),
    release: (target, holder) => releaseRateSlots(db, target, holder),
  };
}
