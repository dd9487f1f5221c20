/** Provisioning plugins: the contract, the built-in plugins, and the registry the engine looks them up in. */
import { ScimflowError } from '../errors/index.ts';
import type { PluginRegistry } from './sdk.ts';
import { createAwsPlugin } from './aws/index.ts';
import { createSalesforcePlugin } from './salesforce/index.ts';
import { createScim2Plugin } from './scim2/index.ts';
import { createSlackPlugin } from './slack/index.ts';
import { createWebexPlugin } from './webex/index.ts';

export type {
  BatchLookupResult,
  Capabilities,
  MatchKeys,
  PluginContext,
  PluginRegistry,
  ProvisioningPlugin,
  RemoteObject,
  VendorHooks,
  CommonOptions,
  MemberReference,
  VendorRateLimits,
} from './sdk.ts';
export { createScimPlugin, vendorOptions, type ScimEngineDeps, type ScimPlugin } from './engine/index.ts';
export { LOOKUP_CHUNK } from './engine/lookup.ts';
export { AwsOptionsSchema, createAwsPlugin, type AwsOptions } from './aws/index.ts';
export { createSalesforcePlugin, SalesforceOptionsSchema, type SalesforceOptions } from './salesforce/index.ts';
export { createSlackPlugin, SlackOptionsSchema, type SlackOptions } from './slack/index.ts';
export { createWebexPlugin, WebexOptionsSchema, type WebexOptions } from './webex/index.ts';
export { createScim2Plugin, Scim2OptionsSchema, type Scim2Options, type Scim2PluginDeps } from './scim2/index.ts';

/** A registry holding every built-in plugin, each with a fresh discovery cache. */
export function createPluginRegistry(): PluginRegistry {
  const plugins = [
    createScim2Plugin(),
    createAwsPlugin(),
    createSlackPlugin(),
    createSalesforcePlugin(),
    createWebexPlugin(),
  ];
  return new Map(plugins.map((plugin) => [plugin.id, plugin]));
}

/**
 * Validates and defaults `options` for the plugin `pluginId` (missing options count as `{}`). Throws ERR_CONFIG
 * for an unknown plugin, for invalid options with each zod issue's path in `details.issues`, or for a `baseUrl`
 * (when given) the plugin says is not its vendor's form, with `details.baseUrl` naming what is wrong.
 */
export function resolvePluginOptions(
  registry: PluginRegistry,
  pluginId: string,
  options: unknown,
  baseUrl?: string,
): unknown {
  const plugin = registry.get(pluginId);
  if (plugin === undefined) {
    throw new ScimflowError('ERR_CONFIG', `unknown plugin "${pluginId}"`, {
      details: { plugin: pluginId, known: [...registry.keys()] },
    });
  }
  const parsed = plugin.optionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.flatMap((issue) => {
      const path = issue.path.map(String);
      // An unknown key is reported at its parent; name the key itself, as a person would look for it.
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => ({ path: [...path, key].join('.'), message: 'unknown option' }));
      }
      return [{ path: path.join('.'), message: issue.message }];
    });
    throw new ScimflowError(
      'ERR_CONFIG',
      `invalid options for plugin "${pluginId}": ${issues.map((issue) => `${issue.path || '(root)'}: ${issue.message}`).join('; ')}`,
      { details: { plugin: pluginId, issues } },
    );
  }
  const problem = baseUrl === undefined ? undefined : plugin.checkBaseUrl?.(baseUrl);
  if (problem !== undefined) {
    throw new ScimflowError('ERR_CONFIG', `baseUrl does not suit plugin "${pluginId}": ${problem}`, {
      details: { plugin: pluginId, issues: [{ path: 'baseUrl', message: problem }] },
    });
  }
  return parsed.data;
}
