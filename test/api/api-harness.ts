import { createApi, type ApiPolicy, type OidcVerifier, type SyncControl } from '../../api/index.ts';
import type { ProviderAuthWorker } from '../../api/provider-auth-routes.ts';
import type { MappingEngine } from '../../sandbox/index.ts';
import {
  createApiToken,
  createSecretBox,
  generateSecretKey,
  ROLES,
  sealerOf,
  type Db,
  type ProviderView,
  type Role,
  type SecretBox,
} from '../../db/index.ts';
import { createPluginRegistry, resolvePluginOptions } from '../../plugins/index.ts';
import { createTestDatabase } from '../support/db.ts';

/** A SyncControl that records what the API asked of it; stands in for Temporal. */
export interface RecordingSyncControl extends SyncControl {
  calls: Array<{
    method: 'requestFullSync' | 'providerChanged' | 'providerDeleted';
    slug: string;
    configVersion: number;
    /** What a full-sync request asked for (requestFullSync only). */
    request?: { allowDeletions?: boolean; answer?: 'started' | 'queued' } | undefined;
  }>;
}

/**
 * A fake sync control; `requestFullSync` answers with fixed ids unless `onSync` is given (queued behind a full sync
 * under way for providers whose slug starts with `queued`).
 */
export function recordingSyncControl(
  onSync: (provider: ProviderView) => Promise<{ runId: string; workflowId: string; queued?: boolean }> = (provider) =>
    Promise.resolve({
      runId: '00000000-0000-4000-8000-000000000001',
      workflowId: `full-sync:${provider.slug}`,
      queued: provider.slug.startsWith('queued'),
    }),
): RecordingSyncControl {
  const calls: RecordingSyncControl['calls'] = [];
  const record = (method: RecordingSyncControl['calls'][number]['method'], provider: ProviderView) =>
    calls.push({ method, slug: provider.slug, configVersion: provider.configVersion });
  return {
    calls,
    async requestFullSync(provider, request) {
      calls.push({ method: 'requestFullSync', slug: provider.slug, configVersion: provider.configVersion, request });
      return onSync(provider);
    },
    providerChanged(provider) {
      record('providerChanged', provider);
      return Promise.resolve();
    },
    providerDeleted(provider) {
      record('providerDeleted', provider);
      return Promise.resolve();
    },
  };
}

const plugins = createPluginRegistry();

/** The plugin validator the product runs with: `resolvePluginOptions` over the real built-in registry. */
export function validatePluginOptions(pluginId: string, options: unknown, baseUrl?: string): unknown {
  return resolvePluginOptions(plugins, pluginId, options, baseUrl);
}

/** A JSON response as a test sees it. */
export interface JsonResponse<T> {
  status: number;
  body: T;
}

/** The body of every API error. */
export interface ErrorBody {
  error: {
    code: string;
    message: string;
    issues?: Array<{ path: string; message: string }>;
    details?: Record<string, unknown>;
  };
}

/** A keyset page. */
export interface PageBody<T> {
  items: T[];
  next: string | null;
}

/** Creates a token with `role` named `${role}-token` (or `name`) and returns it. */
export async function createTestToken(db: Db, role: Role, name = `${role}-token`): Promise<string> {
  return (await createApiToken(db, { name, role }, 'test')).token;
}

/** Calls `/api/v1` of a listening API over HTTP with a bearer token, as a remote client would. */
export async function callApi<T>(
  baseUrl: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<JsonResponse<T>> {
  const response = await fetch(`${baseUrl}/api/v1${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** How one test request is sent: with the admin token unless `token` says otherwise (`null`: none). */
export interface RequestOptions {
  token?: string | null;
  headers?: Record<string, string>;
}

/** An API over a database of its own, driven in memory with `app.request`. */
export interface TestApi {
  db: Db;
  secrets: SecretBox;
  sync: RecordingSyncControl;
  /** A live token of each role, named `<role>-token`. */
  tokens: Record<Role, string>;
  logged: Array<{ level: string; obj: object; msg: string | undefined }>;
  /** Sends a request as the admin token, or as `options.token`. */
  request<T = ErrorBody>(
    method: string,
    path: string,
    body?: unknown,
    options?: RequestOptions,
  ): Promise<JsonResponse<T>>;
  /** Outbox rows written since the previous call, oldest first. */
  takeOutbox(): Promise<Array<{ objectType: string; objectId: string; relatedId: string | null; change: string }>>;
  close(): Promise<void>;
}

/** Builds a fresh API on a fresh database. */
export async function startTestApi(
  options: {
    sync?: RecordingSyncControl;
    mappingEngine?: MappingEngine;
    policy?: Partial<ApiPolicy>;
    /** The key box to seal provider tokens with (a worker's, to sync what the API stored). */
    secrets?: SecretBox;
    /** The worker side of connection checks and interactive OAuth (serves `/providers/{id}/test`, `/oauth/*`). */
    providerAuth?: ProviderAuthWorker;
    /** Accepts OIDC bearer tokens besides API tokens. */
    oidc?: OidcVerifier;
  } = {},
): Promise<TestApi> {
  const database = await createTestDatabase();
  const secrets = options.secrets ?? createSecretBox(generateSecretKey());
  const sync = options.sync ?? recordingSyncControl();
  const logged: TestApi['logged'] = [];
  const log = (level: string) => (obj: object, msg?: string) => void logged.push({ level, obj, msg });
  const app = createApi({
    db: database.db,
    // Seal-only, as in production: a route that tried to decrypt a provider token would fail here.
    secrets: sealerOf(secrets),
    sync,
    validatePluginOptions,
    log: { error: log('error'), warn: log('warn'), debug: () => undefined },
    ...(options.mappingEngine ? { mappingEngine: options.mappingEngine } : {}),
    ...(options.policy ? { policy: options.policy } : {}),
    ...(options.oidc ? { oidc: options.oidc } : {}),
    ...(options.providerAuth ? { providerAuth: options.providerAuth, publicUrl: () => 'http://127.0.0.1:7400' } : {}),
  });
  let outboxSeen = 0;
  const tokens = Object.fromEntries(
    await Promise.all(ROLES.map(async (role) => [role, await createTestToken(database.db, role)] as const)),
  ) as Record<Role, string>;
  return {
    db: database.db,
    secrets,
    sync,
    tokens,
    logged,
    async request(method, path, body, options = {}) {
      const token = options.token === undefined ? tokens.admin : options.token;
      const headers: Record<string, string> = {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...options.headers,
      };
      const init: RequestInit = { method, headers };
      if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
      const response = await app.request(path, init);
      const text = await response.text();
      return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as never };
    },
    async takeOutbox() {
      const { rows } = await database.db.query<{
        seq: string;
        object_type: string;
        object_id: string;
        related_id: string | null;
        change: string;
      }>('SELECT seq, object_type, object_id, related_id, change FROM outbox WHERE seq > $1 ORDER BY seq', [
        outboxSeen,
      ]);
      const last = rows.at(-1);
      if (last) outboxSeen = Number(last.seq);
      return rows.map((row) => ({
        objectType: row.object_type,
        objectId: row.object_id,
        relatedId: row.related_id,
        change: row.change,
      }));
    },
    close: () => database.drop(),
  };
}
