/**
 * OIDC bearer tokens on the admin API, issued by a real authorization server (oidc-provider) as JWT access tokens
 * and checked against its published keys, with roles taken from a claim.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createOidcVerifier } from '../../api/index.ts';
import { loadEnv, oidcSettings, type OidcSettings } from '../../config/index.ts';
import type { AuditView } from '../../db/index.ts';
import { isScimflowError } from '../../errors/index.ts';
import { startOAuthServer, TOKEN_EXCHANGE, type OAuthTestServer } from '../servers/oauth-server.ts';
import { startTestApi, type ErrorBody, type TestApi } from '../api/api-harness.ts';

const AUDIENCE = 'https://scimflow.test/api';
const PROVIDER = {
  slug: 'by-oidc',
  name: 'Made with an OIDC token',
  baseUrl: 'https://target.example.test/scim/v2',
  auth: { mode: 'bearer', token: 'target-token' },
};

/** What each test client's tokens say about it: two roles' groups, and no role at all for the exchange client. */
const CLAIMS: Record<string, Record<string, unknown>> = {
  'scimflow-basic': { email: 'ops@example.test', groups: ['everyone', 'scimflow-admins'] },
  'scimflow-post': { email: 'auditor@example.test', groups: ['everyone', 'scimflow-readers'] },
  'scimflow-exchange': { email: 'stranger@example.test', groups: ['everyone'] },
};

/** An access token of `server` for one of its client-secret clients (client credentials or token exchange). */
async function accessToken(server: OAuthTestServer, client: 'basic' | 'post' | 'exchange'): Promise<string> {
  const { clients } = server;
  const form =
    client === 'basic'
      ? { grant_type: 'client_credentials', scope: 'scim' }
      : client === 'post'
        ? {
            grant_type: 'client_credentials',
            scope: 'scim',
            client_id: clients.post.clientId,
            client_secret: clients.post.clientSecret,
          }
        : {
            grant_type: TOKEN_EXCHANGE,
            subject_token: clients.exchange.subjectToken,
            subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
            client_id: clients.exchange.clientId,
            client_secret: clients.exchange.clientSecret,
          };
  const basic = Buffer.from(`${clients.basic.clientId}:${clients.basic.clientSecret}`).toString('base64');
  const response = await fetch(server.tokenUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(client === 'basic' ? { authorization: `Basic ${basic}` } : {}),
    },
    body: new URLSearchParams(form).toString(),
  });
  const body = (await response.json()) as { access_token?: string };
  assert.equal(response.status, 200, JSON.stringify(body));
  assert.ok(body.access_token?.split('.').length === 3, 'a JWT access token');
  return body.access_token;
}

/** The settings `scimflow api` would read from this environment. */
function settingsFor(issuer: string, extra: Record<string, string> = {}): OidcSettings {
  const settings = oidcSettings(
    loadEnv({
      SCIMFLOW_OIDC_ISSUER: issuer,
      SCIMFLOW_OIDC_AUDIENCE: AUDIENCE,
      SCIMFLOW_OIDC_ROLE_CLAIM: 'groups',
      SCIMFLOW_OIDC_ROLES: 'scimflow-admins=admin, scimflow-readers=viewer',
      SCIMFLOW_OIDC_NAME_CLAIM: 'email',
      ...extra,
    }),
  );
  assert.ok(settings);
  return settings;
}

