/**
 * Interactive OAuth end to end: the admin API's authorise URL, login and consent at a real authorization server
 * (oidc-provider) driven with HTTP requests, the callback a worker completes, full syncs through Temporal into a
 * SCIM target that accepts only that server's tokens, and a revoked grant surfacing as "needs re-authorisation".
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createSecretBox, createUser, generateSecretKey, revokeApiToken, type ProviderView } from '../../db/index.ts';
import { callApi, createTestToken } from '../api/api-harness.ts';
import { loginAndConsent } from '../servers/oauth-login.ts';
import { runScimflow } from '../support/cli.ts';
import { seedDirectory } from '../support/directory.ts';
import { testProviderInput } from '../support/providers.ts';
import { startOAuthWorld, type OAuthWorld } from './oauth-world.ts';

let world: OAuthWorld;
/** How far the worker's token clock runs ahead of real time (to make cached access tokens due for refresh). */
let skewMs = 0;
const newcomer = { username: 'newcomer@example.test', displayName: 'Newcomer', email: 'newcomer@example.test' };

before(async () => {
  world = await startOAuthWorld({ secrets: createSecretBox(generateSecretKey()), now: () => Date.now() + skewMs });
  await seedDirectory(world.database.db, 3, 1);
});

after(() => world.close());

describe('interactive OAuth', () => {
  let provider: ProviderView;

  before(async () => {
    const created = await callApi<ProviderView>(
      world.api.url,
      world.admin,
      'POST',
      '/providers',
      testProviderInput(world.target, 'interactive', {
        auth: {
          mode: 'oauth_interactive',
          issuer: world.oauth.issuer,
          clientId: world.oauth.clients.interactive.clientId,
          clientAuth: 'client_secret_basic',
          clientSecret: world.oauth.clients.interactive.clientSecret,
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
    const run = await world.syncRun(provider);
    assert.equal(run.status, 'failed');
    assert.equal(run.error?.code, 'ERR_AUTH_REAUTHORIZE');
    assert.match(run.error?.message ?? '', /not authorised yet: an administrator must open its authorise URL/);
  });

  test('the authorise URL needs the admin role, and asks for a code with PKCE S256 and a fresh state for the registered redirect URI', async () => {
    const operator = await createTestToken(world.database.db, 'operator', 'operator-authorise');
    const refused = await world.authorise(provider, operator);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error?.code, 'ERR_FORBIDDEN');

    const first = await world.authorise(provider);
    const second = await world.authorise(provider);
    assert.equal(first.status, 200);
    assert.equal(first.body.redirectUri, world.redirectUri);
    const url = new URL(first.body.authorizationUrl);
    assert.equal(url.origin + url.pathname, `${world.oauth.issuer}/auth`);
    assert.equal(url.searchParams.get('response_type'), 'code');
    assert.equal(url.searchParams.get('client_id'), world.oauth.clients.interactive.clientId);
    assert.equal(url.searchParams.get('redirect_uri'), world.redirectUri);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(url.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(url.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/);
    const again = new URL(second.body.authorizationUrl);
    assert.notEqual(again.searchParams.get('state'), url.searchParams.get('state'));
    assert.notEqual(again.searchParams.get('code_challenge'), url.searchParams.get('code_challenge'));
  });

  test('only the latest authorise URL counts: an earlier one comes back refused', async () => {
    const earlier = await world.authorise(provider);
    await world.authorise(provider);
    const callback = await loginAndConsent(earlier.body.authorizationUrl, { redirectUri: world.redirectUri });
    const page = await world.openCallback(callback);
    assert.equal(page.status, 400);
    assert.match(page.text, /unknown, used or expired/);
    assert.equal((await world.oauthStatus(provider)).state, 'not_authorised');
  });

  test('login and consent lead back to the callback, a worker exchanges the code, and the provider shows authorised', async () => {
    const requests = world.tokenRequestsFromNow();
    const { page, callback } = await world.authoriseInBrowser(provider);
    assert.equal(page.status, 200, page.text);
    assert.match(page.text, new RegExp(`Provider ${provider.slug} is authorised`));
    assert.equal(page.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(page.headers.get('cache-control'), 'no-store');
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');

    const exchanges = requests().filter((request) => request.grantType === 'authorization_code');
    assert.equal(exchanges.length, 1);
    assert.equal(exchanges[0]?.ok, true);
    assert.match(String(exchanges[0]?.params['code_verifier']), /^[A-Za-z0-9_-]{43}$/);
    assert.equal(exchanges[0]?.params['redirect_uri'], world.redirectUri);

    const status = await world.oauthStatus(provider);
    assert.equal(status.state, 'authorised');
    assert.ok(status.authorisedAt !== null && status.expiresAt !== null);
    assert.ok(Date.parse(status.expiresAt) > Date.now());
    const view = await callApi<ProviderView>(world.api.url, world.admin, 'GET', `/providers/${provider.id}`);
    assert.equal(view.body.auth.oauth?.state, 'authorised');

    // The code in the redirect is used up: the same callback again is refused, and the grant stays as it was.
    const replay = await world.openCallback(callback);
    assert.equal(replay.status, 400);
    assert.match(replay.text, /unknown, used or expired/);
    assert.equal((await world.oauthStatus(provider)).state, 'authorised');
    assert.equal(requests().filter((request) => request.grantType === 'authorization_code').length, 1);
  });

  test('a full sync through Temporal authenticates with a refreshed access token that the target accepts', async () => {
    const requests = world.tokenRequestsFromNow();
    const run = await world.syncRun(provider);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const names = (await world.target.users()).map((user) => user.userName).sort();
    assert.deepEqual(names, ['user0@example.test', 'user1@example.test', 'user2@example.test']);
    const refreshes = requests().filter((request) => request.grantType === 'refresh_token');
    assert.equal(refreshes.length, 1, 'one refresh serves the whole sync');
    assert.equal(refreshes[0]?.ok, true);
  });

  test('a revoked grant marks the provider as needing re-authorisation at the next refresh, and its syncs fail with that message instead of retrying', async () => {
    await world.oauth.revokeAllGrants();
    // The cached access token is due for refresh an hour later, and there is something to send.
    skewMs = 3_600_000;
    await createUser(world.database.db, { ...newcomer, active: true, kind: 'internal', attributes: {} });
    const requests = world.tokenRequestsFromNow();
    const run = await world.syncRun(provider);
    assert.equal(run.status, 'failed');
    assert.equal(run.error?.code, 'ERR_AUTH_REAUTHORIZE');
    assert.match(run.error?.message ?? '', /needs re-authorisation: .*invalid_grant/);
    assert.deepEqual(
      requests().map((request) => [request.grantType, request.ok]),
      [['refresh_token', false]],
      'the refused refresh is tried once, not retried',
    );

    const status = await world.oauthStatus(provider);
    assert.equal(status.state, 'needs_reauthorisation');
    assert.match(status.error ?? '', /invalid_grant/);
    const view = await callApi<ProviderView>(world.api.url, world.admin, 'GET', `/providers/${provider.id}`);
    assert.equal(view.body.auth.oauth?.state, 'needs_reauthorisation');
    const listed = await runScimflow(['providers', 'list'], {
      env: { SCIMFLOW_API_URL: world.api.url, SCIMFLOW_API_TOKEN: world.admin },
    });
    assert.match(
      listed.stdout,
      new RegExp(`^${provider.slug} .* oauth_interactive \\(needs re-authorisation: run providers authorize\\)`, 'm'),
    );

    // The next sync fails at once with the same message, without asking the authorization server again.
    const next = await world.syncRun(provider);
    assert.equal(next.status, 'failed');
    assert.equal(next.error?.code, 'ERR_AUTH_REAUTHORIZE');
    assert.match(next.error?.message ?? '', /needs re-authorisation/);
    assert.equal(requests().length, 1);
  });

  test('authorising again heals the provider: the next sync succeeds', async () => {
    const { page } = await world.authoriseInBrowser(provider);
    assert.equal(page.status, 200, page.text);
    assert.equal((await world.oauthStatus(provider)).state, 'authorised');
    const run = await world.syncRun(provider);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.ok((await world.target.users()).some((user) => user.userName === newcomer.username));
  });

  test('the callback is refused when the admin token that asked for the URL has been revoked since', async () => {
    const name = 'admin-revoked-before-callback';
    const token = await createTestToken(world.database.db, 'admin', name);
    const started = await world.authorise(provider, token);
    assert.equal(started.status, 200);
    await revokeApiToken(world.database.db, name);
    const requests = world.tokenRequestsFromNow();
    const callback = await loginAndConsent(started.body.authorizationUrl, { redirectUri: world.redirectUri });
    const page = await world.openCallback(callback);
    assert.equal(page.status, 403);
    assert.match(page.text, /admin API token that started this authorisation is no longer valid/);
    assert.equal(requests().filter((request) => request.grantType === 'authorization_code').length, 0);
  });

  test('scimflow providers authorize prints the authorise URL alone on stdout, and the redirect URI to register', async () => {
    const result = await runScimflow(['providers', 'authorize', provider.slug], {
      env: { SCIMFLOW_API_URL: world.api.url, SCIMFLOW_API_TOKEN: world.admin },
    });
    assert.equal(result.code, 0, result.stderr);
    const url = new URL(result.stdout.trim());
    assert.equal(url.origin + url.pathname, `${world.oauth.issuer}/auth`);
    assert.equal(url.searchParams.get('redirect_uri'), world.redirectUri);
    assert.ok(result.stderr.includes(world.redirectUri));
    // The printed URL is a live one: following it authorises the provider.
    const page = await world.openCallback(await loginAndConsent(url.href, { redirectUri: world.redirectUri }));
    assert.equal(page.status, 200, page.text);
  });

  test('a callback whose state matches nothing is refused, whoever sends it', async () => {
    const page = await world.openCallback(`${world.redirectUri}?code=made-up&state=${'x'.repeat(43)}`);
    assert.equal(page.status, 400);
    assert.match(page.text, /unknown, used or expired/);
    const missing = await fetch(`${world.redirectUri}?code=made-up`);
    assert.equal(missing.status, 400);
  });

  test('an administrator who denies consent is told so, and nothing is stored', async () => {
    const started = await world.authorise(provider);
    const callback = await loginAndConsent(started.body.authorizationUrl, {
      redirectUri: world.redirectUri,
      deny: true,
    });
    assert.equal(new URL(callback).searchParams.get('error'), 'access_denied');
    const page = await world.openCallback(callback);
    assert.equal(page.status, 400);
    assert.match(page.text, /did not authorise scimflow \(access_denied/);
    assert.equal((await world.oauthStatus(provider)).state, 'authorised', 'the earlier grant stays');
  });
});
