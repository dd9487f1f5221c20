/**
 * Retries at the depth of one request: a transient failure (scope `request`: network error, reset, timeout, 5xx,
 * 408, 429) is sent again after a jittered exponential backoff, or after the target's `Retry-After` (held within
 * 1 s – 10 min), as long as the object it is for has budget left. Everything else is thrown at once.
 */
import { errorScope, ScimRequestError } from '../errors/index.ts';
import type { CircuitBreaker } from './breaker.ts';
import type { ScimClient, ScimMethod, ScimRequestOptions, ScimResponse } from './client.ts';
import type { RequestSlots } from './slots.ts';

/** How persistently one object's requests are retried. */
export interface RetryPolicy {
  /** Retries one object may make over all its requests. @default 8 */
  retries: number;
  /** Time one object may spend waiting between attempts, over all its requests. @default 120000 */
  budgetMs: number;
  /** The first backoff is up to this; each further one doubles it. @default 100 */
  baseDelayMs: number;
  /** The longest backoff. @default 30000 */
  maxDelayMs: number;
  /** A `Retry-After` is held within these bounds (a hostile header cannot park a provider for a day). */
  retryAfterMinMs: number;
  retryAfterMaxMs: number;
}

/** The default policy. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  retries: 8,
  budgetMs: 120_000,
  baseDelayMs: 100,
  maxDelayMs: 30_000,
  retryAfterMinMs: 1_000,
  retryAfterMaxMs: 600_000,
};

/** What the requests of one object have spent; shared by all of them. */
export class RetryBudget {
  readonly policy: RetryPolicy;
  retries = 0;
  waitedMs = 0;

  constructor(policy: RetryPolicy = DEFAULT_RETRY_POLICY) {
    this.policy = policy;
  }

  /** Spends one retry after waiting `ms`; false (nothing spent) when that is over the budget. */
  spend(ms: number): boolean {
    if (this.retries >= this.policy.retries || this.waitedMs + ms > this.policy.budgetMs) return false;
    this.retries += 1;
    this.waitedMs += ms;
    return true;
  }
}

/**
 * How long to wait before retry number `retry` (1-based) after `error`: the target's `Retry-After` held within the
 * policy's bounds, else a jittered exponential backoff (half fixed, half random, so waits never collapse to zero).
 */
export function retryDelay(error: unknown, retry: number, policy: RetryPolicy, random: () => number): number {
  const asked = error instanceof ScimRequestError ? error.retryAfterMs : undefined;
  if (asked !== undefined) {
    const held = Math.min(Math.max(asked, policy.retryAfterMinMs), policy.retryAfterMaxMs);
    // A little spread, so requests told the same instant do not all come back at once.
    return Math.min(held + Math.floor(random() * Math.min(held * 0.1, 1000)), policy.retryAfterMaxMs);
  }
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

/** What a retrying client is built with. */
export interface RetryOptions {
  /** The object's budget; each call of {@link withRetries} for the same object passes the same one. */
  budget: RetryBudget;
  /** Stops waiting and sending when it aborts (the activity was cancelled); rejects with its reason. */
  signal?: AbortSignal | undefined;
  /** Each attempt holds one of these while it is in flight (not while it waits to be retried). */
  slots?: RequestSlots | undefined;
  /** The target's breaker: consulted before every attempt and told how it ended. */
  breaker?: CircuitBreaker | undefined;
  /** Called before each wait and every few seconds during one (activities heartbeat here). */
  onWait?: ((info: { delayMs: number; error: unknown }) => void) | undefined;
  /** Uniform in [0, 1). @default Math.random */
  random?: () => number;
  /** Waits `ms` unless `signal` aborts first. @default a timer */
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

/** Waits `ms`, rejecting with the signal's reason if it aborts first. */
export function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// How often a long wait reports that it is still waiting.
const WAIT_REPORT_MS = 10_000;

/**
 * A view of `client` whose requests carry `signal`, pass the breaker, and are retried within the object's budget.
 * One is made for every object a sync sends, and lives while the object waits for a request slot: its methods are
 * on its class, not closures made for each (which were 0.4 KiB per object, kept alive that long).
 */
export function withRetries(client: ScimClient, options: RetryOptions): ScimClient {
  return new RetryingClient(client, options);
}

class RetryingClient implements ScimClient {
  readonly baseUrl: string;
  readonly #client: ScimClient;
  readonly #options: RetryOptions;

  constructor(client: ScimClient, options: RetryOptions) {
    this.baseUrl = client.baseUrl;
    this.#client = client;
    this.#options = options;
  }

  async request<T = unknown>(
    method: ScimMethod,
    path: string,
    requestOptions: ScimRequestOptions<T> = {},
  ): Promise<ScimResponse<T>> {
    const { budget, signal } = this.#options;
    // The backoff's exponent counts the failures whose wait is ours to choose: a wait the target asked for
    // (`Retry-After`) was its own, and does not lengthen the backoff of a later reset or 5xx.
    let backoffs = 0;
    for (let retry = 1; ; retry += 1) {
      try {
        return await this.#attempt(method, path, requestOptions, retry > 1);
      } catch (error) {
        if (signal?.aborted || errorScope(error) !== 'request') throw error;
        if (!(error instanceof ScimRequestError && error.retryAfterMs !== undefined)) backoffs += 1;
        const delayMs = retryDelay(error, Math.max(backoffs, 1), budget.policy, this.#options.random ?? Math.random);
        if (!budget.spend(delayMs)) throw error;
        await this.#wait(delayMs, error);
      }
    }
  }

  // The view does not own the connection pool: closing it leaves the client open.
  close(): Promise<void> {
    return Promise.resolve();
  }

  async #wait(delayMs: number, error: unknown): Promise<void> {
    const { onWait, signal } = this.#options;
    const sleep = this.#options.sleep ?? abortableSleep;
    onWait?.({ delayMs, error });
    for (let left = delayMs; left > 0; left -= WAIT_REPORT_MS) {
      await sleep(Math.min(left, WAIT_REPORT_MS), signal);
      if (left > WAIT_REPORT_MS) onWait?.({ delayMs: left - WAIT_REPORT_MS, error });
    }
  }

  async #attempt<T>(method: ScimMethod, path: string, requestOptions: ScimRequestOptions<T>, retry: boolean) {
    const { slots, signal } = this.#options;
    // A free slot is taken at once: most attempts of a fast target find one, and an await costs each a promise.
    const release =
      (signal?.aborted ? undefined : slots?.tryAcquire()) ??
      (await slots?.acquire(signal, retry ? 'retry' : method === 'GET' ? 'read' : 'write'));
    try {
      return await this.#admitted(method, path, requestOptions);
    } finally {
      release?.();
    }
  }

  /** One attempt past the breaker, which is told how it ended. */
  async #admitted<T>(method: ScimMethod, path: string, requestOptions: ScimRequestOptions<T>) {
    const { signal, breaker } = this.#options;
    breaker?.admit();
    try {
      const response = await this.#client.request(method, path, { ...requestOptions, signal });
      breaker?.succeeded();
      return response;
    } catch (error) {
      if (signal?.aborted || !(error instanceof ScimRequestError)) breaker?.abandoned();
      // A 429 or any other answer shows the target alive; no answer, or a 5xx, does not.
      else if (error.status === 0 || (errorScope(error) === 'request' && error.status !== 429)) breaker?.failed();
      else breaker?.succeeded();
      throw error;
    }
  }
}