describe('OIDC bearer tokens of the organisation’s identity provider', () => {
  let idp: OAuthTestServer;
  let stranger: OAuthTestServer;
  let api: TestApi;
  let clockAheadMs = 0;
  before(async () => {
    const tokenClaims = (clientId: string) => CLAIMS[clientId] ?? {};
    idp = await startOAuthServer({ resource: AUDIENCE, tokenClaims });
    // Another issuer with keys of its own, issuing for the same audience with the same claims.
    stranger = await startOAuthServer({ resource: AUDIENCE, tokenClaims });
    const unreachable = () => Promise.reject(new Error('no worker in this test'));
    api = await startTestApi({
      oidc: createOidcVerifier(settingsFor(idp.issuer), { now: () => new Date(Date.now() + clockAheadMs) }),
      providerAuth: { check: unreachable, completeAuthorisation: unreachable },
    });
  });
  after(async () => {
    await api.close();
    await Promise.all([idp.close(), stranger.close()]);
  });

  test('a token whose group maps to admin may change providers, and the audit log names its subject', async () => {
    const token = await accessToken(idp, 'basic');
    const created = await api.request('POST', '/api/v1/providers', PROVIDER, { token });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const audit = await api.request<{ items: AuditView[] }>('GET', '/api/v1/audit?targetType=provider', undefined, {
      token,
    });
    assert.deepEqual(
      audit.body.items.map((row) => [row.actor, row.action, row.targetName]),
      [['oidc:ops@example.test', 'provider.create', 'by-oidc']],
    );
    // API tokens keep working beside OIDC.
    assert.equal((await api.request('GET', '/api/v1/providers', undefined, { token: api.tokens.viewer })).status, 200);
  });

  test('a token whose group maps to viewer reads, and is refused a change with the role it lacks', async () => {
    const token = await accessToken(idp, 'post');
    assert.equal((await api.request('GET', '/api/v1/providers', undefined, { token })).status, 200);
    const refused = await api.request<ErrorBody>('POST', '/api/v1/providers', { ...PROVIDER, slug: 'nope' }, { token });
    assert.equal(refused.status, 403);
    assert.deepEqual(refused.body.error.details, { reason: 'role', required: 'admin', role: 'viewer' });
    assert.match(refused.body.error.message, /token "oidc:auditor@example\.test" has viewer/);
  });

  test('a valid token with no group that maps to a role is refused with 403, saying so', async () => {
    const token = await accessToken(idp, 'exchange');
    const refused = await api.request<ErrorBody>('GET', '/api/v1/providers', undefined, { token });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'ERR_FORBIDDEN');
    assert.equal(refused.body.error.details?.['reason'], 'no-role');
    assert.match(refused.body.error.message, /oidc:stranger@example\.test has no value in its "groups" claim/);
  });

  test("another issuer's token, a tampered token and an expired one are refused with 401", async () => {
    const foreign = await api.request<ErrorBody>('GET', '/api/v1/providers', undefined, {
      token: await accessToken(stranger, 'basic'),
    });
    assert.equal(foreign.status, 401);
    assert.equal(foreign.body.error.code, 'ERR_UNAUTHENTICATED');
    assert.equal(foreign.body.error.details?.['reason'], 'unknown');

    // The viewer's token, its claims rewritten to the admin group: the signature no longer matches.
    const [header, payload, signature] = (await accessToken(idp, 'post')).split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, groups: ['scimflow-admins'] })).toString('base64url');
    const tampered = await api.request<ErrorBody>(
      'POST',
      '/api/v1/providers',
      { ...PROVIDER, slug: 'forged' },
      { token: `${header}.${forged}.${signature}` },
    );
    assert.equal(tampered.status, 401);
    assert.equal(tampered.body.error.details?.['reason'], 'unknown');
    assert.match(tampered.body.error.message, /signature verification failed/);

    const token = await accessToken(idp, 'basic');
    clockAheadMs = 2 * 3600_000; // the server's tokens live 10 minutes
    try {
      const expired = await api.request<ErrorBody>('GET', '/api/v1/providers', undefined, { token });
      assert.equal(expired.status, 401);
      assert.deepEqual(expired.body.error, {
        code: 'ERR_UNAUTHENTICATED',
        message: 'the OIDC token has expired',
        details: { reason: 'expired' },
      });
    } finally {
      clockAheadMs = 0;
    }
    assert.deepEqual(
      (await api.db.query<{ slug: string }>('SELECT slug FROM providers ORDER BY slug')).rows.map((r) => r.slug),
      ['by-oidc'],
      'no refused request changed anything',
    );
  });

  test('a token issued for another audience is refused', async () => {
    const verifier = createOidcVerifier({ ...settingsFor(idp.issuer), audience: 'https://another-app.test/' });
    const result = await verifier.verify(await accessToken(idp, 'basic'));
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.reason, 'unknown');
    assert.match(!result.ok ? result.message : '', /"aud" claim/);
  });

  test('an issuer that cannot be reached is ERR_AUTH_UNAVAILABLE (502), not a refusal of the token', async () => {
    const down = await startOAuthServer({ resource: AUDIENCE });
    const issuer = down.issuer;
    const token = await accessToken(idp, 'basic');
    await down.close();
    const verifier = createOidcVerifier(settingsFor(issuer), { timeoutMs: 2000 });
    await assert.rejects(verifier.verify(token), (error: unknown) => {
      assert.ok(isScimflowError(error) && error.code === 'ERR_AUTH_UNAVAILABLE', String(error));
      assert.match(error.message, new RegExp(`the OIDC issuer ${issuer} could not be reached`));
      return true;
    });
  });

  test('interactive OAuth authorisation asks for an API token: its callback is bound to one', async () => {
    const token = await accessToken(idp, 'basic');
    const refused = await api.request<ErrorBody>('POST', '/api/v1/providers/by-oidc/oauth/authorize', undefined, {
      token,
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.details?.['reason'], 'api-token-required');
  });
});

