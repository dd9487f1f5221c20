/**
 * A world for interactive OAuth tests: a test database, a real worker on Temporal, the admin API listening on
 * loopback (the callback is reached over HTTP), a real authorization server (oidc-provider) whose only redirect URI is
 * that API's callback, and a SCIM target that accepts only its tokens.
 */
import assert from 'node:assert/strict';
import { createApi, startApiServer, type ApiServer } from '../../api/index.ts';
import { createCredentialService } from '../../auth/credentials.ts';
import type { OAuthStatus } from '../../auth/schemas.ts';
import type { Client } from '@temporalio/client';
import {
  createGrantStore,
  sealerOf,
  type Db,
  type ProviderView,
  type SecretBox,
  type SecretSealer,
} from '../../db/index.ts';
import { createAuthorisationCompleter, createProviderChecker } from '../../engine/index.ts';
import { callApi, createTestToken, recordingSyncControl, validatePluginOptions } from '../api/api-harness.ts';
import { loginAndConsent } from '../servers/oauth-login.ts';
import { startOAuthServer, type OAuthTestServer } from '../servers/oauth-server.ts';
import { startScimTarget, type ScimTarget } from '../servers/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';

/** `POST /providers/{id}/oauth/authorize`'s answer. */
export interface AuthorisationStart {
  authorizationUrl: string;
  redirectUri: string;
  expiresAt: string;
}

/** What the administrator's browser shows after the authorization server sends it back. */
export interface CallbackPage {
  status: number;
  text: string;
  headers: Headers;
}

export interface OAuthWorld {
  database: TestDatabase;
  engine: TestEngine;
  oauth: OAuthTestServer;
  target: ScimTarget;
  api: ApiServer;
  /** A live admin API token. */
  admin: string;
  redirectUri: string;
  /** Asks the API for an authorise URL as `token` (default: the admin token). */
  authorise(provider: ProviderView, token?: string): Promise<{ status: number; body: AuthorisationStart & ErrorPart }>;
  openCallback(url: string): Promise<CallbackPage>;
  /** The whole browser round: authorise URL, login, consent, callback. */
  authoriseInBrowser(provider: ProviderView, token?: string): Promise<{ callback: string; page: CallbackPage }>;
  oauthStatus(provider: ProviderView): Promise<OAuthStatus>;
  /** Runs a full sync through Temporal; its run row, whether the workflow succeeded or failed. */
  syncRun(provider: ProviderView): Promise<SyncRunRow>;
  /** Token requests of `clientId` (default: the interactive client) from now on. */
  tokenRequestsFromNow(clientId?: string): () => OAuthTestServer['tokenRequests'];
  close(): Promise<void>;
}

interface ErrorPart {
  error?: { code: string; message: string };
}

export interface SyncRunRow {
  status: string;
  created: number;
  updated: number;
  error: { code: string; message: string } | null;
}

/**
 * The admin API listening on loopback (a browser reaches its callback over HTTP), with the worker side of provider
 * auth run on `taskQueue`; Temporal is replaced by a recorder for everything else.
 */
export async function startProviderAuthApi(deps: {
  db: Db;
  secrets: SecretSealer;
  client: Client;
  taskQueue: string;
}): Promise<{ api: ApiServer; redirectUri: string }> {
  const { client, taskQueue } = deps;
  let apiUrl = '';
  const app = createApi({
    db: deps.db,
    secrets: sealerOf(deps.secrets),
    sync: recordingSyncControl(),
    validatePluginOptions,
    providerAuth: {
      check: createProviderChecker({ client, taskQueue }),
      completeAuthorisation: createAuthorisationCompleter({ client, taskQueue }),
    },
    publicUrl: () => apiUrl,
  });
  const api = await startApiServer(app, { host: '127.0.0.1', port: 0 });
  apiUrl = api.url;
  return { api, redirectUri: `${api.url}/oauth/callback` };
}

/** Starts the world; `now` is the worker's token clock, `secrets` the key box every process uses. */
export async function startOAuthWorld(options: { secrets: SecretBox; now?: () => number }): Promise<OAuthWorld> {
  const database = await createTestDatabase();
  const { secrets } = options;
  const engine = await startTestEngine({
    db: database.db,
    secrets,
    credentials: createCredentialService({
      grants: createGrantStore(database.db, secrets),
      ...(options.now ? { now: options.now } : {}),
    }),
  });
  const { api, redirectUri } = await startProviderAuthApi({
    db: database.db,
    secrets,
    client: engine.client,
    taskQueue: engine.taskQueue,
  });
  const oauth = await startOAuthServer({ redirectUri });
  const target = await startScimTarget({ oauth: oauth.jwtRules });
  const admin = await createTestToken(database.db, 'admin');

  const world: OAuthWorld = {
    database,
    engine,
    oauth,
    target,
    api,
    admin,
    redirectUri,
    authorise: (provider, token = admin) =>
      callApi<AuthorisationStart & ErrorPart>(api.url, token, 'POST', `/providers/${provider.id}/oauth/authorize`, {}),
    async openCallback(url) {
      const response = await fetch(url, { redirect: 'manual' });
      return { status: response.status, text: await response.text(), headers: response.headers };
    },
    async authoriseInBrowser(provider, token = admin) {
      const started = await world.authorise(provider, token);
      assert.equal(started.status, 200, JSON.stringify(started.body));
      const callback = await loginAndConsent(started.body.authorizationUrl, { redirectUri });
      return { callback, page: await world.openCallback(callback) };
    },
    async oauthStatus(provider) {
      const response = await callApi<OAuthStatus>(api.url, admin, 'GET', `/providers/${provider.id}/oauth`);
      assert.equal(response.status, 200);
      return response.body;
    },
    async syncRun(provider) {
      const { runId, workflowId } = await engine.control.requestFullSync(provider);
      await engine.client.workflow
        .getHandle(workflowId)
        .result()
        .catch(() => undefined);
      const { rows } = await database.db.query<SyncRunRow>(
        'SELECT status, created, updated, error FROM sync_runs WHERE id = $1',
        [runId],
      );
      return rows[0]!;
    },
    tokenRequestsFromNow(clientId = oauth.clients.interactive.clientId) {
      const start = oauth.tokenRequests.length;
      return () => oauth.tokenRequests.slice(start).filter((request) => request.clientId === clientId);
    },
    async close() {
      await api.close();
      await engine.shutdown();
      await target.close();
      await oauth.close();
      await database.drop();
    },
  };
  return world;
}
