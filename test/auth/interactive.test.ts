/**
 * Interactive OAuth end to end: the admin API's authorise URL, login and consent at a real authorization server
 * (oidc-provider) driven with HTTP requests, the callback a worker completes, full syncs through Temporal into a
 * SCIM target that accepts only that server's tokens, and a revoked grant surfacing as "needs re-authorisation".
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApi, startApiServer, type ApiServer } from '../../api/index.ts';
import { createCredentialService } from '../../auth/credentials.ts';
import type { OAuthStatus } from '../../auth/schemas.ts';
import {
  createGrantStore,
  createUser,
  createSecretBox,
  generateSecretKey,
  revokeApiToken,
  sealerOf,
  type ProviderView,
} from '../../db/index.ts';
import { createAuthorisationCompleter, createProviderChecker } from '../../engine/index.ts';
import { callApi, createTestToken, recordingSyncControl, validatePluginOptions } from '../api/api-harness.ts';
import { startOAuthServer, type OAuthTestServer } from '../servers/oauth-server.ts';
import { loginAndConsent } from '../servers/oauth-login.ts';
import { startScimTarget, type ScimTarget } from '../servers/index.ts';
import { runScimflow } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { seedDirectory } from '../support/directory.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';
import { testProviderInput } from '../support/providers.ts';

let database: TestDatabase;
let engine: TestEngine;
let oauth: OAuthTestServer;
let target: ScimTarget;
let api: ApiServer;
let admin: string;
let redirectUri: string;
/** How far the worker's token clock runs ahead of real time (to make cached access tokens due for refresh). */
let skewMs = 0;
const newcomer = { username: 'newcomer@example.test', displayName: 'Newcomer', email: 'newcomer@example.test' };

before(async () => {
  database = await createTestDatabase();
  const secrets = createSecretBox(generateSecretKey());
  engine = await startTestEngine({
    db: database.db,
    secrets,
    credentials: createCredentialService({
      grants: createGrantStore(database.db, secrets),
      now: () => Date.now() + skewMs,
    }),
  });
  let apiUrl = '';
  const app = createApi({
    db: database.db,
    secrets: sealerOf(secrets),
    sync: recordingSyncControl(),
    validatePluginOptions,
    providerAuth: {
      check: createProviderChecker({ client: engine.client, taskQueue: engine.taskQueue }),
      completeAuthorisation: createAuthorisationCompleter({ client: engine.client, taskQueue: engine.taskQueue }),
    },
    publicUrl: () => apiUrl,
  });
  api = await startApiServer(app, { host: '127.0.0.1', port: 0 });
  apiUrl = api.url;
  redirectUri = `${api.url}/oauth/callback`;
  oauth = await startOAuthServer({ redirectUri });
  target = await startScimTarget({ oauth: oauth.jwtRules });
  admin = await createTestToken(database.db, 'admin');
  await seedDirectory(database.db, 3, 1);
});

after(async () => {
  await api.close();
  await engine.shutdown();
  await target.close();
  await oauth.close();
  await database.drop();
});

interface AuthorisationStart {
  authorizationUrl: string;
  redirectUri: string;
  expiresAt: string;
}

/** Asks the API for an authorise URL as `token`. */
async function authorise(provider: ProviderView, token = admin) {
  return callApi<AuthorisationStart & { error?: { code: string } }>(
    api.url,
    token,
    'POST',
    `/providers/${provider.id}/oauth/authorize`,
    {},
  );
}

/** What the administrator's browser shows after the authorization server sends it back. */
async function openCallback(url: string): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(url, { redirect: 'manual' });
  return { status: response.status, text: await response.text(), headers: response.headers };
}

/** The whole browser round: authorise URL, login, consent, callback. */
async function authoriseInBrowser(provider: ProviderView, token = admin) {
  const started = await authorise(provider, token);
  assert.equal(started.status, 200, JSON.stringify(started.body));
  const callback = await loginAndConsent(started.body.authorizationUrl, { redirectUri });
  return { started: started.body, callback, page: await openCallback(callback) };
}

async function oauthStatus(provider: ProviderView): Promise<OAuthStatus> {
  const response = await callApi<OAuthStatus>(api.url, admin, 'GET', `/providers/${provider.id}/oauth`);
  assert.equal(response.status, 200);
  return response.body;
}

/** Runs a full sync through Temporal and returns its run row, whether the workflow succeeded or failed. */
async function syncRun(provider: ProviderView) {
  const { runId, workflowId } = await engine.control.requestFullSync(provider);
  await engine.client.workflow
    .getHandle(workflowId)
    .result()
    .catch(() => undefined);
  const { rows } = await database.db.query<{ status: string; error: { code: string; message: string } | null }>(
    'SELECT status, error FROM sync_runs WHERE id = $1',
    [runId],
  );
  return rows[0]!;
}

