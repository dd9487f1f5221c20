import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { DirectoryGroup, DirectoryUser } from '../../db/index.ts';
import { startTestApi, type PageBody, type TestApi } from './api-harness.ts';

describe('groups and memberships API', () => {
  let api: TestApi;
  let alice: DirectoryUser;
  let bob: DirectoryUser;
  before(async () => {
    api = await startTestApi();
    alice = (await api.request<DirectoryUser>('POST', '/api/v1/users', { username: 'alice' })).body;
    bob = (await api.request<DirectoryUser>('POST', '/api/v1/users', { username: 'bob' })).body;
  });
  after(() => api.close());

  const memberIds = async (groupId: string): Promise<string[]> =>
    (await api.request<PageBody<DirectoryUser>>('GET', `/api/v1/groups/${groupId}/members`)).body.items
      .map((user) => user.id)
      .sort();

  test('a created group can be read back, listed, renamed and deleted', async () => {
    const created = await api.request<DirectoryGroup>('POST', '/api/v1/groups', {
      name: 'engineering',
      attributes: { cost: 42 },
    });
    assert.equal(created.status, 201);
    assert.equal(created.body.name, 'engineering');
    assert.deepEqual(
      (await api.request<DirectoryGroup>('GET', `/api/v1/groups/${created.body.id}`)).body,
      created.body,
    );
    const listed = await api.request<PageBody<DirectoryGroup>>('GET', '/api/v1/groups');
    assert.ok(listed.body.items.some((group) => group.id === created.body.id));
    const renamed = await api.request<DirectoryGroup>('PATCH', `/api/v1/groups/${created.body.id}`, {
      name: 'platform',
    });
    assert.equal(renamed.body.name, 'platform');
    assert.deepEqual(renamed.body.attributes, { cost: 42 });
    assert.equal((await api.request('DELETE', `/api/v1/groups/${created.body.id}`)).status, 204);
    assert.equal((await api.request('GET', `/api/v1/groups/${created.body.id}`)).status, 404);
  });

  test('a group created with members lists them and announces each one', async () => {
    await api.takeOutbox();
    const group = await api.request<DirectoryGroup>('POST', '/api/v1/groups', {
      name: 'with-members',
      members: [alice.id, bob.id],
    });
    assert.deepEqual(await memberIds(group.body.id), [alice.id, bob.id].sort());
    const rows = await api.takeOutbox();
    assert.deepEqual(rows[0], { objectType: 'group', objectId: group.body.id, relatedId: null, change: 'created' });
    assert.deepEqual(
      rows
        .slice(1)
        .map((row) => `${row.objectType}:${row.objectId}:${row.relatedId}:${row.change}`)
        .sort(),
      [alice.id, bob.id].map((id) => `membership:${group.body.id}:${id}:member_added`).sort(),
    );
  });

  test('a group created with an unknown member is a 404 and leaves no group behind', async () => {
    const response = await api.request('POST', '/api/v1/groups', {
      name: 'ghost-members',
      members: [alice.id, '5b0f1e7a-0000-4000-8000-000000000000'],
    });
    assert.equal(response.status, 404);
    const { rowCount } = await api.db.query("SELECT 1 FROM groups WHERE name = 'ghost-members'");
    assert.equal(rowCount, 0);
  });

  test('a name or attribute PostgreSQL cannot store (U+0000, an unpaired surrogate) is a 400 naming it', async () => {
    const nul = await api.request('POST', '/api/v1/groups', { name: 'g\u0000' });
    assert.equal(nul.status, 400, JSON.stringify(nul.body));
    assert.equal(nul.body.error.code, 'ERR_VALIDATION');
    assert.deepEqual(
      nul.body.error.issues?.map((issue) => issue.path),
      ['name'],
    );
    const lone = await api.request('POST', '/api/v1/groups', { name: 'lone', attributes: { floor: ['\udfff'] } });
    assert.equal(lone.status, 400, JSON.stringify(lone.body));
    assert.deepEqual(
      lone.body.error.issues?.map((issue) => issue.path),
      ['attributes.floor.0'],
    );
    assert.equal((await api.db.query(`SELECT 1 FROM groups WHERE name = 'lone'`)).rowCount, 0);
  });

  test('a second group with the same name is a 409 naming the name field', async () => {
    await api.request('POST', '/api/v1/groups', { name: 'twice' });
    const response = await api.request('POST', '/api/v1/groups', { name: 'twice' });
    assert.equal(response.status, 409);
    assert.equal(response.body.error.details?.['field'], 'name');
  });

  test('a group name another group holds in another letter case is a 409 naming the name field, and creates no group', async () => {
    assert.equal((await api.request('POST', '/api/v1/groups', { name: 'Data Science' })).status, 201);
    const response = await api.request('POST', '/api/v1/groups', { name: 'DATA science', members: [alice.id] });
    assert.equal(response.status, 409);
    assert.equal(response.body.error.code, 'ERR_CONFLICT');
    assert.equal(response.body.error.details?.['field'], 'name');
    const { rows } = await api.db.query<{ name: string }>("SELECT name FROM groups WHERE lower(name) = 'data science'");
    assert.deepEqual(
      rows.map((row) => row.name),
      ['Data Science'],
    );
  });

  test('renaming a group to another letter case of another group is a 409 and changes nothing; of its own name, it is a rename', async () => {
    await api.request('POST', '/api/v1/groups', { name: 'finance' });
    const group = await api.request<DirectoryGroup>('POST', '/api/v1/groups', { name: 'fin' });
    await api.takeOutbox();
    const refused = await api.request('PATCH', `/api/v1/groups/${group.body.id}`, { name: 'Finance' });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.details?.['field'], 'name');
    assert.equal((await api.request<DirectoryGroup>('GET', `/api/v1/groups/${group.body.id}`)).body.name, 'fin');
    assert.deepEqual(await api.takeOutbox(), []);

    const recased = await api.request<DirectoryGroup>('PATCH', `/api/v1/groups/${group.body.id}`, { name: 'FIN' });
    assert.equal(recased.status, 200);
    assert.equal(recased.body.name, 'FIN');
  });

  test('groups whose names differ only in case (a database from before the rule) can still be changed, and no third one joins them', async () => {
    const { rows } = await api.db.query<{ id: string; name: string }>(
      "INSERT INTO groups (name) VALUES ('legacy-team'), ('Legacy-Team') RETURNING id, name",
    );
    for (const { id, name } of rows) {
      const changed = await api.request<DirectoryGroup>('PATCH', `/api/v1/groups/${id}`, {
        name,
        attributes: { floor: 1 },
      });
      assert.equal(changed.status, 200, JSON.stringify(changed.body));
      assert.deepEqual(changed.body.attributes, { floor: 1 });
    }
    const third = await api.request('POST', '/api/v1/groups', { name: 'LEGACY-TEAM' });
    assert.equal(third.status, 409);
  });

  test('adding members twice adds them once and announces them once', async () => {
    const group = await api.request<DirectoryGroup>('POST', '/api/v1/groups', { name: 'idempotent' });
    await api.takeOutbox();
    const first = await api.request<{ added: string[] }>('POST', `/api/v1/groups/${group.body.id}/members`, {
      userIds: [alice.id],
    });
    assert.deepEqual(first.body.added, [alice.id]);
    const second = await api.request<{ added: string[] }>('POST', `/api/v1/groups/${group.body.id}/members`, {
      userIds: [alice.id, bob.id],
    });
    assert.deepEqual(second.body.added, [bob.id]);
    assert.deepEqual(await memberIds(group.body.id), [alice.id, bob.id].sort());
    assert.deepEqual(await api.takeOutbox(), [
      { objectType: 'membership', objectId: group.body.id, relatedId: alice.id, change: 'member_added' },
      { objectType: 'membership', objectId: group.body.id, relatedId: bob.id, change: 'member_added' },
    ]);
  });

  test('removing a member takes them out of the group and announces it', async () => {
    const group = await api.request<DirectoryGroup>('POST', '/api/v1/groups', {
      name: 'shrinking',
      members: [alice.id, bob.id],
    });
    await api.takeOutbox();
    assert.equal((await api.request('DELETE', `/api/v1/groups/${group.body.id}/members/${alice.id}`)).status, 204);
    assert.deepEqual(await memberIds(group.body.id), [bob.id]);
    assert.deepEqual(await api.takeOutbox(), [
      { objectType: 'membership', objectId: group.body.id, relatedId: alice.id, change: 'member_removed' },
    ]);
    assert.equal((await api.request('GET', `/api/v1/users/${alice.id}`)).status, 200, 'the user itself stays');
  });

  test('removing a user who is not a member is a 404 and writes nothing', async () => {
    const group = await api.request<DirectoryGroup>('POST', '/api/v1/groups', { name: 'not-in-it' });
    await api.takeOutbox();
    const response = await api.request('DELETE', `/api/v1/groups/${group.body.id}/members/${alice.id}`);
    assert.equal(response.status, 404);
    assert.deepEqual(await api.takeOutbox(), []);
  });

  test('membership routes of an unknown group are 404s', async () => {
    const missing = '0c8b3a52-9d7e-4b1a-8f00-000000000000';
    assert.equal((await api.request('GET', `/api/v1/groups/${missing}/members`)).status, 404);
    assert.equal((await api.request('POST', `/api/v1/groups/${missing}/members`, { userIds: [alice.id] })).status, 404);
    assert.equal((await api.request('DELETE', `/api/v1/groups/${missing}/members/${alice.id}`)).status, 404);
  });

  test('member ids that are not uuids are a 400 naming the entry', async () => {
    const group = await api.request<DirectoryGroup>('POST', '/api/v1/groups', { name: 'bad-ids' });
    const response = await api.request('POST', `/api/v1/groups/${group.body.id}/members`, {
      userIds: [alice.id, 'bob'],
    });
    assert.equal(response.status, 400);
    assert.deepEqual(
      response.body.error.issues?.map((issue) => issue.path),
      ['userIds.1'],
    );
  });

  test('a group update that changes nothing writes no outbox row and keeps updatedAt', async () => {
    const group = await api.request<DirectoryGroup>('POST', '/api/v1/groups', {
      name: 'unchanged',
      attributes: { x: 1 },
    });
    await api.takeOutbox();
    const same = await api.request<DirectoryGroup>('PATCH', `/api/v1/groups/${group.body.id}`, {
      name: 'unchanged',
      attributes: { x: 1 },
    });
    assert.equal(same.body.updatedAt, group.body.updatedAt);
    assert.deepEqual(await api.takeOutbox(), []);
  });

  test('a group cannot become its own ancestor', async () => {
    const parent = await api.request<DirectoryGroup>('POST', '/api/v1/groups', { name: 'cycle-parent' });
    const child = await api.request<DirectoryGroup>('POST', '/api/v1/groups', {
      name: 'cycle-child',
      parentId: parent.body.id,
    });
    assert.equal(child.body.parentId, parent.body.id);
    const response = await api.request('PATCH', `/api/v1/groups/${parent.body.id}`, { parentId: child.body.id });
    assert.equal(response.status, 400);
    assert.deepEqual(
      response.body.error.issues?.map((issue) => issue.path),
      ['parentId'],
    );
  });

  test("a group a provider's scope names cannot be deleted: 409 naming the providers, and nothing is deleted", async () => {
    const group = await api.request<DirectoryGroup>('POST', '/api/v1/groups', {
      name: 'scoped',
      members: [alice.id],
    });
    const child = await api.request<DirectoryGroup>('POST', '/api/v1/groups', {
      name: 'scoped-child',
      parentId: group.body.id,
    });
    const provider = (slug: string, scope: Record<string, unknown>) =>
      api.request('POST', '/api/v1/providers', {
        slug,
        name: slug,
        baseUrl: 'https://scim.example.test/scim/v2',
        auth: { mode: 'none' },
        scope,
      });
    assert.equal((await provider('by-access', { accessGroups: [group.body.id] })).status, 201);
    assert.equal((await provider('by-filter', { groups: [group.body.id] })).status, 201);
    await api.takeOutbox();

    const refused = await api.request('DELETE', `/api/v1/groups/${group.body.id}`);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'ERR_CONFLICT');
    assert.equal(
      refused.body.error.message,
      `group ${group.body.id} is in the scope of providers "by-access", "by-filter"; take it out of their scope before deleting it`,
    );
    assert.deepEqual(refused.body.error.details, { providers: ['by-access', 'by-filter'] });
    assert.equal((await api.request('GET', `/api/v1/groups/${group.body.id}`)).status, 200);
    assert.deepEqual(await memberIds(group.body.id), [alice.id]);
    assert.equal(
      (await api.request<DirectoryGroup>('GET', `/api/v1/groups/${child.body.id}`)).body.parentId,
      group.body.id,
    );
    assert.deepEqual(await api.takeOutbox(), [], 'nothing announced');

    // Out of one provider's scope, the other still holds it; out of both, it can go.
    await api.request('PATCH', '/api/v1/providers/by-access', { scope: { accessGroups: [] } });
    const stillUsed = await api.request('DELETE', `/api/v1/groups/${group.body.id}`);
    assert.equal(stillUsed.status, 409);
    assert.deepEqual(stillUsed.body.error.details, { providers: ['by-filter'] });
    await api.request('PATCH', '/api/v1/providers/by-filter', { scope: { accessGroups: [] } });
    assert.equal((await api.request('DELETE', `/api/v1/groups/${group.body.id}`)).status, 204);
  });

  test('deleting a parent group detaches its children and announces them as updated', async () => {
    const parent = await api.request<DirectoryGroup>('POST', '/api/v1/groups', { name: 'doomed-parent' });
    const child = await api.request<DirectoryGroup>('POST', '/api/v1/groups', {
      name: 'orphan',
      parentId: parent.body.id,
    });
    await api.takeOutbox();
    await api.request('DELETE', `/api/v1/groups/${parent.body.id}`);
    assert.equal((await api.request<DirectoryGroup>('GET', `/api/v1/groups/${child.body.id}`)).body.parentId, null);
    assert.deepEqual(await api.takeOutbox(), [
      { objectType: 'group', objectId: child.body.id, relatedId: null, change: 'updated' },
      { objectType: 'group', objectId: parent.body.id, relatedId: null, change: 'deleted' },
    ]);
  });
});