describe('OIDC settings', () => {
  const invalid = (env: Record<string, string>) => {
    try {
      loadEnv(env);
    } catch (error) {
      return (error as Error).message;
    }
    return assert.fail('accepted');
  };

  test('without an issuer OIDC is off; an issuer needs an audience, https off loopback and VALUE=ROLE pairs', () => {
    assert.equal(oidcSettings(loadEnv({})), null);
    // What docker compose passes when nothing is set.
    const composeDefaults = {
      SCIMFLOW_OIDC_ISSUER: '',
      SCIMFLOW_OIDC_AUDIENCE: '',
      SCIMFLOW_OIDC_ROLE_CLAIM: 'roles',
      SCIMFLOW_OIDC_ROLES: '',
      SCIMFLOW_OIDC_NAME_CLAIM: 'sub',
    };
    assert.equal(oidcSettings(loadEnv(composeDefaults)), null);
    assert.match(
      invalid({ SCIMFLOW_OIDC_ISSUER: 'https://login.example.test' }),
      /SCIMFLOW_OIDC_AUDIENCE: must be set/,
    );
    assert.match(
      invalid({ SCIMFLOW_OIDC_ISSUER: 'http://login.example.test', SCIMFLOW_OIDC_AUDIENCE: AUDIENCE }),
      /SCIMFLOW_OIDC_ISSUER: must be https/,
    );
    assert.match(
      invalid({
        SCIMFLOW_OIDC_ISSUER: 'https://login.example.test',
        SCIMFLOW_OIDC_AUDIENCE: AUDIENCE,
        SCIMFLOW_OIDC_ROLES: 'admins=root',
      }),
      /SCIMFLOW_OIDC_ROLES: "admins=root" is not VALUE=ROLE/,
    );
    assert.match(invalid({ SCIMFLOW_OIDC_AUDIENCE: AUDIENCE }), /SCIMFLOW_OIDC_AUDIENCE: is set without/);
    const settings = oidcSettings(
      loadEnv({
        SCIMFLOW_OIDC_ISSUER: 'https://login.example.test',
        SCIMFLOW_OIDC_AUDIENCE: AUDIENCE,
        SCIMFLOW_OIDC_ROLE_CLAIM: 'realm_access.roles',
      }),
    );
    assert.deepEqual(settings, {
      issuer: 'https://login.example.test',
      audience: AUDIENCE,
      roleClaim: ['realm_access', 'roles'],
      roles: null,
      nameClaim: 'sub',
    });
  });
});
