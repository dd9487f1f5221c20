/**
 * OAuth client credentials against a real authorization server (oidc-provider) in front of a real SCIM server
 * (SCIMMY) that accepts only that server's signed access tokens.
 */
import assert from 'node:assert/strict';
import { randomUUID, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createCredentialService, type CredentialSource } from '../../auth/credentials.ts';
import type { OAuthAuth, ProviderAuthInput } from '../../auth/schemas.ts';
import { isScimflowError, ScimRequestError } from '../../errors/index.ts';
import { createScimClient, type ScimClient } from '../../scim/index.ts';
import { startOAuthServer, TOKEN_EXCHANGE, type OAuthTestServer, type TokenRequest } from '../servers/oauth-server.ts';
import { startScimTarget, type ScimTarget } from '../servers/index.ts';

let oauth: OAuthTestServer;
let target: ScimTarget;

before(async () => {
  oauth = await startOAuthServer();
  target = await startScimTarget({ oauth: oauth.jwtRules });
});

after(async () => {
  await target.close();
  await oauth.close();
});

/** A provider with these auth settings, new each time (so nothing is cached from another test). */
function provider(auth: ProviderAuthInput): CredentialSource {
  return { id: randomUUID(), slug: 'oauth-test', configVersion: 1, auth };
}

/** A SCIM client authenticated by the credentials service; `now` is the service's clock. */
function clientFor(auth: ProviderAuthInput, now?: () => number): ScimClient {
  const service = createCredentialService(now === undefined ? {} : { now });
  return createScimClient({ baseUrl: target.url, credential: service.credentialFor(provider(auth)) });
}

/** Token requests made from now on, by this client id. */
function tokenRequestsAfter(clientId: string): () => typeof oauth.tokenRequests {
  const start = oauth.tokenRequests.length;
  return () => oauth.tokenRequests.slice(start).filter((request) => request.clientId === clientId);
}

