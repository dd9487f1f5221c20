import { createCredentialService, type CredentialService } from '../auth/credentials.ts';
import type { ProviderForSync } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';
import type { PluginContext, PluginRegistry, ProvisioningPlugin } from '../plugins/index.ts';
import type { RateBudgets } from '../budget/index.ts';
import { createScimClient, type ScimClient } from '../scim/index.ts';

/** A provider's plugin plus a ready context (authenticated, pooled client). */
export interface Target {
  plugin: ProvisioningPlugin<unknown>;
  ctx: PluginContext<unknown>;
}

/** Hands out one pooled SCIM client per provider, replaced when the provider's configuration changes. */
export interface TargetPool {
  get(provider: ProviderForSync): Target;
  closeAll(): Promise<void>;
}

/**
 * Builds a TargetPool; `clientOptions` tunes every client (tests shorten timeouts), `credentials` authenticates them
 * (default: a service without interactive grants). With `budgets`, the requests of a provider with a rate limit (its
 * own, else its plugin's) pass the target's shared rate budget; `closeAll` closes them.
 */
export function createTargetPool(
  plugins: PluginRegistry,
  clientOptions: {
    timeoutMs?: number;
    connections?: number;
    credentials?: CredentialService;
    budgets?: RateBudgets;
  } = {},
): TargetPool {
  const credentials = clientOptions.credentials ?? createCredentialService();
  const cache = new Map<string, { configVersion: number; client: ScimClient; target: Target }>();
  return {
    get(provider) {
      const cached = cache.get(provider.id);
      if (cached && cached.configVersion === provider.configVersion) return cached.target;
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
      const client = createScimClient({
        baseUrl: provider.baseUrl,
        credential: credentials.credentialFor(provider),
        ...(rateLimit && clientOptions.budgets
          ? { limiter: clientOptions.budgets.forTarget(provider.baseUrl, rateLimit) }
          : {}),
        connections: Math.max(provider.concurrency, clientOptions.connections ?? 0) || 4,
        ...(clientOptions.timeoutMs === undefined ? {} : { timeoutMs: clientOptions.timeoutMs }),
      });
      const target: Target = {
        plugin,
        ctx: { providerId: provider.id, configVersion: provider.configVersion, client, options: parsed.data },
      };
      cache.set(provider.id, { configVersion: provider.configVersion, client, target });
      return target;
    },
    async closeAll() {
      const clients = [...cache.values()].map((entry) => entry.client);
      cache.clear();
      await Promise.all(clients.map((client) => client.close().catch(() => undefined)));
      await clientOptions.budgets?.closeAll();
    },
  };
}
