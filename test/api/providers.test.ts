import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getProviderForSync, type ProviderView } from '../../db/index.ts';
import { startTestApi, type TestApi } from './api-harness.ts';

const TOKEN = 'scim-token-7d1f0a9c-very-secret';

function providerBody(slug: string, extra: Record<string, unknown> = {}) {
  return {
    slug,
    name: `Provider ${slug}`,
    baseUrl: 'https://scim.example.test/scim/v2',
    auth: { mode: 'bearer', token: TOKEN },
    ...extra,
  };
}

describe('providers API', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.close());

  test('a created provider is returned with defaults and without its token', async () => {
    const response = await api.request<ProviderView>('POST', '/api/v1/providers', providerBody('acme'));
    assert.equal(response.status, 201);
    assert.equal(response.body.slug, 'acme');
    assert.deepEqual(response.body.auth, { mode: 'bearer', secretSet: true });
    assert.equal(response.body.plugin, 'scim2');
    assert.equal(response.body.configVersion, 1);
    assert.equal(response.body.pageSize, 100);
    assert.equal(response.body.fullSyncIntervalMinutes, 60);
    assert.deepEqual(response.body.scope, { includeServiceAccounts: false, accessGroups: [] });
  });

  test('no provider route ever returns the token', async () => {
    const created = await api.request<ProviderView>('POST', '/api/v1/providers', providerBody('no-leak'));
    const responses = [
      created,
      await api.request('GET', '/api/v1/providers'),
      await api.request('GET', '/api/v1/providers/no-leak'),
      await api.request('GET', `/api/v1/providers/${created.body.id}`),
      await api.request('PATCH', '/api/v1/providers/no-leak', {
        name: 'Renamed',
        auth: { mode: 'bearer', token: `${TOKEN}-2` },
      }),
      await api.request('DELETE', '/api/v1/providers/no-leak'),
    ];
    for (const response of responses) {
      const text = JSON.stringify(response.body ?? null);
      assert.ok(!text.includes(TOKEN), `a ${response.status} response carried the token`);
    }
  });

  test('the token is stored encrypted and decrypts only for the sync', async () => {
    const created = await api.request<ProviderView>('POST', '/api/v1/providers', providerBody('sealed'));
    const { rows } = await api.db.query<{ auth_secret: Buffer }>('SELECT auth_secret FROM providers WHERE id = $1', [
      created.body.id,
    ]);
    const stored = rows[0]!.auth_secret;
    assert.ok(stored.length > TOKEN.length);
    assert.equal(stored.indexOf(Buffer.from(TOKEN, 'utf8')), -1, 'the raw column contains the token bytes');
    assert.ok(!stored.toString('latin1').includes(TOKEN.slice(0, 12)));
    const forSync = await getProviderForSync(api.db, api.secrets, created.body.id);
    assert.deepEqual(forSync.auth, { mode: 'bearer', token: TOKEN });
  });

  test('a provider is addressable by id and by slug', async () => {
    const created = await api.request<ProviderView>('POST', '/api/v1/providers', providerBody('by-either'));
    assert.deepEqual(
      (await api.request<ProviderView>('GET', `/api/v1/providers/${created.body.id}`)).body,
      created.body,
    );
    assert.deepEqual((await api.request<ProviderView>('GET', '/api/v1/providers/by-either')).body, created.body);
  });

  test('an unknown provider is a 404 on every route', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/providers/nope'],
      ['PATCH', '/api/v1/providers/nope'],
      ['DELETE', '/api/v1/providers/nope'],
      ['POST', '/api/v1/providers/nope/sync'],
      ['GET', '/api/v1/providers/nope/runs'],
      ['GET', '/api/v1/providers/nope/links'],
    ] as const) {
      const response = await api.request(method, path, method === 'PATCH' ? { name: 'x' } : undefined);
      assert.equal(response.status, 404, `${method} ${path}`);
      assert.equal(response.body.error.code, 'ERR_NOT_FOUND');
    }
  });

  test('a name or plugin option PostgreSQL cannot store (U+0000, an unpaired surrogate) is a 400 naming it', async () => {
    const response = await api.request(
      'POST',
      '/api/v1/providers',
      providerBody('nul-name', { name: 'P\u0000', pluginOptions: { userExtras: { 'k\ud800': 'x' } } }),
    );
    assert.equal(response.status, 400, JSON.stringify(response.body));
    assert.equal(response.body.error.code, 'ERR_VALIDATION');
    assert.deepEqual(
      response.body.error.issues?.map((issue) => issue.path),
      ['name', 'pluginOptions.userExtras'],
    );
    assert.equal((await api.request('GET', '/api/v1/providers/nul-name')).status, 404);
  });

  test('text PostgreSQL cannot store in a path parameter is a 400 that does not repeat it, not a 500', async () => {
    // No schema reads a slug in the path: PostgreSQL refuses it, and the API answers for it as for a bad field.
    const response = await api.request('GET', '/api/v1/providers/nul%00slug');
    assert.equal(response.status, 400, JSON.stringify(response.body));
    assert.equal(response.body.error.code, 'ERR_VALIDATION');
    assert.match(response.body.error.message, /U\+0000 or an unpaired UTF-16 surrogate/);
    assert.doesNotMatch(JSON.stringify(response.body), /nul|slug/);
  });

  test('a duplicate slug is a 409 naming the slug field', async () => {
    await api.request('POST', '/api/v1/providers', providerBody('twin'));
    const response = await api.request('POST', '/api/v1/providers', providerBody('twin'));
    assert.equal(response.status, 409);
    assert.equal(response.body.error.details?.['field'], 'slug');
  });

  test('invalid provider fields are a 400 naming each of them', async () => {
    const response = await api.request('POST', '/api/v1/providers', {
      slug: 'Not A Slug',
      name: 'x',
      baseUrl: 'ftp://example.test',
      auth: { mode: 'bearer' },
      pageSize: 5000,
      fullSyncIntervalMinutes: 0,
    });
    assert.equal(response.status, 400);
    assert.deepEqual(response.body.error.issues?.map((issue) => issue.path).sort(), [
      'auth.token',
      'baseUrl',
      'fullSyncIntervalMinutes',
      'pageSize',
      'slug',
    ]);
  });

  test('a scope naming a group the directory does not have is a 400 naming each such id, on create and update, and nothing is saved', async () => {
    const unknown = '00000000-0000-0000-0000-000000000000';
    const alsoUnknown = '11111111-1111-4111-8111-111111111111';
    const group = await api.request<{ id: string }>('POST', '/api/v1/groups', { name: 'scope-engineering' });
    assert.equal(group.status, 201);

    const created = await api.request(
      'POST',
      '/api/v1/providers',
      providerBody('ghost-scope', { scope: { accessGroups: [group.body.id, unknown], groups: [alsoUnknown] } }),
    );
    assert.equal(created.status, 400);
    assert.equal(created.body.error.code, 'ERR_VALIDATION');
    assert.deepEqual(created.body.error.issues, [
      { path: 'scope.accessGroups.1', message: `no directory group ${unknown}` },
      { path: 'scope.groups.0', message: `no directory group ${alsoUnknown}` },
    ]);
    assert.match(created.body.error.message, new RegExp(`${unknown}.*${alsoUnknown}`));
    assert.equal((await api.request('GET', '/api/v1/providers/ghost-scope')).status, 404);
    assert.deepEqual(
      api.sync.calls.filter((call) => call.slug === 'ghost-scope'),
      [],
    );

    const scope = { includeServiceAccounts: false, accessGroups: [group.body.id], groups: [group.body.id] };
    const good = await api.request<ProviderView>('POST', '/api/v1/providers', providerBody('real-scope', { scope }));
    assert.equal(good.status, 201);
    assert.deepEqual(good.body.scope, scope);
    for (const [field, path] of [
      ['accessGroups', 'scope.accessGroups.0'],
      ['groups', 'scope.groups.0'],
    ] as const) {
      const patched = await api.request('PATCH', '/api/v1/providers/real-scope', {
        scope: { ...scope, [field]: [unknown] },
      });
      assert.equal(patched.status, 400, field);
      assert.equal(patched.body.error.code, 'ERR_VALIDATION');
      assert.deepEqual(patched.body.error.issues, [{ path, message: `no directory group ${unknown}` }]);
    }
    const after = await api.request<ProviderView>('GET', '/api/v1/providers/real-scope');
    assert.deepEqual(after.body.scope, scope);
    assert.equal(after.body.configVersion, 1);
    assert.deepEqual(
      api.sync.calls.filter((call) => call.slug === 'real-scope').map((call) => call.method),
      ['providerChanged'],
    );
  });

  test('the full-sync interval is kept per provider, bounded to a week, and a change of it tells the sync engine', async () => {
    const created = await api.request<ProviderView>(
      'POST',
      '/api/v1/providers',
      providerBody('every-15', { fullSyncIntervalMinutes: 15 }),
    );
    assert.equal(created.body.fullSyncIntervalMinutes, 15);
    const tooLong = await api.request('PATCH', '/api/v1/providers/every-15', { fullSyncIntervalMinutes: 10_081 });
    assert.equal(tooLong.status, 400);
    assert.deepEqual(
      tooLong.body.error.issues?.map((issue) => issue.path),
      ['fullSyncIntervalMinutes'],
    );
    const fractional = await api.request('PATCH', '/api/v1/providers/every-15', { fullSyncIntervalMinutes: 7.5 });
    assert.equal(fractional.status, 400);

    const changed = await api.request<ProviderView>('PATCH', '/api/v1/providers/every-15', {
      fullSyncIntervalMinutes: 240,
    });
    assert.equal(changed.body.fullSyncIntervalMinutes, 240);
    assert.equal(changed.body.configVersion, 2);
    const notified = api.sync.calls
      .filter((call) => call.slug === 'every-15')
      .map((call) => `${call.method}@${call.configVersion}`);
    assert.deepEqual(notified, ['providerChanged@1', 'providerChanged@2']);
    assert.equal(
      (await api.request<ProviderView>('GET', '/api/v1/providers/every-15')).body.fullSyncIntervalMinutes,
      240,
    );
  });

  test('an unknown plugin or bad scim2 options are a 400 ERR_CONFIG naming the option, and nothing is saved', async () => {
    const unknown = await api.request('POST', '/api/v1/providers', providerBody('odd-plugin', { plugin: 'martian' }));
    assert.equal(unknown.status, 400);
    assert.equal(unknown.body.error.code, 'ERR_CONFIG');
    const badOptions = await api.request(
      'POST',
      '/api/v1/providers',
      providerBody('odd-options', { pluginOptions: { groupUpdate: 'sometimes', maxMembersPerRequest: 5000 } }),
    );
    assert.equal(badOptions.status, 400);
    assert.equal(badOptions.body.error.code, 'ERR_CONFIG');
    assert.deepEqual(
      (badOptions.body.error.details?.['issues'] as Array<{ path: string }>).map((issue) => issue.path).sort(),
      ['groupUpdate', 'maxMembersPerRequest'],
    );
    const { rowCount } = await api.db.query("SELECT 1 FROM providers WHERE slug IN ('odd-plugin', 'odd-options')");
    assert.equal(rowCount, 0);
  });

  test('an aws provider must point at the SCIM endpoint form AWS shows, at creation and when its URL changes', async () => {
    const noTenant = await api.request(
      'POST',
      '/api/v1/providers',
      providerBody('aws-no-tenant', { plugin: 'aws', baseUrl: 'https://scim.us-east-1.amazonaws.com/scim/v2' }),
    );
    assert.equal(noTenant.status, 400);
    assert.equal(noTenant.body.error.code, 'ERR_CONFIG');
    assert.match(noTenant.body.error.message, /tenant id is missing/);
    assert.deepEqual(
      (noTenant.body.error.details?.['issues'] as Array<{ path: string }>).map((issue) => issue.path),
      ['baseUrl'],
    );
    const good = 'https://scim.us-east-1.amazonaws.com/t-123/scim/v2';
    const created = await api.request(
      'POST',
      '/api/v1/providers',
      providerBody('aws-ok', { plugin: 'aws', baseUrl: good }),
    );
    assert.equal(created.status, 201);
    const moved = await api.request('PATCH', '/api/v1/providers/aws-ok', {
      baseUrl: 'https://portal.sso.us-east-1.amazonaws.com/t-123/scim/v2',
    });
    assert.equal(moved.status, 400);
    assert.match(moved.body.error.message, /not an IAM Identity Center SCIM host/);
    assert.equal((await api.request<ProviderView>('GET', '/api/v1/providers/aws-ok')).body.baseUrl, good);
  });

  test('scim2 options given at creation are stored as given', async () => {
    const created = await api.request<ProviderView>(
      'POST',
      '/api/v1/providers',
      providerBody('with-options', { pluginOptions: { groupUpdate: 'put', maxMembersPerRequest: 50 } }),
    );
    assert.equal(created.status, 201);
    assert.deepEqual(created.body.pluginOptions, { groupUpdate: 'put', maxMembersPerRequest: 50 });
  });

  test('plugin options given in a patch are checked against the scim2 options schema', async () => {
    await api.request('POST', '/api/v1/providers', providerBody('patched-options'));
    const unknownKey = await api.request('PATCH', '/api/v1/providers/patched-options', {
      pluginOptions: { colour: 'red' },
    });
    assert.equal(unknownKey.status, 400);
    assert.equal(unknownKey.body.error.code, 'ERR_CONFIG');
    assert.deepEqual(
      (unknownKey.body.error.details?.['issues'] as Array<{ path: string }>).map((issue) => issue.path),
      ['colour'],
    );
    const relativePath = await api.request('PATCH', '/api/v1/providers/patched-options', {
      pluginOptions: { discoveryPath: 'ServiceProviderConfig' },
    });
    assert.equal(relativePath.status, 400);
    const good = await api.request<ProviderView>('PATCH', '/api/v1/providers/patched-options', {
      pluginOptions: { discoveryPath: '/scim/ServiceProviderConfig', groupUpdate: 'patch' },
    });
    assert.equal(good.status, 200);
    assert.deepEqual(good.body.pluginOptions, { discoveryPath: '/scim/ServiceProviderConfig', groupUpdate: 'patch' });
    assert.equal(good.body.configVersion, 2);
  });

  test('every real change bumps configVersion and tells the sync engine; a no-op patch does neither', async () => {
    await api.request('POST', '/api/v1/providers', providerBody('versioned'));
    const changes: Array<[Record<string, unknown>, number]> = [
      [{ name: 'Versioned v2' }, 2],
      [{ name: 'Versioned v2' }, 2],
      [{ concurrency: 8, dryRun: true }, 3],
      [{ scope: { accessGroups: [] } }, 3],
      [{ scope: { includeServiceAccounts: true } }, 4],
      [{ auth: { mode: 'bearer', token: TOKEN } }, 4],
      [{ auth: { mode: 'bearer', token: `${TOKEN}-rotated` } }, 5],
      [{ auth: { mode: 'none' } }, 6],
      [{}, 6],
    ];
    for (const [patch, expected] of changes) {
      const response = await api.request<ProviderView>('PATCH', '/api/v1/providers/versioned', patch);
      assert.equal(response.status, 200);
      assert.equal(response.body.configVersion, expected, `after ${JSON.stringify(patch)}`);
    }
    const notified = api.sync.calls
      .filter((call) => call.slug === 'versioned')
      .map((call) => `${call.method}@${call.configVersion}`);
    assert.deepEqual(notified, [
      'providerChanged@1',
      'providerChanged@2',
      'providerChanged@3',
      'providerChanged@4',
      'providerChanged@5',
      'providerChanged@6',
    ]);
    const final = await api.request<ProviderView>('GET', '/api/v1/providers/versioned');
    assert.deepEqual(final.body.auth, { mode: 'none', secretSet: false });
    assert.equal(final.body.concurrency, 8);
    assert.equal(final.body.name, 'Versioned v2');
  });

  test('a bearer token that cannot go into an HTTP header as it is is a 400 naming auth.token, and is not shown', async () => {
    // Each would be saved and then fail every request of every sync: refused by the HTTP client, or sent as other bytes.
    const tokens = ['Secret\u0001Tok', 'Secret\u0000Tok', 'Secret-ö-Tok', ' SecretTok', 'SecretTok\t', 'Secret\nTok'];
    for (const [i, token] of tokens.entries()) {
      for (const auth of [
        { mode: 'bearer', token },
        { mode: 'bearer', token, headerName: 'X-Api-Key' },
      ]) {
        const response = await api.request('POST', '/api/v1/providers', providerBody(`header-${i}`, { auth }));
        assert.equal(response.status, 400, JSON.stringify(token));
        assert.equal(response.body.error.code, 'ERR_VALIDATION');
        assert.deepEqual(
          response.body.error.issues?.map((issue) => issue.path),
          ['auth.token'],
        );
        assert.doesNotMatch(JSON.stringify(response.body), /Secret|Tok/);
      }
    }
    const created = await api.request<ProviderView>('POST', '/api/v1/providers', providerBody('header-ok'));
    const rotated = await api.request('PATCH', '/api/v1/providers/header-ok', {
      auth: { mode: 'bearer', token: 'Secret\u0001Tok' },
    });
    assert.equal(rotated.status, 400);
    const forSync = await getProviderForSync(api.db, api.secrets, created.body.id);
    assert.deepEqual(forSync.auth, { mode: 'bearer', token: TOKEN }, 'the refused token replaced nothing');
    // Spaces inside a token are fine (`SSWS <key>` in Authorization), and a basic-auth password is base64-encoded.
    const spaced = providerBody('header-spaced', {
      auth: { mode: 'bearer', token: 'SSWS 00ab', headerName: 'Authorization' },
    });
    assert.equal((await api.request('POST', '/api/v1/providers', spaced)).status, 201);
    const basic = providerBody('basic-utf8', { auth: { mode: 'basic', username: 'scim', password: 'pässwörd\u0001' } });
    assert.equal((await api.request('POST', '/api/v1/providers', basic)).status, 201);
  });

  test('a bearer token saved before such tokens were refused is ERR_CONFIG when a sync loads it, not a network error', async () => {
    const created = await api.request<ProviderView>('POST', '/api/v1/providers', providerBody('saved-before'));
    const sealed = api.secrets.seal(JSON.stringify({ token: 'Secret\u0001Tok' }), created.body.id);
    await api.db.query('UPDATE providers SET auth_secret = $1 WHERE id = $2', [sealed, created.body.id]);
    await assert.rejects(getProviderForSync(api.db, api.secrets, created.body.id), (error: Error) => {
      assert.equal((error as Error & { code?: string }).code, 'ERR_CONFIG');
      assert.match(
        error.message,
        /provider saved-before has incomplete or invalid bearer settings; set its auth again/,
      );
      assert.doesNotMatch(error.message, /Secret|Tok/);
      return true;
    });
  });

  test('a rotated token is what the sync decrypts afterwards', async () => {
    const created = await api.request<ProviderView>('POST', '/api/v1/providers', providerBody('rotating'));
    await api.request('PATCH', '/api/v1/providers/rotating', { auth: { mode: 'bearer', token: 'second-token' } });
    const forSync = await getProviderForSync(api.db, api.secrets, created.body.id);
    assert.deepEqual(forSync.auth, { mode: 'bearer', token: 'second-token' });
  });

  test('deleting a provider removes it and tells the sync engine', async () => {
    await api.request('POST', '/api/v1/providers', providerBody('short-lived'));
    assert.equal((await api.request('DELETE', '/api/v1/providers/short-lived')).status, 204);
    assert.equal((await api.request('GET', '/api/v1/providers/short-lived')).status, 404);
    assert.deepEqual(
      api.sync.calls.filter((call) => call.slug === 'short-lived').map((call) => call.method),
      ['providerChanged', 'providerDeleted'],
    );
  });

  test('asking for a sync answers 202 with the run and workflow ids from the engine, once the run is queued', async () => {
    await api.request('POST', '/api/v1/providers', providerBody('syncable'));
    const response = await api.request<{ runId: string; workflowId: string }>(
      'POST',
      '/api/v1/providers/syncable/sync',
    );
    assert.equal(response.status, 202);
    assert.deepEqual(response.body, {
      runId: '00000000-0000-4000-8000-000000000001',
      workflowId: 'full-sync:syncable',
      status: 'running',
    });
    const calls = api.sync.calls.filter((call) => call.slug === 'syncable');
    assert.deepEqual(
      calls.map((call) => call.method),
      ['providerChanged', 'requestFullSync'],
    );
    assert.deepEqual(calls[1]!.request, { answer: 'queued' }, 'the API never holds the call until the run starts');
  });

  test('a sync asked for while another runs is answered at once as queued', async () => {
    await api.request('POST', '/api/v1/providers', providerBody('queued-behind'));
    const response = await api.request<{ status: string }>('POST', '/api/v1/providers/queued-behind/sync');
    assert.equal(response.status, 202);
    assert.equal(response.body.status, 'queued');
  });

  test('a sync request may allow deletions above the limit; anything else in its body is a 400', async () => {
    await api.request('POST', '/api/v1/providers', providerBody('consenting'));
    const allowed = await api.request('POST', '/api/v1/providers/consenting/sync', { allowDeletions: true });
    assert.equal(allowed.status, 202);
    const odd = await api.request('POST', '/api/v1/providers/consenting/sync', { allowDeletions: 'yes', force: true });
    assert.equal(odd.status, 400);
    assert.deepEqual(odd.body.error.issues?.map((issue) => issue.path).sort(), ['allowDeletions', 'force']);
    const requests = api.sync.calls.filter((call) => call.slug === 'consenting' && call.method === 'requestFullSync');
    assert.deepEqual(
      requests.map((call) => call.request),
      [{ allowDeletions: true, answer: 'queued' }],
    );
  });

  test('the deletion limit defaults to 500, may be turned off with null, and is never negative', async () => {
    const created = await api.request<ProviderView>('POST', '/api/v1/providers', providerBody('guarded'));
    assert.equal(created.body.deletionLimit, 500);
    const off = await api.request<ProviderView>('PATCH', '/api/v1/providers/guarded', { deletionLimit: null });
    assert.equal(off.body.deletionLimit, null);
    const negative = await api.request('PATCH', '/api/v1/providers/guarded', { deletionLimit: -1 });
    assert.equal(negative.status, 400);
    assert.deepEqual(
      negative.body.error.issues?.map((issue) => issue.path),
      ['deletionLimit'],
    );
  });

  test('a disabled provider cannot be synced', async () => {
    await api.request('POST', '/api/v1/providers', providerBody('switched-off', { enabled: false }));
    const response = await api.request('POST', '/api/v1/providers/switched-off/sync');
    assert.equal(response.status, 409);
    assert.equal(
      api.sync.calls.some((call) => call.slug === 'switched-off' && call.method === 'requestFullSync'),
      false,
    );
  });

  test('the provider is saved even when the sync engine cannot be told, and the failure is logged', async () => {
    const failing = await startTestApi({
      sync: {
        calls: [],
        requestFullSync: () => Promise.reject(new Error('temporal unavailable')),
        providerChanged: () => Promise.reject(new Error('temporal unavailable')),
        providerDeleted: () => Promise.reject(new Error('temporal unavailable')),
      },
    });
    try {
      const response = await failing.request<ProviderView>('POST', '/api/v1/providers', providerBody('saved-anyway'));
      assert.equal(response.status, 201);
      assert.equal((await failing.request('GET', '/api/v1/providers/saved-anyway')).status, 200);
      assert.equal(failing.logged.filter((entry) => entry.level === 'error').length, 1);
      const sync = await failing.request('POST', '/api/v1/providers/saved-anyway/sync');
      assert.equal(sync.status, 500);
      assert.equal(sync.body.error.code, 'ERR_INTERNAL');
      assert.ok(!sync.body.error.message.includes('temporal unavailable'), 'the real error stays in the log');
    } finally {
      await failing.close();
    }
  });
});