/** Token requests of the interactive client from now on. */
function tokenRequestsFromNow(): () => OAuthTestServer['tokenRequests'] {
  const start = oauth.tokenRequests.length;
  return () =>
    oauth.tokenRequests.slice(start).filter((request) => request.clientId === oauth.clients.interactive.clientId);
}

describe('interactive OAuth', () => {
  let provider: ProviderView;

  before(async () => {
    const created = await callApi<ProviderView>(
      api.url,
      admin,
      'POST',
      '/providers',
      testProviderInput(target, 'interactive', {
        auth: {
          mode: 'oauth_interactive',
          issuer: oauth.issuer,
          clientId: oauth.clients.interactive.clientId,
          clientAuth: 'client_secret_basic',
          clientSecret: oauth.clients.interactive.clientSecret,
          scope: 'scim',
        },
      }),
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    provider = created.body;
  });

  test('a new interactive provider is not authorised, and its sync fails saying an administrator must authorise it', async () => {
    assert.deepEqual(provider.auth.oauth, {
      state: 'not_authorised',
      authorisedAt: null,
      expiresAt: null,
      error: null,
    });
    const run = await syncRun(provider);
    assert.equal(run.status, 'failed');
    assert.equal(run.error?.code, 'ERR_AUTH_REAUTHORIZE');
    assert.match(run.error?.message ?? '', /not authorised yet: an administrator must open its authorise URL/);
  });

  test('the authorise URL needs the admin role, and asks for a code with PKCE S256 and a fresh state for the registered redirect URI', async () => {
    const operator = await createTestToken(database.db, 'operator', 'operator-authorise');
    const refused = await authorise(provider, operator);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error?.code, 'ERR_FORBIDDEN');

    const first = await authorise(provider);
    const second = await authorise(provider);
    assert.equal(first.status, 200);
    assert.equal(first.body.redirectUri, redirectUri);
    const url = new URL(first.body.authorizationUrl);
    assert.equal(url.origin + url.pathname, `${oauth.issuer}/auth`);
    assert.equal(url.searchParams.get('response_type'), 'code');
    assert.equal(url.searchParams.get('client_id'), oauth.clients.interactive.clientId);
    assert.equal(url.searchParams.get('redirect_uri'), redirectUri);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(url.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(url.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/);
    const again = new URL(second.body.authorizationUrl);
    assert.notEqual(again.searchParams.get('state'), url.searchParams.get('state'));
    assert.notEqual(again.searchParams.get('code_challenge'), url.searchParams.get('code_challenge'));
  });

  test('only the latest authorise URL counts: an earlier one comes back refused', async () => {
    const earlier = await authorise(provider);
    await authorise(provider);
    const callback = await loginAndConsent(earlier.body.authorizationUrl, { redirectUri });
    const page = await openCallback(callback);
    assert.equal(page.status, 400);
    assert.match(page.text, /unknown, used or expired/);
    assert.equal((await oauthStatus(provider)).state, 'not_authorised');
  });

  test('login and consent lead back to the callback, a worker exchanges the code, and the provider shows authorised', async () => {
    const requests = tokenRequestsFromNow();
    const { page, callback } = await authoriseInBrowser(provider);
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, new RegExp(`Provider ${provider.slug} is authorised`));
    assert.equal(page.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');

    const exchanges = requests().filter((request) => request.grantType === 'authorization_code');
    assert.equal(exchanges.length, 1);
    assert.equal(exchanges[0]?.ok, true);
    assert.match(String(exchanges[0]?.params['code_verifier']), /^[A-Za-z0-9_-]{43}$/);
    assert.equal(exchanges[0]?.params['redirect_uri'], redirectUri);

    const status = await oauthStatus(provider);
    assert.equal(status.state, 'authorised');
    assert.ok(status.authorisedAt !== null && status.expiresAt !== null);
    assert.ok(Date.parse(status.expiresAt) > Date.now());
    const view = await callApi<ProviderView>(api.url, admin, 'GET', `/providers/${provider.id}`);
    assert.equal(view.body.auth.oauth?.state, 'authorised');

    // The code in the redirect is used up: the same callback again is refused, and the grant stays as it was.
    const replay = await openCallback(callback);
    assert.equal(replay.status, 400);
    assert.match(replay.text, /unknown, used or expired/);
    assert.equal((await oauthStatus(provider)).state, 'authorised');
    assert.equal(requests().filter((request) => request.grantType === 'authorization_code').length, 1);
  });

  test('a full sync through Temporal authenticates with a refreshed access token that the target accepts', async () => {
    const requests = tokenRequestsFromNow();
    const run = await syncRun(provider);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const names = (await target.users()).map((user) => user.userName).sort();
    assert.deepEqual(names, ['user0@example.test', 'user1@example.test', 'user2@example.test']);
    const refreshes = requests().filter((request) => request.grantType === 'refresh_token');
    assert.equal(refreshes.length, 1, 'one refresh serves the whole sync');
    assert.equal(refreshes[0]?.ok, true);
  });

  test('a revoked grant marks the provider as needing re-authorisation at the next refresh, and its syncs fail with that message instead of retrying', async () => {
    await oauth.revokeAllGrants();
    // The cached access token is due for refresh an hour later, and there is something to send.
    skewMs = 3_600_000;
    await createUser(database.db, { ...newcomer, active: true, kind: 'internal', attributes: {} });
    const requests = tokenRequestsFromNow();
    const run = await syncRun(provider);
    assert.equal(run.status, 'failed');
    assert.equal(run.error?.code, 'ERR_AUTH_REAUTHORIZE');
    assert.match(run.error?.message ?? '', /needs re-authorisation: .*invalid_grant/);
    assert.deepEqual(
      requests().map((request) => [request.grantType, request.ok]),
      [['refresh_token', false]],
      'the refused refresh is tried once, not retried',
    );

    const status = await oauthStatus(provider);
    assert.equal(status.state, 'needs_reauthorisation');
    assert.match(status.error ?? '', /invalid_grant/);
    const view = await callApi<ProviderView>(api.url, admin, 'GET', `/providers/${provider.id}`);
    assert.equal(view.body.auth.oauth?.state, 'needs_reauthorisation');

    // The next sync fails at once with the same message, without asking the authorization server again.
    const next = await syncRun(provider);
    assert.equal(next.status, 'failed');
    assert.equal(next.error?.code, 'ERR_AUTH_REAUTHORIZE');
    assert.match(next.error?.message ?? '', /needs re-authorisation/);
    assert.equal(requests().length, 1);
  });

  test('authorising again heals the provider: the next sync succeeds', async () => {
    const { page } = await authoriseInBrowser(provider);
    assert.equal(page.status, 200, page.text);
    assert.equal((await oauthStatus(provider)).state, 'authorised');
    const run = await syncRun(provider);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.ok((await target.users()).some((user) => user.userName === newcomer.username));
  });

  test('the callback is refused when the admin token that asked for the URL has been revoked since', async () => {
    const name = 'admin-revoked-before-callback';
    const token = await createTestToken(database.db, 'admin', name);
    const started = await authorise(provider, token);
    assert.equal(started.status, 200);
    await revokeApiToken(database.db, name);
    const requests = tokenRequestsFromNow();
    const callback = await loginAndConsent(started.body.authorizationUrl, { redirectUri });
    const page = await openCallback(callback);
    assert.equal(page.status, 403);
    assert.match(page.text, /admin API token that started this authorisation is no longer valid/);
    assert.equal(requests().filter((request) => request.grantType === 'authorization_code').length, 0);
  });

  test('scimflow providers authorize prints the authorise URL alone on stdout, and the redirect URI to register', async () => {
    const result = await runScimflow(['providers', 'authorize', provider.slug], {
      env: { SCIMFLOW_API_URL: api.url, SCIMFLOW_API_TOKEN: admin },
    });
    assert.equal(result.code, 0, result.stderr);
    const url = new URL(result.stdout.trim());
    assert.equal(url.origin + url.pathname, `${oauth.issuer}/auth`);
    assert.equal(url.searchParams.get('redirect_uri'), redirectUri);
    assert.ok(result.stderr.includes(redirectUri));
    // The printed URL is a live one: following it authorises the provider.
    const page = await openCallback(await loginAndConsent(url.href, { redirectUri }));
    assert.equal(page.status, 200, page.text);
  });

  test('a callback whose state matches nothing is refused, whoever sends it', async () => {
    const page = await openCallback(`${redirectUri}?code=made-up&state=${'x'.repeat(43)}`);
    assert.equal(page.status, 400);
    assert.match(page.text, /unknown, used or expired/);
    const missing = await fetch(`${redirectUri}?code=made-up`);
    assert.equal(missing.status, 400);
  });

  test('an administrator who denies consent is told so, and nothing is stored', async () => {
    const started = await authorise(provider);
    const callback = await loginAndConsent(started.body.authorizationUrl, { redirectUri, deny: true });
    assert.equal(new URL(callback).searchParams.get('error'), 'access_denied');
    const page = await openCallback(callback);
    assert.equal(page.status, 400);
    assert.match(page.text, /did not authorise scimflow \(access_denied/);
    assert.equal((await oauthStatus(provider)).state, 'authorised', 'the earlier grant stays');
  });
});
