/**
 * The standard SCIM 2.0 plugin: capabilities from /ServiceProviderConfig and /ResourceTypes, adoption by filter,
 * PUT for users, and PATCH (or PUT) for groups with member changes chunked to what the target accepts.
 */
import * as z from 'zod';
import { ScimRequestError } from '../../errors/index.ts';
import {
  listResponseSchema,
  RemoteGroupSchema,
  RemoteUserSchema,
  SCHEMA_PATCH_OP,
  ServiceProviderConfigSchema,
  type PatchOperation,
  type ScimGroup,
  type ScimUser,
  type ServiceProviderConfig,
} from '../../scim/index.ts';
import type { Capabilities, MatchKeys, PluginContext, ProvisioningPlugin } from '../sdk.ts';
import { chunk, diffGroup, isUnchanged, patchRequests } from './group-changes.ts';
import { findMany, findOne, type LookupKind } from './lookup.ts';
import { MAX_MEMBERS_PER_REQUEST, Scim2OptionsSchema, type Scim2Options } from './schema.ts';

export { Scim2OptionsSchema, type Scim2Options } from './schema.ts';

/** Dependencies of the plugin factory; tests shorten the cache or move the clock. */
export interface Scim2PluginDeps {
  /** How long discovered capabilities stay cached per provider. @default 3600000 (1 hour) */
  discoveryTtlMs?: number;
  /** The clock the cache reads. @default Date.now */
  now?: () => number;
}

/** Members per request when the target advertises no bulk limit. */
const DEFAULT_MEMBERS_PER_REQUEST = 100;

/** What a target that has no ServiceProviderConfig is assumed to support. */
const ASSUMED_SPC: ServiceProviderConfig = ServiceProviderConfigSchema.parse({ filter: { supported: true } });

/** ResourceTypes entries, read leniently: only what identifies a Group type matters here. */
const ResourceTypesSchema = z.union([
  listResponseSchema(z.looseObject({})),
  z.array(z.looseObject({})).transform((Resources) => ({ Resources })),
]);

type Ctx = PluginContext<Scim2Options>;

const USERS: LookupKind<ScimUser> = { endpoint: '/Users', nameAttribute: 'userName', schema: RemoteUserSchema };
const GROUPS: LookupKind<ScimGroup> = { endpoint: '/Groups', nameAttribute: 'displayName', schema: RemoteGroupSchema };

/** Creates the standard SCIM 2.0 plugin, with its own per-provider discovery cache. */
export function createScim2Plugin(deps: Scim2PluginDeps = {}) {
  const ttlMs = deps.discoveryTtlMs ?? 3_600_000;
  const now = deps.now ?? Date.now;
  const cache = new Map<string, { configVersion: number; expiresAt: number; capabilities: Promise<Capabilities> }>();

  function capabilities(ctx: Ctx): Promise<Capabilities> {
    const cached = cache.get(ctx.providerId);
    if (cached !== undefined && cached.configVersion === ctx.configVersion && cached.expiresAt > now()) {
      return cached.capabilities;
    }
    const entry = { configVersion: ctx.configVersion, expiresAt: now() + ttlMs, capabilities: discover(ctx) };
    cache.set(ctx.providerId, entry);
    // A failed discovery is forgotten so the next call asks the target again.
    entry.capabilities.catch(() => {
      if (cache.get(ctx.providerId) === entry) cache.delete(ctx.providerId);
    });
    return entry.capabilities;
  }

  async function usePatch(ctx: Ctx): Promise<boolean> {
    if (ctx.options.groupUpdate !== 'auto') return ctx.options.groupUpdate === 'patch';
    return (await capabilities(ctx)).patch;
  }

  async function patch(ctx: Ctx, path: string, operations: PatchOperation[]): Promise<void> {
    await ctx.client.request('PATCH', path, { body: { schemas: [SCHEMA_PATCH_OP], Operations: operations } });
  }

  async function readGroup(ctx: Ctx, remoteId: string): Promise<ScimGroup> {
    const path = groupPath(remoteId);
    const response = await ctx.client.request('GET', path, { schema: RemoteGroupSchema });
    if (response.body === undefined) throw emptyBody('GET', path, response.status);
    return response.body;
  }

  return {
    id: 'scim2',
    description: 'Standard SCIM 2.0 (RFC 7643/7644) target, capabilities discovered from ServiceProviderConfig',
    optionsSchema: Scim2OptionsSchema,

    capabilities,

    async findUser(ctx, keys: MatchKeys) {
      return (await capabilities(ctx)).filter ? findOne(ctx.client, USERS, keys) : null;
    },

    // One combined filter per 50 users instead of one or two GETs each; a target that cannot filter has nothing to adopt.
    async findUsers(ctx, keys: readonly MatchKeys[]) {
      return (await capabilities(ctx)).filter ? findMany(ctx.client, USERS, keys) : keys.map(() => null);
    },

    async createUser(ctx, user) {
      const response = await ctx.client.request('POST', '/Users', {
        body: withoutServerFields(user),
        schema: RemoteUserSchema,
      });
      if (response.body === undefined) throw emptyBody('POST', '/Users', response.status);
      return { id: response.body.id, resource: response.body };
    },

    async updateUser(ctx, remoteId, user, _previous) {
      await ctx.client.request('PUT', userPath(remoteId), { body: { ...withoutServerFields(user), id: remoteId } });
    },

    async deactivateUser(ctx, remoteId, user) {
      const path = userPath(remoteId);
      if ((await capabilities(ctx)).patch) {
        await patch(ctx, path, [{ op: 'replace', path: 'active', value: false }]);
        return;
      }
      let current = user;
      if (current === null) {
        const response = await ctx.client.request('GET', path, { schema: RemoteUserSchema });
        if (response.body === undefined) throw emptyBody('GET', path, response.status);
        current = response.body;
      }
      await ctx.client.request('PUT', path, { body: { ...withoutServerFields(current), id: remoteId, active: false } });
    },

    async deleteUser(ctx, remoteId) {
      await deleteIgnoringMissing(ctx, userPath(remoteId));
    },

    async findGroup(ctx, keys: MatchKeys) {
      return (await capabilities(ctx)).filter ? findOne(ctx.client, GROUPS, keys) : null;
    },

    async findGroups(ctx, keys: readonly MatchKeys[]) {
      return (await capabilities(ctx)).filter ? findMany(ctx.client, GROUPS, keys) : keys.map(() => null);
    },

    async createGroup(ctx, group) {
      const limit = (await capabilities(ctx)).maxMembersPerRequest;
      const members = group.members ?? [];
      const body = withoutServerFields(group);
      if (group.members !== undefined) body.members = members.slice(0, limit);
      const response = await ctx.client.request('POST', '/Groups', { body, schema: RemoteGroupSchema });
      if (response.body === undefined) throw emptyBody('POST', '/Groups', response.status);
      const created = response.body;
      const rest = members.slice(limit);
      if (rest.length > 0) {
        // A failure here leaves the group on the target with part of its members; the next attempt adopts it
        // (findGroup) and updateGroup adds the rest.
        const path = groupPath(created.id);
        if (await usePatch(ctx)) {
          for (const part of chunk(rest, limit)) {
            await patch(ctx, path, [
              { op: 'add', path: 'members', value: part.map((member) => ({ value: member.value })) },
            ]);
          }
        } else {
          await ctx.client.request('PUT', path, { body: { ...withoutServerFields(group), id: created.id, members } });
        }
      }
      return { id: created.id, resource: { ...created, ...(group.members === undefined ? {} : { members }) } };
    },

    async updateGroup(ctx, remoteId, group, previous) {
      const current = previous ?? (await readGroup(ctx, remoteId));
      const changes = diffGroup(current, group);
      if (isUnchanged(changes)) return;
      const path = groupPath(remoteId);
      if (await usePatch(ctx)) {
        const limit = (await capabilities(ctx)).maxMembersPerRequest;
        for (const operations of patchRequests(changes, limit)) await patch(ctx, path, operations);
        return;
      }
      const members = group.members ?? current.members ?? [];
      await ctx.client.request('PUT', path, { body: { ...withoutServerFields(group), id: remoteId, members } });
    },

    async deleteGroup(ctx, remoteId) {
      await deleteIgnoringMissing(ctx, groupPath(remoteId));
    },
  } satisfies ProvisioningPlugin<Scim2Options>;
}

