/**
 * Salesforce (`https://MY_DOMAIN.my.salesforce.com/services/scim/v2`). Sources, on help.salesforce.com: "SCIM and
 * REST API Reference Sheet" (identity_scim_rest_api.htm: ServiceProviderConfigs, plural; Users are created, read,
 * updated and deactivated; Groups, the public groups, are read and updated), "Example: Create Users with SCIM"
 * (identity_scim_create_users.htm: "include all required fields", the profile as `entitlements: [{"value":
 * "<profile id>"}]`, and `"primary": "true"` as a string), "Examples: Deactivate and Reactivate Users with SCIM"
 * (identity_scim_deactivate_reactivate_user.htm: "you deactivate user objects rather than deleting them", by
 * `active: false`), and the ServiceProviderConfigs example (no bulk, filter maxResults 200). authentik's `sfdc`
 * compatibility mode reads ServiceProviderConfigs for the same reason. Tokens are OAuth 2.0 access tokens (the
 * provider's `oauth-client-credentials` auth).
 */
import * as z from 'zod';
import { createScimPlugin, vendorOptions, type ScimEngineDeps } from '../engine/index.ts';
import type { VendorHooks } from '../sdk.ts';

/** The `salesforce` plugin's options. */
export const SalesforceOptionsSchema = vendorOptions({
  /** The id of the Profile every user is created with (Salesforce requires one), e.g. `00e5g000001AbCdEFG`. */
  profileId: z.string().regex(/^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$/, 'must be a 15- or 18-character Salesforce id'),
});
export type SalesforceOptions = z.output<typeof SalesforceOptionsSchema>;

/** The hooks of the `salesforce` plugin. */
export const salesforceVendor: VendorHooks<SalesforceOptions> = {
  id: 'salesforce',
  description: 'Salesforce (ServiceProviderConfigs, profile entitlement on every user, deactivation only)',
  optionsSchema: SalesforceOptionsSchema,
  discoveryPaths: () => ['/ServiceProviderConfigs'],
  capabilities: (found) => ({
    userDelete: 'deactivate',
    bulk: { supported: false, maxOperations: 0 },
    maxPageSize: Math.min(found.maxPageSize, 200),
  }),
  // The profile is an entitlement; one the mappings already set (another profile, permission sets) is kept.
  shapeUser: (user, options) => {
    const entitlements = (user.entitlements ?? []) as Array<{ value: string }>;
    return entitlements.length > 0 ? user : { ...user, entitlements: [{ value: options.profileId }] };
  },
};

/** Creates the `salesforce` plugin. */
export function createSalesforcePlugin(deps: ScimEngineDeps = {}) {
  return createScimPlugin(salesforceVendor, deps);
}
