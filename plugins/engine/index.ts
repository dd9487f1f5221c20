/**
 * The one SCIM engine every plugin is: standard SCIM 2.0 (adoption by filter, PUT for users, PATCH or PUT for
 * groups with member changes chunked to what the target accepts), bent to a vendor's quirks by its hooks. It honours
 * every capability: no PATCH without `patch`, no group PUT without `groupPut`, no `or` filter without `filterOr`, no
 * page larger than `maxPageSize`, no request with more than `maxMembersPerRequest` member values.
 */
import { ScimflowError, ScimRequestError } from '../../errors/index.ts';
import {
  RemoteGroupSchema,
  RemoteUserSchema,
  SCHEMA_PATCH_OP,
  type PatchOperation,
  type ScimClient,
  type ScimGroup,
  type ScimUser,
} from '../../scim/index.ts';
import type { Capabilities, CommonOptions, MatchKeys, PluginContext, ProvisioningPlugin, VendorHooks } from '../sdk.ts';
import { discoverCapabilities } from './discovery.ts';
import { chunk, diffGroup, isUnchanged, patchRequests, RFC_MEMBER_STYLE, type MemberStyle } from './group-changes.ts';
import { findMany, findOne, LOOKUP_CHUNK, type LookupKind } from './lookup.ts';
import { readMemberPages } from './member-pages.ts';

export { CapabilityOverridesSchema, MAX_MEMBERS_PER_REQUEST, vendorOptions } from './options.ts';

/** Dependencies of the engine; tests shorten the discovery cache or move the clock. */
export interface ScimEngineDeps {
  /** How long discovered capabilities stay cached per provider. @default 3600000 (1 hour) */
  discoveryTtlMs?: number;
  /** The clock the cache reads. @default Date.now */
  now?: () => number;
}

const USERS: LookupKind<ScimUser> = { endpoint: '/Users', nameAttribute: 'userName', schema: RemoteUserSchema };
const GROUPS: LookupKind<ScimGroup> = { endpoint: '/Groups', nameAttribute: 'displayName', schema: RemoteGroupSchema };

/** A plugin the engine built: the contract with its batch lookups, and the hooks it was built from. */
export type ScimPlugin<Options extends CommonOptions> = ProvisioningPlugin<Options> &
  Required<Pick<ProvisioningPlugin<Options>, 'findUsers' | 'findGroups'>> & { readonly vendor: VendorHooks<Options> };

