/**
 * The lookups the big clients make before every write (Okta and Entra: `userName eq`, groups by `displayName eq`)
 * run as one statement that PostgreSQL answers from an index, whether or not the source claims unowned objects:
 * each statement the source store sends is EXPLAINed with sequential scans priced out, so a predicate no index can
 * serve still shows a Seq Scan.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createSource, type Queryable, type SourceView } from '../../db/index.ts';
import { readListQuery } from '../../api/source/list-query.ts';
import { listSourceGroups, listSourceUsers } from '../../api/source/store.ts';
import { GROUP_RESOURCE, USER_RESOURCE } from '../../scim/resource-schema.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const USERS = 2_000;

interface Statement {
  text: string;
  values: unknown[];
}

/** A Queryable that runs every statement on `db` and keeps it. */
function recording(db: Queryable): { q: Queryable; statements: Statement[] } {
  const statements: Statement[] = [];
  const q = {
    query: (text: string, values: unknown[] = []) => {
      statements.push({ text, values });
      return db.query(text, values);
    },
  } as unknown as Queryable;
  return { q, statements };
}

describe('lookups of a source are index lookups in one statement', () => {
  let database: TestDatabase;
  let owner: SourceView;
  let claimer: SourceView;

  before(async () => {
    database = await createTestDatabase();
    owner = (await createSource(database.db, { slug: 'owner', deletePolicy: 'delete', claim: false })).source;
    claimer = (await createSource(database.db, { slug: 'claimer', deletePolicy: 'delete', claim: true })).source;
    await database.db.query(
      `INSERT INTO users (username, display_name, active, kind, attributes)
       SELECT 'Person' || i || '@plans.example', 'Person ' || i, true, 'internal',
              jsonb_build_object('scim', jsonb_build_object('externalId', 'ext-' || i))
       FROM generate_series(1, $1) i`,
      [USERS],
    );
    await database.db.query(
      `INSERT INTO scim_source_users (user_id, source_id)
       SELECT id, $1 FROM users WHERE kind = 'internal' AND username LIKE 'Person%' AND random() < 0.5`,
      [owner.id],
    );
    await database.db.query(
      `INSERT INTO groups (name, attributes) SELECT 'Team ' || i, '{}' FROM generate_series(1, 300) i`,
    );
    await database.db.query(`INSERT INTO scim_source_groups (group_id, source_id) SELECT id, $1 FROM groups`, [
      owner.id,
    ]);
    await database.db.query(
      `INSERT INTO group_members (group_id, user_id)
       SELECT g.id, u.id FROM groups g CROSS JOIN LATERAL
         (SELECT id FROM users WHERE kind = 'internal' ORDER BY md5(g.id::text || id::text) LIMIT 20) u`,
    );
    await database.db.query('ANALYZE');
  });
  after(() => database?.drop());

  /** The plans of `statements`, each EXPLAINed in a transaction where sequential scans cost too much to choose. */
  async function plans(statements: Statement[]): Promise<string[]> {
    const client = await database.db.connect();
    try {
      const out: string[] = [];
      for (const statement of statements) {
        await client.query('BEGIN');
        await client.query('SET LOCAL enable_seqscan = off');
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${statement.text}`, statement.values);
        await client.query('ROLLBACK');
        out.push(rows.map((row) => row['QUERY PLAN']).join('\n'));
      }
      return out;
    } finally {
      client.release();
    }
  }

  /** Owned by `owner`: the first user in that set. */
  async function ownedUsername(): Promise<string> {
    const { rows } = await database.db.query<{ username: string }>(
      'SELECT u.username FROM users u JOIN scim_source_users o ON o.user_id = u.id WHERE o.source_id = $1 LIMIT 1',
      [owner.id],
    );
    return rows[0]!.username;
  }

  for (const claim of [false, true]) {
    const who = claim ? 'a claiming source' : 'a source';
    test(`userName eq in another letter case, with the user's groups: ${who} finds it in one statement, by the lower(username) index`, async () => {
      const source = claim ? claimer : owner;
      const username = claim
        ? (
            await database.db.query<{ username: string }>(
              `SELECT username FROM users u WHERE kind = 'internal'
               AND NOT EXISTS (SELECT 1 FROM scim_source_users o WHERE o.user_id = u.id) LIMIT 1`,
            )
          ).rows[0]!.username
        : await ownedUsername();
      const query = readListQuery({ filter: `userName eq "${username.toUpperCase()}"` }, USER_RESOURCE, 'user', 200);
      const { q, statements } = recording(database.db);
      const found = await listSourceUsers(
        q,
        source,
        { filter: query.filter, sort: undefined, offset: 0, limit: query.count },
        true,
      );
      assert.equal(found.total, 1);
      assert.equal(found.items[0]?.object.username, username);
      assert.ok(Array.isArray(found.items[0]?.related), 'the groups come with the user');
      assert.equal(statements.length, 1, statements.map((s) => s.text).join('\n---\n'));
      const [plan] = await plans(statements);
      assert.match(plan!, /users_username_lower_idx/);
      assert.doesNotMatch(plan!, /Seq Scan on users/);
    });
  }

  test('the groups a found user belongs to are those of the group_members rows, read through their index', async () => {
    const username = await ownedUsername();
    const query = readListQuery({ filter: `userName eq "${username}"` }, USER_RESOURCE, 'user', 200);
    const { q, statements } = recording(database.db);
    const found = await listSourceUsers(
      q,
      owner,
      { filter: query.filter, sort: undefined, offset: 0, limit: 200 },
      true,
    );
    const expected = await database.db.query<{ name: string }>(
      `SELECT g.name FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = $1 ORDER BY g.name`,
      [found.items[0]!.object.id],
    );
    assert.deepEqual(
      found.items[0]!.related!.map((group) => group.name),
      expected.rows.map((row) => row.name),
    );
    const [plan] = await plans(statements);
    assert.doesNotMatch(plan!, /Seq Scan on group_members/);
  });

  test('externalId eq (caseExact) is one statement, by the externalId index', async () => {
    const { rows } = await database.db.query<{ username: string; ext: string }>(
      `SELECT u.username, u.attributes->'scim'->>'externalId' AS ext FROM users u
       JOIN scim_source_users o ON o.user_id = u.id WHERE o.source_id = $1 LIMIT 1`,
      [owner.id],
    );
    const query = readListQuery({ filter: `externalId eq "${rows[0]!.ext}"` }, USER_RESOURCE, 'user', 200);
    const { q, statements } = recording(database.db);
    const found = await listSourceUsers(q, owner, { filter: query.filter, sort: undefined, offset: 0, limit: 200 });
    assert.deepEqual(
      found.items.map((item) => item.object.username),
      [rows[0]!.username],
    );
    const upper = readListQuery({ filter: `externalId eq "${rows[0]!.ext.toUpperCase()}"` }, USER_RESOURCE, 'user', 1);
    assert.equal((await listSourceUsers(database.db, owner, { ...upper, offset: 0, limit: 1 })).total, 0);
    assert.equal(statements.length, 1);
    const [plan] = await plans(statements);
    assert.match(plan!, /users_scim_external_id_idx/);
    assert.doesNotMatch(plan!, /Seq Scan on users/);
  });

  test('displayName eq on groups is one statement, by the lower(name) index', async () => {
    const query = readListQuery({ filter: 'displayName eq "team 17"' }, GROUP_RESOURCE, 'group', 200);
    const { q, statements } = recording(database.db);
    const found = await listSourceGroups(q, owner, { filter: query.filter, sort: undefined, offset: 0, limit: 200 });
    assert.equal(found.total, 1);
    assert.equal(found.items[0]?.object.name, 'Team 17');
    assert.equal(statements.length, 1);
    const [plan] = await plans(statements);
    assert.match(plan!, /groups_name_lower_idx/);
    assert.doesNotMatch(plan!, /Seq Scan on groups/);
  });

  test('a full page still reports the total of all matches (counted), and a page past the end the total', async () => {
    const full = await listSourceUsers(database.db, owner, {
      filter: readListQuery({ filter: 'userName sw "person"' }, USER_RESOURCE, 'user', 200).filter,
      sort: undefined,
      offset: 0,
      limit: 10,
    });
    const owned = await database.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM scim_source_users WHERE source_id = $1',
      [owner.id],
    );
    assert.equal(full.items.length, 10);
    assert.equal(full.total, owned.rows[0]!.n);
    const past = await listSourceUsers(database.db, owner, {
      filter: undefined,
      sort: undefined,
      offset: USERS,
      limit: 10,
    });
    assert.deepEqual(past, { total: owned.rows[0]!.n, items: [] });
    const none = await listSourceUsers(database.db, owner, { filter: undefined, sort: undefined, offset: 0, limit: 0 });
    assert.deepEqual(none, { total: owned.rows[0]!.n, items: [] });
  });
});
