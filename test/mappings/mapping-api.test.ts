import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { createApi } from '../../api/index.ts';
import { createSecretBox, createUser, generateSecretKey } from '../../db/index.ts';
import { createMappingEngine } from '../../sandbox/index.ts';
import { createTestToken, recordingSyncControl, validatePluginOptions } from '../api/api-harness.ts';
import { createTestDatabase } from '../support/db.ts';

/** The fields these tests read from response bodies. */
interface Body {
  id: string;
  version: number;
  items: Array<{ id: string; name: string }>;
  error: { code: string; message: string; mapping: string; issues: Array<{ path: string; message: string }> } | null;
  payload: { userName: string; title: string } | null;
  contributions: Array<{ mapping: string; value: unknown }>;
}

async function api(t: TestContext) {
  const testDb = await createTestDatabase();
  const engine = createMappingEngine();
  t.after(async () => {
    await engine.disposeAll();
    await testDb.drop();
  });
  const app = createApi({
    db: testDb.db,
    secrets: createSecretBox(generateSecretKey()),
    sync: recordingSyncControl(),
    validatePluginOptions,
    mappingEngine: engine,
  });
  const token = await createTestToken(testDb.db, 'admin');
  const call = async (method: string, path: string, body?: unknown) => {
    const init: RequestInit = {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    };
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await app.request(`/api/v1${path}`, init);
    return { status: res.status, body: res.status === 204 ? null : ((await res.json()) as Body) };
  };
  const provider = await call('POST', '/providers', {
    slug: 'preview-target',
    name: 'Preview target',
    baseUrl: 'http://127.0.0.1:9/scim/v2',
    plugin: 'scim2',
    auth: { mode: 'none' },
  });
  assert.equal(provider.status, 201);
  return { db: testDb.db, call, providerId: provider.body!['id'] };
}

describe('mapping API', () => {
  test('a mapping is created, listed, edited (version bumped) and deleted', async (t) => {
    const { call } = await api(t);
    const created = await call('POST', '/mappings', {
      name: 'zz-title',
      objectType: 'user',
      expression: "return { title: 'X' };",
    });
    assert.equal(created.status, 201);
    assert.equal(created.body!['version'], 1);
    const list = await call('GET', '/mappings?objectType=user');
    assert.ok(list.body!['items'].some((m: { name: string }) => m.name === 'zz-title'));
    const edited = await call('PATCH', `/mappings/${created.body!['id']}`, { expression: "return { title: 'Y' };" });
    assert.equal(edited.body!['version'], 2);
    assert.equal((await call('DELETE', '/mappings/zz-title')).status, 204);
    assert.equal((await call('GET', '/mappings/zz-title')).status, 404);
  });

  test('a built-in mapping cannot be deleted: 409, and providers created afterwards still get it', async (t) => {
    const { call } = await api(t);
    for (const name of ['default-group', 'default-user-account']) {
      const refused = await call('DELETE', `/mappings/${name}`);
      assert.equal(refused.status, 409);
      assert.equal(refused.body!['error']?.code, 'ERR_CONFLICT');
      assert.match(refused.body!['error']?.message ?? '', new RegExp(`"${name}" is built in`));
    }
    const byId = await call('GET', '/mappings/default-group');
    assert.equal((await call('DELETE', `/mappings/${byId.body!['id']}`)).status, 409);
    assert.equal((await call('GET', '/mappings/default-group')).status, 200);
    const later = await call('POST', '/providers', {
      slug: 'created-later',
      name: 'Created later',
      baseUrl: 'http://127.0.0.1:9/scim/v2',
      auth: { mode: 'none' },
    });
    const names = (await call('GET', `/providers/${later.body!['id']}/mappings`)).body!['items'].map((m) => m.name);
    assert.deepEqual(names, ['default-group', 'default-user-account', 'default-user-emails', 'default-user-name']);
  });

  test('a syntax error is a 400 ERR_MAPPING naming the line', async (t) => {
    const { call } = await api(t);
    const res = await call('POST', '/mappings', {
      name: 'broken',
      objectType: 'user',
      expression: 'const a = 1;\nreturn {;',
    });
    assert.equal(res.status, 400);
    assert.equal(res.body!['error']?.code, 'ERR_MAPPING');
    assert.equal(res.body!['error']?.issues[0]?.path, 'expression');
    assert.match(res.body!['error']?.issues[0]?.message, /^line 2: /);
  });

  test('a new provider gets the built-in mappings, and PUT replaces its set', async (t) => {
    const { call, providerId } = await api(t);
    const names = (await call('GET', `/providers/${providerId}/mappings`)).body!['items'].map(
      (m: { name: string }) => m.name,
    );
    assert.deepEqual(names, ['default-group', 'default-user-account', 'default-user-emails', 'default-user-name']);
    const account = await call('GET', '/mappings/default-user-account');
    const put = await call('PUT', `/providers/${providerId}/mappings`, { mappingIds: [account.body!['id']] });
    assert.deepEqual(
      put.body!['items'].map((m: { name: string }) => m.name),
      ['default-user-account'],
    );
  });

  test("preview returns the payload and each mapping's contribution for a stored user", async (t) => {
    const { db, call, providerId } = await api(t);
    const user = await createUser(db, {
      username: 'ada@example.test',
      displayName: 'Ada',
      email: 'ada@example.test',
      givenName: 'Ada',
      familyName: 'L',
      active: true,
      kind: 'internal',
      attributes: { department: 'eng' },
    });
    await call('POST', '/mappings', {
      name: 'zz-dept',
      objectType: 'user',
      expression: 'return { title: user.attributes.department };',
    });
    const dept = await call('GET', '/mappings/zz-dept');
    const current = (await call('GET', `/providers/${providerId}/mappings`)).body!['items'].map(
      (m: { id: string }) => m.id,
    );
    await call('PUT', `/providers/${providerId}/mappings`, { mappingIds: [...current, dept.body!['id']] });
    const preview = await call('POST', `/providers/${providerId}/preview`, { userId: user.id });
    assert.equal(preview.status, 200);
    assert.equal(preview.body!['error'], null);
    assert.equal(preview.body!['payload']?.userName, 'ada@example.test');
    assert.equal(preview.body!['payload']?.title, 'eng');
    const last = preview.body!['contributions'].at(-1);
    assert.deepEqual(last, { mapping: 'zz-dept', value: { title: 'eng' } });
  });

  test('preview of an inline user reports a throwing mapping as an error', async (t) => {
    const { call, providerId } = await api(t);
    const bad = await call('POST', '/mappings', {
      name: 'zz-throw',
      objectType: 'user',
      expression: "throw new Error('nope');",
    });
    const current = (await call('GET', `/providers/${providerId}/mappings`)).body!['items'].map(
      (m: { id: string }) => m.id,
    );
    await call('PUT', `/providers/${providerId}/mappings`, { mappingIds: [...current, bad.body!['id']] });
    const preview = await call('POST', `/providers/${providerId}/preview`, { user: { username: 'x@example.test' } });
    assert.equal(preview.body!['payload'], null);
    assert.equal(preview.body!['error']?.mapping, 'zz-throw');
  });
});
