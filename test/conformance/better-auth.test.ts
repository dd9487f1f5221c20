/**
 * The conformance kit for the standard plugin against better-auth's SCIM plugin (`@better-auth/scim`), the second
 * independent SCIM 2.0 implementation beside SCIMMY. better-auth filters on `attribute eq "value"` alone: an `or`
 * answers 400 invalidFilter, though its ServiceProviderConfig says filter supported (maxResults 100). A provider
 * tells scimflow so with `capabilities: { filterOr: false }`, and the kit runs with that override: objects are then
 * looked up one by one. Everything else the kit needs it has: PATCH add and `members[value eq …]` remove, adoption
 * by a userName filter, DELETE, pages of 100.
 */
import { describeConformance } from './kit.ts';
import { startBetterAuthTarget } from '../servers/index.ts';

describeConformance({
  plugin: 'scim2',
  against: "better-auth's SCIM plugin",
  start: () => startBetterAuthTarget(),
  capabilities: { filterOr: false },
  deprovisioned: 'deleted',
});
