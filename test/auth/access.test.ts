import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createApi, ROLE_EXTENSION, startApiServer } from '../../api/index.ts';
import { ROLES, roleAllows, type Role } from '../../db/index.ts';
import { createMappingEngine, type MappingEngine } from '../../sandbox/index.ts';
import { startTestApi, validatePluginOptions, type ErrorBody, type TestApi } from '../api/api-harness.ts';

interface Operation {
  operationId: string;
  security?: Array<Record<string, string[]>>;
  [ROLE_EXTENSION]: Role | 'public';
  requestBody?: unknown;
}
type Paths = Record<string, Record<string, Operation>>;

/** Every operation of the document, with a concrete path (each parameter a fresh UUID). */
function operations(paths: Paths) {
  return Object.entries(paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({
      method: method.toUpperCase(),
      template: path,
      path: path.replace(/\{[^}]+\}/g, () => randomUUID()),
      operation,
    })),
  );
}

describe('admin API access: every route is authenticated and authorised by the role it declares', () => {
  let api: TestApi;
  let engine: MappingEngine;
  let paths: Paths;
  before(async () => {
    engine = createMappingEngine();
    // The worker side is never reached: every request here is refused, or asks about a provider that does not exist.
    const unreachable = () => Promise.reject(new Error('no worker in this test'));
    api = await startTestApi({
      mappingEngine: engine,
      providerAuth: { check: unreachable, completeAuthorisation: unreachable },
    });
    paths = (await api.request<{ paths: Paths }>('GET', '/openapi.json', undefined, { token: null })).body.paths;
  });
  after(async () => {
    await api.close();
    await engine.disposeAll();
  });

  test('only /healthz, /openapi.json and the OAuth callback (protected by its state) are public; every other operation declares a role and the bearer scheme', () => {
    const all = operations(paths);
    assert.ok(all.length > 40, `the document lists ${all.length} operations, the mapping routes included`);
    assert.ok(all.some((o) => o.template === '/api/v1/mappings'));
    const open = all.filter((o) => o.operation[ROLE_EXTENSION] === 'public').map((o) => `${o.method} ${o.template}`);
    assert.deepEqual(open.sort(), ['GET /healthz', 'GET /oauth/callback', 'GET /openapi.json']);
    for (const { method, template, operation } of all) {
      if (operation[ROLE_EXTENSION] === 'public') continue;
      assert.ok(ROLES.includes(operation[ROLE_EXTENSION]), `${method} ${template}`);
      assert.deepEqual(operation.security, [{ apiToken: [] }], `${method} ${template}`);
    }
  });

  test('every guarded operation answers 401 without a token and with a bad one, saying which', async () => {
    for (const { method, template, path, operation } of operations(paths)) {
      if (operation[ROLE_EXTENSION] === 'public') continue;
      const body = operation.requestBody ? {} : undefined;
      const missing = await api.request<ErrorBody>(method, path, body, { token: null });
      assert.equal(missing.status, 401, `${method} ${template} without a token`);
      assert.equal(missing.body.error.code, 'ERR_UNAUTHENTICATED');
      assert.equal(missing.body.error.details?.['reason'], 'missing');
      assert.match(missing.body.error.message, /no API token/);

      const bad = await api.request<ErrorBody>(method, path, body, { token: `sfa_abcdefgh_${'A'.repeat(43)}` });
      assert.equal(bad.status, 401, `${method} ${template} with an unknown token`);
      assert.equal(bad.body.error.details?.['reason'], 'unknown');
      assert.match(bad.body.error.message, /not valid/);

      const garbage = await api.request<ErrorBody>(method, path, body, { token: 'not-even-the-format' });
      assert.equal(garbage.status, 401, `${method} ${template} with a malformed token`);
    }
  });

  test('every operation refuses each weaker role with 403 naming the role needed, and lets its own role through', async () => {
    let refused = 0;
    for (const { method, template, path, operation } of operations(paths)) {
      const needed = operation[ROLE_EXTENSION];
      if (needed === 'public') continue;
      const body = operation.requestBody ? {} : undefined;
      for (const role of ROLES) {
        const response = await api.request<ErrorBody>(method, path, body, { token: api.tokens[role] });
        if (roleAllows(role, needed)) {
          // Past authorisation: whatever the answer (404 for the random ids, 400 for the empty body), not 401/403.
          assert.ok(![401, 403].includes(response.status), `${method} ${template} as ${role}: ${response.status}`);
        } else {
          refused += 1;
          assert.equal(response.status, 403, `${method} ${template} as ${role}`);
          assert.equal(response.body.error.code, 'ERR_FORBIDDEN');
          assert.deepEqual(response.body.error.details, { reason: 'role', required: needed, role });
          assert.match(
            response.body.error.message,
            new RegExp(`needs the ${needed} role; token "${role}-token" has ${role}`),
          );
        }
      }
    }
    assert.ok(refused > 30, `${refused} refusals checked`);
  });

  test('the role each operation declares is the documented one for its kind', () => {
    const role = (method: string, path: string) => paths[path]?.[method]?.[ROLE_EXTENSION];
    assert.equal(role('get', '/api/v1/users'), 'viewer');
    assert.equal(role('post', '/api/v1/providers/{id}/sync'), 'operator');
    assert.equal(role('post', '/api/v1/providers/{id}/preview'), 'operator');
    assert.equal(role('patch', '/api/v1/providers/{id}'), 'admin');
    assert.equal(role('post', '/api/v1/mappings'), 'admin');
    assert.equal(role('post', '/api/v1/tokens'), 'admin');
    assert.equal(role('get', '/api/v1/audit'), 'admin');
    assert.equal(role('post', '/api/v1/providers/{id}/test'), 'operator');
    assert.equal(role('post', '/api/v1/providers/{id}/oauth/authorize'), 'admin');
  });

  test('the API served over a socket refuses a request without a token too', async () => {
    const app = createApi({ db: api.db, secrets: api.secrets, sync: api.sync, validatePluginOptions });
    const server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
    try {
      const response = await fetch(`${server.url}/api/v1/providers`);
      assert.equal(response.status, 401);
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
    } finally {
      await server.close();
    }
  });
});
