/**
 * The standard SCIM 2.0 plugin: the engine with no vendor quirks. Capabilities come from /ServiceProviderConfig (at
 * `discoveryPath`) and /ResourceTypes; `groupUpdate` and `maxMembersPerRequest` let a provider steer group changes.
 */
import { createScimPlugin, type ScimEngineDeps } from '../engine/index.ts';
import type { VendorHooks } from '../sdk.ts';
import { Scim2OptionsSchema, type Scim2Options } from './schema.ts';

export { Scim2OptionsSchema, type Scim2Options } from './schema.ts';

/** Dependencies of the plugin factory; tests shorten the cache or move the clock. */
export type Scim2PluginDeps = ScimEngineDeps;

/** The standard plugin's hooks: only the options the RFC leaves open. */
export const scim2Vendor: VendorHooks<Scim2Options> = {
  id: 'scim2',
  description: 'Standard SCIM 2.0 (RFC 7643/7644) target, capabilities discovered from ServiceProviderConfig',
  optionsSchema: Scim2OptionsSchema,
  discoveryPaths: (options) => [options.discoveryPath],
  capabilities: (_discovered, options) =>
    options.maxMembersPerRequest === undefined ? {} : { maxMembersPerRequest: options.maxMembersPerRequest },
  groupUpdate: (options) => options.groupUpdate,
};

/** Creates the standard SCIM 2.0 plugin, with its own per-provider discovery cache. */
export function createScim2Plugin(deps: Scim2PluginDeps = {}) {
  return createScimPlugin(scim2Vendor, deps);
}
