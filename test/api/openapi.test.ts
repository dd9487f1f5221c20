import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApi, startApiServer } from '../../api/index.ts';
import { createDb, createSecretBox, generateSecretKey } from '../../db/index.ts';
import { recordingSyncControl, startTestApi, validatePluginOptions, type TestApi } from './api-harness.ts';

interface OpenApiDocument {
  openapi: string;
  paths: Record<
    string,
    Record<string, { operationId: string; requestBody?: unknown; responses: Record<string, unknown> }>
  >;
  components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> };
}

describe('OpenAPI document, health and error handling', () => {
  let api: TestApi;
  let document: OpenApiDocument;
  before(async () => {
    api = await startTestApi();
    document = (await api.request<OpenApiDocument>('GET', '/openapi.json')).body;
  });
  after(() => api.close());

  test('the document is OpenAPI 3.1', () => {
    assert.equal(document.openapi, '3.1.0');
  });

  test('the document lists exactly the routes the app serves', () => {
    const app = createApi({ db: api.db, secrets: api.secrets, sync: recordingSyncControl(), validatePluginOptions });
    const served = [
      ...new Set(
        app.routes
          .filter((route) => route.method !== 'ALL')
          // The inbound SCIM source describes itself in SCIM terms (/ServiceProviderConfig, /Schemas), not here.
          .filter((route) => !route.path.startsWith('/source/scim/'))
          .map((route) => `${route.method} ${route.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`),
      ),
    ].sort();
    const documented = Object.entries(document.paths)
      .flatMap(([path, operations]) => Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    assert.deepEqual(documented, served);
    for (const route of [
      'GET /api/v1/users',
      'POST /api/v1/users',
      'PATCH /api/v1/users/{id}',
      'DELETE /api/v1/groups/{id}/members/{userId}',
      'POST /api/v1/import',
      'POST /api/v1/providers/{id}/sync',
      'GET /api/v1/providers/{id}/links',
      'GET /api/v1/runs/{id}',
      'GET /healthz',
    ]) {
      assert.ok(documented.includes(route), route);
    }
  });

  test('request bodies are described by the same schemas the API validates with', () => {
    const userInput = document.components.schemas['UserInput'];
    assert.deepEqual(userInput?.required, ['username']);
    assert.ok(userInput?.properties && 'email' in userInput.properties);
    const providerInput = document.components.schemas['ProviderInput'];
    assert.deepEqual([...(providerInput?.required ?? [])].sort(), ['auth', 'baseUrl', 'name', 'slug']);
    assert.ok(document.paths['/api/v1/providers']?.['post']?.requestBody);
  });

  test('the provider schema in the document has no secret field', () => {
    const provider = document.components.schemas['Provider'];
    assert.ok(provider?.properties);
    const text = JSON.stringify(provider);
    for (const field of ['token', 'password', 'clientSecret', 'privateKey', 'tokenParams', 'refreshToken']) {
      assert.ok(!text.includes(`"${field}"`), `no "${field}" property`);
    }
    assert.ok(text.includes('"secretSet"'), 'only whether a secret is set');
  });

  test('health answers ok while the database is reachable', async () => {
    const response = await api.request<{ status: string }>('GET', '/healthz');
    assert.deepEqual(response, { status: 200, body: { status: 'ok' } });
  });

  test('health answers 503 when the database is not reachable', async () => {
    const unreachable = createDb('postgres://scimflow@127.0.0.1:1/scimflow', { max: 1 });
    try {
      const app = createApi({
        db: unreachable,
        secrets: createSecretBox(generateSecretKey()),
        sync: recordingSyncControl(),
        validatePluginOptions,
      });
      const response = await app.request('/healthz');
      assert.equal(response.status, 503);
      assert.deepEqual(await response.json(), { status: 'unavailable' });
    } finally {
      await unreachable.end();
    }
  });

  test('an unknown route is a 404 in the error shape', async () => {
    const response = await api.request('GET', '/api/v1/nothing-here');
    assert.equal(response.status, 404);
    assert.equal(response.body.error.code, 'ERR_NOT_FOUND');
  });

  test('an unexpected failure is a 500 with a generic message and the real error in the log', async () => {
    const unreachable = createDb('postgres://scimflow@127.0.0.1:1/scimflow', { max: 1 });
    const errors: object[] = [];
    try {
      const app = createApi({
        db: unreachable,
        secrets: createSecretBox(generateSecretKey()),
        sync: recordingSyncControl(),
        validatePluginOptions,
        log: { error: (obj) => void errors.push(obj), warn: () => undefined, debug: () => undefined },
      });
      // A well-formed token, so the request gets as far as the database (to look the token up).
      const token = `sfa_abcdefgh_${'x'.repeat(43)}`;
      const response = await app.request('/api/v1/users', { headers: { authorization: `Bearer ${token}` } });
      assert.equal(response.status, 500);
      const body = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'ERR_INTERNAL');
      assert.doesNotMatch(body.error.message, /ECONNREFUSED|127\.0\.0\.1/);
      assert.equal(errors.length, 1);
    } finally {
      await unreachable.end();
    }
  });

  test('the API serves the same document over a real listening server', async () => {
    const app = createApi({ db: api.db, secrets: api.secrets, sync: recordingSyncControl(), validatePluginOptions });
    const server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const response = await fetch(`${server.url}/openapi.json`);
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), document);
    } finally {
      await server.close();
    }
  });
});
