import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  createGroup,
  createUser,
  deleteUser,
  loadGroupsByIds,
  loadUsersByIds,
  ProviderScopeSchema,
  UserInputSchema,
  type DirectoryUser,
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
    const access = await createGroup(testDb.db, { name: 'access', attributes: {}, members: [member.id, memberToo.id, robot.id, leaver.id] });
    await deleteUser(testDb.db, leaver.id);
    const scope = ProviderScopeSchema.parse({ accessGroups: [access.id] });
    const never = randomUUID();
    const batch = [outsider.id, memberToo.id, never, robot.id, leaver.id, member.id];

    const client = await testDb.db.connect();
    t.after(() => client.release());
    const query = t.mock.method(client, 'query');
    const rows = await loadUsersByIds(client, scope, batch);

    assert.deepEqual(rows.map((row) => row.username).sort(), ['member.too@example.test', 'member@example.test']);
    assert.deepEqual(rows.map((row) => row.id), [member.id, memberToo.id].sort(), 'in id order');
    assert.equal(query.mock.callCount(), 1, 'one query for the whole batch');

    const withRobots = await loadUsersByIds(testDb.db, ProviderScopeSchema.parse({ accessGroups: [access.id], includeServiceAccounts: true }), batch);
    assert.deepEqual(withRobots.map((row) => row.username).sort(), ['member.too@example.test', 'member@example.test', 'robot@example.test']);
    assert.deepEqual(await loadUsersByIds(testDb.db, scope, []), []);
  });

  test('a batch of groups loads exactly the groups of the provider\'s group filter', async () => {
    const [kept, dropped] = [
      await createGroup(testDb.db, { name: 'kept', attributes: {} }),
      await createGroup(testDb.db, { name: 'dropped', attributes: {} }),
    ];
    const batch = [dropped.id, kept.id, randomUUID()];

    const filtered = await loadGroupsByIds(testDb.db, ProviderScopeSchema.parse({ groups: [kept.id] }), batch);
    assert.deepEqual(filtered.map((row) => row.name), ['kept']);
    const every = await loadGroupsByIds(testDb.db, ProviderScopeSchema.parse({}), batch);
    assert.deepEqual(every.map((row) => row.name).sort(), ['dropped', 'kept']);
  });
});
