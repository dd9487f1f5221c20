import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import {
  attachMappings,
  createMapping,
  createProvider,
  createUser,
  updateMapping,
  type ProviderInput,
} from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { startTestEngine } from '../support/engine.ts';
import { testProviderInput } from '../support/providers.ts';
import { startScimTarget, type ScimTarget } from '../servers/index.ts';

function providerInput(target: ScimTarget): ProviderInput {
  return testProviderInput(target, 'm', { concurrency: 2 });
}

/** A fresh database, a worker using the default (sandbox) mapper, and a SCIMMY target. */
async function world(t: TestContext) {
  const testDb = await createTestDatabase();
  const engine = await startTestEngine({ db: testDb.db });
  const targets: ScimTarget[] = [];
  t.after(async () => {
    for (const target of targets) await target.close();
    await engine.shutdown();
    await testDb.drop();
  });
  const newTarget = async () => {
    const target = await startScimTarget({});
    targets.push(target);
    return target;
  };
  const newProvider = (target: ScimTarget) => createProvider(testDb.db, engine.secrets, providerInput(target));
  for (let i = 0; i < 6; i += 1) {
    await createUser(testDb.db, {
      username: `user${i}@example.test`,
      displayName: `User ${i}`,
      email: `user${i}@example.test`,
      givenName: 'User',
      familyName: `Number ${i}`,
      active: true,
      kind: 'internal',
      attributes: { department: i % 2 === 0 ? 'eng' : 'sales' },
    });
  }
  return { db: testDb.db, engine, newTarget, newProvider };
}

describe('provider mappings in the sandbox during a full sync', () => {
  test('a new mapping and then its edit change exactly the affected users at the next full sync', async (t) => {
    const { db, engine, newTarget, newProvider } = await world(t);
    const target = await newTarget();
    const provider = await newProvider(target);
    assert.equal((await engine.fullSync(provider)).report.created, 6);

    const title = await createMapping(db, {
      name: 'zz-title',
      objectType: 'user',
      expression: `if (user.attributes.department !== 'eng') return null;\nreturn { title: 'Engineer' };`,
    });
    await attachMappings(db, provider.id, [title.id]);
    await target.resetLog();
    const first = await engine.fullSync(provider);
    assert.equal(first.report.updated, 3, 'only the three eng users change');
    assert.equal(await target.writes(), 3);
    const titled = (await target.users()).filter((u) => (u as { title?: string }).title === 'Engineer');
    assert.deepEqual(titled.map((u) => u.userName).sort(), [
      'user0@example.test',
      'user2@example.test',
      'user4@example.test',
    ]);
    assert.equal((await target.users()).length, 6);

    await updateMapping(db, title.id, {
      expression: `if (user.username !== 'user0@example.test') return null;\nreturn { title: 'Lead' };`,
    });
    await target.resetLog();
    const second = await engine.fullSync(provider);
    assert.equal(second.report.updated, 3, 'user0 gets the new title, user2 and user4 lose theirs');
    assert.equal(await target.writes(), 3);
    const titles = Object.fromEntries(
      (await target.users()).map((u) => [u.userName, (u as { title?: string }).title ?? null]),
    );
    assert.deepEqual(titles, {
      'user0@example.test': 'Lead',
      'user1@example.test': null,
      'user2@example.test': null,
      'user3@example.test': null,
      'user4@example.test': null,
      'user5@example.test': null,
    });
  });

  test('a hostile mapping fails only its own provider while another provider syncs fully', async (t) => {
    const { db, engine, newTarget, newProvider } = await world(t);
    const [hostileTarget, healthyTarget] = [await newTarget(), await newTarget()];
    const hostile = await newProvider(hostileTarget);
    const healthy = await newProvider(healthyTarget);
    const loop = await createMapping(db, {
      name: 'zz-loop',
      objectType: 'user',
      expression: `if (user.attributes.department === 'eng') { while (true) {} }\nreturn null;`,
    });
    await attachMappings(db, hostile.id, [loop.id]);

    const [bad, good] = await Promise.all([engine.fullSync(hostile), engine.fullSync(healthy)]);
    assert.equal(bad.report.failed, 3, 'the three eng users hit the CPU limit');
    assert.equal(bad.report.created, 3, 'the other users of the hostile provider still sync');
    assert.deepEqual((await hostileTarget.users()).map((u) => u.userName).sort(), [
      'user1@example.test',
      'user3@example.test',
      'user5@example.test',
    ]);
    const { rows } = await db.query<{ username: string; status: string; last_error: Record<string, unknown> }>(
      `SELECT u.username, l.status, l.last_error FROM provider_links l JOIN users u ON u.id = l.local_id
        WHERE l.provider_id = $1 AND l.status = 'failed' ORDER BY u.username`,
      [hostile.id],
    );
    assert.deepEqual(
      rows.map((row) => row.username),
      ['user0@example.test', 'user2@example.test', 'user4@example.test'],
    );
    for (const row of rows) {
      assert.equal(row.last_error['code'], 'ERR_MAPPING', JSON.stringify(row.last_error));
      assert.match(JSON.stringify(row.last_error), /limit/, 'the error says a limit stopped the mapping');
    }
    assert.equal(good.report.failed, 0);
    assert.equal((await healthyTarget.users()).length, 6);
  });
});
