/**
 * One worker process's share of a target's rate budget, as the `RequestLimiter` its SCIM clients pace requests
 * through. Tokens are reserved in the shared bucket a few at a time (about a tenth of a second's worth per query, up
 * to a quarter of a second before they are due) and each is spent locally at its due time, never putting more than
 * the target's limit in one of its windows plus a margin; concurrency slots are leased in bulk and renewed while in
 * use. A 429 cuts the shared rate at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AttemptOutcome, LimiterPermit, RequestLimiter } from '../scim/index.ts';
import { AIMD, windowWait, type RateLimit, type Reservation } from './aimd.ts';

/** Where the shared state lives (PostgreSQL in production: `db/rate-budgets.ts`). */
export interface BudgetStore {
  /** Reserves up to `want` tokens of the target's bucket that are due within `aheadMs`. */
  take: (target: string, limit: RateLimit, want: number, aheadMs: number) => Promise<Reservation>;
  /** Cuts the target's rate after a 429 (and pauses it for a `Retry-After`). */
  throttled: (target: string, limit: RateLimit, retryAfterMs: number | undefined) => Promise<unknown>;
  /** Renews the holder's lease of concurrency slots; returns how many it holds now. */
  lease: (
    target: string,
    request: { holder: string; capacity: number; inFlight: number; wanted: number; ttlMs: number },
  ) => Promise<number>;
  /** Gives the holder's slots back. */
  release: (target: string, holder: string) => Promise<void>;
}

/** A target's budget in this process; `close` gives its slots back. */
export interface SharedBudget extends RequestLimiter {
  close(): Promise<void>;
}

/** Tuning, overridable by tests. */
export interface SharedBudgetOptions {
  /** Seconds of the current rate taken from the shared bucket per query. @default 0.1 */
  grantSeconds?: number;
  /**
   * How long before its due time a token may be reserved: more than a round trip to the store, so that each request
   * goes on time instead of a round trip after it. @default 250
   */
  aheadMs?: number;
  /** The window margin of this worker's own requests (see `windowWait`). @default AIMD.windowMarginMs */
  windowMarginMs?: number;
  /** Unspent local tokens are dropped after this long, so no worker hoards a burst. @default 1000 */
  tokenTtlMs?: number;
  /** How long a lease of concurrency slots outlives its holder's last renewal. @default 10000 */
  leaseTtlMs?: number;
  /** How often a held lease is renewed (and shrunk to a fair share when others wait). @default 1000 */
  renewMs?: number;
  /** How often a worker waiting for slots asks again. @default 250 */
  retryMs?: number;
  /** Called when the shared store fails in the background (a renewal, a reported 429). */
  onError?: (error: unknown) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
}

