import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import {
  createRun,
  finishRun,
  recordProgress,
  saveLinks,
  zeroCounts,
  type LinkView,
  type ProviderView,
  type SyncAction,
  type SyncRunView,
} from '../../db/index.ts';
import { startTestApi, type PageBody, type TestApi } from './api-harness.ts';

describe('runs and links API', () => {
  let api: TestApi;
  let provider: ProviderView;
  before(async () => {
    api = await startTestApi();
    provider = (
      await api.request<ProviderView>('POST', '/api/v1/providers', {
        slug: 'reported',
        name: 'Reported',
        baseUrl: 'http://127.0.0.1:9/scim/v2',
        auth: { mode: 'none' },
      })
    ).body;
  });
  after(() => api.close());

  test('a run is returned with all its counters (objects left retrying apart from failures, objects by worker), status and timestamps', async () => {
    const runId = await createRun(api.db, provider.id, 'full', 'full-sync:reported');
    await api.db.query('UPDATE sync_runs SET total = 10 WHERE id = $1', [runId]);
    // A run's outcome counters are recounted from its log when it ends: one event per object.
    const actions: SyncAction[] = [
      'create',
      'create',
      'create',
      'create',
      'update',
      'update',
      'delete',
      'skip',
      'fail',
      'retry',
    ];
    await recordProgress(
      api.db,
      runId,
      { ...zeroCounts(), processed: 10, created: 4, updated: 2, deleted: 1, skipped: 1, failed: 1, retrying: 1 },
      actions.map((action) => ({ objectType: 'user', localId: randomUUID(), action })),
    );
    await finishRun(api.db, runId, 'succeeded', null);
    const response = await api.request<SyncRunView>('GET', `/api/v1/runs/${runId}`);
    assert.equal(response.status, 200);
    const { startedAt, finishedAt, ...rest } = response.body;
    assert.deepEqual(rest, {
      id: runId,
      providerId: provider.id,
      kind: 'full',
      status: 'succeeded',
      workflowId: 'full-sync:reported',
      total: 10,
      processed: 10,
      created: 4,
      updated: 2,
      deleted: 1,
      unchanged: 1,
      skipped: 1,
      failed: 1,
      retrying: 1,
      workers: { [`${process.pid}@${hostname()}`]: 10 },
      error: null,
    });
    assert.ok(finishedAt !== null && finishedAt >= startedAt);
  });

  test('an unknown run is a 404', async () => {
    assert.equal((await api.request('GET', '/api/v1/runs/3d0c1b9e-2a4f-4c6d-8e1f-000000000000')).status, 404);
    assert.equal((await api.request('GET', '/api/v1/runs/latest')).status, 404);
  });

  test("a provider's runs are listed newest first, limited on request", async () => {
    const first = await createRun(api.db, provider.id, 'full', null);
    await api.db.query("UPDATE sync_runs SET started_at = now() - interval '1 hour' WHERE id = $1", [first]);
    const second = await createRun(api.db, provider.id, 'incremental', null);
    const all = await api.request<{ items: SyncRunView[] }>('GET', '/api/v1/providers/reported/runs');
    const ids = all.body.items.map((run) => run.id);
    assert.ok(ids.indexOf(second) < ids.indexOf(first));
    const one = await api.request<{ items: SyncRunView[] }>('GET', '/api/v1/providers/reported/runs?limit=1');
    assert.equal(one.body.items.length, 1);
  });

  test('links can be filtered by status and object type and name the local object while it exists', async () => {
    const user = await api.request<{ id: string }>('POST', '/api/v1/users', { username: 'linked.user' });
    const group = await api.request<{ id: string }>('POST', '/api/v1/groups', { name: 'linked-group' });
    const goneId = '9a1b2c3d-4e5f-4a6b-8c7d-000000000001';
    const error = { code: 'ERR_SCIM_BAD_REQUEST', message: 'userName is required' };
    await saveLinks(api.db, [
      {
        providerId: provider.id,
        objectType: 'user',
        localId: user.body.id,
        remoteId: 'r-1',
        lastPayloadHash: 'h',
        lastPayload: {},
        status: 'failed',
        lastError: error,
      },
      {
        providerId: provider.id,
        objectType: 'user',
        localId: goneId,
        remoteId: 'r-2',
        lastPayloadHash: 'h',
        lastPayload: {},
        status: 'failed',
        lastError: error,
      },
      {
        providerId: provider.id,
        objectType: 'group',
        localId: group.body.id,
        remoteId: 'r-3',
        lastPayloadHash: 'h',
        lastPayload: {},
        status: 'ok',
        lastError: null,
      },
    ]);

    const failedUsers = await api.request<PageBody<LinkView>>(
      'GET',
      '/api/v1/providers/reported/links?status=failed&objectType=user',
    );
    assert.equal(failedUsers.status, 200);
    assert.deepEqual(
      failedUsers.body.items
        .map(({ syncedAt: _at, ...link }) => link)
        .sort((a, b) => a.localId.localeCompare(b.localId)),
      [
        {
          objectType: 'user',
          localId: user.body.id,
          localName: 'linked.user',
          remoteId: 'r-1',
          status: 'failed',
          lastError: error,
        },
        { objectType: 'user', localId: goneId, localName: null, remoteId: 'r-2', status: 'failed', lastError: error },
      ].sort((a, b) => a.localId.localeCompare(b.localId)),
    );
    const groups = await api.request<PageBody<LinkView>>('GET', '/api/v1/providers/reported/links?objectType=group');
    assert.deepEqual(
      groups.body.items.map((link) => [link.localName, link.status]),
      [['linked-group', 'ok']],
    );
    const paged = await api.request<PageBody<LinkView>>('GET', '/api/v1/providers/reported/links?limit=2');
    assert.equal(paged.body.items.length, 2);
    const rest = await api.request<PageBody<LinkView>>(
      'GET',
      `/api/v1/providers/reported/links?limit=2&after=${paged.body.next}`,
    );
    assert.equal(rest.body.items.length, 1);
    assert.equal(rest.body.next, null);
  });

  test('an unknown link status is a 400 naming the status parameter', async () => {
    const response = await api.request('GET', '/api/v1/providers/reported/links?status=broken');
    assert.equal(response.status, 400);
    assert.deepEqual(
      response.body.error.issues?.map((issue) => issue.path),
      ['status'],
    );
  });
});