async function withClient<T>(client: ScimClient, fn: (client: ScimClient) => Promise<T>): Promise<T> {
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Lists the target's users with a fresh client for `auth`; returns the token requests that made. */
async function listUsersWith(auth: OAuthAuth): Promise<TokenRequest[]> {
  const requests = tokenRequestsAfter(auth.clientId);
  await withClient(clientFor(auth), async (client) => {
    assert.equal((await client.request('GET', '/Users')).status, 200);
  });
  return requests();
}

const basicAuth = (): OAuthAuth => ({
  mode: 'oauth_client_credentials',
  issuer: oauth.issuer,
  clientId: oauth.clients.basic.clientId,
  clientAuth: 'client_secret_basic',
  clientSecret: oauth.clients.basic.clientSecret,
});

describe('the SCIM target', () => {
  test('refuses a request without a token from the authorization server', async () => {
    const client = createScimClient({ baseUrl: target.url, token: 'made-up-token' });
    await withClient(client, async () => {
      await assert.rejects(client.request('GET', '/Users'), (error: unknown) => {
        assert.ok(error instanceof ScimRequestError);
        assert.equal(error.status, 401);
        return true;
      });
    });
  });
});

describe('client authentication', () => {
  test('client_secret_basic via discovery: the secret goes in the Authorization header and the target accepts the token', async () => {
    const requests = await listUsersWith(basicAuth());
    assert.equal(requests.length, 1);
    assert.equal(requests[0]?.ok, true);
    assert.equal(requests[0]?.params['client_secret'], undefined, 'not in the form body');
  });

  test('client_secret_post with an explicit token URL: the secret goes in the form body', async () => {
    const requests = await listUsersWith({
      mode: 'oauth_client_credentials',
      tokenUrl: oauth.tokenUrl,
      clientId: oauth.clients.post.clientId,
      clientAuth: 'client_secret_post',
      clientSecret: oauth.clients.post.clientSecret,
    });
    assert.equal(requests.length, 1);
    assert.equal(requests[0]?.params['client_secret'], oauth.clients.post.clientSecret);
  });

  test('private_key_jwt: a signed client assertion authenticates the client', async () => {
    const requests = await listUsersWith({
      mode: 'oauth_client_credentials',
      issuer: oauth.issuer,
      clientId: oauth.clients.jwt.clientId,
      clientAuth: 'private_key_jwt',
      privateKey: oauth.clients.jwt.privateKeyPem,
    });
    assert.equal(requests.length, 1);
    assert.equal(
      requests[0]?.params['client_assertion_type'],
      'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    );
  });
});

describe('extra token request parameters', () => {
  test('grant_type, subject_token and subject_token_type reach the token endpoint (token exchange)', async () => {
    const { clientId, clientSecret, subjectToken } = oauth.clients.exchange;
    const requests = await listUsersWith({
      mode: 'oauth_client_credentials',
      issuer: oauth.issuer,
      clientId,
      clientAuth: 'client_secret_post',
      clientSecret,
      tokenParams: {
        grant_type: TOKEN_EXCHANGE,
        subject_token: subjectToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      },
    });
    assert.equal(requests.length, 1);
    assert.equal(requests[0]?.grantType, TOKEN_EXCHANGE);
    assert.equal(requests[0]?.params['subject_token'], subjectToken);
    assert.equal(requests[0]?.params['subject_token_type'], 'urn:ietf:params:oauth:token-type:jwt');
  });

  test('a client_assertion given as a token parameter authenticates the client', async () => {
    const { clientId, privateKeyPem } = oauth.clients.jwt;
    const now = Math.floor(Date.now() / 1000);
    const encode = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${encode({ alg: 'ES256', typ: 'JWT' })}.${encode({ iss: clientId, sub: clientId, aud: oauth.issuer, jti: randomUUID(), iat: now, exp: now + 60 })}`;
    const signature = sign('sha256', Buffer.from(unsigned), { key: privateKeyPem, dsaEncoding: 'ieee-p1363' });
    const auth: ProviderAuthInput = {
      mode: 'oauth_client_credentials',
      tokenUrl: oauth.tokenUrl,
      clientId,
      clientAuth: 'none',
      tokenParams: {
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: `${unsigned}.${signature.toString('base64url')}`,
      },
    };
    const requests = await listUsersWith(auth);
    assert.equal(requests.length, 1);
    assert.equal(requests[0]?.ok, true);
    assert.equal(requests[0]?.params['client_assertion'], auth.tokenParams?.['client_assertion']);
  });
});

describe('token caching', () => {
  test('many concurrent requests share one token fetch, and a new token is fetched once it is about to expire', async () => {
    const requests = tokenRequestsAfter(oauth.clients.basic.clientId);
    let clock = Date.now();
    await withClient(
      clientFor(basicAuth(), () => clock),
      async (client) => {
        const answers = await Promise.all(Array.from({ length: 25 }, () => client.request('GET', '/Users')));
        assert.deepEqual(new Set(answers.map((answer) => answer.status)), new Set([200]));
        assert.equal(requests().length, 1, 'one fetch for 25 concurrent requests');

        await client.request('GET', '/Users');
        assert.equal(requests().length, 1, 'the cached token is reused');

        clock += 600_000 - 30_000; // 30 s before the 600 s token expires: inside the refresh margin
        await Promise.all(Array.from({ length: 5 }, () => client.request('GET', '/Users')));
        assert.equal(requests().length, 2, 'one new fetch near expiry');
      },
    );
  });

  test('a 401 from the target fetches a new token once and retries the request with it', async () => {
    const requests = tokenRequestsAfter(oauth.clients.basic.clientId);
    await withClient(clientFor(basicAuth()), async (client) => {
      await client.request('GET', '/Users');
      assert.equal(requests().length, 1);
      await target.resetLog();
      await target.failNext({ method: 'GET', pathPrefix: '/Users', status: 401, times: 1 });

      const answer = await client.request('GET', '/Users');

      assert.equal(answer.status, 200);
      assert.equal(requests().length, 2, 'exactly one refresh');
      const seen = (await target.requests()).filter((request) => request.path === '/Users');
      assert.deepEqual(
        seen.map((request) => request.status),
        [401, 200],
      );
    });
  });
});

describe('failures', () => {
  test('a wrong client secret is a permanent ERR_AUTH_INVALID_CLIENT naming the client, without the secret', async () => {
    const wrongSecret = 'wrong-secret-0c9d8e7f';
    await withClient(clientFor({ ...basicAuth(), clientSecret: wrongSecret }), async (client) => {
      await assert.rejects(client.request('GET', '/Users'), (error: unknown) => {
        assert.ok(isScimflowError(error));
        assert.equal(error.code, 'ERR_AUTH_INVALID_CLIENT');
        assert.equal(error.retryable, false);
        assert.match(error.message, /refused client "scimflow-basic"/);
        assert.ok(!JSON.stringify({ message: error.message, details: error.details }).includes(wrongSecret));
        return true;
      });
    });
  });

  test('a token endpoint answering 503 is a retryable ERR_AUTH_UNAVAILABLE, and the next attempt gets a token', async () => {
    await withClient(clientFor(basicAuth()), async (client) => {
      oauth.failTokenRequests(1);
      await assert.rejects(client.request('GET', '/Users'), (error: unknown) => {
        assert.ok(isScimflowError(error));
        assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
        assert.equal(error.retryable, true);
        return true;
      });
      assert.equal((await client.request('GET', '/Users')).status, 200);
    });
  });

  test('an authorization server that cannot be reached is a retryable ERR_AUTH_UNAVAILABLE', async () => {
    const closed = await startOAuthServer();
    await closed.close();
    const auth: OAuthAuth = { ...basicAuth(), issuer: closed.issuer };
    await withClient(clientFor(auth), async (client) => {
      await assert.rejects(client.request('GET', '/Users'), (error: unknown) => {
        assert.ok(isScimflowError(error));
        assert.equal(error.code, 'ERR_AUTH_UNAVAILABLE');
        return true;
      });
    });
  });
});
