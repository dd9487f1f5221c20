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
  ProviderInputSchema,
  ProviderScopeSchema,
  recordBatch,
  UserInputSchema,
  zeroCounts,
  type DirectoryUser,
  type Link,
} from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';

type TestDb = Awaited<ReturnType<typeof createTestDatabase>>;

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
    const secrets = createSecretBox(generateSecretKey());
    const provider = await createProvider(
      testDb.db,
      secrets,
      ProviderInputSchema.parse({
        slug: 'batch',
        name: 'batch',
        baseUrl: 'http://127.0.0.1:1/scim/v2',
        auth: { mode: 'bearer', token: 't' },
      }),
    );
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
});