/** Creates this process's budget for `target` (an origin), identified among the workers as `holder`. */
export function createSharedBudget(
  store: BudgetStore,
  target: string,
  holder: string,
  limit: RateLimit,
  options: SharedBudgetOptions = {},
): SharedBudget {
  const grantSeconds = options.grantSeconds ?? 0.1;
  const aheadMs = options.aheadMs ?? 250;
  const windowMarginMs = options.windowMarginMs ?? AIMD.windowMarginMs;
  const tokenTtlMs = options.tokenTtlMs ?? 1000;
  const leaseTtlMs = options.leaseTtlMs ?? 10_000;
  const renewMs = options.renewMs ?? 1000;
  const retryMs = options.retryMs ?? 250;
  const onError = options.onError ?? (() => undefined);
  let closed = false;

  // Tokens: reserved ahead from the shared bucket, one query at a time, each spent at its due time in order.
  let due: number[] = [];
  let dueExpireAt = 0;
  let rate = limit.requestsPerSecond;
  let fetching: Promise<Reservation> | undefined;

  // This worker's latest send times, for the window margin (`windowWait`) of the target's own limit: the rate learned
  // below it is kept by the tokens, and ⌊learned rate⌋ in a shorter window would not keep the target's window.
  const sent: number[] = [];
  const mostSent = Math.max(1, Math.floor(limit.requestsPerSecond));

  async function spend(at: number, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      const now = performance.now();
      const wait = Math.max(at - now, windowWait(sent, limit.requestsPerSecond, now, windowMarginMs));
      if (wait <= 0) break;
      await sleep(wait, undefined, { signal });
    }
    sent.push(performance.now());
    if (sent.length > mostSent) sent.splice(0, sent.length - mostSent);
  }

  async function token(signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      if (due.length > 0 && performance.now() < dueExpireAt) return spend(due.shift()!, signal);
      fetching ??= store
        .take(target, limit, Math.max(1, Math.ceil(rate * grantSeconds)), aheadMs)
        .then((reservation) => {
          // Due times count from when the answer is in: never earlier than the database meant.
          const now = performance.now();
          rate = reservation.state.rate;
          due = reservation.dueMs.map((ms) => now + ms);
          dueExpireAt = now + tokenTtlMs;
          return reservation;
        })
        .finally(() => {
          fetching = undefined;
        });
      const reservation = await fetching;
      if (reservation.granted === 0 && due.length === 0)
        await sleep(Math.min(Math.max(1, reservation.waitMs), 1000), undefined, { signal });
    }
  }

  // Concurrency: `slots` leased, `inFlight` used; waiters queue for a slot.
  let slots = 0;
  let inFlight = 0;
  const waiters: Waiter[] = [];
  let leasing: Promise<void> | undefined;
  let renewTimer: NodeJS.Timeout | undefined;

  function wake(): void {
    while (waiters.length > 0 && inFlight < slots) {
      inFlight += 1;
      waiters.shift()!.resolve();
    }
  }

  function renewLease(): Promise<void> {
    leasing ??= (async () => {
      try {
        const capacity = limit.concurrency;
        if (capacity === undefined || closed) return;
        slots = await store.lease(target, {
          holder,
          capacity,
          inFlight,
          wanted: inFlight + waiters.length,
          ttlMs: leaseTtlMs,
        });
        wake();
      } catch (error) {
        onError(error);
      } finally {
        leasing = undefined;
        schedule();
      }
    })();
    return leasing;
  }

  // Renews soon while someone waits for a slot, at the renewal period while slots are held, never when idle.
  function schedule(): void {
    if (renewTimer !== undefined) clearTimeout(renewTimer);
    renewTimer = undefined;
    if (closed || (slots === 0 && waiters.length === 0)) return;
    renewTimer = setTimeout(() => void renewLease(), waiters.length > 0 ? retryMs : renewMs);
    renewTimer.unref();
  }

  async function slot(signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    if (waiters.length === 0 && inFlight < slots) {
      inFlight += 1;
      return;
    }
    const granted = new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      waiters.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const index = waiters.indexOf(waiter);
          if (index >= 0) waiters.splice(index, 1);
          reject(signal.reason as Error);
        },
        { once: true },
      );
    });
    if (leasing === undefined) void renewLease();
    await granted;
  }

  function freeSlot(): void {
    inFlight -= 1;
    wake();
  }

  function throttledNow(retryAfterMs: number | undefined): void {
    due = [];
    store.throttled(target, limit, retryAfterMs).catch(onError);
  }

  return {
    async acquire(signal) {
      const concurrent = limit.concurrency !== undefined;
      if (concurrent) await slot(signal);
      try {
        await token(signal);
      } catch (error) {
        if (concurrent) freeSlot();
        throw error;
      }
      let released = false;
      const permit: LimiterPermit = {
        release(outcome: AttemptOutcome) {
          if (released) return;
          released = true;
          if (concurrent) freeSlot();
          if (outcome.status === 429) throttledNow(outcome.retryAfterMs);
        },
      };
      return permit;
    },
    async close() {
      closed = true;
      if (renewTimer !== undefined) clearTimeout(renewTimer);
      await leasing;
      for (const waiter of waiters.splice(0)) waiter.reject(new Error('the rate budget was closed'));
      if (limit.concurrency !== undefined) await store.release(target, holder).catch(onError);
    },
  };
}
