import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  createGroup,
  createProvider,
  createRun,
  createSecretBox,
  createUser,
  deleteUser,
  finishRun,
  generateSecretKey,
  getLinks,
  loadGroupsByIds,
  loadUsersByIds,
  makeLink,
  ProviderScopeSchema,
  recordBatch,
  retryingIds,
  RETRYING_IDS_SQL,
  saveLinks,
  syncHealth,
  UserInputSchema,
  userStretch,
  zeroCounts,
  type DirectoryUser,
  type Link,
} from '../../db/index.ts';
import { userInputHash } from '../../activities/input-hash.ts';
import { createTestDatabase } from '../support/db.ts';
import { flatten, type PlanNode } from '../support/plans.ts';
import { storeOnlyProviderInput } from '../support/providers.ts';
import { seedDirectory } from '../support/directory.ts';

type TestDb = Awaited<ReturnType<typeof createTestDatabase>>;

/** A provider that stores its config only (no target), with a secret key of its own. */
const newProvider = (db: TestDb['db'], slug: string) =>
  createProvider(db, createSecretBox(generateSecretKey()), storeOnlyProviderInput(slug));

describe('loading an incremental batch by id', () => {
  let testDb: TestDb;
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await testDb.drop();
  });

  const newUser = (username: string, kind: 'internal' | 'service_account' = 'internal'): Promise<DirectoryUser> =>
    createUser(testDb.db, UserInputSchema.parse({ username, kind }));

  test('a batch of users loads exactly its in-scope users, in one query, whatever made the others leave scope', async (t) => {
    const [member, memberToo, outsider, robot, leaver] = [
      await newUser('member@example.test'),
      await newUser('member.too@example.test'),
      await newUser('outsider@example.test'),
      await newUser('robot@example.test', 'service_account'),
      await newUser('leaver@example.test'),
    ];
    const access = await createGroup(testDb.db, {
      name: 'access',
      attributes: {},
      members: [member.id, memberToo.id, robot.id, leaver.id],
    });
    await deleteUser(testDb.db, leaver.id);
    const scope = ProviderScopeSchema.parse({ accessGroups: [access.id] });
    const never = randomUUID();
    const batch = [outsider.id, memberToo.id, never, robot.id, leaver.id, member.id];

    const client = await testDb.db.connect();
    t.after(() => client.release());
    const query = t.mock.method(client, 'query');
    const rows = await loadUsersByIds(client, scope, batch);

    assert.deepEqual(rows.map((row) => row.username).sort(), ['member.too@example.test', 'member@example.test']);
    assert.deepEqual(
      rows.map((row) => row.id),
      [member.id, memberToo.id].sort(),
      'in id order',
    );
    assert.equal(query.mock.callCount(), 1, 'one query for the whole batch');

    const withRobots = await loadUsersByIds(
      testDb.db,
      ProviderScopeSchema.parse({ accessGroups: [access.id], includeServiceAccounts: true }),
      batch,
    );
    assert.deepEqual(withRobots.map((row) => row.username).sort(), [
      'member.too@example.test',
      'member@example.test',
      'robot@example.test',
    ]);
    assert.deepEqual(await loadUsersByIds(testDb.db, scope, []), []);
  });

  test("a batch of groups loads exactly the groups of the provider's group filter", async () => {
    const [kept, dropped] = [
      await createGroup(testDb.db, { name: 'kept', attributes: {} }),
      await createGroup(testDb.db, { name: 'dropped', attributes: {} }),
    ];
    const batch = [dropped.id, kept.id, randomUUID()];

    const filtered = await loadGroupsByIds(testDb.db, ProviderScopeSchema.parse({ groups: [kept.id] }), batch);
    assert.deepEqual(
      filtered.map((row) => row.name),
      ['kept'],
    );
    const every = await loadGroupsByIds(testDb.db, ProviderScopeSchema.parse({}), batch);
    assert.deepEqual(every.map((row) => row.name).sort(), ['dropped', 'kept']);
  });
});

