/** A provider token sent to the API comes back in no response and no log line, error responses included. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApi } from '../../api/index.ts';
import { createDb, createSecretBox, generateSecretKey } from '../../db/index.ts';
import { recordingSyncControl, startTestApi, validatePluginOptions, type TestApi } from './api-harness.ts';

const SECRET = 'b7Qx9Tz2Lm4Kp8Ws3Nv6Hj5Rc1';

function providerBody(slug: string, extra: Record<string, unknown> = {}) {
  return {
    slug,
    name: `Provider ${slug}`,
    baseUrl: 'https://scim.example.test/scim/v2',
    auth: { mode: 'bearer', token: SECRET },
    ...extra,
  };
}

/** Fails naming `what` when any six characters in a row of the secret appear in `value` (a quoted snippet counts). */
function assertNoSecret(value: unknown, what: string): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? null);
  for (let i = 0; i + 6 <= SECRET.length; i += 1) {
    assert.ok(!text.includes(SECRET.slice(i, i + 6)), `${what} carries part of the secret: ${text}`);
  }
}

describe('secrets sent to the API', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.close());

  test('a 400 for a body that also carries a token does not echo the token', async () => {
    const responses = [
      await api.request('POST', '/api/v1/providers', providerBody('bad-size', { pageSize: 'many' })),
      await api.request('POST', '/api/v1/providers', providerBody('bad-plugin', { pluginOptions: { colour: SECRET } })),
      await api.request('POST', '/api/v1/providers', { ...providerBody('bad-auth'), auth: { mode: SECRET } }),
      await api.request('POST', '/api/v1/providers', { ...providerBody('extra'), token: SECRET }),
    ];
    for (const response of responses) {
      assert.equal(response.status, 400);
      assertNoSecret(response.body, `a ${response.status} body`);
    }
  });

  test('a body that is not valid JSON is a 400 that does not quote the text around the error', async () => {
    for (const text of [
      `{"slug":"a","auth":{"mode":"bearer","token":${SECRET}}}`,
      `{"slug":"a","auth":{"mode":"bearer","token":"${SECRET}" "x": 1}}`,
      `{"slug":"a","auth":{"mode":"bearer","token":"${SECRET}`,
    ]) {
      const response = await api.request('POST', '/api/v1/providers', text);
      assert.equal(response.status, 400, text);
      assert.equal(response.body.error.code, 'ERR_VALIDATION');
      assertNoSecret(response.body, 'the 400 body');
    }
  });

  test('a 409 for a duplicate slug does not echo the token', async () => {
    assert.equal((await api.request('POST', '/api/v1/providers', providerBody('twin'))).status, 201);
    const response = await api.request('POST', '/api/v1/providers', providerBody('twin'));
    assert.equal(response.status, 409);
    assertNoSecret(response.body, 'the 409 body');
  });

  test('nothing the API logged carries the token', () => {
    assertNoSecret(
      api.logged.map((entry) => ({ ...entry, obj: String(JSON.stringify(entry.obj)) })),
      'the log',
    );
  });

  test('a 500 while a token is being saved carries neither the token nor the real error, and the log has no token', async () => {
    const unreachable = createDb('postgres://scimflow@127.0.0.1:1/scimflow', { max: 1 });
    const logged: unknown[] = [];
    try {
      const app = createApi({
        db: unreachable,
        secrets: createSecretBox(generateSecretKey()),
        sync: recordingSyncControl(),
        validatePluginOptions,
        log: {
          error: (obj, msg) => void logged.push({ obj, msg }),
          warn: (obj, msg) => void logged.push({ obj, msg }),
          debug: () => undefined,
        },
      });
      const response = await app.request('/api/v1/providers', {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${api.tokens.admin}` },
        body: JSON.stringify(providerBody('unsaved')),
      });
      assert.equal(response.status, 500);
      const body = await response.text();
      assert.match(body, /ERR_INTERNAL/);
      assertNoSecret(body, 'the 500 body');
      assert.ok(logged.length > 0, 'the real error was logged');
      assertNoSecret(
        logged.map((entry) =>
          String(
            JSON.stringify(entry, (_key, value: unknown) =>
              value instanceof Error ? `${value.message} ${value.stack}` : value,
            ),
          ),
        ),
        'the log',
      );
    } finally {
      await unreachable.end();
    }
  });
});