/** Builds a plugin from a vendor's hooks, with its own per-provider discovery cache. */
export function createScimPlugin<Options extends CommonOptions>(
  vendor: VendorHooks<Options>,
  deps: ScimEngineDeps = {},
): ScimPlugin<Options> {
  type Ctx = PluginContext<Options>;
  const ttlMs = deps.discoveryTtlMs ?? 3_600_000;
  const now = deps.now ?? Date.now;
  const cache = new Map<string, { configVersion: number; expiresAt: number; capabilities: Promise<Capabilities> }>();
  const style: MemberStyle = {
    reference: vendor.memberReference ?? RFC_MEMBER_STYLE.reference,
    removal: vendor.memberRemoval ?? RFC_MEMBER_STYLE.removal,
  };
  const shapeUser = (user: ScimUser, options: Options): ScimUser => vendor.shapeUser?.(user, options) ?? user;
  const shapeGroup = (group: ScimGroup, options: Options): ScimGroup => vendor.shapeGroup?.(group, options) ?? group;

  /** The context's client, with the vendor's error translation on every failed request. */
  function client(ctx: Ctx): ScimClient {
    const translate = vendor.translateError;
    if (translate === undefined) return ctx.client;
    return {
      baseUrl: ctx.client.baseUrl,
      close: () => ctx.client.close(),
      async request(method, path, options) {
        try {
          return await ctx.client.request(method, path, options);
        } catch (error) {
          throw (error instanceof ScimRequestError ? translate(error) : undefined) ?? error;
        }
      },
    };
  }

  function capabilities(ctx: Ctx): Promise<Capabilities> {
    const cached = cache.get(ctx.providerId);
    if (cached !== undefined && cached.configVersion === ctx.configVersion && cached.expiresAt > now()) {
      return cached.capabilities;
    }
    const entry = {
      configVersion: ctx.configVersion,
      expiresAt: now() + ttlMs,
      capabilities: discoverCapabilities(vendor, { ...ctx, client: client(ctx) }),
    };
    cache.set(ctx.providerId, entry);
    // A failed discovery is forgotten so the next call asks the target again.
    entry.capabilities.catch(() => {
      if (cache.get(ctx.providerId) === entry) cache.delete(ctx.providerId);
    });
    return entry.capabilities;
  }

  /** Whether group changes go by PATCH: the vendor's or provider's choice when the target allows it. */
  function usePatch(ctx: Ctx, caps: Capabilities): boolean {
    const choice = vendor.groupUpdate?.(ctx.options) ?? 'auto';
    if (choice === 'patch' || !caps.groupPut) return true;
    if (choice === 'put') return false;
    return caps.patch;
  }

  async function patch(ctx: Ctx, path: string, operations: PatchOperation[]): Promise<void> {
    // Nothing reads the answer: a target may send the whole group back after each chunk of its members.
    await client(ctx).request('PATCH', path, {
      body: { schemas: [SCHEMA_PATCH_OP], Operations: operations },
      discardBody: true,
    });
  }

  async function readGroup(ctx: Ctx, remoteId: string): Promise<ScimGroup> {
    const path = groupPath(remoteId);
    const response = await client(ctx).request('GET', path, { schema: RemoteGroupSchema });
    if (response.body === undefined) throw emptyBody('GET', path, response.status);
    if (vendor.memberPages === undefined) return response.body;
    return { ...response.body, members: await readMemberPages(client(ctx), vendor.memberPages, remoteId) };
  }

  /** The group as sent: shaped by the vendor, members as its references. */
  function groupBody(ctx: Ctx, group: ScimGroup, members: readonly string[] | undefined): Record<string, unknown> {
    const body: ScimGroup = { ...withoutServerFields(group) } as ScimGroup;
    if (members === undefined) delete body.members;
    else body.members = members.map((id) => style.reference(id));
    return shapeGroup(body, ctx.options);
  }

  async function replaceGroup(ctx: Ctx, remoteId: string, group: ScimGroup, members: readonly string[]) {
    const caps = await capabilities(ctx);
    if (!caps.groupPut) {
      throw new ScimflowError('ERR_CONFIG', `plugin ${vendor.id}: the target can neither PATCH nor PUT groups`, {
        details: { plugin: vendor.id },
      });
    }
    await client(ctx).request('PUT', groupPath(remoteId), {
      body: { ...groupBody(ctx, group, members), id: remoteId },
    });
  }

  async function deactivate(ctx: Ctx, remoteId: string, user: ScimUser | null): Promise<void> {
    const path = userPath(remoteId);
    if ((await capabilities(ctx)).patch) {
      await patch(ctx, path, [{ op: 'replace', path: 'active', value: false }]);
      return;
    }
    let current = user;
    if (current === null) {
      const response = await client(ctx).request('GET', path, { schema: RemoteUserSchema });
      if (response.body === undefined) throw emptyBody('GET', path, response.status);
      current = response.body;
    }
    const body = shapeUser({ ...withoutServerFields(current), active: false } as ScimUser, ctx.options);
    await client(ctx).request('PUT', path, { body: { ...body, id: remoteId } });
  }

  // Per provider and configuration, the most keys of one lookup whose URL the target took after refusing a longer one.
  const fitting = new Map<string, number>();

  /** Looks many objects up: one `or` filter per chunk when the target takes it, else each on its own (undefined). */
  async function lookUpMany<T extends ScimUser | ScimGroup>(ctx: Ctx, kind: LookupKind<T>, keys: readonly MatchKeys[]) {
    const caps = await capabilities(ctx);
    if (!caps.filter) return keys.map(() => null);
    if (!caps.filterOr) return keys.map(() => undefined);
    // Two comparisons per object, and one more result than comparisons so a partial answer shows.
    const size = Math.max(1, Math.min(LOOKUP_CHUNK, Math.floor((caps.maxPageSize - 1) / 2)));
    const key = `${ctx.providerId} ${ctx.configVersion}`;
    return findMany(client(ctx), kind, keys, Math.min(size, fitting.get(key) ?? size), (fits) =>
      fitting.set(key, Math.min(fits, fitting.get(key) ?? fits)),
    );
  }

  return {
    id: vendor.id,
    description: vendor.description,
    optionsSchema: vendor.optionsSchema,
    ...(vendor.rateLimits ? { rateLimits: vendor.rateLimits } : {}),
    ...(vendor.budgetKey ? { budgetKey: (options: Options) => vendor.budgetKey?.(options) } : {}),
    ...(vendor.checkBaseUrl
      ? {
          checkBaseUrl: (baseUrl: string) =>
            URL.canParse(baseUrl) ? vendor.checkBaseUrl?.(new URL(baseUrl)) : 'it is not a URL',
        }
      : {}),
    vendor,

    capabilities,

    async findUser(ctx, keys) {
      return (await capabilities(ctx)).filter ? findOne(client(ctx), USERS, keys) : null;
    },

    findUsers: (ctx, keys) => lookUpMany(ctx, USERS, keys),

    async createUser(ctx, user) {
      const response = await client(ctx).request('POST', '/Users', {
        body: shapeUser(withoutServerFields(user) as ScimUser, ctx.options),
        schema: RemoteUserSchema,
      });
      if (response.body === undefined) throw emptyBody('POST', '/Users', response.status);
      return { id: response.body.id, resource: response.body };
    },

    async updateUser(ctx, remoteId, user, _previous) {
      const body = shapeUser(withoutServerFields(user) as ScimUser, ctx.options);
      await client(ctx).request('PUT', userPath(remoteId), { body: { ...body, id: remoteId } });
    },

    deactivateUser: deactivate,

    // Whether to delete or deactivate is the caller's choice, by `userDelete` (see activities/deprovision.ts).
    async deleteUser(ctx, remoteId) {
      await deleteIgnoringMissing(client(ctx), userPath(remoteId));
    },

    async findGroup(ctx, keys) {
      return (await capabilities(ctx)).filter ? findOne(client(ctx), GROUPS, keys) : null;
    },

    findGroups: (ctx, keys) => lookUpMany(ctx, GROUPS, keys),

    async createGroup(ctx, group, onCreated?) {
      const caps = await capabilities(ctx);
      const limit = caps.maxMembersPerRequest;
      const members = group.members?.map((member) => member.value);
      const body = groupBody(ctx, group, members?.slice(0, limit));
      const response = await client(ctx).request('POST', '/Groups', { body, schema: RemoteGroupSchema });
      if (response.body === undefined) throw emptyBody('POST', '/Groups', response.status);
      const created = response.body;
      const rest = members?.slice(limit) ?? [];
      if (rest.length > 0) {
        // A failure past this point leaves the group on the target with part of its members: the engine has its id
        // (and what was sent) by now, so the next attempt updates it and adds the rest.
        const sent = group.members?.slice(0, limit);
        await onCreated?.({
          id: created.id,
          resource: { ...created, ...(sent === undefined ? {} : { members: sent }) },
        });
        if (usePatch(ctx, caps)) {
          for (const part of chunk(rest, limit)) {
            await patch(ctx, groupPath(created.id), [
              { op: 'add', path: 'members', value: part.map((id) => style.reference(id)) },
            ]);
          }
        } else {
          await replaceGroup(ctx, created.id, group, members ?? []);
        }
      }
      return {
        id: created.id,
        resource: { ...created, ...(group.members === undefined ? {} : { members: group.members }) },
      };
    },

    async updateGroup(ctx, remoteId, group, previous) {
      const caps = await capabilities(ctx);
      // Without member read-back, a group with no record of what was sent is read for its attributes only: its
      // members are unknown, so only additions are sent.
      let current = previous ?? (await readGroup(ctx, remoteId));
      // Adopted from a listing that leaves members out (Webex's): what the group holds is read from its member pages.
      if (vendor.memberPages && caps.memberReadBack && current.members === undefined && group.members !== undefined) {
        current = { ...current, members: await readMemberPages(client(ctx), vendor.memberPages, remoteId) };
      }
      const wanted = shapeGroup(group, ctx.options);
      const changes = diffGroup(current, { ...wanted, ...(group.members ? { members: group.members } : {}) });
      if (isUnchanged(changes)) return;
      if (usePatch(ctx, caps)) {
        for (const operations of patchRequests(changes, caps.maxMembersPerRequest, style)) {
          await patch(ctx, groupPath(remoteId), operations);
        }
        return;
      }
      const members = (group.members ?? current.members ?? []).map((member) => member.value);
      await replaceGroup(ctx, remoteId, group, members);
    },

    async memberChunk(ctx) {
      const caps = await capabilities(ctx);
      // Members read from pages apart from the group (Webex) are diffed whole by updateGroup on adoption.
      return usePatch(ctx, caps) && vendor.memberPages === undefined ? caps.maxMembersPerRequest : undefined;
    },

    async patchGroupMembers(ctx, remoteId, add, remove) {
      const changes = { attributes: [], add: [...add], remove: [...remove] };
      for (const operations of patchRequests(changes, (await capabilities(ctx)).maxMembersPerRequest, style)) {
        await patch(ctx, groupPath(remoteId), operations);
      }
    },

    async deleteGroup(ctx, remoteId) {
      await deleteIgnoringMissing(client(ctx), groupPath(remoteId));
    },
  } satisfies ScimPlugin<Options>;
}

function userPath(remoteId: string): string {
  return `/Users/${encodeURIComponent(remoteId)}`;
}

function groupPath(remoteId: string): string {
  return `/Groups/${encodeURIComponent(remoteId)}`;
}

async function deleteIgnoringMissing(client: ScimClient, path: string): Promise<void> {
  try {
    await client.request('DELETE', path);
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
