import { createCredentialService, type CredentialService } from '../auth/credentials.ts';
import type { RateBudgets } from '../budget/index.ts';
import type { ProviderForSync } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';
import type { PluginContext, PluginRegistry, ProvisioningPlugin } from '../plugins/index.ts';
import {
  CircuitBreaker,
  createScimClient,
  DEFAULT_RETRY_POLICY,
  RequestSlots,
  RetryBudget,
  withRetries,
  type BreakerOptions,
  type RetryPolicy,
  type ScimClient,
  type ScimClientOptions,
} from '../scim/index.ts';
import { beat } from './heartbeat.ts';

/**
 * A provider's plugin plus a ready context (authenticated, pooled client). Its requests carry the activity's
 * cancellation signal, pass the target's circuit breaker, retry transient failures within one retry budget, and
 * share the provider's `concurrency` request slots with every other object of the same `get`.
 */
export interface Target {
  plugin: ProvisioningPlugin<unknown>;
  ctx: PluginContext<unknown>;
  /** The same target with a fresh retry budget, for the requests of one object. */
  forObject(): Target;
}

/** Hands out one pooled SCIM client per provider, replaced when the provider's configuration changes. */
export interface TargetPool {
  /**
   * The provider's target for one activity: `signal` (its cancellation) stops its requests and waits, and its
   * objects (`forObject`) have `concurrency` requests in flight together, however many of them wait to retry.
   */
  get(provider: ProviderForSync, signal?: AbortSignal): Target;
  /**
   * The provider's target for one range activity, on `concurrency` sockets of its own: at most `concurrency` requests
   * in flight, as with `get`, and as many more waiting one behind each (`queueBehind`), so a socket is never idle
   * between an answer and the next request. `release` closes its sockets once the range is done with them.
   */
  lease(provider: ProviderForSync, signal?: AbortSignal): Target & { release(): void };
  /** The circuit breaker of the provider's target, if it has been used in this process. */
  breaker(providerId: string): CircuitBreaker | undefined;
  closeAll(): Promise<void>;
}

/** How the pool's clients behave; tests shorten timeouts and budgets. */
export interface TargetPoolOptions {
  /** Total deadline of one request. */
  timeoutMs?: number;
  connections?: number;
  /** Per-object retry budget and backoff. @default DEFAULT_RETRY_POLICY */
  retry?: Partial<RetryPolicy>;
  /** When a target that only fails is given up on, and how often it is probed then. */
  breaker?: BreakerOptions;
  /** Authenticates the clients. @default a service without interactive grants */
  credentials?: CredentialService;
  /** With it, the requests of a provider with a rate limit (its own, else its plugin's) pass the target's shared budget. */
  budgets?: RateBudgets;
}

/** A long Retry-After must not look like a dead worker. */
function beatWhileWaiting(): void {
  beat();
}

/** Most sockets one worker opens to one provider's target. */
const MAX_CONNECTIONS = 256;

/** Builds a TargetPool. */
export function createTargetPool(plugins: PluginRegistry, options: TargetPoolOptions = {}): TargetPool {
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const credentials = options.credentials ?? createCredentialService();
  const cache = new Map<
    string,
    {
      configVersion: number;
      client: ScimClient;
      /** What the client was made from, for the clients of leases. */
      clientOptions: ScimClientOptions;
      breaker: CircuitBreaker;
      plugin: ProvisioningPlugin<unknown>;
      ctx: PluginContext<unknown>;
    }
  >();

  function entry(provider: ProviderForSync) {
    const cached = cache.get(provider.id);
    if (cached && cached.configVersion === provider.configVersion) return cached;
    if (cached) void cached.client.close().catch(() => undefined);
    const plugin = plugins.get(provider.plugin);
    if (!plugin)
      throw new ScimflowError('ERR_CONFIG', `provider ${provider.slug} uses unknown plugin "${provider.plugin}"`);
    const parsed = plugin.optionsSchema.safeParse(provider.pluginOptions);
    if (!parsed.success) {
      throw new ScimflowError('ERR_CONFIG', `provider ${provider.slug} has invalid plugin options`, {
        details: { issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) },
      });
    }
    const rateLimit = provider.rateLimit ?? plugin.rateLimits;
    const budgetKey = plugin.budgetKey?.(parsed.data);
    const clientOptions: ScimClientOptions = {
      baseUrl: provider.baseUrl,
      credential: credentials.credentialFor(provider),
      ...(rateLimit && options.budgets
        ? {
            limiter: options.budgets.forTarget(provider.baseUrl, rateLimit, budgetKey),
            // The provider's own limit says what it paces; else the plugin's documented one does.
            paced: rateLimit.paced ?? 'all',
          }
        : {}),
      // A full sync runs `concurrency` batches at once, each with `concurrency` objects in flight: one socket each,
      // or requests queue in the pool (4 sockets for 16 requests sent a 50 ms target a quarter of what it allows).
      connections: Math.min(Math.max(provider.concurrency ** 2, options.connections ?? 0), MAX_CONNECTIONS),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    };
    const client = createScimClient(clientOptions);
    const created = {
      configVersion: provider.configVersion,
      client,
      clientOptions,
      // A new configuration (a fixed URL or token) starts with a closed breaker.
      breaker: new CircuitBreaker(options.breaker),
      plugin,
      ctx: { providerId: provider.id, configVersion: provider.configVersion, client, options: parsed.data },
    };
    cache.set(provider.id, created);
    return created;
  }

  /** A target whose objects share `slots` request slots, sending through `client` (the cached one, or a lease's). */
  function target(
    { plugin, ctx, breaker }: ReturnType<typeof entry>,
    client: ScimClient,
    slots: RequestSlots,
    signal: AbortSignal | undefined,
  ): Target {
    // What the objects' retrying views share; each has its own budget.
    const shared = { signal, slots, breaker, onWait: beatWhileWaiting };
    const forObject = (): Target => ({
      plugin,
      ctx: { ...ctx, client: withRetries(client, { ...shared, budget: new RetryBudget(policy) }) },
      forObject,
    });
    return forObject();
  }

  return {
    get(provider, signal) {
      const cached = entry(provider);
      return target(cached, cached.client, new RequestSlots(provider.concurrency), signal);
    },
    lease(provider, signal) {
      const cached = entry(provider);
      const { concurrency } = provider;
      const client = createScimClient({ ...cached.clientOptions, connections: concurrency, queueBehind: true });
      // Twice the sockets: one request in flight on each, and one waiting behind it.
      const leased = target(cached, client, new RequestSlots(2 * concurrency), signal);
      return { ...leased, release: () => void client.close().catch(() => undefined) };
    },
    breaker: (providerId) => cache.get(providerId)?.breaker,
    async closeAll() {
      const clients = [...cache.values()].map((cached) => cached.client);
      cache.clear();
      await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
      await options.budgets?.closeAll();
    },
  };
}
