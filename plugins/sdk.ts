/**
 * The plugin contract. A plugin knows how to talk to one kind of SCIM target (plain SCIM 2.0, AWS, Slack, …):
 * what it can do, how to find, create, update and remove users and groups there, and how to change group
 * membership. The sync activities speak only this contract; they never build SCIM requests themselves.
 */
import type * as z from 'zod';
import type { ScimflowError, ScimRequestError } from '../errors/index.ts';
import type { ScimClient, ScimGroup, ScimGroupMember, ScimUser } from '../scim/index.ts';
import type { MemberPages } from './engine/member-pages.ts';

/** What a target supports, after discovery and the plugin's own knowledge of the vendor. */
export interface Capabilities {
  /** PATCH is supported (RFC 7644 §3.5.2). */
  patch: boolean;
  /** The target has a Groups resource type; when false, groups and memberships are skipped. */
  groups: boolean;
  /** Filtering on GET is supported (used to find objects to adopt). */
  filter: boolean;
  /** Bulk is supported, and how many operations fit in one request. */
  bulk: { supported: boolean; maxOperations: number };
  /** Most member values one request (POST, PUT or PATCH) may carry. */
  maxMembersPerRequest: number;
  /**
   * How the target removes a user: a hard delete, or only a deactivation (Slack's DELETE deactivates; Salesforce has
   * no DELETE). With `deactivate`, the engine deactivates a user its provider says to delete, and keeps its link.
   */
  userDelete: 'delete' | 'deactivate';
  /** A group can be replaced whole with PUT (AWS has no PutGroup: only PATCH). */
  groupPut: boolean;
  /**
   * A GET of a group returns its members. When false (AWS), membership is diffed against what scimflow last sent,
   * never against what the target shows, and members the target has that scimflow never sent are left alone.
   */
  memberReadBack: boolean;
  /** Filters may join comparisons with `or`, so many objects are looked up in one request (AWS: `eq` and `and` only). */
  filterOr: boolean;
  /** Most resources the target returns in one page, whatever `count` asks for. */
  maxPageSize: number;
}

/**
 * A vendor's documented request limits: requests per second, in flight, which requests they pace, and the burst the
 * vendor documents (how many requests the shared bucket may bank; see `RateLimit.burst` in budget/aimd.ts).
 */
export interface VendorRateLimits {
  requestsPerSecond: number;
  concurrency?: number;
  paced?: 'all' | 'writes';
  burst?: number;
}

/** A remote object as the target returned it: its id plus whatever body came back. */
export interface RemoteObject<T = ScimUser | ScimGroup> {
  id: string;
  resource: T;
}

/** Everything a plugin operation needs about the provider it runs for. No secrets: those live in `client`. */
export interface PluginContext<Options = unknown> {
  /** Provider id; the key for every per-provider cache. */
  providerId: string;
  /** Changes whenever the provider's configuration changes; caches keyed on it are dropped then. */
  configVersion: number;
  /** An authenticated SCIM client for the provider's base URL. */
  client: ScimClient;
  /** The plugin's validated options. */
  options: Options;
}

/** What identifies an object on the target when there is no link yet; tried in this order. */
export interface MatchKeys {
  externalId?: string | undefined;
  /** userName for users, displayName for groups. */
  name?: string | undefined;
}

/**
 * What a lookup of many objects at once knows about one of them: the remote object to adopt, `null` when the target
 * surely has none, or `undefined` when it cannot tell (several candidates, a partial answer); the engine then asks
 * `findUser` / `findGroup` about that object alone, and that answer stands.
 */
export type BatchLookupResult<T> = RemoteObject<T> | null | undefined;

