import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { createProvider } from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { seedDirectory } from '../support/directory.ts';
import { startTestEngine } from '../support/engine.ts';
import { testProviderInput } from '../support/providers.ts';
import { startScimTarget } from '../servers/index.ts';

/**
 * PostgreSQL stores neither U+0000 nor an unpaired UTF-16 surrogate in `jsonb`. The directory refuses them, but a
 * target may answer with them; what the sync keeps of its answers (links, events) must still be written.
 */
async function world(t: TestContext) {
  const testDb = await createTestDatabase();
  const engine = await startTestEngine({ db: testDb.db });
  const target = await startScimTarget();
  t.after(async () => {
    await target.close();
    await engine.shutdown();
    await testDb.drop();
  });
  const provider = await createProvider(
    testDb.db,
    engine.secrets,
    testProviderInput(target, 't', { pageSize: 10, concurrency: 2 }),
  );
  return { testDb, engine, target, provider };
}

describe('text from the target that PostgreSQL cannot store', () => {
  test('a remote user holding U+0000 and an unpaired surrogate is adopted, and the run succeeds', async (t) => {
    const { testDb, engine, target, provider } = await world(t);
    const { users } = await seedDirectory(testDb.db, 3, 1);
    const existing = await target.seedUser({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: users[1]!.username,
      displayName: 'Stale\u0000name \ud800',
      nickName: 'nick\u0000',
      active: true,
    });

    const { report } = await engine.fullSync(provider);

    assert.equal(report.status, 'succeeded');
    assert.equal(report.failed, 0);
    assert.equal(report.updated, 1, 'the remote user was adopted and updated');
    const remote = (await target.users()).find((u) => u.userName === users[1]!.username);
    assert.equal(remote?.id, existing.id);
    assert.equal(remote?.displayName, 'User 1');
    const { rows } = await testDb.db.query<{ remote_id: string; status: string }>(
      `SELECT remote_id, status FROM provider_links WHERE provider_id = $1 AND local_id = $2`,
      [provider.id, users[1]!.id],
    );
    assert.deepEqual(rows, [{ remote_id: existing.id, status: 'ok' }]);
    assert.equal((await target.users()).length, 3, 'no duplicate');
  });

  test("a target's error detail holding U+0000 fails only its own user, and is recorded", async (t) => {
    const { testDb, engine, target, provider } = await world(t);
    const { users } = await seedDirectory(testDb.db, 4, 1);
    await target.failNext({
      method: 'POST',
      pathPrefix: '/Users',
      match: { userName: users[2]!.username },
      status: 400,
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
        status: '400',
        scimType: 'invalidValue',
        detail: 'the value \u0000 is refused \udc00',
      },
    });

    const { report } = await engine.fullSync(provider);

    assert.equal(report.status, 'succeeded');
    assert.equal(report.failed, 1);
    assert.deepEqual(
      (await target.users()).map((u) => u.userName).sort(),
      users
        .filter((_, i) => i !== 2)
        .map((u) => u.username)
        .sort(),
    );
    const { rows } = await testDb.db.query<{ status: string; error: string }>(
      `SELECT status, last_error::text AS error FROM provider_links WHERE provider_id = $1 AND local_id = $2`,
      [provider.id, users[2]!.id],
    );
    assert.equal(rows[0]?.status, 'failed');
    assert.match(rows[0].error, /the value \uFFFD is refused \uFFFD/);
  });
});
