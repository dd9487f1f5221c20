import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import {
  addMembers,
  createGroup,
  createProvider,
  deleteUser,
  getRun,
  removeMember,
  updateUser,
  type ProviderInput,
  type ProviderView,
} from '../../db/index.ts';
import { stableUid } from '../../activities/index.ts';
import {
  createScim2Plugin,
  type PluginRegistry,
  type ProvisioningPlugin,
  type Scim2Options,
} from '../../plugins/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { seedDirectory as seedDirectoryOf } from '../support/directory.ts';
import { startTestEngine } from '../support/engine.ts';
import { testProviderInput } from '../support/providers.ts';
import { startScimTarget, type ScimTarget } from '../servers/index.ts';

type TestDb = Awaited<ReturnType<typeof createTestDatabase>>;

function providerInput(target: ScimTarget, overrides: Partial<ProviderInput> = {}): ProviderInput {
  return testProviderInput(target, 't', { pageSize: 7, concurrency: 3, ...overrides });
}

/** Seeds the directory of a test's database (see support/directory.ts). */
function seedDirectory(testDb: TestDb, users: number, groups: number) {
  return seedDirectoryOf(testDb.db, users, groups);
}

/** Every string and decoded payload byte in a workflow history, so a search cannot miss encoded payloads. */
function historyText(value: unknown, out: string[] = []): string {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (Array.isArray(value)) for (const item of value) historyText(item, out);
  else if (value && typeof value === 'object') for (const item of Object.values(value)) historyText(item, out);
  return out.join('\n');
}

/** A fresh database, a worker on it, and a SCIMMY target: one per test, so tests cannot see each other. */
async function world(
  t: TestContext,
  targetOptions: Parameters<typeof startScimTarget>[0] = {},
  plugins?: PluginRegistry,
) {
  const testDb = await createTestDatabase();
  const engine = await startTestEngine({ db: testDb.db, ...(plugins ? { plugins } : {}) });
  const target = await startScimTarget(targetOptions);
  t.after(async () => {
    await target.close();
    await engine.shutdown();
    await testDb.drop();
  });
  const newProvider = (overrides: Partial<ProviderInput> = {}): Promise<ProviderView> =>
    createProvider(testDb.db, engine.secrets, providerInput(target, overrides));
  return { testDb, db: testDb.db, engine, target, newProvider };
}