/** The standard operations of a plugin. Every method throws `ScimRequestError` on a failed request. */
export interface ProvisioningPlugin<Options = unknown> {
  /** Stable id, as stored in `providers.plugin`. */
  readonly id: string;
  /** One-line description for listings. */
  readonly description: string;
  /** Validates (and defaults) the provider's `pluginOptions`; a failure is ERR_CONFIG at save time. */
  readonly optionsSchema: z.ZodType<Options>;
  /**
   * Optional: the vendor's documented request limits (cite the documentation where declared). They seed the shared
   * rate budget of a provider that sets no `rateLimit` of its own; the budget still learns lower limits from 429s.
   */
  readonly rateLimits?: VendorRateLimits;
  /** Optional: names the rate budget shared beyond the target's origin (see {@link VendorHooks.budgetKey}). */
  budgetKey?(options: Options): string | undefined;
  /** Optional: what is wrong with `baseUrl` for this vendor (see {@link VendorHooks.checkBaseUrl}); undefined if fine. */
  checkBaseUrl?(baseUrl: string): string | undefined;

  /** Discovers capabilities (plugins may cache per provider and configVersion; failures must not be cached). */
  capabilities(ctx: PluginContext<Options>): Promise<Capabilities>;

  /** Finds a user the target already has, by externalId then userName; null when none matches. */
  findUser(ctx: PluginContext<Options>, keys: MatchKeys): Promise<RemoteObject<ScimUser> | null>;
  /**
   * Optional: finds many not-yet-linked users in few requests, one result per key in key order. Only exact matches
   * count, by `findUser`'s rules; whatever is not certain is `undefined`. Without it, the engine calls `findUser`
   * once per object. A permanent failure (a 4xx or 501: the target refuses the request) makes the engine stop
   * asking for the provider until its configuration changes; any other failure fails the batch like a request's.
   */
  findUsers?(ctx: PluginContext<Options>, keys: readonly MatchKeys[]): Promise<Array<BatchLookupResult<ScimUser>>>;
  /** Creates a user and returns it with its remote id. */
  createUser(ctx: PluginContext<Options>, user: ScimUser): Promise<RemoteObject<ScimUser>>;
  /** Brings the remote user to `user`. `previous` is what was last sent, or the remote resource as found on adoption. */
  updateUser(ctx: PluginContext<Options>, remoteId: string, user: ScimUser, previous: ScimUser | null): Promise<void>;
  /** Sets the remote user inactive (deprovision mode `deactivate`). */
  deactivateUser(ctx: PluginContext<Options>, remoteId: string, user: ScimUser | null): Promise<void>;
  /** Deletes the remote user; a 404 counts as success. */
  deleteUser(ctx: PluginContext<Options>, remoteId: string): Promise<void>;

  /** Finds a group the target already has, by externalId then displayName; null when none matches. */
  findGroup(ctx: PluginContext<Options>, keys: MatchKeys): Promise<RemoteObject<ScimGroup> | null>;
  /** Optional: finds many not-yet-linked groups at once, as {@link ProvisioningPlugin.findUsers} does users. */
  findGroups?(ctx: PluginContext<Options>, keys: readonly MatchKeys[]): Promise<Array<BatchLookupResult<ScimGroup>>>;
  /**
   * Creates a group. `group.members` holds remote user ids; the plugin sends as many inline as the target allows
   * and adds the rest with follow-up requests. Before any follow-up request it calls `onCreated` (and waits for it) with the group as the target has it then: the engine records its remote id there,
   * so a failed follow-up never leads to a second group.
   */
  createGroup(
    ctx: PluginContext<Options>,
    group: ScimGroup,
    onCreated?: (created: RemoteObject<ScimGroup>) => Promise<void>,
  ): Promise<RemoteObject<ScimGroup>>;
  /**
   * Brings the remote group, attributes and members, to `group` (members are remote user ids). `previous` is what
   * was last sent, or the remote resource as found on adoption; the plugin sends only the difference when it can
   * (PATCH add/remove chunked to `maxMembersPerRequest`), and a full PUT when it must.
   */
  updateGroup(
    ctx: PluginContext<Options>,
    remoteId: string,
    group: ScimGroup,
    previous: ScimGroup | null,
  ): Promise<void>;
  /**
   * Optional: the most member values one request may carry when the target takes a group's member changes by PATCH;
   * then the engine sends a group's members a chunk at a time (`patchGroupMembers`), never whole. Undefined when
   * members must go with the group (`createGroup`, `updateGroup`): a target without PATCH, members read apart.
   */
  memberChunk?(ctx: PluginContext<Options>): Promise<number | undefined>;
  /** Optional, with `memberChunk`: adds and removes members of a remote group (at most a chunk of them) in one PATCH. */
  patchGroupMembers?(
    ctx: PluginContext<Options>,
    remoteId: string,
    add: readonly string[],
    remove: readonly string[],
  ): Promise<void>;
  /** Deletes the remote group; a 404 counts as success. */
  deleteGroup(ctx: PluginContext<Options>, remoteId: string): Promise<void>;
}

