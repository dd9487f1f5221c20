import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createProvider,
  createSecretBox,
  deleteGroup,
  deleteProvider,
  firstMembersAfresh,
  generateSecretKey,
  MEMBER_DIFFERENCE_SQL,
  MEMBER_REMOTE_IDS_SQL,
  memberDigests,
  memberHeads,
  memberRemoteIds,
  recordPushedMembers,
} from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { flatten, type PlanNode } from '../support/plans.ts';
import { storeOnlyProviderInput } from '../support/providers.ts';

type TestDb = Awaited<ReturnType<typeof createTestDatabase>>;

/** The nodes of a plan (EXPLAIN's JSON), each its type and join type, its subplans' too, depth first. */
function nodesOf(plan: PlanNode): string[] {
  return flatten(plan).map((node) =>
    node['Join Type'] ? `${node['Node Type']} (${node['Join Type']})` : node['Node Type'],
  );
}

/** How a plan reads `relation`: each scan of it, with its index condition if any, depth first. */
function readsOf(plan: PlanNode, relation: string): string[] {
  return flatten(plan)
    .filter((node) => node['Relation Name'] === relation)
    .map((node) => `${node['Node Type']} ${node['Index Cond'] ?? '(no index condition)'}`);
}

describe("a group's member difference", () => {
  let testDb: TestDb;
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await testDb.drop();
  });

  const newProvider = (slug: string) =>
    createProvider(testDb.db, createSecretBox(generateSecretKey()), storeOnlyProviderInput(slug));

  /**
   * Groups a (5 members), b (2 members) and c (none) for a new provider that sent each of them 'r-old'; every user
   * linked but the last of a. `memberOrder` lists a group's linked members' remote ids in user id order.
   */
  async function threeGroups(slug: string) {
    const provider = await newProvider(slug);
    const { rows } = await testDb.db.query<{ name: string; id: string }>(
      `WITH u AS (INSERT INTO users (username) SELECT $2 || n || '@example.test' FROM generate_series(1, 7) n
                  RETURNING id, username),
            g AS (INSERT INTO groups (name) VALUES ($2 || 'a'), ($2 || 'b'), ($2 || 'c') RETURNING id, name),
            gm AS (INSERT INTO group_members (group_id, user_id)
                   SELECT g.id, u.id FROM g JOIN u ON (g.name = $2 || 'a' AND u.username < $2 || '6')
                                                  OR (g.name = $2 || 'b' AND u.username >= $2 || '6')),
            l AS (INSERT INTO provider_links (provider_id, object_type, local_id, remote_id, status)
                  SELECT $1, 'user', u.id, 'r-' || u.username, 'ok' FROM u WHERE u.username <> $2 || '5@example.test')
       SELECT name, id FROM g ORDER BY name`,
      [provider.id, slug],
    );
    const [a, b, c] = rows.map((row) => row.id) as [string, string, string];
    for (const group of [a, b, c]) await recordPushedMembers(testDb.db, provider.id, group, ['r-old'], []);
    const memberOrder = async (group: string) =>
      (
        await testDb.db.query<{ remote_id: string }>(
          `SELECT l.remote_id FROM group_members gm JOIN provider_links l ON l.local_id = gm.user_id
            WHERE gm.group_id = $1 AND l.provider_id = $2 ORDER BY gm.user_id`,
          [group, provider.id],
        )
      ).rows.map((row) => row.remote_id);
    return { provider, a, b, c, memberOrder };
  }

  test('groups about to be created get their first chunks in one statement, and only they forget what was sent', async () => {
    const { provider, a, b, c, memberOrder } = await threeGroups('first-chunks');
    const first = await firstMembersAfresh(testDb.db, provider.scope, provider.id, [b, a], 3);

    assert.deepEqual(
      [...first.entries()],
      [
        [b, await memberOrder(b)],
        [a, (await memberOrder(a)).slice(0, 3)],
      ],
      "each group's first linked members in user id order, at most the chunk; the user without a link is not one",
    );
    assert.equal((await memberOrder(a)).length, 4);
    const { rows: kept } = await testDb.db.query<{ group_id: string }>(
      'SELECT group_id FROM provider_group_members WHERE provider_id = $1',
      [provider.id],
    );
    assert.deepEqual(
      kept.map((row) => row.group_id),
      [c],
      'what was sent is forgotten for the groups read, and kept for the others',
    );
  });

  test("a page of groups reads each one's digest and first chunk in one statement, larger groups' digests apart", async () => {
    const { provider, a, b, c, memberOrder } = await threeGroups('heads');
    const digests = await memberDigests(testDb.db, provider.scope, provider.id, [a, b, c]);

    const heads = await memberHeads(testDb.db, provider.scope, provider.id, [a, b, c], 3);

    assert.deepEqual(
      heads.get(a),
      { ...digests.get(a), first: (await memberOrder(a)).slice(0, 3) },
      'a: 4 of 5 linked',
    );
    assert.deepEqual(heads.get(b), { ...digests.get(b), first: await memberOrder(b) });
    assert.deepEqual(heads.get(c), { count: 0, digest: '', first: [] });
    assert.equal(heads.get(a)!.count, 4, 'a group larger than the chunk counts all its members');
    assert.equal(heads.get(b)!.count, 2);
    await testDb.db.query(
      `INSERT INTO provider_links (provider_id, object_type, local_id, remote_id, status) VALUES ($1, 'group', $2, 'r-b', 'ok')`,
      [provider.id, b],
    );
    const linked = await memberHeads(testDb.db, provider.scope, provider.id, [b], 3);
    assert.deepEqual(linked.get(b), digests.get(b), 'a group with a remote id is not about to be created: no chunk');
    const exactly = await memberHeads(testDb.db, provider.scope, provider.id, [a], 4);
    assert.deepEqual(exactly.get(a), { ...digests.get(a), first: await memberOrder(a) }, 'a chunk of exactly its size');
  });

  test('what was sent to a group goes with the group, and what a provider sent goes with the provider', async () => {
    const { provider, a, b, c } = await threeGroups('cascade');
    const other = await newProvider('cascade-other');
    await recordPushedMembers(testDb.db, other.id, b, ['r-other'], []);
    const sent = async () =>
      (
        await testDb.db.query<{ provider_id: string; group_id: string }>(
          'SELECT provider_id, group_id FROM provider_group_members WHERE group_id = ANY($1::uuid[]) ORDER BY 1, 2',
          [[a, b, c]],
        )
      ).rows.map(
        (row) => `${row.provider_id === provider.id ? 'provider' : 'other'} ${[a, b, c].indexOf(row.group_id)}`,
      );
    assert.deepEqual((await sent()).sort(), ['other 1', 'provider 0', 'provider 1', 'provider 2']);

    await deleteGroup(testDb.db, a);
    assert.deepEqual((await sent()).sort(), ['other 1', 'provider 1', 'provider 2'], "the group's rows went with it");

    await deleteProvider(testDb.db, provider.id);
    assert.deepEqual(await sent(), ['other 1'], "the provider's rows went with it, the other provider's stayed");
  });

  test('probes what was sent with an index lookup per member, even with no statistics of what was sent', async () => {
    const provider = await newProvider('members');
    // 3,000 users in one group, each linked, and all but the group's last chunk sent. Planner statistics are as the
    // sync keeps them: renewed for the directory and the links, never yet taken of what was sent.
    const { rows } = await testDb.db.query<{ id: string }>(
      `WITH u AS (INSERT INTO users (username) SELECT 'm' || n || '@example.test' FROM generate_series(1, 3000) n RETURNING id),
            g AS (INSERT INTO groups (name) VALUES ('big') RETURNING id),
            gm AS (INSERT INTO group_members (group_id, user_id) SELECT g.id, u.id FROM g, u),
            l AS (INSERT INTO provider_links (provider_id, object_type, local_id, remote_id, status)
                  SELECT $1, 'user', u.id, 'r-' || u.id, 'ok' FROM u)
       SELECT id FROM g`,
      [provider.id],
    );
    const groupId = rows[0]!.id;
    await testDb.db.query('ANALYZE users, groups, group_members, provider_links');
    const { rows: remote } = await testDb.db.query<{ remote_id: string }>(
      `SELECT remote_id FROM provider_links WHERE provider_id = $1 ORDER BY local_id LIMIT 2900`,
      [provider.id],
    );
    await recordPushedMembers(
      testDb.db,
      provider.id,
      groupId,
      remote.map((row) => row.remote_id),
      [],
    );

    for (const side of ['add', 'remove'] as const) {
      const { rows: explained } = await testDb.db.query<{
        'QUERY PLAN': Array<{ Plan: PlanNode }>;
      }>(`EXPLAIN (FORMAT JSON) ${MEMBER_DIFFERENCE_SQL[side]}`, [
        JSON.stringify(provider.scope),
        provider.id,
        groupId,
        100,
        null,
      ]);
      const nodes = nodesOf(explained[0]!['QUERY PLAN'][0]!.Plan);
      assert.ok(
        nodes.every((node) => !node.includes('Anti')),
        `${side}: no anti-join, whose cost grows with every member sent (plan: ${nodes.join(' / ')})`,
      );
    }
  });
  test("groups' members are looked up one by one, however stale the statistics: a page never walks all the links", async () => {
    const provider = await newProvider('member-ids');
    // Statistics taken before any link exists, as at the start of a first sync: PostgreSQL believes there are none.
    await testDb.db.query('ANALYZE provider_links');
    // Group a: users 1-6; group b: users 5-8; group c: nobody. User 2 is a service account (out of scope), user 3's
    // link failed, user 4 has none; the provider's other links are another provider's business.
    const { rows } = await testDb.db.query<{ name: string; id: string }>(
      `WITH u AS (INSERT INTO users (username, kind)
                  SELECT 'i' || n || '@example.test', CASE WHEN n = 2 THEN 'service_account' ELSE 'internal' END
                    FROM generate_series(1, 8) n RETURNING id, username),
            g AS (INSERT INTO groups (name) VALUES ('ids-a'), ('ids-b'), ('ids-c') RETURNING id, name),
            gm AS (INSERT INTO group_members (group_id, user_id)
                   SELECT g.id, u.id FROM g JOIN u ON (g.name = 'ids-a' AND u.username < 'i7')
                                                  OR (g.name = 'ids-b' AND u.username >= 'i5')),
            l AS (INSERT INTO provider_links (provider_id, object_type, local_id, remote_id, status)
                  SELECT $1, 'user', u.id, 'r-' || split_part(u.username, '@', 1),
                         CASE WHEN u.username = 'i3@example.test' THEN 'failed' ELSE 'ok' END
                    FROM u WHERE u.username <> 'i4@example.test')
       SELECT name, id FROM g ORDER BY name`,
      [provider.id],
    );
    const [a, b, c] = rows.map((row) => row.id) as [string, string, string];

    const members = await memberRemoteIds(testDb.db, provider.scope, provider.id, [a, b, c]);
    assert.deepEqual(
      Object.fromEntries([...members].map(([group, ids]) => [rows.find((row) => row.id === group)!.name, ids])),
      { 'ids-a': ['r-i1', 'r-i5', 'r-i6'], 'ids-b': ['r-i5', 'r-i6', 'r-i7', 'r-i8'], 'ids-c': [] },
      'in-scope members with an ok link, sorted; a group with none is listed empty',
    );

    const { rows: explained } = await testDb.db.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (FORMAT JSON) ${MEMBER_REMOTE_IDS_SQL}`,
      [JSON.stringify(provider.scope), provider.id, [a, b, c]],
    );
    const links = readsOf(explained[0]!['QUERY PLAN'][0]!.Plan, 'provider_links');
    assert.ok(links.length > 0, 'the plan reads the links');
    assert.ok(
      links.every((read) => read.includes('local_id')),
      `each member's link is found by its local id, not among all of the provider's links (reads: ${links.join(' / ')})`,
    );
  });
});