describe('full sync into a SCIMMY server', () => {
  test('the first sync creates every user, group and membership; a second sync writes nothing', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    const { users, groups } = await seedDirectory(testDb, 23, 4);
    const provider = await newProvider();

    const { report } = await engine.fullSync(provider);
    assert.equal(report.status, 'succeeded');
    assert.equal(report.created, 27);
    assert.equal(report.failed, 0);

    const remoteUsers = await target.users();
    assert.equal(remoteUsers.length, 23);
    const alice = remoteUsers.find((u) => u.userName === 'user5@example.test');
    assert.ok(alice);
    assert.equal(alice.externalId, stableUid(users[5]!.id));
    assert.equal(alice.displayName, 'User 5');
    assert.deepEqual(alice.name, { formatted: 'User 5', givenName: 'User', familyName: 'Number 5' });
    assert.equal(alice.active, true);
    assert.deepEqual(
      alice.emails?.map((e) => [e.value, e.primary]),
      [['user5@example.test', true]],
    );

    const remoteGroups = await target.groups();
    assert.equal(remoteGroups.length, 4);
    const idByUserName = new Map(remoteUsers.map((u) => [u.userName, u.id]));
    for (const [g, group] of groups.entries()) {
      const remote = remoteGroups.find((rg) => rg.displayName === `group-${g}`);
      assert.ok(remote, `group-${g} exists on the target`);
      assert.equal(remote.externalId, stableUid(group.id));
      const expected = users
        .filter((_, i) => i % 4 === g)
        .map((u) => idByUserName.get(u.username))
        .sort();
      assert.deepEqual(remote.members?.map((m) => m.value).sort(), expected);
    }

    await target.resetLog();
    const second = await engine.fullSync(provider);
    assert.equal(second.report.status, 'succeeded');
    assert.equal(await target.writes(), 0, 'a no-change sync sends zero writes');
    assert.equal(second.report.unchanged, 27);
    assert.equal(second.report.created + second.report.updated + second.report.deleted, 0);
  });

  test('editing one user sends exactly one update, carrying the new value', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    const { users } = await seedDirectory(testDb, 10, 2);
    const provider = await newProvider();
    await engine.fullSync(provider);
    await target.resetLog();

    await updateUser(testDb.db, users[3]!.id, { displayName: 'Renamed Person' });
    const { report } = await engine.fullSync(provider);

    const writes = (await target.requests()).filter((r) => r.method !== 'GET');
    assert.equal(writes.length, 1);
    assert.equal(writes[0]!.method, 'PUT');
    assert.equal(report.updated, 1);
    const remote = (await target.users()).find((u) => u.userName === users[3]!.username);
    assert.equal(remote?.displayName, 'Renamed Person');
  });

  test('removing a member sends one PATCH remove and the target group loses exactly that member', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    const { users, groups } = await seedDirectory(testDb, 6, 1);
    const provider = await newProvider();
    await engine.fullSync(provider);
    await target.resetLog();

    await removeMember(testDb.db, groups[0]!.id, users[2]!.id);
    await engine.fullSync(provider);

    const writes = (await target.requests()).filter((r) => r.method !== 'GET');
    assert.equal(writes.length, 1);
    assert.equal(writes[0]!.method, 'PATCH');
    const operations = (writes[0]!.body as { Operations: Array<{ op: string; path?: string }> }).Operations;
    assert.ok(
      operations.every((op) => op.op.toLowerCase() === 'remove'),
      JSON.stringify(operations),
    );
    const remoteUsers = await target.users();
    const removedId = remoteUsers.find((u) => u.userName === users[2]!.username)?.id;
    const group = (await target.groups())[0]!;
    assert.equal(group.members?.length, 5);
    assert.ok(!group.members?.some((m) => m.value === removedId));
  });

  test('adding a member sends one PATCH add', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    const { users, groups } = await seedDirectory(testDb, 6, 2);
    const provider = await newProvider();
    await engine.fullSync(provider);
    await target.resetLog();

    await addMembers(testDb.db, groups[0]!.id, [users[1]!.id]);
    await engine.fullSync(provider);

    const writes = (await target.requests()).filter((r) => r.method !== 'GET');
    assert.deepEqual(
      writes.map((w) => w.method),
      ['PATCH'],
    );
    const remoteId = (await target.users()).find((u) => u.userName === users[1]!.username)?.id;
    const group = (await target.groups()).find((g) => g.displayName === 'group-0')!;
    assert.ok(group.members?.some((m) => m.value === remoteId));
  });

  test('a group deleted on the target is created again with its members, though a new group shares its page', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    const { users, groups } = await seedDirectory(testDb, 6, 2);
    const provider = await newProvider();
    await engine.fullSync(provider);
    const deleted = (await target.groups()).find((g) => g.displayName === 'group-0')!;
    const response = await fetch(`${target.url}/Groups/${deleted.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${target.token}` },
    });
    assert.equal(response.status, 204);

    // group-0 (users 0, 2 and 4) loses a member, so the next sync sends it and finds it gone; group-new is created in
    // the same page.
    await removeMember(testDb.db, groups[0]!.id, users[0]!.id);
    await createGroup(testDb.db, { name: 'group-new', attributes: {}, members: [users[1]!.id] });
    const { report } = await engine.fullSync(provider);

    const remoteUserIds = new Map((await target.users()).map((u) => [u.userName, u.id]));
    const remoteIdsOf = (indexes: number[]) => indexes.map((i) => remoteUserIds.get(users[i]!.username)).sort();
    const remoteGroups = await target.groups();
    const membersOf = (name: string) =>
      remoteGroups
        .find((g) => g.displayName === name)
        ?.members?.map((m) => m.value)
        .sort();
    assert.deepEqual(remoteGroups.map((g) => g.displayName).sort(), ['group-0', 'group-1', 'group-new']);
    assert.deepEqual(membersOf('group-0'), remoteIdsOf([2, 4]), 'the group created again has all its members');
    assert.deepEqual(membersOf('group-new'), remoteIdsOf([1]));
    assert.deepEqual(membersOf('group-1'), remoteIdsOf([1, 3, 5]));
    assert.equal(report.created, 2);
    assert.equal(report.failed, 0);

    await target.resetLog();
    await engine.fullSync(provider);
    assert.equal(await target.writes(), 0, 'what was sent is known: a resync writes nothing');
  });

  for (const mode of ['delete', 'deactivate', 'leave'] as const) {
    test(`deleting a user in the directory ${mode === 'leave' ? 'leaves it on' : `${mode}s it on`} the target (mode ${mode})`, async (t) => {
      const { testDb, engine, target, newProvider } = await world(t);
      const { users } = await seedDirectory(testDb, 5, 1);
      const provider = await newProvider({ deprovision: mode });
      await engine.fullSync(provider);

      await deleteUser(testDb.db, users[0]!.id);
      const { report } = await engine.fullSync(provider);

      const remote = (await target.users()).find((u) => u.userName === users[0]!.username);
      const group = (await target.groups())[0]!;
      if (mode === 'delete') {
        assert.equal(remote, undefined);
        assert.equal(report.deleted, 1);
      } else if (mode === 'deactivate') {
        assert.equal(remote?.active, false);
        assert.equal(report.deleted, 1);
      } else {
        assert.equal(remote?.active, true);
        assert.equal(report.deleted, 0);
      }
      if (mode !== 'delete') assert.ok(!group.members?.some((m) => m.value === remote?.id), 'the user left its groups');
      assert.equal(group.members?.length, 4);
      await target.resetLog();
      await engine.fullSync(provider);
      assert.equal(await target.writes(), 0, 'deprovisioning is not repeated');
    });
  }

  test('a run asks for deprovisioning pages only of a type with something to remove, and plans no phase apart', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    const { users } = await seedDirectory(testDb, 5, 2);
    const provider = await newProvider();
    const activitiesOf = async (workflowId: string): Promise<string[]> => {
      const history = await engine.client.workflow.getHandle(workflowId).fetchHistory();
      return (history.events ?? []).flatMap((event) => {
        const name = event.activityTaskScheduledEventAttributes?.activityType?.name;
        return name ? [name] : [];
      });
    };

    const first = await engine.fullSync(provider);
    assert.equal(first.report.created, 7);
    const firstActivities = await activitiesOf(first.workflowId);
    assert.equal(firstActivities.filter((name) => name === 'prepareRemovals').length, 1);
    assert.deepEqual(
      firstActivities.filter((name) => ['deprovisionPage', 'retryUnfinished', 'checkDeletionGuard'].includes(name)),
      [],
      'nothing was out of scope: no page, and the retry pass and guard were part of prepareRemovals',
    );
    assert.deepEqual(
      firstActivities.filter((name) => ['planRanges', 'finishFullSync'].includes(name)),
      [],
      'both phases were planned with the run, and prepareRemovals closed it',
    );
    const firstRun = await getRun(testDb.db, first.runId);
    assert.equal(firstRun.status, 'succeeded');
    assert.equal(firstRun.created, 7);
    assert.ok(firstRun.finishedAt, 'the run has its end time');

    await deleteUser(testDb.db, users[0]!.id);
    const second = await engine.fullSync(provider);
    assert.equal(second.report.deleted, 1);
    assert.deepEqual(
      (await target.users()).map((u) => u.userName).sort(),
      users
        .slice(1)
        .map((u) => u.username)
        .sort(),
    );
    assert.equal((await target.groups()).length, 2, 'no group was out of scope, and none was removed');
    assert.equal(
      (await activitiesOf(second.workflowId)).filter((name) => name === 'deprovisionPage').length,
      1,
      'one page of users, none of groups',
    );
    assert.equal(
      (await activitiesOf(second.workflowId)).filter((name) => name === 'finishFullSync').length,
      1,
      'a run that removed something is closed after its removals',
    );
    assert.equal((await getRun(testDb.db, second.runId)).status, 'succeeded');
  });

  test('a user that already exists on the target is adopted, not duplicated', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    const { users } = await seedDirectory(testDb, 4, 1);
    const existing = await target.seedUser({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: users[1]!.username,
      displayName: 'Stale name',
      active: true,
    });
    const provider = await newProvider();

    const { report, runId } = await engine.fullSync(provider);

    const remoteUsers = await target.users();
    assert.equal(remoteUsers.length, 4);
    const adopted = remoteUsers.filter((u) => u.userName === users[1]!.username);
    assert.equal(adopted.length, 1);
    assert.equal(adopted[0]!.id, existing.id);
    assert.equal(adopted[0]!.displayName, 'User 1');
    assert.equal(report.created, 4, '3 users and 1 group were created');
    assert.equal(report.updated, 1, 'the existing user was adopted and updated');
    const { rows } = await testDb.db.query<{ action: string }>(
      'SELECT action FROM sync_events WHERE run_id = $1 AND local_id = $2',
      [runId, users[1]!.id],
    );
    assert.deepEqual(
      rows.map((r) => r.action),
      ['adopt'],
    );
  });

  /**
   * Six users and a group, two of the users already on the target (one by externalId, one by userName): syncs them
   * and checks that exactly those two were adopted and the rest created. Returns the user lookups the target saw.
   */
  async function syncAdoptingTwo(w: Awaited<ReturnType<typeof world>>) {
    const { testDb, engine, target, newProvider } = w;
    const { users } = await seedDirectory(testDb, 6, 1);
    const byExternalId = await target.seedUser({
      userName: 'someone.else@example.test',
      externalId: stableUid(users[2]!.id),
      active: true,
    });
    const byUserName = await target.seedUser({ userName: users[4]!.username, displayName: 'Stale name', active: true });
    const provider = await newProvider();

    const { report, runId } = await engine.fullSync(provider);

    assert.equal((await target.requests()).filter((r) => r.method === 'POST' && r.path === '/Users').length, 4);
    const remoteUsers = await target.users();
    assert.equal(remoteUsers.length, 6, 'no duplicates');
    assert.equal(remoteUsers.find((u) => u.id === byExternalId.id)?.userName, users[2]!.username);
    assert.equal(remoteUsers.find((u) => u.id === byUserName.id)?.displayName, 'User 4');
    assert.equal(report.created, 5, '4 users and the group');
    assert.equal(report.updated, 2);
    const { rows } = await testDb.db.query<{ local_id: string }>(
      `SELECT local_id FROM sync_events WHERE run_id = $1 AND action = 'adopt'`,
      [runId],
    );
    assert.deepEqual(rows.map((r) => r.local_id).sort(), [users[2]!.id, users[4]!.id].sort());
    return (await target.requests()).filter((r) => r.method === 'GET' && r.path === '/Users');
  }

  test('unlinked users are looked up together with one combined filter, and the ones the target has are adopted', async (t) => {
    const lookups = await syncAdoptingTwo(await world(t));

    assert.equal(lookups.length, 1, 'one lookup for the whole batch');
    assert.match(String(lookups[0]!.query['filter']), / or /);
  });

  test('a plugin without a batch lookup gets one lookup per user, and the ones the target has are adopted', async (t) => {
    const perObject: ProvisioningPlugin<Scim2Options> = { ...createScim2Plugin() };
    delete perObject.findUsers;
    delete perObject.findGroups;

    const lookups = await syncAdoptingTwo(await world(t, {}, new Map([[perObject.id, perObject]])));

    assert.ok(!lookups.some((r) => String(r.query['filter']).includes(' or ')), 'no combined filter');
    // externalId, then userName, for each user but the one found by its externalId.
    assert.equal(lookups.length, 11);
  });

  test('a target that rejects the combined filter gets one lookup per user instead, and still no duplicates', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    const { users } = await seedDirectory(testDb, 10, 1);
    const existing = await target.seedUser({ userName: users[8]!.username, active: true });
    await target.failNext({
      method: 'GET',
      pathPrefix: '/Users',
      status: 400,
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
        status: '400',
        scimType: 'invalidFilter',
        detail: 'or is not supported',
      },
    });
    // One batch of users, so a second batch cannot have sent its combined filter before the refusal came back.
    const provider = await newProvider({ pageSize: 20 });

    const { report } = await engine.fullSync(provider);

    assert.equal(report.status, 'succeeded');
    assert.equal(report.failed, 0);
    const lookups = (await target.requests()).filter((r) => r.method === 'GET' && r.path === '/Users');
    const combined = lookups.filter((r) => String(r.query['filter']).includes(' or '));
    assert.deepEqual(
      combined.map((r) => r.status),
      [400],
      'the combined filter is tried once, and not again after its refusal',
    );
    assert.ok(lookups.length > 10, `each user was then looked up alone (${lookups.length} lookups)`);
    const remoteUsers = await target.users();
    assert.equal(remoteUsers.length, 10, 'no duplicates');
    assert.equal(
      remoteUsers.filter((u) => u.userName === users[8]!.username)[0]?.id,
      existing.id,
      'the existing user was adopted',
    );
    assert.equal(report.created, 10, '9 users and the group');
    assert.equal(report.updated, 1);
  });

  test('a batch retried after a 500 creates each of its users exactly once', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    const { users } = await seedDirectory(testDb, 12, 1);
    await target.failNext({
      method: 'POST',
      pathPrefix: '/Users',
      match: { userName: users[5]!.username },
      status: 500,
    });
    const provider = await newProvider({ pageSize: 20 });

    const { report } = await engine.fullSync(provider);

    assert.equal(report.status, 'succeeded');
    assert.equal(report.failed, 0);
    const posts = (await target.requests()).filter((r) => r.method === 'POST' && r.path === '/Users');
    assert.deepEqual(
      posts.map((r) => r.status).sort(),
      [...Array<number>(12).fill(201), 500],
      'the users created before the 500 were not sent again',
    );
    assert.equal((await target.users()).length, 12);
    assert.equal(report.created, 13, '12 users and the group');
  });

  test('a user the target rejects with 400 is reported failed while every other object syncs', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    const { users } = await seedDirectory(testDb, 9, 1);
    await target.failNext({
      method: 'POST',
      pathPrefix: '/Users',
      match: { userName: users[4]!.username },
      status: 400,
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
        status: '400',
        scimType: 'invalidValue',
        detail: 'title is required',
      },
      times: 100,
    });
    const provider = await newProvider();

    const { report } = await engine.fullSync(provider);

    assert.equal(report.status, 'succeeded');
    assert.equal(report.failed, 1);
    assert.equal(report.created, 9, '8 users and the group');
    assert.equal((await target.users()).length, 8);
    const { rows } = await testDb.db.query<{
      status: string;
      last_error: { code: string; details: { detail?: string } };
    }>(`SELECT status, last_error FROM provider_links WHERE provider_id = $1 AND local_id = $2`, [
      provider.id,
      users[4]!.id,
    ]);
    assert.equal(rows[0]?.status, 'failed');
    assert.equal(rows[0]?.last_error.code, 'ERR_SCIM_BAD_REQUEST');
    assert.match(JSON.stringify(rows[0]?.last_error), /title is required/);
  });

  // The retry after a 429 comes no sooner than the target asked, and later than the activity's own backoff would.
  for (const form of ['delay-seconds', 'HTTP-date'] as const) {
    test(`a target answering 429 with Retry-After (${form}) is waited out for as long as it asks, and the sync completes`, async (t) => {
      const { testDb, engine, target, newProvider } = await world(t);
      await seedDirectory(testDb, 5, 1);
      // Three seconds: longer than any retry interval of the sync's activities, so only Retry-After explains it.
      const waitMs = 3_000;
      // The HTTP-date (whole seconds) is set before the sync starts, with room for the creates before the 429.
      const retryAt = new Date(Date.now() + waitMs + 2_000);
      const retryAfter = form === 'delay-seconds' ? String(waitMs / 1000) : retryAt.toUTCString();
      await target.failNext({
        method: 'POST',
        pathPrefix: '/Users',
        status: 429,
        headers: { 'Retry-After': retryAfter },
      });
      const provider = await newProvider({ concurrency: 1 });

      const { report } = await engine.fullSync(provider);

      assert.equal(report.status, 'succeeded');
      assert.equal(report.failed, 0);
      assert.equal((await target.users()).length, 5);
      const posts = (await target.requests()).filter((r) => r.method === 'POST' && r.path === '/Users');
      const throttled = posts.findIndex((r) => r.status === 429);
      assert.ok(throttled >= 0 && posts.filter((r) => r.status === 429).length === 1, 'one 429 answered');
      // The retry of the throttled create (the other users' creates need not wait: they were not throttled).
      const userName = (posts[throttled]!.body as { userName: string }).userName;
      const retried = posts.slice(throttled + 1).find((r) => (r.body as { userName: string }).userName === userName);
      assert.ok(retried, 'the throttled create was sent again');
      // The date names a whole second: the target asked to wait until then, however late the 429 came.
      const notBefore = form === 'delay-seconds' ? posts[throttled]!.at + waitMs : Date.parse(retryAfter);
      const gap = retried.at - posts[throttled]!.at;
      assert.ok(
        retried.at >= notBefore,
        `the retried create came ${gap} ms after the 429, ${notBefore - retried.at} ms sooner than the target asked`,
      );
    });
  }

  test('a wrong token fails the run at once with a clear, non-retrying error', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    await seedDirectory(testDb, 3, 1);
    const provider = await newProvider({ auth: { mode: 'bearer', token: 'not-the-right-token' } });

    const { runId, workflowId } = await engine.control.requestFullSync(provider);
    const failure = await engine.client.workflow
      .getHandle(workflowId)
      .result()
      .then(
        () => assert.fail('the workflow should fail'),
        (error: unknown) => error,
      );
    assert.ok(failure instanceof WorkflowFailedError);
    assert.match(String(failure.cause?.message), /401/);

    const { rows } = await testDb.db.query<{ status: string; error: { code: string } }>(
      'SELECT status, error FROM sync_runs WHERE id = $1',
      [runId],
    );
    assert.equal(rows[0]?.status, 'failed');
    assert.equal(rows[0]?.error.code, 'ERR_SCIM_UNAUTHORIZED');
    // Discovery asks for its two documents at once: each is refused once, and neither is asked for again.
    const unauthorized = (await target.requests()).filter((r) => r.status === 401).map((r) => `${r.method} ${r.path}`);
    assert.ok(unauthorized.length > 0);
    assert.equal(new Set(unauthorized).size, unauthorized.length, 'a 401 is not retried');
  });

  test('secrets never appear in the workflow history', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t);
    await seedDirectory(testDb, 4, 1);
    const provider = await newProvider();
    const { workflowId } = await engine.fullSync(provider);

    const history = await engine.client.workflow.getHandle(workflowId).fetchHistory();
    const text = historyText(history);
    assert.ok(text.includes(provider.id), 'payloads were decoded: the provider id (an input) is readable');
    assert.ok(!text.includes(target.token), 'the bearer token is not in the history');
    assert.ok(!text.includes(Buffer.from(target.token).toString('base64')), 'nor base64-encoded');
    assert.ok(!text.includes('user1@example.test'), 'no user data in the history either');
  });

  test('a Users-only target gets users and no group requests', async (t) => {
    const { testDb, engine, target, newProvider } = await world(t, { groups: false });
    await seedDirectory(testDb, 5, 2);
    const provider = await newProvider();

    const { report } = await engine.fullSync(provider);

    assert.equal(report.status, 'succeeded');
    assert.equal(report.created, 5);
    assert.equal((await target.users()).length, 5);
    assert.ok(!(await target.requests()).some((r) => r.path.includes('/Groups')));
  });
});
