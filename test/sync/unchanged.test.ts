import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import {
  addMembers,
  attachMappings,
  createMapping,
  createProvider,
  createSecretBox,
  generateSecretKey,
  getProviderForSync,
  getRun,
  updateMapping,
  updateProvider,
  updateUser,
  type ProviderView,
} from '../../db/index.ts';
import { createSandboxMapper, type PayloadMapper } from '../../activities/index.ts';
import { processMappingEngine } from '../../engine/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { seedDirectory } from '../support/directory.ts';
import { startTestEngine } from '../support/engine.ts';
import { storeOnlyProviderInput, testProviderInput } from '../support/providers.ts';
import { startFaultProxy, startScimTarget } from '../servers/index.ts';

/** The sandbox mapper, counting the objects it is asked to map, and noting what it was asked in order (`calls`). */
function countingMapper(
  inner: PayloadMapper,
): PayloadMapper & { mapped: { users: number; groups: number }; calls: string[] } {
  const mapped = { users: 0, groups: 0 };
  const calls: string[] = [];
  return {
    mapped,
    calls,
    prepare: (provider, objectType) => {
      calls.push(`prepare ${objectType}`);
      return inner.prepare!(provider, objectType);
    },
    async snapshot(provider) {
      const mappings = await inner.snapshot(provider);
      return {
        inputVersion: mappings.inputVersion,
        mapUsers: (items) => {
          mapped.users += items.length;
          calls.push('map user');
          return mappings.mapUsers(items);
        },
        mapGroups: (items) => {
          mapped.groups += items.length;
          calls.push('map group');
          return mappings.mapGroups(items);
        },
      };
    },
  };
}

/** A fresh database with 20 users in 3 groups, a worker with a counting sandbox mapper, and a SCIMMY target. */
async function world(t: TestContext) {
  const testDb = await createTestDatabase();
  const mapper = countingMapper(createSandboxMapper({ db: testDb.db, engine: processMappingEngine() }));
  const engine = await startTestEngine({ db: testDb.db, mapper });
  const target = await startScimTarget();
  t.after(async () => {
    await target.close();
    await engine.shutdown();
    await testDb.drop();
  });
  const directory = await seedDirectory(testDb.db, 20, 3);
  const provider = await createProvider(
    testDb.db,
    engine.secrets,
    testProviderInput(target, 'u', { pageSize: 4, concurrency: 2 }),
  );
  const first = await engine.fullSync(provider);
  assert.equal(first.report.created, 23);
  const mapped = (): { users: number; groups: number } => ({ ...mapper.mapped });
  // What the first sync asked of the mapper, in order.
  const firstCalls = mapper.calls.splice(0);
  mapper.mapped.users = 0;
  mapper.mapped.groups = 0;
  return { db: testDb.db, engine, target, provider, directory, mapped, firstCalls };
}

