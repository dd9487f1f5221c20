import * as z from 'zod';
import {
  isLoopbackHost,
  ProviderAuthInputSchema,
  type ProviderAuthInput,
  type ProviderAuthView,
} from '../auth/schemas.ts';
import { ValidationError } from '../errors/index.ts';
import { findUnstorableText, isStorableText, UNSTORABLE_TEXT } from './text.ts';

export { ProviderAuthInputSchema, type ProviderAuthInput, type ProviderAuthView };

/** Lower-case slug naming a provider in URLs, workflow ids and the Temporal UI. */
export const SlugSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and dashes, at most 63');

/** A string PostgreSQL can store as it is (see text.ts); every text field of the directory is one. */
const TextSchema = z.string().refine(isStorableText, UNSTORABLE_TEXT);

/** A free-form JSON object stored as jsonb: no key nor string in it, at any depth, may be text PostgreSQL refuses. */
const JsonObjectSchema = z.record(z.string(), z.unknown()).superRefine((value, ctx) => {
  const found = findUnstorableText(value);
  if (found === undefined) return;
  const message = found.inKey ? `has a key that ${UNSTORABLE_TEXT}` : UNSTORABLE_TEXT;
  ctx.addIssue({ code: 'custom', path: found.path, message });
});

/** Free-form extra attributes of a user or group, available to mappings. */
export const AttributesSchema = JsonObjectSchema;

/** A directory user as the API accepts it on create. */
export const UserInputSchema = z.strictObject({
  username: TextSchema.min(1).max(256),
  displayName: TextSchema.max(512).nullish(),
  email: z.email().max(320).nullish(),
  givenName: TextSchema.max(256).nullish(),
  familyName: TextSchema.max(256).nullish(),
  active: z.boolean().default(true),
  kind: z.enum(['internal', 'service_account']).default('internal'),
  attributes: AttributesSchema.default({}),
});
export type UserInput = z.infer<typeof UserInputSchema>;

