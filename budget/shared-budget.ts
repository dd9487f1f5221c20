/**
 * One worker process's share of a target's rate budget, as the `RequestLimiter` its SCIM clients pace requests
 * through. Tokens come from the shared bucket a few at a time (about a tenth of a second's worth per query) and are
 * spent locally; concurrency slots are leased in bulk and renewed while in use. A 429 cuts the shared rate at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { AttemptOutcome, LimiterPermit, RequestLimiter } from '../scim/index.ts';
import type { Grant, RateLimit } from './aimd.ts';

/** Where the shared state lives (PostgreSQL in production: `db/rate-budgets.ts`). */
export interface BudgetStore {
  /** Takes up to `want` tokens from the target's bucket. */
  take: (target: string, limit: RateLimit, want: number) => Promise<Grant>;
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
  const tokenTtlMs = options.tokenTtlMs ?? 1000;
  const leaseTtlMs = options.leaseTtlMs ?? 10_000;
  const renewMs = options.renewMs ?? 1000;
  const retryMs = options.retryMs ?? 250;
  const onError = options.onError ?? (() => undefined);
  let closed = false;

  // Tokens: spent locally, fetched by one query at a time.
  let tokens = 0;
  let tokensExpireAt = 0;
  let rate = limit.requestsPerSecond;
  let fetching: Promise<Grant> | undefined;

  async function token(signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      if (tokens >= 1 && performance.now() < tokensExpireAt) {
        tokens -= 1;
        return;
      }
      fetching ??= store
        .take(target, limit, Math.max(1, Math.ceil(rate * grantSeconds)))
        .then((grant) => {
          rate = grant.state.rate;
          tokens = grant.granted;
          tokensExpireAt = performance.now() + tokenTtlMs;
          return grant;
        })
        .finally(() => {
          fetching = undefined;
        });
      const grant = await fetching;
      if (grant.granted === 0 && tokens < 1)
        await sleep(Math.min(Math.max(1, grant.waitMs), 1000), undefined, { signal });
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
    tokens = 0;
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
