/**
 * Response shapes of the API as zod schemas, for the OpenAPI document only; each is checked against the view type
 * the repositories return, so the document cannot drift from what the API sends.
 */
import * as z from 'zod';
import { ProviderAuthViewSchema } from '../auth/schemas.ts';
import {
  AdoptBySchema,
  LINK_STATUSES,
  ProviderScopeSchema,
  RateLimitSchema,
  type DirectoryGroup,
  type DirectoryUser,
  type ImportCounts,
  type StreamImportCounts,
  type LinkView,
  type ProviderView,
  type SourceView,
  type SyncRunView,
} from '../db/index.ts';

const Timestamp = z.iso.datetime({ offset: true });
const Attributes = z.record(z.string(), z.unknown());

/** A directory user as returned. */
export const UserViewSchema = z.object({
  id: z.uuid(),
  username: z.string(),
  displayName: z.string().nullable(),
  email: z.string().nullable(),
  givenName: z.string().nullable(),
  familyName: z.string().nullable(),
  active: z.boolean(),
  kind: z.enum(['internal', 'service_account']),
  attributes: Attributes,
  createdAt: Timestamp,
  updatedAt: Timestamp,
}) satisfies z.ZodType<DirectoryUser>;

/** A directory group as returned. */
export const GroupViewSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  attributes: Attributes,
  parentId: z.uuid().nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
}) satisfies z.ZodType<DirectoryGroup>;

/** A provider as returned: never its secret, only whether one is set. */
export const ProviderViewSchema = z.object({
  id: z.uuid(),
  slug: z.string(),
  name: z.string(),
  baseUrl: z.string(),
  allowInsecureHttp: z.boolean(),
  plugin: z.string(),
  pluginOptions: Attributes,
  auth: ProviderAuthViewSchema,
  scope: ProviderScopeSchema,
  deprovision: z.enum(['delete', 'deactivate', 'leave']),
  pageSize: z.int(),
  concurrency: z.int(),
  fullSyncIntervalMinutes: z.int(),
  deletionLimit: z.int().nullable(),
  rateLimit: RateLimitSchema.nullable(),
  adoptBy: AdoptBySchema,
  dryRun: z.boolean(),
  enabled: z.boolean(),
  configVersion: z.int(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
}) satisfies z.ZodType<ProviderView>;

/** A sync run with its counters. */
export const SyncRunViewSchema = z.object({
  id: z.uuid(),
  providerId: z.uuid(),
  kind: z.enum(['full', 'incremental']),
  status: z
    .enum(['queued', 'running', 'succeeded', 'failed', 'cancelled'])
    .describe('queued: waiting for the full sync under way to end'),
  workflowId: z.string().nullable(),
  total: z.int(),
  processed: z.int(),
  created: z.int(),
  updated: z.int(),
  deleted: z.int(),
  unchanged: z.int(),
  skipped: z.int(),
  failed: z.int(),
  retrying: z.int(),
  workers: z
    .record(z.string(), z.int())
    .describe('objects each worker process examined, by its Temporal identity (pid@host)'),
  error: Attributes.nullable(),
  startedAt: Timestamp,
  finishedAt: Timestamp.nullable(),
}) satisfies z.ZodType<SyncRunView>;

/** What was last done with one object on one provider. */
/** A provider's sync health, as `GET /providers/{id}/health` returns it. */
export const SyncHealthViewSchema = z.object({
  state: z
    .enum(['ok', 'failing', 'stalled'])
    .describe(
      'stalled: its last 3 or more incremental pushes failed, or its last 2 or more full syncs; failing: fewer; ok: the last of each worked',
    ),
  failedPushesInARow: z.int(),
  failedFullSyncsInARow: z.int(),
  failingSince: z.string().nullable(),
  lastError: z.record(z.string(), z.unknown()).nullable(),
  retrying: z.int().describe('objects left retrying after transient failures; the next push or full sync sends them'),
  failed: z.int().describe('objects that failed for good; see GET /providers/{id}/links?status=failed'),
});

export const LinkViewSchema = z.object({
  objectType: z.enum(['user', 'group']),
  localId: z.uuid(),
  localName: z.string().nullable(),
  remoteId: z.string().nullable(),
  status: z.enum(LINK_STATUSES),
  lastError: Attributes.nullable(),
  syncedAt: Timestamp,
}) satisfies z.ZodType<LinkView>;

const Counts = z.object({ created: z.int(), updated: z.int(), unchanged: z.int() });
/** What an import changed. */
export const ImportCountsSchema = z.object({
  users: Counts,
  groups: Counts,
  members: z.object({ added: z.int(), removed: z.int() }),
}) satisfies z.ZodType<ImportCounts>;

/** What a streamed import wrote: the counts, the lines written and the transactions (batches) they took. */
export const StreamImportCountsSchema = ImportCountsSchema.extend({
  lines: z.int(),
  batches: z.int(),
}) satisfies z.ZodType<StreamImportCounts>;

/** A keyset page of `item`; pass `next` as `after` to get the following page. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next: z.string().nullable() });
}

/** Every error the API returns. */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    details: Attributes.optional(),
  }),
});

/** A full sync the engine accepted. */
export const SyncStartedSchema = z.object({
  runId: z.uuid().describe('follow it at GET /runs/{runId}'),
  workflowId: z
    .string()
    .describe("the provider's full-sync workflow in Temporal (still the previous run's while queued)"),
  status: z.enum(['queued', 'running']).describe('queued: it starts once the full sync under way ends'),
});

/** `GET /healthz`. */
export const HealthSchema = z.object({ status: z.enum(['ok', 'unavailable']) });

/** What `POST /groups/{id}/members` added (users already in the group are not listed). */
export const MembersAddedSchema = z.object({ added: z.array(z.uuid()) });

/** An inbound SCIM source as returned: never its token, only the token's first characters. */
export const SourceViewSchema = z.object({
  id: z.uuid(),
  slug: z.string(),
  name: z.string(),
  tokenPrefix: z.string(),
  serviceAccountId: z.uuid(),
  deletePolicy: z.enum(['delete', 'deactivate']),
  claim: z.boolean(),
  createdAt: Timestamp,
  tokenRotatedAt: Timestamp,
}) satisfies z.ZodType<SourceView>;

/** A source with its new token (shown this once) and the path of its SCIM base URL on this API. */
export const SourceTokenSchema = z.object({ source: SourceViewSchema, token: z.string(), scimPath: z.string() });
