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

  test('a member named in another letter case than its username is that user, and importing it again changes nothing', async () => {
    await importDirectory();
    await api.takeOutbox();
    // ADA and Grace are ada and grace of the directory; LINUS is Linus of this import.
    const recased = {
      users: [{ username: 'Linus' }],
      groups: [
        { name: 'pioneers', members: ['ADA', 'alan', 'Grace'] },
        { name: 'kernel', members: ['LINUS', 'ada'] },
      ],
    };
    const first = await api.request<ImportCounts>('POST', '/api/v1/import', recased);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(first.body.members, { added: 2, removed: 0 }, 'pioneers keeps its members: none is unlisted');
    assert.deepEqual(await membersOf('pioneers'), ['ada', 'alan', 'grace']);
    assert.deepEqual(await membersOf('kernel'), ['Linus', 'ada']);
    await api.takeOutbox();
    const again = await api.request<ImportCounts>('POST', '/api/v1/import', recased);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.deepEqual(again.body.members, { added: 0, removed: 0 });
    assert.deepEqual(await api.takeOutbox(), []);
    assert.deepEqual(await membersOf('kernel'), ['Linus', 'ada']);
  });

  test('a member matching several users only in other letter cases (from before the rule) is a 400 naming them', async () => {
    await importDirectory();
    await api.db.query("INSERT INTO users (username) VALUES ('ADA')");
    const response = await api.request('POST', '/api/v1/import', {
      groups: [{ name: 'pioneers', members: ['Ada', 'alan', 'nobody'] }],
    });
    assert.equal(response.status, 400);
    assert.equal(response.body.error.code, 'ERR_VALIDATION');
    assert.deepEqual(response.body.error.issues, [
      {
        path: 'groups.0.members.0',
        message: '"Ada" matches several users in other letter cases ("ADA", "ada"): name one of them exactly',
      },
      { path: 'groups.0.members.2', message: 'no user "nobody"' },
    ]);
    assert.deepEqual(await membersOf('pioneers'), ['ada', 'alan', 'grace'], 'nothing of the import is written');
    // Each variant's exact username names that one.
    const exact = await api.request('POST', '/api/v1/import', {
      groups: [{ name: 'pioneers', members: ['ADA', 'alan'] }],
    });
    assert.equal(exact.status, 200, JSON.stringify(exact.body));
    assert.deepEqual(await membersOf('pioneers'), ['ADA', 'alan']);
  });

  test('a username listed twice is a 400 naming the second entry', async () => {
    const response = await api.request('POST', '/api/v1/import', { users: [{ username: 'dup' }, { username: 'dup' }] });
    assert.equal(response.status, 400);
    assert.deepEqual(
      response.body.error.issues?.map((issue) => issue.path),
      ['users.1.username'],
    );
  });

  test('a user or group listed twice in different letter cases is a 400 naming the second entry', async () => {
    const response = await api.request('POST', '/api/v1/import', {
      users: [{ username: 'twin@example.test' }, { username: 'Twin@Example.test' }],
      groups: [{ name: 'crew' }, { name: 'CREW' }],
    });
    assert.equal(response.status, 400);
    assert.deepEqual(response.body.error.issues, [
      {
        path: 'users.1.username',
        message: '"Twin@Example.test" is "twin@example.test" of users.0 in another letter case',
      },
      { path: 'groups.1.name', message: '"CREW" is "crew" of groups.0 in another letter case' },
    ]);
    assert.equal((await api.db.query('SELECT 1 FROM users UNION ALL SELECT 1 FROM groups')).rowCount, 0);
  });

  // Names are compared by PostgreSQL's lower() (libc, C.UTF-8 or en_US.UTF-8), which folds a few letters otherwise than
  // JavaScript's toLowerCase(): İ (U+0130) is i there and i̇ (i, U+0307) here; Σ is σ there and ς at a word's end here.
  const foldAlike = async (a: string, b: string) =>
    (await api.db.query<{ alike: boolean }>('SELECT lower($1) = lower($2) AS alike', [a, b])).rows[0]!.alike;

  test('two names of an import that PostgreSQL folds alike and JavaScript does not (İ) are one name: a 400, as for ada and ADA', async () => {
    assert.equal(await foldAlike('İrem', 'irem'), true, 'premise: the directory takes İrem for irem');
    assert.notEqual('İrem'.toLowerCase(), 'irem'.toLowerCase(), 'premise: JavaScript does not');
    const response = await api.request('POST', '/api/v1/import', {
      users: [{ username: 'irem' }, { username: 'İrem' }],
      groups: [{ name: 'İstanbul' }, { name: 'istanbul' }],
    });
    assert.equal(response.status, 400, JSON.stringify(response.body));
    assert.equal(response.body.error.code, 'ERR_VALIDATION');
    assert.deepEqual(response.body.error.issues, [
      { path: 'users.1.username', message: '"İrem" is "irem" of users.0 in another letter case' },
      { path: 'groups.1.name', message: '"istanbul" is "İstanbul" of groups.0 in another letter case' },
    ]);
    assert.equal((await api.db.query('SELECT 1 FROM users UNION ALL SELECT 1 FROM groups')).rowCount, 0);
    // One at a time, the directory check refuses the second name, as it would ADA after ada.
    assert.equal((await api.request('POST', '/api/v1/import', { users: [{ username: 'irem' }] })).status, 200);
    assert.equal((await api.request('POST', '/api/v1/import', { users: [{ username: 'İrem' }] })).status, 409);
  });

  test('two names of an import that JavaScript folds alike and PostgreSQL does not (final ς) are two names, as in the directory', async () => {
    assert.equal(await foldAlike('ΟΔΟΣ', 'οδος'), false, 'premise: the directory takes ΟΔΟΣ and οδος for two names');
    assert.equal('ΟΔΟΣ'.toLowerCase(), 'οδος'.toLowerCase(), 'premise: JavaScript takes them for one');
    const response = await api.request<ImportCounts>('POST', '/api/v1/import', {
      users: [{ username: 'οδος' }, { username: 'ΟΔΟΣ' }],
    });
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.deepEqual(response.body.users, { created: 2, updated: 0, unchanged: 0 });
    const { rows } = await api.db.query<{ username: string }>('SELECT username FROM users ORDER BY username');
    assert.deepEqual(
      rows.map((row) => row.username),
      ['ΟΔΟΣ', 'οδος'],
    );
    // One at a time, the directory check takes both as well.
    assert.equal((await api.request('POST', '/api/v1/import', { groups: [{ name: 'οδος' }] })).status, 200);
    assert.equal((await api.request('POST', '/api/v1/import', { groups: [{ name: 'ΟΔΟΣ' }] })).status, 200);
  });

  test('a user or group the directory has in another letter case is a 409 naming each entry, and nothing of the import is written', async () => {
    await importDirectory();
    await api.takeOutbox();
    const response = await api.request('POST', '/api/v1/import', {
      users: [{ username: 'newcomer' }, { username: 'ADA', displayName: 'Not Ada' }],
      groups: [{ name: 'Pioneers', members: ['newcomer'] }, { name: 'fresh' }],
    });
    assert.equal(response.status, 409);
    assert.equal(response.body.error.code, 'ERR_CONFLICT');
    assert.equal(response.body.error.details?.['field'], 'username');
    assert.deepEqual(response.body.error.details?.['issues'], [
      {
        path: 'users.1.username',
        message: '"ADA" is the user "ada" in another letter case (usernames are unique in any letter case)',
      },
      {
        path: 'groups.0.name',
        message: '"Pioneers" is the group "pioneers" in another letter case (names are unique in any letter case)',
      },
    ]);
    const { rows } = await api.db.query<{ name: string }>(
      `SELECT username AS name FROM users WHERE lower(username) IN ('ada', 'newcomer')
       UNION ALL SELECT name FROM groups WHERE lower(name) IN ('pioneers', 'fresh')`,
    );
    assert.deepEqual(rows.map((row) => row.name).sort(), ['ada', 'pioneers']);
    assert.deepEqual(await api.takeOutbox(), []);
  });

  test('an import updates a user by its exact username, even beside a variant in another letter case from before the rule', async () => {
    await importDirectory();
    await api.db.query("INSERT INTO users (username) VALUES ('ADA')");
    const response = await api.request<ImportCounts>('POST', '/api/v1/import', {
      users: [{ username: 'ada', displayName: 'Ada King' }],
    });
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.deepEqual(response.body.users, { created: 0, updated: 1, unchanged: 0 });
    const ada = await api.db.query<{ display_name: string }>("SELECT display_name FROM users WHERE username = 'ada'");
    assert.equal(ada.rows[0]?.display_name, 'Ada King');
    assert.equal((await api.request('POST', '/api/v1/import', { users: [{ username: 'Ada' }] })).status, 409);
  });

  test('an import and an API create of one username in different letter cases at the same time: one of them is refused', async () => {
    const rounds = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        Promise.all([
          api.request('POST', '/api/v1/users', { username: `Racer.${i}` }),
          api.request('POST', '/api/v1/import', { users: [{ username: `racer.${i}` }] }),
        ]),
      ),
    );
    for (const [i, [created, imported]] of rounds.entries()) {
      assert.deepEqual(
        [created.status, imported.status].filter((status) => status === 409).length,
        1,
        `round ${i}: ${created.status}, ${imported.status}`,
      );
    }
    const { rows } = await api.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM users WHERE lower(username) LIKE 'racer.%'",
    );
    assert.equal(rows[0]?.n, 8);
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