/** Reads the ServiceProviderConfig and ResourceTypes of the target and derives its capabilities. */
async function discover(ctx: Ctx): Promise<Capabilities> {
  const spc = await readServiceProviderConfig(ctx);
  const groups = await hasGroups(ctx);
  const advertised =
    spc.bulk.supported && spc.bulk.maxOperations > 0 ? spc.bulk.maxOperations : DEFAULT_MEMBERS_PER_REQUEST;
  return Object.freeze({
    patch: spc.patch.supported,
    groups,
    filter: spc.filter.supported,
    bulk: Object.freeze({ supported: spc.bulk.supported, maxOperations: spc.bulk.maxOperations }),
    maxMembersPerRequest: ctx.options.maxMembersPerRequest ?? Math.min(advertised, MAX_MEMBERS_PER_REQUEST),
    userDelete: 'delete' as const,
  });
}

async function readServiceProviderConfig(ctx: Ctx): Promise<ServiceProviderConfig> {
  try {
    const { body } = await ctx.client.request('GET', ctx.options.discoveryPath, {
      schema: ServiceProviderConfigSchema,
    });
    return body ?? ASSUMED_SPC;
  } catch (error) {
    if (error instanceof ScimRequestError && error.code === 'ERR_SCIM_NOT_FOUND') return ASSUMED_SPC;
    throw error;
  }
}

async function hasGroups(ctx: Ctx): Promise<boolean> {
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

function userPath(remoteId: string): string {
  return `/Users/${encodeURIComponent(remoteId)}`;
}

function groupPath(remoteId: string): string {
  return `/Groups/${encodeURIComponent(remoteId)}`;
}

async function deleteIgnoringMissing(ctx: Ctx, path: string): Promise<void> {
  try {
    await ctx.client.request('DELETE', path);
  } catch (error) {
    if (error instanceof ScimRequestError && error.code === 'ERR_SCIM_NOT_FOUND') return;
    throw error;
  }
}

/** The resource without what only the server may set. */
function withoutServerFields<T extends ScimUser | ScimGroup>(resource: T): Record<string, unknown> {
  const { id: _id, meta: _meta, ...rest } = resource;
  return rest;
}

function emptyBody(method: string, path: string, status: number): ScimRequestError {
  return new ScimRequestError(
    'ERR_SCIM_INVALID_RESPONSE',
    `SCIM ${method} ${path} returned ${status} without the resource in its body`,
    { status, method, path },
  );
}
