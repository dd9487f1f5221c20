import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { DirectoryGroup, DirectoryUser } from '../../db/index.ts';
import { startTestApi, type PageBody, type TestApi } from './api-harness.ts';

describe('users API', () => {
  let api: TestApi;
  before(async () => {
    api = await startTestApi();
  });
  after(() => api.close());

  test('a created user can be read back, listed, changed and deleted', async () => {
    const created = await api.request<DirectoryUser>('POST', '/api/v1/users', {
      username: 'round.trip',
      displayName: 'Round Trip',
      email: 'round.trip@example.test',
      attributes: { department: 'QA' },
    });
    assert.equal(created.status, 201);
    assert.equal(created.body.username, 'round.trip');
    assert.equal(created.body.active, true);
    assert.equal(created.body.kind, 'internal');

    const read = await api.request<DirectoryUser>('GET', `/api/v1/users/${created.body.id}`);
    assert.deepEqual(read.body, created.body);

    const listed = await api.request<PageBody<DirectoryUser>>('GET', '/api/v1/users');
    assert.ok(listed.body.items.some((user) => user.id === created.body.id));

    const patched = await api.request<DirectoryUser>('PATCH', `/api/v1/users/${created.body.id}`, {
      displayName: 'Renamed',
      active: false,
    });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.displayName, 'Renamed');
    assert.equal(patched.body.active, false);
    assert.equal(patched.body.email, 'round.trip@example.test', 'fields left out of a patch stay as they were');
    assert.deepEqual(patched.body.attributes, { department: 'QA' }, 'attributes left out of a patch stay as they were');

    const deleted = await api.request('DELETE', `/api/v1/users/${created.body.id}`);
    assert.equal(deleted.status, 204);
    assert.equal((await api.request('GET', `/api/v1/users/${created.body.id}`)).status, 404);
  });

  test('an invalid email is a 400 naming the email field', async () => {
    const response = await api.request('POST', '/api/v1/users', { username: 'bad.email', email: 'not-an-address' });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'ERR_VALIDATION');
    assert.deepEqual(
      response.body.error.issues?.map((issue) => issue.path),
      ['email'],
    );
  });

  test('text PostgreSQL cannot store (U+0000, an unpaired surrogate) is a 400 naming the field, and saves nothing', async () => {
    const refused: Array<[body: Record<string, unknown>, path: string]> = [
      [{ username: 'nul\u0000@x.y' }, 'username'],
      [{ username: 'nul.display', displayName: 'Nul\u0000' }, 'displayName'],
      [{ username: 'half.pair', familyName: 'Pair\ud800' }, 'familyName'],
      [{ username: 'nul.key', attributes: { 'k\u0000': 1 } }, 'attributes'],
      [{ username: 'lone.value', attributes: { k: '\ud800' } }, 'attributes.k'],
      [{ username: 'deep.value', attributes: { list: [{ x: 'low\udc00' }] } }, 'attributes.list.0.x'],
    ];
    for (const [body, path] of refused) {
      const response = await api.request('POST', '/api/v1/users', body);
      assert.equal(response.status, 400, `${path}: ${JSON.stringify(response.body)}`);
      assert.equal(response.body.error.code, 'ERR_VALIDATION');
      assert.deepEqual(
        response.body.error.issues?.map((issue) => issue.path),
        [path],
      );
      assert.match(response.body.error.issues?.[0]?.message ?? '', /U\+0000 or an unpaired UTF-16 surrogate/);
    }
    const kept = await api.db.query('SELECT 1 FROM users WHERE username = ANY($1)', [
      ['nul.display', 'half.pair', 'nul.key', 'lone.value', 'deep.value'],
    ]);
    assert.equal(kept.rowCount, 0);

    const user = await api.request<DirectoryUser>('POST', '/api/v1/users', { username: 'clean', displayName: 'Ok 😀' });
    assert.equal(user.status, 201, 'a surrogate pair (an emoji) is text like any other');
    const patched = await api.request('PATCH', `/api/v1/users/${user.body.id}`, { givenName: 'Nul\u0000' });
    assert.equal(patched.status, 400);
    assert.deepEqual(
      patched.body.error.issues?.map((issue) => issue.path),
      ['givenName'],
    );
  });

  test('a body field the API does not know is a 400 naming that field', async () => {
    const response = await api.request('POST', '/api/v1/users', { username: 'extra.field', favouriteColour: 'green' });
    assert.equal(response.status, 400);
    assert.deepEqual(
      response.body.error.issues?.map((issue) => issue.path),
      ['favouriteColour'],
    );
  });

  test('a body that is not JSON is a 400', async () => {
    const response = await api.request('POST', '/api/v1/users', '{"username": ');
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'ERR_VALIDATION');
    assert.match(response.body.error.message, /not valid JSON/);
  });

  test('a second user with the same username is a 409 naming the username field', async () => {
    assert.equal((await api.request('POST', '/api/v1/users', { username: 'taken' })).status, 201);
    const response = await api.request('POST', '/api/v1/users', { username: 'taken' });
    assert.equal(response.status, 409);
    assert.equal(response.body.error.code, 'ERR_CONFLICT');
    assert.equal(response.body.error.details?.['field'], 'username');
  });

  test('renaming a user to a taken username is a 409 and changes nothing', async () => {
    await api.request('POST', '/api/v1/users', { username: 'rename.target' });
    const user = await api.request<DirectoryUser>('POST', '/api/v1/users', { username: 'rename.source' });
    await api.takeOutbox();
    const response = await api.request('PATCH', `/api/v1/users/${user.body.id}`, { username: 'rename.target' });
    assert.equal(response.status, 409);
    assert.equal(
      (await api.request<DirectoryUser>('GET', `/api/v1/users/${user.body.id}`)).body.username,
      'rename.source',
    );
    assert.deepEqual(await api.takeOutbox(), []);
  });

  test('a username another user holds in another letter case is a 409 naming the username field, and creates no user', async () => {
    assert.equal((await api.request('POST', '/api/v1/users', { username: 'case.twin@example.test' })).status, 201);
    const response = await api.request('POST', '/api/v1/users', { username: 'Case.Twin@Example.TEST' });
    assert.equal(response.status, 409);
    assert.equal(response.body.error.code, 'ERR_CONFLICT');
    assert.equal(response.body.error.details?.['field'], 'username');
    assert.match(response.body.error.message, /"Case\.Twin@Example\.TEST" is already taken/);
    const { rows } = await api.db.query<{ username: string }>(
      "SELECT username FROM users WHERE lower(username) = 'case.twin@example.test'",
    );
    assert.deepEqual(
      rows.map((row) => row.username),
      ['case.twin@example.test'],
    );
  });

  test('renaming a user to another letter case of another user is a 409 and changes nothing; of its own name, it is a rename', async () => {
    await api.request('POST', '/api/v1/users', { username: 'grace.hopper' });
    const user = await api.request<DirectoryUser>('POST', '/api/v1/users', { username: 'g.hopper' });
    await api.takeOutbox();
    const refused = await api.request('PATCH', `/api/v1/users/${user.body.id}`, { username: 'Grace.Hopper' });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.details?.['field'], 'username');
    assert.equal((await api.request<DirectoryUser>('GET', `/api/v1/users/${user.body.id}`)).body.username, 'g.hopper');
    assert.deepEqual(await api.takeOutbox(), []);

    const recased = await api.request<DirectoryUser>('PATCH', `/api/v1/users/${user.body.id}`, {
      username: 'G.Hopper',
    });
    assert.equal(recased.status, 200);
    assert.equal(recased.body.username, 'G.Hopper');
  });

  test('users whose usernames differ only in case (a database from before the rule) can still be changed, and no third one joins them', async () => {
    const { rows } = await api.db.query<{ id: string }>(
      "INSERT INTO users (username) VALUES ('legacy.twin'), ('LEGACY.TWIN') RETURNING id",
    );
    for (const { id } of rows) {
      const changed = await api.request<DirectoryUser>('PATCH', `/api/v1/users/${id}`, { displayName: 'Twin' });
      assert.equal(changed.status, 200, JSON.stringify(changed.body));
      const resent = await api.request<DirectoryUser>('PATCH', `/api/v1/users/${id}`, {
        username: changed.body.username,
        email: 'twin@example.test',
      });
      assert.equal(resent.status, 200, 'its own username, sent again unchanged, is no conflict');
      assert.equal(resent.body.email, 'twin@example.test');
    }
    const third = await api.request('POST', '/api/v1/users', { username: 'Legacy.Twin' });
    assert.equal(third.status, 409);
  });

  test('concurrent creates of one username in different letter cases: exactly one of each pair is created', async () => {
    const pairs = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        Promise.all([
          api.request('POST', '/api/v1/users', { username: `racer.${i}` }),
          api.request('POST', '/api/v1/users', { username: `RACER.${i}` }),
        ]),
      ),
    );
    for (const [i, pair] of pairs.entries()) {
      assert.deepEqual(pair.map((response) => response.status).sort(), [201, 409], `pair ${i}`);
    }
    const { rows } = await api.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM users WHERE lower(username) LIKE 'racer.%'",
    );
    assert.equal(rows[0]?.n, 8);
  });

  test('unknown and malformed user ids are 404s', async () => {
    for (const id of ['7f4c3a9e-1111-4222-8333-444455556666', 'not-a-uuid']) {
      for (const method of ['GET', 'DELETE']) {
        const response = await api.request(method, `/api/v1/users/${id}`);
        assert.equal(response.status, 404, `${method} ${id}`);
        assert.equal(response.body.error.code, 'ERR_NOT_FOUND');
      }
      assert.equal((await api.request('PATCH', `/api/v1/users/${id}`, { active: false })).status, 404);
    }
  });

  test('creating, changing and deleting a user each append one outbox row', async () => {
    await api.takeOutbox();
    const user = await api.request<DirectoryUser>('POST', '/api/v1/users', { username: 'outboxed' });
    await api.request('PATCH', `/api/v1/users/${user.body.id}`, { givenName: 'Out' });
    await api.request('DELETE', `/api/v1/users/${user.body.id}`);
    assert.deepEqual(await api.takeOutbox(), [
      { objectType: 'user', objectId: user.body.id, relatedId: null, change: 'created' },
      { objectType: 'user', objectId: user.body.id, relatedId: null, change: 'updated' },
      { objectType: 'user', objectId: user.body.id, relatedId: null, change: 'deleted' },
    ]);
  });

  test('an update that changes nothing writes no outbox row and keeps updatedAt', async () => {
    const user = await api.request<DirectoryUser>('POST', '/api/v1/users', {
      username: 'steady',
      displayName: 'Steady',
      attributes: { a: 1, b: [2] },
    });
    await api.takeOutbox();
    const same = await api.request<DirectoryUser>('PATCH', `/api/v1/users/${user.body.id}`, {
      username: 'steady',
      displayName: 'Steady',
      attributes: { b: [2], a: 1 },
    });
    assert.equal(same.status, 200);
    assert.equal(same.body.updatedAt, user.body.updatedAt);
    assert.deepEqual(await api.takeOutbox(), []);
  });

  test('a real change moves updatedAt forward', async () => {
    const user = await api.request<DirectoryUser>('POST', '/api/v1/users', { username: 'moving' });
    const changed = await api.request<DirectoryUser>('PATCH', `/api/v1/users/${user.body.id}`, {
      email: 'moving@example.test',
    });
    assert.equal(changed.body.createdAt, user.body.createdAt);
    // Compared in the database: the API's millisecond timestamps could tie for two quick requests.
    const { rows } = await api.db.query<{ moved: boolean }>(
      'SELECT updated_at > created_at AS moved FROM users WHERE id = $1',
      [user.body.id],
    );
    assert.equal(rows[0]?.moved, true);
  });

  test('deleting a user announces its removal from each of its groups before the user itself', async () => {
    const user = await api.request<DirectoryUser>('POST', '/api/v1/users', { username: 'member.leaving' });
    const g1 = await api.request<DirectoryGroup>('POST', '/api/v1/groups', {
      name: 'leaving-1',
      members: [user.body.id],
    });
    const g2 = await api.request<DirectoryGroup>('POST', '/api/v1/groups', {
      name: 'leaving-2',
      members: [user.body.id],
    });
    await api.takeOutbox();
    await api.request('DELETE', `/api/v1/users/${user.body.id}`);
    const rows = await api.takeOutbox();
    assert.deepEqual(
      rows.slice(0, 2).sort((a, b) => a.objectId.localeCompare(b.objectId)),
      [g1.body.id, g2.body.id].sort().map((groupId) => ({
        objectType: 'membership',
        objectId: groupId,
        relatedId: user.body.id,
        change: 'member_removed',
      })),
    );
    assert.deepEqual(rows.slice(2), [
      { objectType: 'user', objectId: user.body.id, relatedId: null, change: 'deleted' },
    ]);
  });

  test('listing pages through every user exactly once in id order', async () => {
    for (let i = 0; i < 7; i++) await api.request('POST', '/api/v1/users', { username: `paged.${i}` });
    const seen: string[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const query: string = after === null ? '?limit=3' : `?limit=3&after=${after}`;
      const page = await api.request<PageBody<DirectoryUser>>('GET', `/api/v1/users${query}`);
      assert.equal(page.status, 200);
      assert.ok(page.body.items.length <= 3);
      seen.push(...page.body.items.map((user) => user.id));
      after = page.body.next;
      if (after === null) break;
    }
    const { rows } = await api.db.query<{ id: string }>('SELECT id FROM users ORDER BY id');
    assert.deepEqual(
      seen,
      rows.map((row) => row.id),
    );
  });

  test('a page size out of range is a 400 naming limit', async () => {
    const response = await api.request('GET', '/api/v1/users?limit=0');
    assert.equal(response.status, 400);
    assert.deepEqual(
      response.body.error.issues?.map((issue) => issue.path),
      ['limit'],
    );
  });
});
