/** The shared rate budget of each target: AIMD arithmetic, and each worker process's share of it. */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { RequestLimiter } from '../scim/index.ts';
import type { RateLimit } from './aimd.ts';
import { createSharedBudget, type BudgetStore, type SharedBudget, type SharedBudgetOptions } from './shared-budget.ts';

export * from './aimd.ts';
export * from './shared-budget.ts';

/** This process's budgets, one per target origin and configured limit. */
export interface RateBudgets {
  /**
   * The limiter for requests to `baseUrl`'s origin under `limit`; with `key`, only providers naming the same key
   * share it (one Slack org of the many behind api.slack.com).
   */
  forTarget(baseUrl: string, limit: RateLimit, key?: string): RequestLimiter;
  /** Closes every budget, giving their concurrency slots back. */
  closeAll(): Promise<void>;
}

/** Creates the process's budget registry over `store`. */
export function createRateBudgets(store: BudgetStore, options: SharedBudgetOptions = {}): RateBudgets {
  const budgets = new Map<string, SharedBudget>();
  const processId = `${hostname()}:${process.pid}`;
  return {
    forTarget(baseUrl, limit, scopeKey) {
      const origin = new URL(baseUrl).origin;
      const target = scopeKey === undefined ? origin : `${origin}#${scopeKey}`;
      const key = `${target} ${limit.requestsPerSecond} ${limit.concurrency ?? '-'} ${limit.burst ?? '-'}`;
      let budget = budgets.get(key);
      if (budget === undefined) {
        budget = createSharedBudget(store, target, `${processId}:${randomUUID()}`, limit, options);
        budgets.set(key, budget);
      }
      return budget;
    },
    async closeAll() {
      const all = [...budgets.values()];
      budgets.clear();
      await Promise.all(all.map((budget) => budget.close()));
    },
  };
}
