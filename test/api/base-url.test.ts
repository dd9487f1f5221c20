/** A provider's base URL: https unless it is loopback or the provider is marked allowInsecureHttp; no credentials. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ProviderView } from '../../db/index.ts';
import { runScimflow, startAdminApi, type AdminApi } from '../support/cli.ts';
import { startTestApi, type ErrorBody, type TestApi } from './api-harness.ts';

const TOKEN = 'base-url-token-4c2e9a71';
let counter = 0;

function body(baseUrl: string, extra: Record<string, unknown> = {}) {
  counter += 1;
  return {
    slug: `url-${counter}`,
    name: 'base URL test',
    baseUrl,
    auth: { mode: 'bearer', token: TOKEN },
    ...extra,
  };
}

describe('provider base URLs', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.close());

  test('plain http to a host on the network is refused with a 400 naming baseUrl and the way out', async () => {
    const response = await api.request<ErrorBody>('POST', '/api/v1/providers', body('http://scim.example.test/v2'));
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'ERR_VALIDATION');
    assert.deepEqual(response.body.error.issues, [
      {
        path: 'baseUrl',
        message: 'must use https (http is accepted for loopback hosts, or with allowInsecureHttp: true)',
      },
    ]);
    const listed = await api.request<ProviderView[]>('GET', '/api/v1/providers');
    assert.ok(!JSON.stringify(listed.body).includes('scim.example.test'), 'nothing was created');
  });

  test('with allowInsecureHttp the provider takes an http URL, and its view says so', async () => {
    const response = await api.request<ProviderView>(
      'POST',
      '/api/v1/providers',
      body('http://scim.example.test/v2', { allowInsecureHttp: true }),
    );
    assert.equal(response.status, 201, JSON.stringify(response.body));
    assert.equal(response.body.allowInsecureHttp, true);
    assert.equal(response.body.baseUrl, 'http://scim.example.test/v2');
  });

  test('loopback hosts take http without the flag (local targets stay easy); https needs nothing', async () => {
    for (const url of [
      'http://127.0.0.1:8080/scim/v2',
      'http://127.9.0.1/scim',
      'http://localhost:3000/scim',
      'http://[::1]:8080/scim',
      'https://scim.example.test/v2',
    ]) {
      const response = await api.request<ProviderView>('POST', '/api/v1/providers', body(url));
      assert.equal(response.status, 201, `${url}: ${JSON.stringify(response.body)}`);
      assert.equal(response.body.allowInsecureHttp, false);
    }
  });

  test('credentials inside the URL are refused with a 400 that does not repeat them, whatever the scheme', async () => {
    for (const url of [
      'https://admin:s3cret-pw@scim.example.test/v2',
      'https://s3cret-token@scim.example.test/v2',
      'http://admin:s3cret-pw@127.0.0.1:8080/scim',
    ]) {
      const response = await api.request<ErrorBody>(
        'POST',
        '/api/v1/providers',
        body(url, { allowInsecureHttp: true }),
      );
      assert.equal(response.status, 400, url);
      assert.deepEqual(response.body.error.issues, [
        {
          path: 'baseUrl',
          message: 'must not carry credentials (user:password@): give them as auth, which is stored encrypted',
        },
      ]);
      assert.ok(!JSON.stringify(response.body).includes('s3cret'), JSON.stringify(response.body));
    }
  });

  test('an update may not make a provider talk plain http over the network, unless it is marked in the same or an earlier change', async () => {
    const created = await api.request<ProviderView>('POST', '/api/v1/providers', body('https://scim.example.test/v2'));
    const path = `/api/v1/providers/${created.body.id}`;
    const refused = await api.request<ErrorBody>('PATCH', path, { baseUrl: 'http://scim.example.test/v2' });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.issues?.[0]?.path, 'baseUrl');

    const allowed = await api.request<ProviderView>('PATCH', path, {
      baseUrl: 'http://scim.example.test/v2',
      allowInsecureHttp: true,
    });
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
    assert.equal(allowed.body.allowInsecureHttp, true);

    // Taking the mark away while the URL is still plain http would leave it insecure: refused.
    const unmark = await api.request<ErrorBody>('PATCH', path, { allowInsecureHttp: false });
    assert.equal(unmark.status, 400);
    const back = await api.request<ProviderView>('PATCH', path, {
      baseUrl: 'https://scim.example.test/v2',
      allowInsecureHttp: false,
    });
    assert.equal(back.status, 200, JSON.stringify(back.body));
    assert.equal(back.body.allowInsecureHttp, false);
  });
});

describe('providers create and update --allow-insecure-http', () => {
  let admin: AdminApi;
  before(async () => {
    admin = await startAdminApi();
  });
  after(() => admin.close());

  test('the CLI refuses an http URL on the network without the flag, saying how, and takes it with the flag', async () => {
    const env = { ...admin.env, URL_TEST_TOKEN: TOKEN };
    const args = ['providers', 'create', '--slug', 'cli-http', '--url', 'http://scim.example.test/v2'];
    const refused = await runScimflow([...args, '--token-env', 'URL_TEST_TOKEN'], { env });
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /baseUrl: must use https \(http is accepted for loopback hosts, or with allowInsecureHttp: true\)/,
    );
    const created = await runScimflow([...args, '--token-env', 'URL_TEST_TOKEN', '--allow-insecure-http'], { env });
    assert.equal(created.code, 0, created.stderr);
    const updated = await runScimflow(
      ['providers', 'update', 'cli-http', '--url', 'https://scim.example.test/v2', '--no-allow-insecure-http'],
      { env },
    );
    assert.equal(updated.code, 0, updated.stderr);
    const show = await runScimflow(['providers', 'show', 'cli-http'], { env });
    const view = JSON.parse(show.stdout) as ProviderView;
    assert.equal(view.allowInsecureHttp, false);
    assert.equal(view.baseUrl, 'https://scim.example.test/v2');
  });
});
