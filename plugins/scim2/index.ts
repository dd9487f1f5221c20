/**
 * The standard SCIM 2.0 plugin: capabilities from /ServiceProviderConfig and /ResourceTypes, adoption by filter,
 * PUT for users, and PATCH (or PUT) for groups with member changes chunked to what the target accepts.
 */
import * as z from 'zod';
import { ScimflowError, ScimRequestError } from '../../errors/index.ts';
import {
  eqFilter,
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
import type { Capabilities, MatchKeys, PluginContext, ProvisioningPlugin, RemoteObject } from '../sdk.ts';
import { chunk, diffGroup, isUnchanged, patchRequests } from './group-changes.ts';
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

  // zod compiles a parser per schema instance: build each list schema once, not once per request.
  const listSchemas = new WeakMap<z.ZodType, z.ZodType>();
  function listSchemaOf<T>(schema: z.ZodType<T>) {
    let list = listSchemas.get(schema) as ReturnType<typeof listResponseSchema<z.ZodType<T>>> | undefined;
    if (!list) {
      list = listResponseSchema(schema);
      listSchemas.set(schema, list);
    }
    return list;
  }

  async function findOne<T extends ScimUser | ScimGroup>(
    ctx: Ctx,
    endpoint: '/Users' | '/Groups',
    schema: z.ZodType<T & { id: string }>,
    attempts: ReadonlyArray<{ attribute: 'externalId' | 'userName' | 'displayName'; value: string | undefined }>,
  ): Promise<RemoteObject<T> | null> {
    if (!(await capabilities(ctx)).filter) return null;
    for (const { attribute, value } of attempts) {
      if (value === undefined || value === '') continue;
      const { body } = await ctx.client.request('GET', endpoint, {
        query: { filter: eqFilter(attribute, value), count: 2 },
        schema: listSchemaOf(schema),
      });
      // Keep only true matches: a target that ignores the filter must not make us adopt a stranger.
      const matches = (body?.Resources ?? []).filter((resource) => sameValue(attribute, resource[attribute], value));
      if (matches.length > 1) {
        throw new ScimflowError(
          'ERR_SCIM_CONFLICT',
          `${matches.length} objects on the target at ${endpoint} match ${attribute} ${JSON.stringify(value)}; cannot choose one to adopt`,
          { details: { endpoint, attribute, matches: matches.map((match) => match.id) } },
        );
      }
      const [match] = matches;
      if (match !== undefined) return { id: match.id, resource: match };
    }
    return null;
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

    findUser(ctx, keys: MatchKeys) {
      return findOne<ScimUser>(ctx, '/Users', RemoteUserSchema, [
        { attribute: 'externalId', value: keys.externalId },
        { attribute: 'userName', value: keys.name },
      ]);
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

    findGroup(ctx, keys: MatchKeys) {
      return findOne<ScimGroup>(ctx, '/Groups', RemoteGroupSchema, [
        { attribute: 'externalId', value: keys.externalId },
        { attribute: 'displayName', value: keys.name },
      ]);
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

/** userName and displayName compare case-insensitively (RFC 7643 caseExact=false); externalId exactly. */
function sameValue(attribute: string, actual: unknown, wanted: string): boolean {
  if (typeof actual !== 'string') return false;
  return attribute === 'externalId' ? actual === wanted : actual.toLowerCase() === wanted.toLowerCase();
}

function emptyBody(method: string, path: string, status: number): ScimRequestError {
  return new ScimRequestError(
    'ERR_SCIM_INVALID_RESPONSE',
    `SCIM ${method} ${path} returned ${status} without the resource in its body`,
    { status, method, path },
  );
}
