/**
 * The plugin contract. A plugin knows how to talk to one kind of SCIM target (plain SCIM 2.0, AWS, Slack, …):
 * what it can do, how to find, create, update and remove users and groups there, and how to change group
 * membership. The sync activities speak only this contract; they never build SCIM requests themselves.
 */
import type * as z from 'zod';
import type { ScimClient, ScimGroup, ScimUser } from '../scim/index.ts';

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
  /** How the target removes a user when asked to delete: a hard delete, or only a deactivation (Slack). */
  userDelete: 'delete' | 'deactivate';
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
  readonly rateLimits?: { requestsPerSecond: number; concurrency?: number };

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
   * and adds the rest with follow-up requests.
   */
  createGroup(ctx: PluginContext<Options>, group: ScimGroup): Promise<RemoteObject<ScimGroup>>;
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
  /** Deletes the remote group; a 404 counts as success. */
  deleteGroup(ctx: PluginContext<Options>, remoteId: string): Promise<void>;
}

/** Plugins by id. Options are `unknown` here: each plugin parses its own with `optionsSchema`. */
export type PluginRegistry = ReadonlyMap<string, ProvisioningPlugin<unknown>>;
