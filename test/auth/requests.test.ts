import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ProviderView } from '../../db/index.ts';
import { startTestApi, type ErrorBody, type TestApi } from '../api/api-harness.ts';

const PROVIDER = {
  slug: 'forged',
  name: 'Forged',
  baseUrl: 'https://attacker.example.test/scim/v2',
  auth: { mode: 'bearer', token: 'attacker-token' },
};

interface TokenCreated {
  name: string;
  role: string;
  prefix: string;
  token: string;
  lastUsedAt: string | null;
}

describe('admin API requests that cannot be forged', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi({ policy: { allowedOrigins: ['https://console.example.test'] } });
  });
  after(() => api.close());

  const providerCount = async () =>
    Number((await api.db.query<{ count: string }>('SELECT count(*) FROM providers')).rows[0]?.count);

  test('a cross-site text/plain POST is refused, with or without a token, and creates nothing', async () => {
    const crossSite = await api.request<ErrorBody>('POST', '/api/v1/providers', JSON.stringify(PROVIDER), {
      token: null,
      headers: { 'content-type': 'text/plain;charset=UTF-8', origin: 'https://evil.example.test' },
    });
    assert.equal(crossSite.status, 403);
    assert.equal(crossSite.body.error.code, 'ERR_FORBIDDEN');
    assert.equal(crossSite.body.error.details?.['reason'], 'origin');
    assert.match(crossSite.body.error.message, /https:\/\/evil\.example\.test/);

    const plainText = await api.request<ErrorBody>('POST', '/api/v1/providers', JSON.stringify(PROVIDER), {
      headers: { 'content-type': 'text/plain' },
    });
    assert.equal(plainText.status, 415);
    assert.equal(plainText.body.error.code, 'ERR_UNSUPPORTED_MEDIA_TYPE');

    const form = await api.request<ErrorBody>('POST', '/api/v1/providers/forged/sync', 'allowDeletions=true', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(form.status, 415);
    assert.equal(await providerCount(), 0);
  });

  test("the API's own origin and a configured one are accepted; a null origin is not", async () => {
    for (const origin of ['http://localhost', 'https://console.example.test']) {
      const response = await api.request('GET', '/api/v1/providers', undefined, { headers: { origin } });
      assert.equal(response.status, 200, origin);
    }
    const opaque = await api.request<ErrorBody>('GET', '/api/v1/providers', undefined, { headers: { origin: 'null' } });
    assert.equal(opaque.status, 403);
  });

  test('a Host that is not allowed is refused (DNS rebinding), even with a valid token', async () => {
    const rebound = await api.request<ErrorBody>('GET', 'http://rebound.example.test:7400/api/v1/providers');
    assert.equal(rebound.status, 403);
    assert.equal(rebound.body.error.details?.['reason'], 'host');
    for (const host of ['127.0.0.1:7400', 'localhost:7400', '[::1]:7400']) {
      const response = await api.request('GET', `http://${host}/api/v1/providers`);
      assert.equal(response.status, 200, host);
    }
    const configured = await startTestApi({ policy: { allowedHosts: ['scimflow.internal'] } });
    try {
      const response = await configured.request('GET', 'http://scimflow.internal/api/v1/providers');
      assert.equal(response.status, 200);
    } finally {
      await configured.close();
    }
  });

  test('a body over 1 MiB gets 413, while the directory import takes more', async () => {
    const big = { username: 'big', attributes: { note: 'x'.repeat(1024 * 1024) } };
    const refused = await api.request<ErrorBody>('POST', '/api/v1/users', big);
    assert.equal(refused.status, 413);
    assert.match(refused.body.error.message, /larger than 1048576 bytes/);
    assert.equal(Number((await api.db.query<{ count: string }>('SELECT count(*) FROM users')).rows[0]?.count), 0);

    const users = Array.from({ length: 40 }, (_, i) => ({
      username: `bulk-${i}`,
      attributes: { note: 'y'.repeat(32 * 1024) },
    }));
    const imported = await api.request<{ users: { created: number } }>('POST', '/api/v1/import', { users });
    assert.equal(imported.status, 200);
    assert.equal(imported.body.users.created, 40);
  });

  test('deeply nested JSON is a 400 naming the limit, not a 500', async () => {
    const depth = 100_000;
    const nested = `{"username":"deep","attributes":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    const response = await api.request<ErrorBody>('POST', '/api/v1/users', nested);
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'ERR_VALIDATION');
    assert.match(response.body.error.message, /nests deeper than 64 levels/);
  });
});

describe('admin API tokens', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.close());

  test('a token made through the API is shown once, stored as a hash, listed without it, and holds only its role', async () => {
    const created = await api.request<TokenCreated>('POST', '/api/v1/tokens', { name: 'ci', role: 'operator' });
    assert.equal(created.status, 201);
    const { token, prefix } = created.body;
    assert.match(token, /^sfa_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}$/);
    assert.equal(prefix, token.slice(0, 12));

    const stored = await api.db.query('SELECT * FROM api_tokens WHERE name = $1', ['ci']);
    assert.ok(!JSON.stringify(stored.rows).includes(token.slice(12)), 'the secret part is not stored');
    const listed = await api.request<{ items: TokenCreated[] }>('GET', '/api/v1/tokens');
    assert.ok(!JSON.stringify(listed.body).includes(token.slice(12)), 'the list never shows the token');
    assert.equal(listed.body.items.find((t) => t.name === 'ci')?.lastUsedAt, null);

    await api.request('POST', '/api/v1/providers', { ...PROVIDER, slug: 'ci-target' });
    const sync = await api.request('POST', '/api/v1/providers/ci-target/sync', undefined, { token });
    assert.equal(sync.status, 202);
    const create = await api.request<ErrorBody>('POST', '/api/v1/providers', { ...PROVIDER, slug: 'by-ci' }, { token });
    assert.equal(create.status, 403);
    const used = await api.request<{ items: TokenCreated[] }>('GET', '/api/v1/tokens');
    assert.notEqual(used.body.items.find((t) => t.name === 'ci')?.lastUsedAt, null);

    const again = await api.request<ErrorBody>('POST', '/api/v1/tokens', { name: 'ci', role: 'viewer' });
    assert.equal(again.status, 409);
  });

  test('a revoked token is refused from its next request on, saying it was revoked', async () => {
    const { token } = (await api.request<TokenCreated>('POST', '/api/v1/tokens', { name: 'leaving', role: 'viewer' }))
      .body;
    assert.equal((await api.request('GET', '/api/v1/providers', undefined, { token })).status, 200);
    assert.equal((await api.request('DELETE', '/api/v1/tokens/leaving')).status, 204);
    const refused = await api.request<ErrorBody>('GET', '/api/v1/providers', undefined, { token });
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.body.error, {
      code: 'ERR_UNAUTHENTICATED',
      message: 'the API token has been revoked',
      details: { reason: 'revoked' },
    });
    // The server log names the refused token by its prefix, never in full.
    const warned = api.logged.filter((entry) => entry.msg === 'API token refused').map((entry) => entry.obj);
    assert.deepEqual(warned, [{ tokenPrefix: token.slice(0, 12), reason: 'revoked', remoteAddress: null }]);
    assert.ok(!JSON.stringify(api.logged).includes(token.slice(12)), 'the log never holds the token');
    // The name is free again once its token is revoked.
    assert.equal((await api.request('POST', '/api/v1/tokens', { name: 'leaving', role: 'viewer' })).status, 201);
  });

  test('an expired token is refused, saying it expired', async () => {
    const created = await api.request<TokenCreated & { expiresAt: string }>('POST', '/api/v1/tokens', {
      name: 'short-lived',
      role: 'admin',
      expiresInDays: 1,
    });
    const { token, expiresAt } = created.body;
    const inADay = Date.parse(expiresAt) - Date.now();
    assert.ok(inADay > 23 * 3600_000 && inADay <= 24 * 3600_000, `expires in ${inADay} ms`);
    assert.equal((await api.request('GET', '/api/v1/providers', undefined, { token })).status, 200);
    await api.db.query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'short-lived'");
    const refused = await api.request<ErrorBody>('GET', '/api/v1/providers', undefined, { token });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.details?.['reason'], 'expired');
    assert.equal(refused.body.error.message, 'the API token has expired');
  });

  test('an operator starts syncs, but a sync with allowDeletions needs an admin', async () => {
    await api.request<ProviderView>('POST', '/api/v1/providers', { ...PROVIDER, slug: 'guarded' });
    const operator = api.tokens.operator;
    const refused = await api.request<ErrorBody>(
      'POST',
      '/api/v1/providers/guarded/sync',
      { allowDeletions: true },
      { token: operator },
    );
    assert.equal(refused.status, 403);
    assert.deepEqual(refused.body.error.details, { reason: 'role', required: 'admin', role: 'operator' });
    const plain = await api.request('POST', '/api/v1/providers/guarded/sync', {}, { token: operator });
    assert.equal(plain.status, 202);
    const allowed = await api.request('POST', '/api/v1/providers/guarded/sync', { allowDeletions: true });
    assert.equal(allowed.status, 202);
    const requests = api.sync.calls
      .filter((c) => c.slug === 'guarded' && c.method === 'requestFullSync')
      .map((c) => c.request);
    assert.deepEqual(requests, [{ answer: 'queued' }, { allowDeletions: true, answer: 'queued' }]);
  });
});