describe('a full sync decides unchanged objects from input hashes', () => {
  test('a first sync readies the sandbox for users as it starts and for groups before its groups phase', async (t) => {
    const { firstCalls } = await world(t);
    assert.equal(firstCalls[0], 'prepare user', 'readied before any user is mapped');
    const readied = firstCalls.indexOf('prepare group');
    assert.ok(readied > 0, 'the groups were readied');
    assert.ok(readied < firstCalls.indexOf('map group'), 'before the first group is mapped');
    assert.ok(readied > firstCalls.indexOf('map user'), 'while the users were synced');
  });

  test('a second full sync with nothing changed maps no object and sends no write', async (t) => {
    const { engine, target, provider, mapped } = await world(t);
    await target.resetLog();
    const second = await engine.fullSync(provider);
    assert.deepEqual(mapped(), { users: 0, groups: 0 });
    assert.equal(await target.writes(), 0);
    assert.equal(second.report.unchanged, 23);
    assert.equal(second.report.processed, 23);
  });

  test('a directory change is picked up: the changed user and the group that gained a member, and nothing else', async (t) => {
    const { db, engine, target, provider, directory, mapped } = await world(t);
    await updateUser(db, directory.users[5]!.id, { displayName: 'Renamed Five' });
    // user 1 is in group 1 (i mod 3); it joins group 0 as well.
    await addMembers(db, directory.groups[0]!.id, [directory.users[1]!.id]);
    await target.resetLog();
    const report = (await engine.fullSync(provider)).report;
    assert.deepEqual(mapped(), { users: 1, groups: 1 });
    assert.equal(report.updated, 2);
    assert.equal(await target.writes(), 2);
    const five = (await target.users()).find((u) => u.userName === 'user5@example.test');
    assert.equal(five?.displayName, 'Renamed Five');
    const one = (await target.users()).find((u) => u.userName === 'user1@example.test')!;
    const group0 = (await target.groups()).find((g) => g.displayName === 'group-0')!;
    assert.ok(
      group0.members?.some((m) => m.value === one.id),
      'user 1 is a member of group-0 on the target',
    );
  });

  test('a change written to users by SQL, to a column or inside attributes, maps exactly those users again', async (t) => {
    const { db, engine, target, provider, directory, mapped } = await world(t);
    await db.query(`UPDATE users SET active = false WHERE id = $1`, [directory.users[3]!.id]);
    await db.query(`UPDATE users SET attributes = '{"costCentre": {"id": 7}}' WHERE id = $1`, [directory.users[8]!.id]);
    await target.resetLog();
    const report = (await engine.fullSync(provider)).report;
    assert.deepEqual(mapped(), { users: 2, groups: 0 });
    assert.equal(report.updated, 1, 'the deactivated user; the default mappings send no attributes');
    const three = (await target.users()).find((u) => u.userName === 'user3@example.test');
    assert.equal(three?.active, false);
    await db.query(`UPDATE users SET attributes = '{"costCentre": {"id": 8}}' WHERE id = $1`, [directory.users[8]!.id]);
    await engine.fullSync(provider);
    assert.deepEqual(mapped(), { users: 3, groups: 0 }, 'a value deep inside attributes is part of the input too');
  });

  test('a mapping edit is picked up by every user, though no directory row changed', async (t) => {
    const { db, engine, target, provider, mapped } = await world(t);
    const title = await createMapping(db, {
      name: 'zz-title',
      objectType: 'user',
      expression: `return { title: 'Engineer' };`,
    });
    await attachMappings(db, provider.id, [title.id]);
    assert.equal((await engine.fullSync(provider)).report.updated, 20);
    assert.deepEqual(mapped(), { users: 20, groups: 3 });
    await updateMapping(db, title.id, { expression: `return { title: 'Lead' };` });
    await target.resetLog();
    const report = (await engine.fullSync(provider)).report;
    assert.equal(report.updated, 20);
    assert.equal(await target.writes(), 20);
    const titles = new Set((await target.users()).map((u) => (u as { title?: string }).title));
    assert.deepEqual([...titles], ['Lead']);
  });

  test('a provider config change is picked up: a mapping that reads the provider name sends the new one', async (t) => {
    const { db, engine, target, provider, mapped } = await world(t);
    const title = await createMapping(db, {
      name: 'zz-provider',
      objectType: 'user',
      expression: `return { title: 'via ' + provider.name };`,
    });
    await attachMappings(db, provider.id, [title.id]);
    await engine.fullSync(provider);
    const before = mapped();
    await updateProvider(db, engine.secrets, provider.id, { name: 'Renamed target' });
    await target.resetLog();
    const report = (await engine.fullSync(provider)).report;
    assert.equal(mapped().users - before.users, 20, 'every user is mapped again');
    assert.equal(report.updated, 20);
    const titles = new Set((await target.users()).map((u) => (u as { title?: string }).title));
    assert.deepEqual([...titles], ['via Renamed target']);
  });

  test('a provider config change that changes no payload sends nothing, and the sync after it maps nothing', async (t) => {
    const { db, engine, target, provider, mapped } = await world(t);
    await updateProvider(db, engine.secrets, provider.id, { name: 'Renamed target' });
    await target.resetLog();
    assert.equal((await engine.fullSync(provider)).report.unchanged, 23);
    assert.deepEqual(mapped(), { users: 20, groups: 3 });
    assert.equal(await target.writes(), 0);
    await engine.fullSync(provider);
    assert.deepEqual(mapped(), { users: 20, groups: 3 }, 'the input hashes were stored: nothing is mapped again');
  });
});