/** How a group member is referred to in request bodies; the default is `{ value: remoteId }`. */
export type MemberReference = (remoteId: string) => ScimGroupMember;

/**
 * A vendor's departures from plain SCIM 2.0, as hooks on the one SCIM engine (`plugins/engine`). Every hook is
 * optional: without it, the engine does what RFC 7643/7644 say. A plugin is `createScimPlugin(hooks)`.
 */
export interface VendorHooks<Options extends CommonOptions = CommonOptions> {
  /** Stable id, as stored in `providers.plugin`. */
  id: string;
  /** One-line description for listings. */
  description: string;
  /** The vendor's options; build it with `vendorOptions` so every plugin takes the `capabilities` override. */
  optionsSchema: z.ZodType<Options>;
  /** The vendor's documented request limits, citing the documentation (see {@link ProvisioningPlugin.rateLimits}). */
  rateLimits?: VendorRateLimits;
  /**
   * Names the rate budget providers share beyond the target's origin: those with the same key (Slack: the same org)
   * pace through one bucket. Without it, every provider on one origin shares one.
   */
  budgetKey?: (options: Options) => string | undefined;
  /**
   * What is wrong with a provider's base URL for this vendor (AWS: not `…/TENANT_ID/scim/v2`), in words a person can
   * act on; undefined when it is fine. Checked when a provider is saved, by `scimflow probe`, and before discovery.
   */
  checkBaseUrl?: (url: URL) => string | undefined;
  /** Where the ServiceProviderConfig is read, tried in order (a 404 tries the next). @default ['/ServiceProviderConfig'] */
  discoveryPaths?: (options: Options) => readonly string[];
  /** What the vendor is known to support, over what discovery found; the provider's own override comes after. */
  capabilities?: (discovered: Capabilities, options: Options) => Partial<Capabilities>;
  /** The user body to send on create and replace (drop what the vendor refuses, add what it needs). */
  shapeUser?: (user: ScimUser, options: Options) => ScimUser;
  /** The group body to send on create and replace (its `members` are already member references). */
  shapeGroup?: (group: ScimGroup, options: Options) => ScimGroup;
  /** How members are referred to (Webex wants `type: "user"`). */
  memberReference?: MemberReference;
  /**
   * Where a group's members are read, page by page, apart from the group (Webex: `/Groups/{id}/Members`, at most 500
   * a page). Without it they come with the group read. Also read for a group adopted from a listing without members.
   */
  memberPages?: MemberPages;
  /** How PATCH removes members: one `members[value eq "id"]` path each (RFC), or `path: members` with a value list. */
  memberRemoval?: 'filter' | 'value-list';
  /** How group changes go: `auto` PATCHes when the target can, `patch` and `put` force one. @default 'auto' */
  groupUpdate?: (options: Options) => 'auto' | 'patch' | 'put';
  /** Turns a failed request into the vendor's meaning of it (a clearer message, another code); undefined keeps it. */
  translateError?: (error: ScimRequestError) => ScimflowError | undefined;
}

/** Options every plugin takes: a provider may override what its target advertises wrongly. */
export interface CommonOptions {
  capabilities?: { [K in Exclude<keyof Capabilities, 'bulk'>]?: Capabilities[K] | undefined } | undefined;
}

/** Plugins by id. Options are `unknown` here: each plugin parses its own with `optionsSchema`. */
export type PluginRegistry = ReadonlyMap<string, ProvisioningPlugin<unknown>>;