describe('recording a batch', () => {
  let testDb: TestDb;
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await testDb.drop();
  });

  test('links, events and counters are written by one statement, and links already there are replaced', async (t) => {
    const provider = await newProvider(testDb.db, 'batch');
    const [ada, bob] = [
      await createUser(testDb.db, UserInputSchema.parse({ username: 'ada@example.test' })),
      await createUser(testDb.db, UserInputSchema.parse({ username: 'bob@example.test' })),
    ];
    const runId = await createRun(testDb.db, provider.id, 'full', null);
    const link = (localId: string, fields: Partial<Link>): Link => makeLink(provider.id, 'user', localId, fields);
    await recordBatch(
      testDb.db,
      runId,
      [link(bob.id, { status: 'failed', lastError: { code: 'ERR_SCIM_BAD_REQUEST' } })],
      zeroCounts(),
      [],
    );

    const client = await testDb.db.connect();
    t.after(() => client.release());
    const query = t.mock.method(client, 'query');
    await recordBatch(
      client,
      runId,
      [
        link(ada.id, {
          remoteId: 'r-ada',
          lastPayloadHash: 'h1',
          lastPayload: { userName: 'ada@example.test' },
          inputHash: 'i1',
        }),
        link(bob.id, { remoteId: 'r-bob', lastPayloadHash: 'h2' }),
      ],
      { ...zeroCounts(), processed: 2, created: 1, updated: 1 },
      [
        { objectType: 'user', localId: ada.id, action: 'create', detail: { remoteId: 'r-ada' } },
        { objectType: 'user', localId: bob.id, action: 'adopt' },
      ],
    );

    assert.equal(query.mock.callCount(), 1, 'one statement');
    const links = await getLinks(testDb.db, provider.id, 'user', [ada.id, bob.id]);
    assert.deepEqual(
      links.get(ada.id),
      link(ada.id, {
        remoteId: 'r-ada',
        lastPayloadHash: 'h1',
        lastPayload: { userName: 'ada@example.test' },
        inputHash: 'i1',
      }),
    );
    assert.deepEqual(
      links.get(bob.id),
      link(bob.id, { remoteId: 'r-bob', lastPayloadHash: 'h2' }),
      'the failed link was replaced',
    );
    const { rows } = await testDb.db.query<{ local_id: string; action: string; detail: unknown }>(
      'SELECT local_id, action, detail FROM sync_events WHERE run_id = $1 ORDER BY action',
      [runId],
    );
    assert.deepEqual(rows, [
      { local_id: bob.id, action: 'adopt', detail: null },
      { local_id: ada.id, action: 'create', detail: { remoteId: 'r-ada' } },
    ]);
    const summary = await finishRun(testDb.db, runId, 'succeeded', null);
    assert.deepEqual([summary.processed, summary.created, summary.updated, summary.failed], [2, 1, 1, 0]);
  });

  test("closing a run counts one outcome per object, its last event's, and nothing for removals left undone", async () => {
    const provider = await newProvider(testDb.db, 'recount');
    const runId = await createRun(testDb.db, provider.id, 'full', null);
    // Each object's events in the order they happened, and the counter it must end in (null: none).
    const objects: Array<[Array<[string, Record<string, unknown> | null]>, string | null]> = [
      [[['create', null]], 'created'],
      [
        [
          ['create', null],
          ['update', null],
        ],
        'created',
      ],
      [
        [
          ['fail', null],
          ['create', null],
          ['adopt', null],
        ],
        'created',
      ],
      [[['adopt', null]], 'updated'],
      [
        [
          ['update', null],
          ['update', null],
        ],
        'updated',
      ],
      [
        [
          ['create', null],
          ['fail', null],
        ],
        'failed',
      ],
      [[['retry', null]], 'retrying'],
      [
        [
          ['retry', null],
          ['update', null],
        ],
        'updated',
      ],
      [[['delete', null]], 'deleted'],
      [[['deactivate', null]], 'deleted'],
      [[['skip', null]], 'skipped'],
      [
        [
          ['create', null],
          ['skip', null],
        ],
        'skipped',
      ],
      [[['delete', { dryRun: true }]], null],
      [[['skip', { dryRun: true }]], null],
      [[['skip', { removal: 'pending' }]], null],
      [[['skip', { deprovision: 'leave' }]], null],
      [
        [
          ['skip', { removal: 'pending' }],
          ['delete', null],
        ],
        'deleted',
      ],
      [
        [
          ['update', null],
          ['deactivate', { dryRun: true }],
        ],
        null,
      ],
    ];
    for (const [events] of objects) {
      const localId = randomUUID();
      for (const [action, detail] of events) {
        await testDb.db.query(
          `INSERT INTO sync_events (run_id, object_type, local_id, action, detail) VALUES ($1, 'user', $2, $3, $4)`,
          [runId, localId, action, detail],
        );
      }
    }
    // The same local id as a group is another object.
    const shared = randomUUID();
    await testDb.db.query(
      `INSERT INTO sync_events (run_id, object_type, local_id, action) VALUES ($1, 'user', $2, 'create'), ($1, 'group', $2, 'update')`,
      [runId, shared],
    );
    await testDb.db.query('UPDATE sync_runs SET processed = 25 WHERE id = $1', [runId]);

    const summary = await finishRun(testDb.db, runId, 'succeeded', null);
    const expected = { created: 1, updated: 1, deleted: 0, skipped: 0, failed: 0, retrying: 0 };
    for (const [, counter] of objects) if (counter !== null) expected[counter as keyof typeof expected] += 1;
    assert.deepEqual(expected, { created: 4, updated: 4, deleted: 3, skipped: 2, failed: 1, retrying: 1 });
    assert.deepEqual(
      {
        created: summary.created,
        updated: summary.updated,
        deleted: summary.deleted,
        skipped: summary.skipped,
        failed: summary.failed,
        retrying: summary.retrying,
      },
      expected,
    );
    assert.equal(summary.unchanged, 25 - 4 - 4 - 2 - 1 - 1, 'processed less what changed; removals are not processed');
  });

  test('a page recorded twice (a timed-out attempt still running, and its retry) is counted once', async () => {
    const provider = await newProvider(testDb.db, 'twice');
    const [ada, bob] = [
      await createUser(testDb.db, UserInputSchema.parse({ username: 'ada.twice@example.test' })),
      await createUser(testDb.db, UserInputSchema.parse({ username: 'bob.twice@example.test' })),
    ];
    const runId = await createRun(testDb.db, provider.id, 'full', null);
    const page = { objectType: 'user' as const, firstId: ada.id, lastId: bob.id };
    const record = (remote: string) =>
      recordBatch(
        testDb.db,
        runId,
        [ada, bob].map((user) => makeLink(provider.id, 'user', user.id, { remoteId: `${remote}-${user.username}` })),
        { ...zeroCounts(), processed: 2, updated: 2 },
        [],
        page,
      );
    await Promise.all([record('first'), record('second')]);
    await record('third');

    const { rows } = await testDb.db.query<{ processed: number }>('SELECT processed FROM sync_runs WHERE id = $1', [
      runId,
    ]);
    assert.equal(rows[0]?.processed, 2);
    const links = await getLinks(testDb.db, provider.id, 'user', [ada.id]);
    assert.equal(links.get(ada.id)?.remoteId, 'third-ada.twice@example.test', 'links are written all the same');
  });
});