describe('a full sync whose worker stops mid-range', () => {
  test('resumes on another worker from its last resume point, creating every user exactly once', async (t) => {
    const testDb = await createTestDatabase();
    const engine = await startTestEngine({ db: testDb.db, shutdownGraceTime: '100 milliseconds' });
    const target = await startScimTarget();
    const proxy = await startFaultProxy({ target: target.url, rates: { slow: 1 }, slowMs: 15 });
    const engines = [engine];
    t.after(async () => {
      for (const running of engines) await running.shutdown();
      await proxy.close();
      await target.close();
      await testDb.drop();
    });
    const directory = await seedDirectory(testDb.db, 120, 0);
    // One range of 120 users, read in stretches of 30 (ten pages of 3).
    const provider: ProviderView = await createProvider(
      testDb.db,
      engine.secrets,
      testProviderInput(target, 'r', { baseUrl: proxy.url, pageSize: 3, concurrency: 1 }),
    );
    const { runId, workflowId } = await engine.control.requestFullSync(provider);
    const created = () =>
      proxy.requests().filter((r) => r.method === 'POST' && r.path.endsWith('/Users') && r.status === 201).length;
    while (created() < 70) await new Promise((resolve) => setTimeout(resolve, 20));
    await engine.shutdown();
    const beforeResume = created();
    assert.ok(beforeResume < 120, `the range stopped part way (${beforeResume} of 120 created)`);

    const second = await startTestEngine({ db: testDb.db, taskQueue: engine.taskQueue, secrets: engine.secrets });
    engines.push(second);
    await second.client.workflow.getHandle(workflowId).result();
    const names = (await target.users()).map((u) => u.userName).sort();
    assert.deepEqual(names, directory.users.map((u) => u.username).sort(), 'each user exactly once');
    assert.equal(created(), 120, 'each user was created once: no POST was repeated');
    const run = await getRun(testDb.db, runId);
    // Stretches already finished are not read again: at most the stretch in flight (30 users) is examined twice.
    assert.ok(
      run.processed <= 120 + 30,
      `${run.processed} users examined: the retry started at the resume point, not at the range's start`,
    );
  });
});

describe("the sandbox mapper's reads of a provider's mapping set", () => {
  test('calls made together share one read; the next call reads again, so an edit is seen at once; a snapshot maps as its version says', async (t) => {
    const testDb = await createTestDatabase();
    t.after(() => testDb.drop());
    const secrets = createSecretBox(generateSecretKey());
    const created = await createProvider(testDb.db, secrets, storeOnlyProviderInput('mapping-reads'));
    const provider = await getProviderForSync(testDb.db, secrets, created.id);
    let reads = 0;
    // The pool, counting the statements that read a provider's mappings.
    const db = new Proxy(testDb.db, {
      get(target, key, receiver) {
        if (key !== 'query') return Reflect.get(target, key, receiver) as unknown;
        return (text: unknown, ...rest: unknown[]) => {
          if (typeof text === 'string' && text.includes('provider_mappings')) reads += 1;
          return (target.query as (...args: unknown[]) => unknown).call(target, text, ...rest);
        };
      },
    });
    const mapper = createSandboxMapper({ db, engine: processMappingEngine() });

    const together = await Promise.all(Array.from({ length: 8 }, () => mapper.snapshot(provider)));
    assert.equal(reads, 1, 'eight calls at once read the set once');
    assert.equal(new Set(together.map((snapshot) => snapshot.inputVersion)).size, 1);

    const title = await createMapping(testDb.db, {
      name: 'zz-title',
      objectType: 'user',
      expression: `return { title: 'Engineer' };`,
    });
    await attachMappings(testDb.db, provider.id, [title.id]);
    const after = await mapper.snapshot(provider);
    assert.equal(reads, 2, 'a call after the read answered reads again');
    assert.notEqual(after.inputVersion, together[0]!.inputVersion, 'the attached mapping is in the version at once');

    // A snapshot maps with the mappings its version was read with, and reads nothing more to do so.
    const user = {
      id: '00000000-0000-4000-8000-000000000001',
      uid: 'u1',
      username: 'reads@example.test',
      displayName: 'Reads',
      email: 'reads@example.test',
      givenName: 'Re',
      familyName: 'Ads',
      active: true,
      kind: 'internal' as const,
      attributes: {},
    };
    const [before] = await together[0]!.mapUsers([{ user, link: null }]);
    const [now] = await after.mapUsers([{ user, link: null }]);
    assert.equal(reads, 2, 'mapping through a snapshot reads no mapping');
    assert.equal(before?.status === 'ok' && before.payload.title, undefined, 'the earlier snapshot maps without it');
    assert.equal(now?.status === 'ok' && now.payload.title, 'Engineer', 'the later one maps with it');
  });
});
