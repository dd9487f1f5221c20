import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import {
  createGroup,
  deleteMembers,
  insertMembers,
  updateProvider,
  type Db,
  type ProviderView,
} from '../../db/index.ts';
import { startFaultWorld as world } from '../support/fault-world.ts';
import type { ReceivedRequest } from '../servers/index.ts';

type World = Awaited<ReturnType<typeof world>>;

/** Inserts `count` directory users named `<prefix><n>@big.test` by SQL (the directory API would take minutes). */
async function seedUsers(db: Db, prefix: string, count: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO users (username, display_name, email, given_name, family_name)
     SELECT $1 || n || '@big.test', 'Big ' || n, $1 || n || '@big.test', 'Big', 'User ' || n
       FROM generate_series(1, $2) AS n
     RETURNING id`,
    [prefix, count],
  );
  return rows.map((row) => row.id);
}

/** The member values a logged group request carried: inline on a POST or PUT, added or removed by a PATCH. */
function memberValues(request: ReceivedRequest): { added: string[]; removed: string[] } {
  const body = request.body as {
    members?: Array<{ value: string }>;
    Operations?: Array<{ op: string; path?: string; value?: unknown }>;
  };
  if (body.Operations === undefined) return { added: (body.members ?? []).map((m) => m.value), removed: [] };
  const added: string[] = [];
  const removed: string[] = [];
  for (const operation of body.Operations) {
    if (operation.op === 'add' && operation.path === 'members')
      added.push(...(operation.value as Array<{ value: string }>).map((m) => m.value));
    const filtered = /^members\[value eq "(.*)"\]$/.exec(operation.path ?? '');
    if (operation.op === 'remove' && filtered) removed.push(filtered[1]!);
  }
  return { added, removed };
}

/** The requests the target received about groups since `from` (an index in its log). */
async function groupRequests(target: World['target'], from: number): Promise<ReceivedRequest[]> {
  return (await target.requests()).slice(from).filter((r) => r.path.startsWith('/Groups') && r.method !== 'GET');
}

/** The remote ids the provider's links give the directory users `ids`. */
async function remoteIdsOf(db: Db, providerId: string, ids: readonly string[]): Promise<string[]> {
  const { rows } = await db.query<{ remote_id: string }>(
    `SELECT remote_id FROM provider_links WHERE provider_id = $1 AND object_type = 'user' AND local_id = ANY($2::uuid[])`,
    [providerId, ids],
  );
  assert.equal(rows.length, ids.length, 'every user is linked');
  return rows.map((row) => row.remote_id).sort();
}

/** The member ids of the target's one group, sorted. */
async function remoteMembers(target: World['target']): Promise<string[]> {
  const groups = await target.groups();
  assert.equal(groups.length, 1, 'the target holds the group once');
  return (groups[0]!.members ?? []).map((m) => m.value).sort();
}

/** Creates the group `everyone` of `members` new directory users. */
async function bigGroup(t: TestContext, db: Db, members: number) {
  const userIds = await seedUsers(db, 'member', members);
  const group = await createGroup(db, { name: 'everyone', attributes: {}, members: [] });
  await insertMembers(db, group.id, userIds);
  await db.query('ANALYZE users, groups, group_members');
  t.diagnostic(`group of ${userIds.length} members`);
  return { group, userIds };
}

/** Runs a full sync of `provider` that must end with nothing failed or left retrying. */
async function syncCleanly(engine: World['engine'], provider: ProviderView): Promise<void> {
  const { report } = await engine.fullSync(provider);
  assert.equal(report.status, 'succeeded');
  assert.equal(report.failed, 0);
  assert.equal(report.retrying, 0);
}

/**
 * Takes `removed` members out of the group and puts `added` new users in, resyncs, and checks the target's group has
 * exactly the new membership; returns the remote ids of the leavers and joiners, and the group requests of the resync.
 */
async function resyncAfterChange(
  { db, engine, target }: World,
  provider: ProviderView,
  groupId: string,
  userIds: string[],
  removed: number,
  added: number,
) {
  const gone = userIds.slice(0, removed);
  await deleteMembers(db, groupId, gone);
  const joined = await seedUsers(db, 'joiner', added);
  await insertMembers(db, groupId, joined);
  const logged = (await target.requests()).length;
  await syncCleanly(engine, provider);
  assert.deepEqual(
    await remoteMembers(target),
    await remoteIdsOf(db, provider.id, [...userIds.slice(removed), ...joined]),
    'the remote group has exactly the new membership',
  );
  return {
    leavers: await remoteIdsOf(db, provider.id, gone),
    joiners: await remoteIdsOf(db, provider.id, joined),
    requests: await groupRequests(target, logged),
  };
}

describe('a group of many members', () => {
  test('is created with a chunk of members, filled a chunk per PATCH, and a resync sends only the difference', async (t) => {
    const w = await world(t, { rates: {} });
    const { db, engine, target, newProvider } = w;
    const { group, userIds } = await bigGroup(t, db, 1_500);
    const provider = await newProvider({ pluginOptions: { maxMembersPerRequest: 100 } });

    await syncCleanly(engine, provider);
    const everyone = await remoteIdsOf(db, provider.id, userIds);
    assert.deepEqual(await remoteMembers(target), everyone, 'the remote group has exactly its 1,500 members');
    const created = await groupRequests(target, 0);
    assert.deepEqual(
      created.map((r) => r.method),
      ['POST', ...Array<string>(14).fill('PATCH')],
      'one POST, then 14 PATCHes',
    );
    for (const request of created) assert.equal(memberValues(request).added.length, 100, 'a chunk of 100 each');
    const sent = created.flatMap((r) => memberValues(r).added);
    assert.deepEqual(sent.sort(), everyone, 'each member sent once');
    const { rows: links } = await db.query<{ last_payload: Record<string, unknown> }>(
      `SELECT last_payload FROM provider_links WHERE provider_id = $1 AND object_type = 'group'`,
      [provider.id],
    );
    assert.equal(links[0]!.last_payload['members'], undefined, "the group's link keeps no members");
    const { rows: pushed } = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM provider_group_members WHERE provider_id = $1 AND group_id = $2',
      [provider.id, group.id],
    );
    assert.equal(Number(pushed[0]!.n), 1_500, 'what was sent is recorded');

    const { leavers, joiners, requests } = await resyncAfterChange(w, provider, group.id, userIds, 30, 40);
    assert.deepEqual(
      requests.map((r) => r.method),
      ['PATCH'],
      'one PATCH: 70 member values fit a chunk of 100',
    );
    assert.deepEqual(memberValues(requests[0]!).added.sort(), joiners);
    assert.deepEqual(memberValues(requests[0]!).removed.sort(), leavers);

    const unchanged = (await target.requests()).length;
    await syncCleanly(engine, provider);
    assert.deepEqual(await groupRequests(target, unchanged), [], 'nothing is sent when nothing changed');
  });

  test('reaches its exact membership through faults, in chunks, and a resync through faults sends only the difference', async (t) => {
    const w = await world(t, {
      seed: 16,
      rates: { serverError: 0.1, rateLimited: 0.05, resetBefore: 0.025, resetAfter: 0.025 },
      retryAfter: { seconds: 1, format: 'both' },
    });
    const { db, engine, target, proxy, newProvider } = w;
    const { group, userIds } = await bigGroup(t, db, 800);
    const provider = await newProvider({ pageSize: 100, concurrency: 4, pluginOptions: { maxMembersPerRequest: 40 } });

    await syncCleanly(engine, provider);
    assert.deepEqual(await remoteMembers(target), await remoteIdsOf(db, provider.id, userIds));
    const created = await groupRequests(target, 0);
    for (const request of created) {
      const { added, removed } = memberValues(request);
      assert.ok(added.length + removed.length <= 40, 'no request carries more than a chunk');
    }
    assert.ok(created.length >= 20, `800 members take at least 20 requests of 40, not ${created.length}`);

    const { leavers, joiners, requests } = await resyncAfterChange(w, provider, group.id, userIds, 25, 35);
    assert.ok(
      requests.every((r) => r.method === 'PATCH'),
      'the resync PATCHes the group, never posts or replaces it',
    );
    const added = new Set(requests.flatMap((r) => memberValues(r).added));
    const removed = new Set(requests.flatMap((r) => memberValues(r).removed));
    assert.deepEqual([...added].sort(), joiners, 'only the joiners are added');
    assert.deepEqual([...removed].sort(), leavers, 'only the leavers are removed');
    t.diagnostic(`faults ${JSON.stringify(proxy.counts())}`);
    assert.ok(proxy.counts()['server-error'] > 0, 'the faults happened');
  });

  test('sent whole before (members listed on its link), it is diffed against that list once it goes in chunks', async (t) => {
    const w = await world(t, { rates: {} });
    const { db, engine, newProvider } = w;
    const { group, userIds } = await bigGroup(t, db, 60);
    // PUT: the members go whole with the group, and its link lists them, as before provider_group_members.
    const provider = await newProvider({ pluginOptions: { maxMembersPerRequest: 20, groupUpdate: 'put' } });
    await syncCleanly(engine, provider);
    const { rows } = await db.query<{ n: number }>(
      `SELECT jsonb_array_length(last_payload -> 'members') AS n FROM provider_links
        WHERE provider_id = $1 AND object_type = 'group'`,
      [provider.id],
    );
    assert.equal(rows[0]!.n, 60, 'the link lists the 60 members sent');

    const patching = await updateProvider(db, engine.secrets, provider.id, {
      pluginOptions: { maxMembersPerRequest: 20 },
    });
    const { leavers, joiners, requests } = await resyncAfterChange(w, patching, group.id, userIds, 5, 7);
    assert.ok(
      requests.every((r) => r.method === 'PATCH'),
      'PATCHes only',
    );
    assert.deepEqual(requests.flatMap((r) => memberValues(r).added).sort(), joiners, 'only the joiners are added');
    assert.deepEqual(requests.flatMap((r) => memberValues(r).removed).sort(), leavers, 'only the leavers are removed');
  });
});
