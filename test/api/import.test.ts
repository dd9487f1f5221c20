import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { importDirectory as importInBatches, type DirectoryUser, type ImportCounts } from '../../db/index.ts';
import { startTestApi, type TestApi } from './api-harness.ts';

const directory = {
  users: [
    { username: 'ada', displayName: 'Ada Lovelace', email: 'ada@example.test' },
    { username: 'alan', displayName: 'Alan Turing', kind: 'service_account' },
    { username: 'grace', givenName: 'Grace', familyName: 'Hopper', attributes: { team: 'compilers' } },
  ],
  groups: [
    { name: 'pioneers', members: ['ada', 'alan', 'grace'] },
    { name: 'compilers', attributes: { floor: 3 }, members: ['grace'] },
  ],
};

// Each test starts from an empty directory of its own, so none depends on what another one imported.
describe('directory import API', () => {
  let api: TestApi;
  beforeEach(async () => {
    api = await startTestApi();
  });
  afterEach(() => api.close());

  const importDirectory = async () =>
    assert.equal((await api.request('POST', '/api/v1/import', directory)).status, 200);

  const membersOf = async (name: string): Promise<string[]> => {
    const { rows } = await api.db.query<{ username: string }>(
      `SELECT u.username FROM group_members gm JOIN groups g ON g.id = gm.group_id JOIN users u ON u.id = gm.user_id
        WHERE g.name = $1 ORDER BY u.username`,
      [name],
    );
    return rows.map((row) => row.username);
  };

  test('a first import creates every user, group and membership and announces each', async () => {
    await api.takeOutbox();
    const response = await api.request<ImportCounts>('POST', '/api/v1/import', directory);
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, {
      users: { created: 3, updated: 0, unchanged: 0 },
      groups: { created: 2, updated: 0, unchanged: 0 },
      members: { added: 4, removed: 0 },
    });
    assert.deepEqual(await membersOf('pioneers'), ['ada', 'alan', 'grace']);
    assert.deepEqual(await membersOf('compilers'), ['grace']);
    const changes = (await api.takeOutbox()).map((row) => `${row.objectType}:${row.change}`);
    assert.deepEqual(changes, [
      ...Array<string>(3).fill('user:created'),
      ...Array<string>(2).fill('group:created'),
      ...Array<string>(4).fill('membership:member_added'),
    ]);
  });

  test('importing the same directory again changes nothing and writes no outbox row', async () => {
    await importDirectory();
    const before = await api.db.query('SELECT id, updated_at FROM users ORDER BY id');
    await api.takeOutbox();
    const response = await api.request<ImportCounts>('POST', '/api/v1/import', directory);
    assert.deepEqual(response.body, {
      users: { created: 0, updated: 0, unchanged: 3 },
      groups: { created: 0, updated: 0, unchanged: 2 },
      members: { added: 0, removed: 0 },
    });
    assert.deepEqual(await api.takeOutbox(), []);
    assert.deepEqual((await api.db.query('SELECT id, updated_at FROM users ORDER BY id')).rows, before.rows);
  });

  test('a changed import updates what differs and sets members to exactly the listed ones', async () => {
    await importDirectory();
    await api.takeOutbox();
    const response = await api.request<ImportCounts>('POST', '/api/v1/import', {
      users: [{ username: 'ada', displayName: 'Ada King', email: 'ada@example.test' }, { username: 'linus' }],
      groups: [{ name: 'pioneers', members: ['ada', 'linus'] }],
    });
    assert.deepEqual(response.body, {
      users: { created: 1, updated: 1, unchanged: 0 },
      groups: { created: 0, updated: 0, unchanged: 1 },
      members: { added: 1, removed: 2 },
    });
    assert.deepEqual(await membersOf('pioneers'), ['ada', 'linus']);
    assert.deepEqual(await membersOf('compilers'), ['grace'], 'a group left out of the import keeps its members');
    const ada = await api.db.query<{ display_name: string }>("SELECT display_name FROM users WHERE username = 'ada'");
    assert.equal(ada.rows[0]?.display_name, 'Ada King');
    const changes = (await api.takeOutbox()).map((row) => `${row.objectType}:${row.change}`).sort();
    assert.deepEqual(changes, [
      'membership:member_added',
      'membership:member_removed',
      'membership:member_removed',
      'user:created',
      'user:updated',
    ]);
  });

  test('a user field left out of an import is cleared, as the import describes the whole user', async () => {
    await api.request('POST', '/api/v1/import', { users: [{ username: 'partial', email: 'partial@example.test' }] });
    await api.request('POST', '/api/v1/import', { users: [{ username: 'partial' }] });
    const page = await api.db.query<{ email: string | null }>("SELECT email FROM users WHERE username = 'partial'");
    assert.equal(page.rows[0]?.email, null);
  });

  test('a member naming an unknown username is a 400 naming the entry, and nothing of the import is kept', async () => {
    await api.takeOutbox();
    const response = await api.request('POST', '/api/v1/import', {
      users: [{ username: 'newcomer' }],
      groups: [{ name: 'brand-new', members: ['newcomer', 'nobody'] }],
    });
    assert.equal(response.status, 400);
    assert.deepEqual(response.body.error.issues, [{ path: 'groups.0.members.1', message: 'no user "nobody"' }]);
    const { rowCount } = await api.db.query(
      "SELECT 1 FROM users WHERE username = 'newcomer' UNION ALL SELECT 1 FROM groups WHERE name = 'brand-new'",
    );
    assert.equal(rowCount, 0);
    assert.deepEqual(await api.takeOutbox(), []);
  });

  test('a username listed twice is a 400 naming the second entry', async () => {
    const response = await api.request('POST', '/api/v1/import', { users: [{ username: 'dup' }, { username: 'dup' }] });
    assert.equal(response.status, 400);
    assert.deepEqual(
      response.body.error.issues?.map((issue) => issue.path),
      ['users.1.username'],
    );
  });

  test('an invalid user in an import is a 400 naming its path', async () => {
    const response = await api.request('POST', '/api/v1/import', {
      users: [{ username: 'ok' }, { username: 'bad', email: 'nope' }],
    });
    assert.equal(response.status, 400);
    assert.deepEqual(
      response.body.error.issues?.map((issue) => issue.path),
      ['users.1.email'],
    );
  });

  test('text PostgreSQL cannot store (U+0000, an unpaired surrogate) is a 400 naming each entry, and nothing is kept', async () => {
    const response = await api.request('POST', '/api/v1/import', {
      users: [{ username: 'fine' }, { username: 'nul\u0000' }, { username: 'key', attributes: { 'k\u0000': 1 } }],
      groups: [{ name: 'team', members: ['fine', 'half\ud800'] }],
    });
    assert.equal(response.status, 400, JSON.stringify(response.body));
    assert.equal(response.body.error.code, 'ERR_VALIDATION');
    assert.deepEqual(
      response.body.error.issues?.map((issue) => issue.path),
      ['users.1.username', 'users.2.attributes', 'groups.0.members.1'],
    );
    const { rowCount } = await api.db.query("SELECT 1 FROM users WHERE username = 'fine'");
    assert.equal(rowCount, 0);
  });

  test('imported users are ordinary users of the API', async () => {
    await importDirectory();
    const { rows } = await api.db.query<{ id: string }>("SELECT id FROM users WHERE username = 'alan'");
    const alan = await api.request<DirectoryUser>('GET', `/api/v1/users/${rows[0]!.id}`);
    assert.equal(alan.body.kind, 'service_account');
    assert.equal(alan.body.displayName, 'Alan Turing');
  });
  test('a large import is written in transactions of at most the batch size, and comes out exactly as one', async () => {
    await importDirectory();
    await api.takeOutbox();
    const users = Array.from({ length: 7 }, (_, i) => ({ username: `batch${i}` }));
    const counts = await importInBatches(
      api.db,
      {
        users: [{ username: 'ada', displayName: 'Ada King' }, ...users],
        groups: [
          { name: 'pioneers', members: ['ada', ...users.map((user) => user.username)] },
          { name: 'compilers', members: [] },
          { name: 'newcomers', members: ['batch0'] },
        ],
      },
      { batchSize: 3 },
    );
    assert.deepEqual(counts, {
      users: { created: 7, updated: 1, unchanged: 0 },
      groups: { created: 1, updated: 1, unchanged: 1 },
      members: { added: 8, removed: 3 },
    });
    assert.deepEqual(await membersOf('pioneers'), ['ada', ...users.map((user) => user.username)].sort());
    assert.deepEqual(await membersOf('compilers'), []);
    assert.deepEqual(await membersOf('newcomers'), ['batch0']);
    // A row's xmin is the transaction that wrote it: 8 users in batches of 3 took 3 transactions, 8 added members 3.
    const transactions = async (sql: string) => Number((await api.db.query<{ n: string }>(sql)).rows[0]!.n);
    assert.equal(
      await transactions(
        `SELECT count(DISTINCT xmin::text) AS n FROM users WHERE username = 'ada' OR username LIKE 'batch%'`,
      ),
      3,
    );
    assert.equal(
      await transactions(
        `SELECT count(DISTINCT gm.xmin::text) AS n FROM group_members gm JOIN groups g ON g.id = gm.group_id JOIN users u ON u.id = gm.user_id
          WHERE g.name = 'pioneers' AND u.username LIKE 'batch%'`,
      ),
      3,
    );
    const changes = (await api.takeOutbox()).map((row) => `${row.objectType}:${row.change}`);
    assert.deepEqual(changes, [
      'user:updated',
      ...Array<string>(7).fill('user:created'),
      'group:updated',
      'group:created',
      ...Array<string>(3).fill('membership:member_removed'),
      ...Array<string>(8).fill('membership:member_added'),
    ]);
  });
});
