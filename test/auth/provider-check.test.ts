/**
 * `scimflow providers create --auth oauth-client-credentials …` and `scimflow providers test`: the CLI, the admin API,
 * and a real worker (only workers decrypt secrets) against a real authorization server and SCIM target.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createApi, startApiServer } from '../../api/index.ts';
import { getProviderForSync, sealerOf } from '../../db/index.ts';
import { createAuthorisationCompleter, createProviderChecker } from '../../engine/index.ts';
import { createTestToken, recordingSyncControl, validatePluginOptions } from '../api/api-harness.ts';
import { startOAuthServer, type OAuthTestServer } from '../servers/oauth-server.ts';
import { startScimTarget, type ScimTarget } from '../servers/index.ts';
import { runScimflow } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';

let database: TestDatabase;
let engine: TestEngine;
let oauth: OAuthTestServer;
let target: ScimTarget;
let env: Record<string, string>;
let closeApi: () => Promise<void>;

before(async () => {
  database = await createTestDatabase();
  engine = await startTestEngine({ db: database.db });
  oauth = await startOAuthServer();
  target = await startScimTarget({ oauth: oauth.jwtRules });
  const app = createApi({
    db: database.db,
    secrets: sealerOf(engine.secrets),
    sync: recordingSyncControl(),
    validatePluginOptions,
    providerAuth: {
      check: createProviderChecker({ client: engine.client, taskQueue: engine.taskQueue }),
      completeAuthorisation: createAuthorisationCompleter({ client: engine.client, taskQueue: engine.taskQueue }),
    },
  });
  const server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
  closeApi = () => server.close();
  env = { SCIMFLOW_API_URL: server.url, SCIMFLOW_API_TOKEN: await createTestToken(database.db, 'admin') };
});

after(async () => {
  await closeApi();
  await engine.shutdown();
  await target.close();
  await oauth.close();
  await database.drop();
});

/** `scimflow providers create` for the test target with these auth flags; returns the slug. */
async function createWith(authArgs: string[], extraEnv: Record<string, string>): Promise<string> {
  const slug = `oauth-${randomUUID().slice(0, 8)}`;
  const result = await runScimflow(['providers', 'create', '--slug', slug, '--url', target.url, ...authArgs], {
    env: { ...env, ...extraEnv },
  });
  assert.equal(result.code, 0, result.stderr);
  return slug;
}

describe('providers create with OAuth client credentials', () => {
  test('stores every setting, the secret sealed, and the view shows no secret', async () => {
    const secret = oauth.clients.post.clientSecret;
    const slug = await createWith(
      [
        '--auth',
        'oauth-client-credentials',
        '--token-url',
        oauth.tokenUrl,
        '--client-id',
        oauth.clients.post.clientId,
        '--client-secret-env',
        'TEST_CLIENT_SECRET',
        '--client-auth',
        'post',
        '--scope',
        'scim',
        '--token-param',
        'tenant=acme',
      ],
      { TEST_CLIENT_SECRET: secret },
    );
    const show = await runScimflow(['providers', 'show', slug], { env });
    assert.equal(show.code, 0, show.stderr);
    const view = JSON.parse(show.stdout) as { id: string; auth: Record<string, unknown> };
    assert.deepEqual(view.auth, {
      mode: 'oauth_client_credentials',
      secretSet: true,
      tokenUrl: oauth.tokenUrl,
      clientId: oauth.clients.post.clientId,
      clientAuth: 'client_secret_post',
      scope: 'scim',
      tokenParamNames: ['tenant'],
    });
    assert.ok(!show.stdout.includes(secret));
    const stored = await getProviderForSync(database.db, engine.secrets, view.id);
    assert.deepEqual(stored.auth, {
      mode: 'oauth_client_credentials',
      tokenUrl: oauth.tokenUrl,
      clientId: oauth.clients.post.clientId,
      clientAuth: 'client_secret_post',
      clientSecret: secret,
      scope: 'scim',
      tokenParams: { tenant: 'acme' },
    });
  });

  test('a missing client secret is refused with the field named', async () => {
    const result = await runScimflow(
      [
        'providers',
        'create',
        '--slug',
        'no-secret',
        '--url',
        target.url,
        '--auth',
        'oauth-client-credentials',
        '--issuer',
        oauth.issuer,
        '--client-id',
        'x',
      ],
      { env },
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /auth\.clientSecret/);
  });
});

describe('providers test', () => {
  test('reports the token and ServiceProviderConfig steps ok for a working provider', async () => {
    const slug = await createWith(
      [
        '--auth',
        'oauth-client-credentials',
        '--issuer',
        oauth.issuer,
        '--client-id',
        oauth.clients.basic.clientId,
        '--client-secret-env',
        'TEST_CLIENT_SECRET',
      ],
      { TEST_CLIENT_SECRET: oauth.clients.basic.clientSecret },
    );
    const result = await runScimflow(['providers', 'test', slug], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^load\s+ok$/m);
    assert.match(result.stdout, /^token\s+ok$/m);
    assert.match(result.stdout, /^serviceProviderConfig\s+ok$/m);
    assert.match(result.stdout, /^token expires at \d{4}-/m);
  });

  test('a wrong client secret fails at the token step with ERR_AUTH_INVALID_CLIENT, and the secret is not shown', async () => {
    const wrong = 'not-the-secret-4f1e2d';
    const slug = await createWith(
      [
        '--auth',
        'oauth-client-credentials',
        '--issuer',
        oauth.issuer,
        '--client-id',
        oauth.clients.basic.clientId,
        '--client-secret-env',
        'TEST_CLIENT_SECRET',
      ],
      { TEST_CLIENT_SECRET: wrong },
    );
    const result = await runScimflow(['providers', 'test', slug], { env });
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^token\s+failed: ERR_AUTH_INVALID_CLIENT .*refused client "scimflow-basic"/m);
    assert.match(result.stdout, /^serviceProviderConfig\s+skipped$/m);
    assert.ok(!(result.stdout + result.stderr).includes(wrong));
  });

  test('a static token the target refuses fails at the ServiceProviderConfig step with 401', async () => {
    const slug = await createWith(['--token-env', 'TEST_TOKEN'], { TEST_TOKEN: 'static-token-the-target-refuses' });
    const result = await runScimflow(['providers', 'test', slug], { env });
    assert.equal(result.code, 1);
    assert.match(result.stdout, /^token\s+skipped$/m);
    assert.match(result.stdout, /^serviceProviderConfig\s+failed: ERR_SCIM_UNAUTHORIZED/m);
  });
});
