import * as z from 'zod';
import {
  changeProvider,
  createProvider,
  deleteProvider,
  getProvider,
  getRun,
  LINK_STATUSES,
  listLinks,
  listProviders,
  listRuns,
  ProviderInputSchema,
  syncHealth,
  ProviderUpdateSchema,
  type Db,
  type ProviderView,
  type SecretSealer,
} from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';
import type { Auditor } from './audit.ts';
import { requireRole } from './auth.ts';
import { defineRoute, named, type ApiRoute } from './route.ts';
import type { SyncControl } from './sync-control.ts';
import {
  LinkViewSchema,
  pageOf,
  ProviderViewSchema,
  SyncHealthViewSchema,
  SyncRunViewSchema,
  SyncStartedSchema,
} from './view-schemas.ts';

/** Options of a full-sync request; the body may be left out. */
export const SyncRequestSchema = z
  .strictObject({
    /** Let this full sync remove more objects than the provider's deletionLimit (after a person checked why). */
    allowDeletions: z.boolean().default(false),
  })
  .default({ allowDeletions: false });

/** `GET /providers/{id}/runs` parameters. */
export const RunsQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(20).describe('most runs to return, newest first'),
});

/** `GET /providers/{id}/links` parameters. */
export const LinksQuerySchema = z.object({
  status: z.enum(LINK_STATUSES).optional(),
  objectType: z.enum(['user', 'group']).optional(),
  after: z.uuid().optional().describe('the `next` value of the previous page'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** What the provider routes are built from. */
export interface ProviderRouteDeps {
  db: Db;
  /** Seals and fingerprints tokens; the API never decrypts one. */
  secrets: SecretSealer;
  sync: SyncControl;
  audit: Auditor;
  validatePluginOptions: (pluginId: string, options: unknown, baseUrl?: string) => unknown;
  /** Called when the engine could not be told about a saved change; the change itself stands. */
  onNotifyFailure: (error: unknown, provider: ProviderView, event: 'changed' | 'deleted') => void;
}

const Provider = named('Provider', ProviderViewSchema);
const ProviderUpdated = named(
  'ProviderUpdated',
  ProviderViewSchema.extend({
    credentialCleared: z
      .boolean()
      .describe('true when the base URL moved to another origin and the stored token was cleared; set a new one'),
  }),
);
const Run = named('SyncRun', SyncRunViewSchema);

/** Providers, their syncs, runs and links. */
export function providerRoutes(deps: ProviderRouteDeps): ApiRoute[] {
  const { db, secrets, sync, audit, validatePluginOptions, onNotifyFailure } = deps;
  // The provider is already saved when the engine is told; a failure to tell it must not turn into an error
  // that makes the client retry a write that succeeded.
  const notify = async (provider: ProviderView, event: 'changed' | 'deleted'): Promise<void> => {
    try {
      await (event === 'changed' ? sync.providerChanged(provider) : sync.providerDeleted(provider));
    } catch (error) {
      onNotifyFailure(error, provider, event);
    }
  };
  return [
    defineRoute({
      method: 'GET',
      path: '/providers',
      operationId: 'listProviders',
      summary: 'List providers by slug',
      tag: 'providers',
      role: 'viewer',
      status: 200,
      response: named('ProviderList', z.object({ items: z.array(ProviderViewSchema) })),
      handle: async () => ({ items: await listProviders(db) }),
    }),
    defineRoute({
      method: 'POST',
      path: '/providers',
      operationId: 'createProvider',
      summary: 'Create a provider; its token is stored encrypted and never returned',
      tag: 'providers',
      role: 'admin',
      status: 201,
      body: named('ProviderInput', ProviderInputSchema),
      response: Provider,
      conflicts: true,
      handle: async ({ body, caller }) => {
        validatePluginOptions(body.plugin, body.pluginOptions, body.baseUrl);
        const provider = await audit.change(
          caller,
          (q) => createProvider(q, secrets, body),
          (created) => ({
            action: 'provider.create',
            targetType: 'provider',
            targetId: created.id,
            targetName: created.slug,
            details: {
              baseUrl: created.baseUrl,
              plugin: created.plugin,
              credential: body.auth.mode === 'bearer' ? 'set' : 'none',
            },
          }),
        );
        await notify(provider, 'changed');
        return provider;
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/providers/:id',
      operationId: 'getProvider',
      summary: 'Get a provider by id or slug',
      tag: 'providers',
      role: 'viewer',
      status: 200,
      response: Provider,
      handle: ({ params }) => getProvider(db, params['id']!),
    }),
    defineRoute({
      method: 'PATCH',
      path: '/providers/:id',
      operationId: 'updateProvider',
      summary: 'Change the given fields of a provider; every real change bumps configVersion',
      tag: 'providers',
      role: 'admin',
      status: 200,
      body: named('ProviderUpdate', ProviderUpdateSchema),
      response: ProviderUpdated,
      handle: async ({ params, body, caller }) => {
        const before = await getProvider(db, params['id']!);
        if (body.plugin !== undefined || body.pluginOptions !== undefined || body.baseUrl !== undefined) {
          validatePluginOptions(
            body.plugin ?? before.plugin,
            body.pluginOptions ?? before.pluginOptions,
            body.baseUrl ?? before.baseUrl,
          );
        }
        const { provider: after, credential } = await audit.change(
          caller,
          (q) => changeProvider(q, secrets, before.id, body),
          ({ provider, changed, credential }) =>
            changed.length === 0
              ? null
              : {
                  action: 'provider.update',
                  targetType: 'provider',
                  targetId: provider.id,
                  targetName: provider.slug,
                  details: {
                    changed,
                    credential,
                    ...(changed.includes('baseUrl') ? { baseUrl: provider.baseUrl } : {}),
                  },
                },
        );
        if (after.configVersion !== before.configVersion) await notify(after, 'changed');
        return { ...after, credentialCleared: credential === 'cleared-origin-changed' };
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/providers/:id',
      operationId: 'deleteProvider',
      summary: 'Delete a provider with its links and runs (remote objects are left as they are)',
      tag: 'providers',
      role: 'admin',
      status: 204,
      handle: async ({ params, caller }) => {
        const deleted = await audit.change(
          caller,
          (q) => deleteProvider(q, params['id']!),
          (provider) => ({
            action: 'provider.delete',
            targetType: 'provider',
            targetId: provider.id,
            targetName: provider.slug,
          }),
        );
        await notify(deleted, 'deleted');
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/providers/:id/sync',
      operationId: 'startFullSync',
      summary:
        'Start a full sync of the provider, or join the one already requested; answers once it is queued (allowDeletions needs admin)',
      tag: 'providers',
      role: 'operator',
      status: 202,
      body: named('SyncRequest', SyncRequestSchema),
      response: named('SyncStarted', SyncStartedSchema),
      conflicts: true,
      handle: async ({ params, body, caller }) => {
        if (body.allowDeletions) requireRole(caller, 'admin', 'a sync with allowDeletions');
        const provider = await getProvider(db, params['id']!);
        if (!provider.enabled) {
          throw new ScimflowError('ERR_CONFLICT', `provider ${provider.slug} is disabled; enable it before syncing`, {
            details: { field: 'enabled' },
          });
        }
        // Answered once the run exists: a run queued behind a full sync under way may wait hours to start.
        const started = await sync.requestFullSync(provider, {
          ...(body.allowDeletions ? { allowDeletions: true } : {}),
          answer: 'queued',
        });
        // Temporal, not this database, holds the sync: the row is written once it has accepted the request.
        await audit.record(caller, {
          action: 'sync.start',
          targetType: 'provider',
          targetId: provider.id,
          targetName: provider.slug,
          details: { allowDeletions: body.allowDeletions, runId: started.runId },
        });
        return {
          runId: started.runId,
          workflowId: started.workflowId,
          status: started.queued ? ('queued' as const) : ('running' as const),
        };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/providers/:id/runs',
      operationId: 'listRuns',
      summary: "List a provider's most recent sync runs, newest first",
      tag: 'runs',
      role: 'viewer',
      status: 200,
      query: RunsQuerySchema,
      response: named('SyncRunList', z.object({ items: z.array(SyncRunViewSchema) })),
      handle: async ({ params, query }) => {
        const provider = await getProvider(db, params['id']!);
        return { items: await listRuns(db, provider.id, query) };
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/providers/:id/health',
      operationId: 'getSyncHealth',
      summary: "How a provider's syncing goes: stalled after failed pushes in a row, objects retrying or failed",
      tag: 'runs',
      role: 'viewer',
      status: 200,
      response: named('SyncHealth', SyncHealthViewSchema),
      handle: async ({ params }) => syncHealth(db, (await getProvider(db, params['id']!)).id),
    }),
    defineRoute({
      method: 'GET',
      path: '/providers/:id/links',
      operationId: 'listLinks',
      summary: 'List what was last pushed for each object, e.g. ?status=failed&objectType=user',
      tag: 'runs',
      role: 'viewer',
      status: 200,
      query: LinksQuerySchema,
      response: named('LinkPage', pageOf(LinkViewSchema)),
      handle: async ({ params, query }) => {
        const provider = await getProvider(db, params['id']!);
        return listLinks(db, provider.id, query);
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/runs/:id',
      operationId: 'getRun',
      summary: 'Get a sync run with its counters',
      tag: 'runs',
      role: 'viewer',
      status: 200,
      response: Run,
      handle: ({ params }) => getRun(db, params['id']!),
    }),
  ];
}