/** A directory user as stored and returned. */
export interface DirectoryUser {
  id: string;
  username: string;
  displayName: string | null;
  email: string | null;
  givenName: string | null;
  familyName: string | null;
  active: boolean;
  kind: 'internal' | 'service_account';
  attributes: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/** A directory group as the API accepts it on create. */
export const GroupInputSchema = z.strictObject({
  name: TextSchema.min(1).max(256),
  attributes: AttributesSchema.default({}),
  parentId: z.uuid().nullish(),
  members: z.array(z.uuid()).max(100_000).optional(),
});
export type GroupInput = z.infer<typeof GroupInputSchema>;

/** A directory group as stored and returned (members are listed separately). */
export interface DirectoryGroup {
  id: string;
  name: string;
  attributes: Record<string, unknown>;
  parentId: string | null;
  createdAt: string;
  updatedAt: string;
}

/** Which directory objects a provider receives. */
export const ProviderScopeSchema = z.strictObject({
  /** Service accounts are left out unless this is true (authentik's default too). */
  includeServiceAccounts: z.boolean().default(false),
  /** When non-empty, only members of these groups are provisioned. */
  accessGroups: z.array(z.uuid()).default([]),
  /** When present, only these groups are provisioned; when absent, every group is. */
  groups: z.array(z.uuid()).optional(),
  /**
   * A group that leaves the `groups` filter is left on the target as last synced (authentik's behaviour) unless
   * this is true, when it is deleted there. A group deleted from the directory is always deleted on the target.
   */
  removeGroupsLeavingFilter: z.boolean().optional(),
});
export type ProviderScope = z.infer<typeof ProviderScopeSchema>;

/**
 * A target's request budget, shared by every worker that talks to it (providers on one origin share one). The rate
 * is a ceiling: on 429s the budget backs off and learns the target's real limit below it.
 */
export const RateLimitSchema = z.strictObject({
  /** Most requests per second. */
  requestsPerSecond: z.number().positive().max(100_000),
  /** Most requests in flight at once, across all workers. */
  concurrency: z.int().min(1).max(1024).optional(),
  /** Which requests the budget paces: all (the default), or only writes (POST, PUT, PATCH, DELETE) for a target that limits only those. */
  paced: z.enum(['all', 'writes']).optional(),
});
export type RateLimitConfig = z.infer<typeof RateLimitSchema>;

/** Which match adopts an existing remote object: externalId, else the name (the default); or externalId only. */
export const AdoptBySchema = z.enum(['externalIdOrName', 'externalId']);
export type AdoptBy = z.infer<typeof AdoptBySchema>;

/**
 * A provider's SCIM base URL: http(s), no query or fragment, and no credentials in it (they belong in `auth`, which
 * is sealed; a URL is shown in views and logs). Whether plain http is allowed is `checkBaseUrlScheme`'s call.
 */
const BaseUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
  .refine((value) => !new URL(value).search && !new URL(value).hash, 'must not carry a query or fragment')
  .refine(
    (value) => new URL(value).username === '' && new URL(value).password === '',
    'must not carry credentials (user:password@): give them as auth, which is stored encrypted',
  );

/**
 * Throws ERR_VALIDATION naming `baseUrl` when it is plain http to a host that is not loopback and the provider is
 * not marked `allowInsecureHttp`: its credentials and the directory's data would cross the network in clear.
 */
export function checkBaseUrlScheme(baseUrl: string, allowInsecureHttp: boolean): void {
  const url = new URL(baseUrl);
  if (url.protocol !== 'http:' || allowInsecureHttp || isLoopbackHost(url.hostname)) return;
  throw new ValidationError(`baseUrl: must use https; ${url.host} is reached over the network`, [
    {
      path: 'baseUrl',
      message: 'must use https (http is accepted for loopback hosts, or with allowInsecureHttp: true)',
    },
  ]);
}

/** A provider as the API accepts it on create. */
export const ProviderInputSchema = z.strictObject({
  slug: SlugSchema,
  name: TextSchema.min(1).max(256),
  baseUrl: BaseUrlSchema,
  /** Accept a plain-http `baseUrl` on a host that is not loopback (credentials then cross the network in clear). */
  allowInsecureHttp: z.boolean().default(false),
  plugin: z.string().min(1).default('scim2'),
  pluginOptions: JsonObjectSchema.default({}),
  auth: ProviderAuthInputSchema,
  scope: ProviderScopeSchema.default({ includeServiceAccounts: false, accessGroups: [] }),
  deprovision: z.enum(['delete', 'deactivate', 'leave']).default('delete'),
  pageSize: z.int().min(1).max(1000).default(100),
  concurrency: z.int().min(1).max(64).default(4),
  /** Minutes between scheduled full syncs (each provider gets its own offset within the interval). */
  fullSyncIntervalMinutes: z.int().min(1).max(10_080).default(60),
  /**
   * Most users and groups one sync may delete or deactivate on the target; a sync that would remove more removes
   * none and fails with ERR_DELETION_GUARD until a person allows it. `null` turns the guard off.
   */
  deletionLimit: z.int().min(0).max(10_000_000).nullable().default(500),
  /**
   * The target's shared request budget; `null` takes the plugin's documented limits, or none (requests are then
   * bounded by `concurrency` only).
   */
  rateLimit: RateLimitSchema.nullable().default(null),
  /**
   * What an unlinked object adopts on the target: a remote object whose externalId, else userName / displayName
   * (case-insensitively) matches; or, with `externalId`, only an externalId match.
   */
  adoptBy: AdoptBySchema.default('externalIdOrName'),
  dryRun: z.boolean().default(false),
  enabled: z.boolean().default(true),
});
export type ProviderInput = z.infer<typeof ProviderInputSchema>;

/** A provider as the API returns it: the secret is never included, only whether one is set. */
export interface ProviderView {
  id: string;
  slug: string;
  name: string;
  baseUrl: string;
  allowInsecureHttp: boolean;
  plugin: string;
  pluginOptions: Record<string, unknown>;
  auth: ProviderAuthView;
  scope: ProviderScope;
  deprovision: 'delete' | 'deactivate' | 'leave';
  pageSize: number;
  concurrency: number;
  fullSyncIntervalMinutes: number;
  deletionLimit: number | null;
  rateLimit: RateLimitConfig | null;
  adoptBy: AdoptBy;
  dryRun: boolean;
  enabled: boolean;
  configVersion: number;
  createdAt: string;
  updatedAt: string;
}

/** What the sync activities need of a provider, with its secret decrypted; never leaves the worker process. */
export interface ProviderForSync extends Omit<ProviderView, 'auth' | 'createdAt' | 'updatedAt'> {
  auth: ProviderAuthInput;
}

/**
 * A user update as the API accepts it: every field optional, and an absent field is left as it is (a plain
 * `.partial()` of the input schema would still apply the create defaults and reset it).
 */
export const UserUpdateSchema = UserInputSchema.extend({
  active: UserInputSchema.shape.active.unwrap(),
  kind: UserInputSchema.shape.kind.unwrap(),
  attributes: AttributesSchema,
}).partial();
export type UserUpdate = z.infer<typeof UserUpdateSchema>;

/** A group update: absent fields stay as they are (no create defaults applied); members change through their own routes. */
export const GroupUpdateSchema = GroupInputSchema.omit({ members: true })
  .extend({ attributes: AttributesSchema })
  .partial();
export type GroupUpdate = z.infer<typeof GroupUpdateSchema>;

/** A provider update: absent fields stay as they are (no create defaults applied); the slug never changes. */
export const ProviderUpdateSchema = ProviderInputSchema.omit({ slug: true })
  .extend({
    plugin: ProviderInputSchema.shape.plugin.unwrap(),
    pluginOptions: ProviderInputSchema.shape.pluginOptions.unwrap(),
    scope: ProviderInputSchema.shape.scope.unwrap(),
    deprovision: ProviderInputSchema.shape.deprovision.unwrap(),
    pageSize: ProviderInputSchema.shape.pageSize.unwrap(),
    concurrency: ProviderInputSchema.shape.concurrency.unwrap(),
    fullSyncIntervalMinutes: ProviderInputSchema.shape.fullSyncIntervalMinutes.unwrap(),
    deletionLimit: ProviderInputSchema.shape.deletionLimit.unwrap(),
    rateLimit: ProviderInputSchema.shape.rateLimit.unwrap(),
    adoptBy: ProviderInputSchema.shape.adoptBy.unwrap(),
    allowInsecureHttp: ProviderInputSchema.shape.allowInsecureHttp.unwrap(),
    dryRun: ProviderInputSchema.shape.dryRun.unwrap(),
    enabled: ProviderInputSchema.shape.enabled.unwrap(),
  })
  .partial();
export type ProviderUpdate = z.infer<typeof ProviderUpdateSchema>;

/** A group in a directory import: members are given by username and replace the group's members when present. */
export const ImportGroupSchema = z.strictObject({
  name: TextSchema.min(1).max(256),
  attributes: AttributesSchema.default({}),
  /** Usernames; when present the group's members become exactly these, when absent they are left alone. */
  members: z.array(TextSchema.min(1).max(256)).max(100_000).optional(),
});
export type ImportGroup = z.infer<typeof ImportGroupSchema>;

/** One line of a streamed import (NDJSON): a user, upserted by username, or a group, upserted by name. */
export const ImportLineSchema = z.union([
  z.strictObject({ user: UserInputSchema }),
  z.strictObject({ group: ImportGroupSchema }),
]);
/** One line of a streamed import. */
export type ImportLine = z.infer<typeof ImportLineSchema>;

/** A whole-directory import: users upserted by username, groups by name (checked as a whole, written in batches). */
export const DirectoryImportSchema = z.strictObject({
  users: z.array(UserInputSchema).max(1_000_000).default([]),
  groups: z.array(ImportGroupSchema).max(100_000).default([]),
});
export type DirectoryImport = z.infer<typeof DirectoryImportSchema>;
/** A directory import before defaults are applied, as callers write it. */
export type DirectoryImportInput = z.input<typeof DirectoryImportSchema>;
