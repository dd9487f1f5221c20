/**
 * What a target supports: read from its ServiceProviderConfig and ResourceTypes, then corrected by what the vendor
 * is known to do, then by what the provider says (in that order, the last word winning).
 */
import * as z from 'zod';
import { ScimflowError, ScimRequestError } from '../../errors/index.ts';
import { listResponseSchema, ServiceProviderConfigSchema, type ServiceProviderConfig } from '../../scim/index.ts';
import type { Capabilities, CommonOptions, PluginContext, VendorHooks } from '../sdk.ts';
import { MAX_MEMBERS_PER_REQUEST } from './options.ts';

/** Members per request when the target advertises no bulk limit. */
const DEFAULT_MEMBERS_PER_REQUEST = 100;

/** Page size assumed when the target advertises no `filter.maxResults`. */
const DEFAULT_PAGE_SIZE = 1000;

/** What a target that has no ServiceProviderConfig is assumed to support. */
const ASSUMED_SPC: ServiceProviderConfig = ServiceProviderConfigSchema.parse({ filter: { supported: true } });

/** ResourceTypes entries, read leniently: only what identifies a Group type matters here. */
const ResourceTypesSchema = z.union([
  listResponseSchema(z.looseObject({})),
  z.array(z.looseObject({})).transform((Resources) => ({ Resources })),
]);

/** Discovers the capabilities of the provider's target as the vendor's hooks and the provider's options correct them. */
export async function discoverCapabilities<Options extends CommonOptions>(
  vendor: VendorHooks<Options>,
  ctx: PluginContext<Options>,
): Promise<Capabilities> {
  const problem = vendor.checkBaseUrl?.(new URL(ctx.client.baseUrl));
  if (problem !== undefined) {
    throw new ScimflowError('ERR_CONFIG', `plugin ${vendor.id}: ${problem}`, { details: { plugin: vendor.id } });
  }
  // Both documents at once: each is a round trip to the target, and neither depends on the other.
  const [spcRead, groupsRead] = await Promise.allSettled([
    readServiceProviderConfig(ctx, vendor.discoveryPaths?.(ctx.options) ?? ['/ServiceProviderConfig']),
    hasGroups(ctx),
  ]);
  // A failure of both is reported as the ServiceProviderConfig's, as when they were read one after the other.
  if (spcRead.status === 'rejected') throw spcRead.reason;
  if (groupsRead.status === 'rejected') throw groupsRead.reason;
  const spc = spcRead.value;
  const groups = groupsRead.value;
  const advertised =
    spc.bulk.supported && spc.bulk.maxOperations > 0 ? spc.bulk.maxOperations : DEFAULT_MEMBERS_PER_REQUEST;
  const discovered: Capabilities = {
    patch: spc.patch.supported,
    groups,
    filter: spc.filter.supported,
    bulk: { supported: spc.bulk.supported, maxOperations: spc.bulk.maxOperations },
    maxMembersPerRequest: Math.min(advertised, MAX_MEMBERS_PER_REQUEST),
    userDelete: 'delete',
    groupPut: true,
    memberReadBack: true,
    filterOr: true,
    maxPageSize: spc.filter.maxResults > 0 ? spc.filter.maxResults : DEFAULT_PAGE_SIZE,
  };
  const known = vendor.capabilities?.(discovered, ctx.options) ?? {};
  const merged: Capabilities = { ...discovered, ...known, ...definedOnly(ctx.options.capabilities ?? {}) };
  return Object.freeze({ ...merged, bulk: Object.freeze({ ...merged.bulk }) });
}

async function readServiceProviderConfig(
  ctx: PluginContext<CommonOptions>,
  paths: readonly string[],
): Promise<ServiceProviderConfig> {
  for (const path of paths) {
    try {
      const { body } = await ctx.client.request('GET', path, { schema: ServiceProviderConfigSchema });
      return body ?? ASSUMED_SPC;
    } catch (error) {
      if (error instanceof ScimRequestError && error.code === 'ERR_SCIM_NOT_FOUND') continue;
      throw error;
    }
  }
  return ASSUMED_SPC;
}

async function hasGroups(ctx: PluginContext<CommonOptions>): Promise<boolean> {
  try {
    const { body } = await ctx.client.request('GET', '/ResourceTypes', { schema: ResourceTypesSchema });
    if (body === undefined) return true;
    return body.Resources.some(
      (type) =>
        type.name === 'Group' ||
        type.endpoint === '/Groups' ||
        type.schema === 'urn:ietf:params:scim:schemas:core:2.0:Group',
    );
  } catch (error) {
    // No ResourceTypes endpoint says nothing about Groups; assume the common case.
    if (error instanceof ScimRequestError && (error.status === 404 || error.status === 501)) return true;
    throw error;
  }
}

/** The keys of an override that are set; an `undefined` one overrides nothing. */
function definedOnly(value: NonNullable<CommonOptions['capabilities']>): Partial<Capabilities> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}