describe("reading a range's users a stretch at a time", () => {
  let testDb: TestDb;
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await testDb.drop();
  });

  test('a stretch holds only the users whose input changed since their last push, and ends at the max-th of them', async () => {
    const provider = await newProvider(testDb.db, 'stretch');
    const scope = ProviderScopeSchema.parse({});
    await seedDirectory(testDb.db, 10, 0);
    // One user whose text and attributes take escaping in JSON (quotes, a newline, a non-ASCII letter, a decimal).
    await testDb.db.query(`UPDATE users SET display_name = $1, attributes = $2 WHERE username = 'user9@example.test'`, [
      'Zoë "Q"\nLast',
      { b: [1, 2.5], a: { z: null, y: 'é' } },
    ]);
    const ids = (await testDb.db.query<{ id: string }>('SELECT id FROM users ORDER BY id')).rows.map((r) => r.id);
    const version = 'mappings-v1 config 1';
    const rows = await loadUsersByIds(testDb.db, scope, ids);
    // Each user pushed from its row as loaded: the input hash the sync stores after a push.
    const pushed = (id: string, fields: Partial<Link> = {}): Link =>
      makeLink(provider.id, 'user', id, {
        remoteId: `r-${id}`,
        lastPayloadHash: 'p',
        inputHash: userInputHash(
          version,
          rows.find((row) => row.id === id)!,
        ),
        ...fields,
      });
    await saveLinks(testDb.db, [
      ...ids.filter((_, i) => ![2, 4, 6].includes(i)).map((id) => pushed(id)),
      pushed(ids[2]!, { status: 'retrying', lastPayloadHash: null }),
      // ids[4] was never pushed; ids[6] was pushed with other mappings.
      pushed(ids[6]!, { inputHash: userInputHash('mappings-v0 config 1', rows[6]!) }),
    ]);
    // Changed since its push, behind the API's back.
    await testDb.db.query(`UPDATE users SET attributes = '{"cost": 7}' WHERE id = $1`, [ids[7]]);

    const whole = { after: null, last: ids[9]! };
    const all = await userStretch(testDb.db, scope, provider.id, version, whole, 10);
    assert.deepEqual(
      all.rows.map((r) => [ids.indexOf(r.row.id), r.position, r.nextId]),
      [
        [2, 3, ids[3]],
        [4, 5, ids[5]],
        [6, 7, ids[7]],
        [7, 8, ids[8]],
      ],
      'the retrying, never pushed, remapped and changed users, in id order with their places',
    );
    assert.deepEqual([all.firstId, all.lastId, all.count, all.more], [ids[0], ids[9], 10, false]);
    assert.deepEqual(
      [...all.linked].map((id) => ids.indexOf(id)).sort(),
      [2, 6, 7],
      'the users to sync that have a link, whatever its state; the never pushed one has none',
    );

    const first = await userStretch(testDb.db, scope, provider.id, version, whole, 2);
    assert.deepEqual(
      first.rows.map((r) => ids.indexOf(r.row.id)),
      [2, 4],
    );
    assert.deepEqual([first.firstId, first.lastId, first.count, first.more], [ids[0], ids[4], 5, true]);
    const second = await userStretch(testDb.db, scope, provider.id, version, { after: ids[4]!, last: ids[9]! }, 2);
    assert.deepEqual(
      second.rows.map((r) => [ids.indexOf(r.row.id), r.position]),
      [
        [6, 2],
        [7, 3],
      ],
    );
    assert.deepEqual([second.firstId, second.lastId, second.count, second.more], [ids[5], ids[9], 5, false]);

    const upTo5 = await userStretch(testDb.db, scope, provider.id, version, { after: null, last: ids[5]! }, 10);
    assert.deepEqual([upTo5.rows.length, upTo5.lastId, upTo5.count, upTo5.more], [2, ids[5], 6, false]);

    const counted = await userStretch(testDb.db, scope, provider.id, version, whole, 10, [
      { objectType: 'user', firstId: ids[1]!, lastId: ids[3]! },
    ]);
    assert.deepEqual(
      counted.rows.map((r) => [ids.indexOf(r.row.id), r.position]),
      [
        [4, 2],
        [6, 4],
        [7, 5],
      ],
      'the rows of counted pages are left out, and not counted',
    );
    assert.equal(counted.count, 7);

    const unversioned = await userStretch(testDb.db, scope, provider.id, null, whole, 20);
    assert.equal(unversioned.rows.length, 10, 'without a version every user needs syncing');
    assert.equal(unversioned.linked.size, 9, 'and every one but the never pushed has its link read');
    assert.equal(unversioned.linked.has(ids[4]!), false);
    const none = await userStretch(testDb.db, scope, provider.id, version, { after: ids[9]!, last: ids[9]! }, 10);
    assert.deepEqual(none, { rows: [], firstId: null, lastId: null, count: 0, more: false, linked: new Set() });
  });

  test("a stretch of a provider's first sync reads its range in id order only as far as it holds", async (t) => {
    const provider = await newProvider(testDb.db, 'far');
    // A range as large as a 100,000-user directory's: 12,500 users, none linked yet, every one to sync.
    await testDb.db.query(
      `INSERT INTO users (username, display_name, attributes)
       SELECT 'far' || i || '@example.test', 'Far ' || i, jsonb_build_object('department', 'd' || (i % 23))
         FROM generate_series(1, 12500) i`,
    );
    await testDb.db.query('ANALYZE users');
    const scope = ProviderScopeSchema.parse({});
    const client = await testDb.db.connect();
    t.after(() => client.release());
    const query = t.mock.method(client, 'query');
    const stretch = await userStretch(
      client,
      scope,
      provider.id,
      'v1',
      { after: null, last: 'ffffffff-ffff-4fff-bfff-ffffffffffff' },
      100,
    );
    assert.equal(stretch.rows.length, 100);
    assert.equal(stretch.more, true);

    // The statements it sent, explained as they ran: the stretch's own, with the settings it made before it.
    const sent = query.mock.calls.map((call) => call.arguments as unknown as [string, unknown[]?]);
    const select = sent.find(([text]) => text.trimStart().startsWith('SELECT * FROM'));
    assert.ok(select, 'the stretch is read by one statement');
    query.mock.restore();
    await client.query('BEGIN');
    try {
      for (const [text, values] of sent.slice(0, sent.indexOf(select))) {
        if (text !== 'BEGIN') await client.query(text, values);
      }
      const { rows } = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${select[0]}`,
        select[1],
      );
      const nodes = flatten(rows[0]!['QUERY PLAN'][0]!.Plan);
      const scans = nodes.filter((node) => node['Relation Name'] === 'users');
      assert.deepEqual(
        scans.map((node) => [node['Node Type'], node['Index Name']]),
        [['Index Scan', 'users_pkey']],
      );
      assert.ok(scans[0]!['Actual Rows']! <= 103, `read ${scans[0]!['Actual Rows']} users for a stretch of 100`);
      assert.ok(!nodes.some((node) => node['Node Type'] === 'Sort'), 'nothing is sorted');
    } finally {
      await client.query('ROLLBACK');
    }
  });
});

describe('finding the links that wait to be sent again', () => {
  let testDb: TestDb;
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await testDb.drop();
  });

  test('reads only the failing links, from their own index, oldest first; the health counts say how many', async () => {
    const provider = await newProvider(testDb.db, 'failing');
    // 2,000 links pushed fine, and a few left retrying or failed, at different times.
    await testDb.db.query(
      `INSERT INTO provider_links (provider_id, object_type, local_id, remote_id, status)
       SELECT $1, 'user', gen_random_uuid(), 'r-' || i, 'ok' FROM generate_series(1, 2000) i`,
      [provider.id],
    );
    const failing = [
      ['retrying', '2026-01-03'],
      ['failed', '2026-01-01'],
      ['retrying', '2026-01-01'],
      ['failed', '2026-01-02'],
      ['retrying', '2026-01-02'],
    ].map(([status, at]) => ({ id: randomUUID(), status: status!, at: at! }));
    for (const { id, status, at } of failing) {
      await testDb.db.query(
        `INSERT INTO provider_links (provider_id, object_type, local_id, status, synced_at) VALUES ($1, 'user', $2, $3, $4)`,
        [provider.id, id, status, at],
      );
    }
    await testDb.db.query('ANALYZE provider_links');

    const retrying = failing.filter((link) => link.status === 'retrying').sort((a, b) => a.at.localeCompare(b.at));
    assert.deepEqual(
      await retryingIds(testDb.db, provider.id, 'user', 10),
      retrying.map((link) => link.id),
    );
    const { rows } = await testDb.db.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (FORMAT JSON) ${RETRYING_IDS_SQL}`,
      [provider.id, 'user', 10],
    );
    const nodes = flatten(rows[0]!['QUERY PLAN'][0]!.Plan);
    assert.deepEqual(
      nodes.filter((node) => node['Relation Name'] === 'provider_links').map((node) => node['Index Name']),
      ['provider_links_failing_idx'],
    );
    assert.ok(!nodes.some((node) => node['Node Type'] === 'Sort'), 'the index gives them in order');

    const health = await syncHealth(testDb.db, provider.id);
    assert.deepEqual([health.retrying, health.failed], [3, 2]);
  });
});
