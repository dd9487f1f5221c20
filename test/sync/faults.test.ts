import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type { createTestDatabase } from '../support/db.ts';
import { attachMappings, countOutOfScopeRemote, createMapping, deleteUser, updateProvider } from '../../db/index.ts';
import { seedDirectory as seedDirectoryOf } from '../support/directory.ts';
import { startFaultWorld as world } from '../support/fault-world.ts';
import type { ProviderInput } from '../../db/index.ts';
import type { startScimTarget } from '../servers/index.ts';

type TestDb = Awaited<ReturnType<typeof createTestDatabase>>;

/** Seeds the directory of a test's database (see support/directory.ts). */
function seedDirectory(testDb: TestDb, users: number, groups: number) {
  return seedDirectoryOf(testDb.db, users, groups);
}

/** How many links of the provider have each status. */
async function linkStatuses(testDb: TestDb, providerId: string): Promise<Record<string, number>> {
  const { rows } = await testDb.db.query<{ status: string; n: string }>(
    'SELECT status, count(*) AS n FROM provider_links WHERE provider_id = $1 GROUP BY status ORDER BY status',
    [providerId],
  );
  return Object.fromEntries(rows.map((row) => [row.status, Number(row.n)]));
}

/** Asserts the target holds exactly the directory: each user once, each group once with exactly its members. */
async function assertExactState(
  target: Awaited<ReturnType<typeof startScimTarget>>,
  directory: Awaited<ReturnType<typeof seedDirectory>>,
): Promise<void> {
  const remoteUsers = await target.users();
  const userNames = remoteUsers.map((u) => u.userName).sort();
  assert.deepEqual(userNames, directory.users.map((u) => u.username).sort(), 'each user exactly once');
  const idByUserName = new Map(remoteUsers.map((u) => [u.userName, u.id]));
  const remoteGroups = await target.groups();
  assert.deepEqual(
    remoteGroups.map((g) => g.displayName).sort(),
    directory.groups.map((g) => g.name).sort(),
    'each group exactly once',
  );
  const count = directory.groups.length;
  for (const [g, group] of directory.groups.entries()) {
    const remote = remoteGroups.find((rg) => rg.displayName === group.name)!;
    const expected = directory.users
      .filter((_, i) => i % count === g)
      .map((u) => idByUserName.get(u.username))
      .sort();
    assert.deepEqual(remote.members?.map((m) => m.value).sort(), expected, `members of ${group.name}`);
  }
}

/** Asserts the target holds each directory user but `missing`, once. */
async function assertUsersBut(
  target: Awaited<ReturnType<typeof startScimTarget>>,
  directory: Awaited<ReturnType<typeof seedDirectory>>,
  missing: string,
  message?: string,
): Promise<void> {
  assert.deepEqual(
    (await target.users()).map((u) => u.userName).sort(),
    directory.users
      .map((u) => u.username)
      .filter((name) => name !== missing)
      .sort(),
    message,
  );
}

describe('a full sync through a faulty network', () => {
  test('300 users and 12 groups reach the exact state through 10 % 5xx, 5 % 429 and 5 % resets, with nothing failed', async (t) => {
    const { testDb, engine, target, proxy, newProvider } = await world(t, {
      seed: 11,
      rates: { serverError: 0.1, rateLimited: 0.05, resetBefore: 0.025, resetAfter: 0.025, slow: 0.02 },
      retryAfter: { seconds: 1, format: 'both' },
      slowMs: 100,
    });
    const directory = await seedDirectory(testDb, 300, 12);
    const provider = await newProvider({ pageSize: 50, concurrency: 4 });

    const started = performance.now();
    const { report } = await engine.fullSync(provider);
    t.diagnostic(
      `exact state in ${Math.round(performance.now() - started)} ms; faults ${JSON.stringify(proxy.counts())}`,
    );

    assert.equal(report.status, 'succeeded');
    const { rows: failures } = await testDb.db.query(
      `SELECT object_type, last_error FROM provider_links WHERE provider_id = $1 AND status = 'failed'`,
      [provider.id],
    );
    assert.equal(report.failed, 0, `no object is failed for a transient fault: ${JSON.stringify(failures)}`);
    assert.equal(report.retrying, 0);
    // A create whose answer was lost is found on its retry: counted as a create, or as an update when it was written again.
    assert.equal(report.created + report.updated, 312);
    await assertExactState(target, directory);
    assert.deepEqual(await linkStatuses(testDb, provider.id), { ok: 312 });
    // The faults happened, every kind of them, so the run above converged through them.
    const faults = proxy.counts();
    for (const kind of ['server-error', 'rate-limited', 'reset-before', 'reset-after', 'slow'] as const) {
      assert.ok(faults[kind] > 0, `some requests got ${kind}`);
    }
  });

  test('an object whose failures outlast its retry budget is recorded retrying, not failed; the next sync brings it', async (t) => {
    const stubborn = (body: string, path: string): boolean => decodeURIComponent(`${path} ${body}`).includes('user3@');
    const { testDb, engine, target, proxy, newProvider } = await world(
      t,
      { rates: { serverError: 1 }, applies: ({ path, body }) => stubborn(body, path) },
      { targets: { retry: { retries: 3, baseDelayMs: 5, maxDelayMs: 20 } } },
    );
    const directory = await seedDirectory(testDb, 8, 2);
    const provider = await newProvider({ pageSize: 50, concurrency: 2 });

    const first = await engine.fullSync(provider);
    assert.equal(first.report.status, 'succeeded', 'one object cannot fail the run');
    assert.equal(first.report.failed, 0);
    assert.equal(first.report.retrying, 1);
    await assertUsersBut(target, directory, 'user3@example.test');
    const { rows } = await testDb.db.query<{ status: string; last_error: { code: string } }>(
      `SELECT status, last_error FROM provider_links WHERE provider_id = $1 AND local_id = $2`,
      [provider.id, directory.users[3]!.id],
    );
    assert.equal(rows[0]?.status, 'retrying');
    assert.equal(rows[0]?.last_error.code, 'ERR_SCIM_SERVER');
    // 1 + 3 attempts each in the batch lookup, the object's own lookup and the batch's retry pass, then the same in
    // the run's retry pass: every budget holds.
    assert.equal(proxy.requests().filter((r) => stubborn('', r.path)).length, 24);

    proxy.setRates({});
    const second = await engine.fullSync(provider);
    assert.equal(second.report.retrying, 0);
    await assertExactState(target, directory);
    assert.deepEqual(await linkStatuses(testDb, provider.id), { ok: 10 });
  });

  /**
   * 8 users in 2 groups, user3's create applied by the target and every later request about it (its retries, its
   * lookups by name or externalId) cut after the target answered: after the first full sync user3 is on the target,
   * unknown to scimflow but for the payload its `creating` link kept, and left retrying.
   */
  async function lostCreateWorld(t: TestContext, provider: Partial<ProviderInput> = {}) {
    let externalId: string | undefined;
    let seen = 0;
    const aboutUser3 = ({ path, body }: { path: string; body: string }): boolean => {
      if (body.includes('"user3@')) externalId ??= (JSON.parse(body) as { externalId: string }).externalId;
      const text = decodeURIComponent(`${path} ${body}`);
      return (text.includes('user3@') || (externalId !== undefined && text.includes(externalId))) && (seen += 1) > 1;
    };
    const w = await world(
      t,
      { rates: { resetAfter: 1 }, applies: aboutUser3 },
      { targets: { retry: { retries: 2, baseDelayMs: 5, maxDelayMs: 20 } } },
    );
    const directory = await seedDirectory(w.testDb, 8, 2);
    const created = await w.newProvider({ pageSize: 50, concurrency: 2, ...provider });
    const first = await w.engine.fullSync(created);
    assert.equal(first.report.retrying, 1, 'user3 is left retrying');
    assert.ok(
      (await w.target.users()).some((u) => u.userName === 'user3@example.test'),
      'the target applied the create whose answer never came',
    );
    assert.ok(w.proxy.requests().some((r) => r.method === 'POST' && r.fault === 'reset-after'));
    return { ...w, directory, provider: created };
  }

  test('a create whose answer was lost, for a user deleted before any retry got through, is removed from the target', async (t) => {
    const { testDb, engine, target, proxy, directory, provider } = await lostCreateWorld(t);

    // user3 leaves the directory before any retry reached the target; the network heals.
    await deleteUser(testDb.db, directory.users[3]!.id);
    assert.equal(
      await countOutOfScopeRemote(testDb.db, provider.scope, provider.id),
      1,
      'the deletion guard counts it among what a sync may remove',
    );
    proxy.setRates({});
    const second = await engine.fullSync(provider);
    assert.equal(second.report.status, 'succeeded');
    assert.equal(second.report.deleted, 1);
    await assertUsersBut(target, directory, 'user3@example.test', 'no account is left for a create never answered');
    assert.deepEqual(await linkStatuses(testDb, provider.id), { ok: 9 });
  });

  test('a create whose answer was lost, for a user a mapping skips before any retry got through, is removed through the guard', async (t) => {
    const { testDb, engine, target, proxy, directory, provider } = await lostCreateWorld(t, { deletionLimit: 0 });

    // A mapping now skips user3; the network heals.
    const mapping = await createMapping(testDb.db, {
      name: 'skip-user3',
      objectType: 'user',
      expression: `if (user.username === 'user3@example.test') throw new SkipObject('left'); return null;`,
    });
    await attachMappings(testDb.db, provider.id, [mapping.id]);
    proxy.setRates({});
    await assert.rejects(engine.fullSync(provider), (error: Error) =>
      /would delete 1 remote objects?, more than its deletion limit of 0/.test(
        JSON.stringify(error.cause ?? error.message),
      ),
    );
    assert.ok(
      (await target.users()).some((u) => u.userName === 'user3@example.test'),
      'held by the guard',
    );
    await updateProvider(testDb.db, engine.secrets, provider.id, { deletionLimit: 1 });
    const second = await engine.fullSync(provider);
    assert.equal(second.report.status, 'succeeded');
    assert.equal(second.report.deleted, 1, 'the remote user its create made is removed');
    await assertUsersBut(target, directory, 'user3@example.test', 'no account is left for a create never answered');
    const third = await engine.fullSync(provider);
    assert.deepEqual([third.report.deleted, third.report.created], [0, 0]);
    assert.deepEqual(await linkStatuses(testDb, provider.id), { ok: 9, skipped: 1 });
  });

  test('a create whose answer was lost is found on its retry and not written again: one create, no update', async (t) => {
    // user3's first POST is applied by the target and its answer cut; nothing else fails.
    let cut = 0;
    const firstCreateOfUser3 = ({ method, body }: { method: string; body: string }): boolean =>
      method === 'POST' && body.includes('"user3@') && (cut += 1) === 1;
    const { testDb, engine, target, proxy, newProvider } = await world(t, {
      rates: { resetAfter: 1 },
      applies: firstCreateOfUser3,
    });
    const directory = await seedDirectory(testDb, 8, 2);
    const provider = await newProvider({ pageSize: 50, concurrency: 2 });

    const { report } = await engine.fullSync(provider);
    assert.equal(report.status, 'succeeded');
    assert.deepEqual(proxy.counts()['reset-after'], 1, 'the one create was cut after the target applied it');
    await assertExactState(target, directory);
    const user3 = (await target.users()).find((u) => u.userName === 'user3@example.test')!;
    assert.deepEqual(
      proxy.requests().filter((r) => r.path.startsWith(`/Users/${user3.id}`)),
      [],
      'the user found with the content it was created with gets no PUT',
    );
    assert.deepEqual([report.created, report.updated, report.failed], [10, 0, 0], 'counted as the create it was');
    assert.deepEqual(await linkStatuses(testDb, provider.id), { ok: 10 });
  });

  test("a page's lookup kept waiting by a 429 holds back only the objects of its part: the others are created meanwhile", async (t) => {
    // 60 users in one page are looked up in two parts (50 and 10); the first part's lookup to arrive is told to wait 2 s.
    let lookups = 0;
    const firstLookup = ({ method, path }: { method: string; path: string }): boolean =>
      method === 'GET' && path.startsWith('/Users?') && (lookups += 1) === 1;
    const { testDb, engine, target, proxy, newProvider } = await world(t, {
      rates: { rateLimited: 1 },
      retryAfter: { seconds: 2, format: 'seconds' },
      applies: firstLookup,
    });
    const directory = await seedDirectory(testDb, 60, 1);
    const provider = await newProvider({ pageSize: 100, concurrency: 2 });

    const { report } = await engine.fullSync(provider);
    assert.equal(report.status, 'succeeded');
    await assertExactState(target, directory);
    // In arrival order; a create's subject is its userName, a lookup's its path.
    const requests = proxy.timings();
    const named = (path: string): string[] =>
      [...decodeURIComponent(path).matchAll(/userName eq "([^"]+)"/g)].map((match) => match[1]!);
    const waited = requests.find((r) => r.fault === 'rate-limited')!;
    const held = new Set(named(waited.path));
    const retried = requests.find(
      (r) => r !== waited && r.method === 'GET' && named(r.path)[0] === named(waited.path)[0],
    )!;
    const createdMeanwhile = requests
      .filter((r) => r.method === 'POST' && r.path === '/Users' && r.arrivedMs < retried.arrivedMs)
      .map((r) => r.subject);
    const others = directory.users.map((u) => u.username).filter((name) => !held.has(name));
    assert.ok(held.size === 50 || held.size === 10, `the lookup that waited was one part: ${held.size} users`);
    assert.deepEqual(createdMeanwhile.sort(), others.sort(), "the other part's users were created while it waited");
  });

  /**
   * 8 users in 2 groups, the first 14 requests for user3 failing: its batch spends 12 of them, the run's retry pass
   * 2 more, then it works (and its group is sent again for it). `faulted` counts the requests for user3.
   */
  async function retryPassWorld(t: TestContext) {
    const counted = { faulted: 0 };
    const stubborn = ({ path, body }: { path: string; body: string }): boolean =>
      decodeURIComponent(`${path} ${body}`).includes('user3@') && (counted.faulted += 1) <= 14;
    const w = await world(
      t,
      { rates: { serverError: 1 }, applies: stubborn },
      { targets: { retry: { retries: 3, baseDelayMs: 5, maxDelayMs: 20 } } },
    );
    const directory = await seedDirectory(w.testDb, 8, 2);
    const provider = await w.newProvider({ pageSize: 50, concurrency: 2 });
    return { ...w, directory, provider, faulted: () => counted.faulted };
  }

  test("an object whose failures outlast its budget and the batch's retry pass, then stop, is brought by the run's retry pass", async (t) => {
    const { testDb, engine, target, directory, provider, faulted } = await retryPassWorld(t);

    const { report } = await engine.fullSync(provider);
    assert.equal(report.status, 'succeeded');
    assert.deepEqual([report.retrying, report.failed], [0, 0]);
    assert.ok(faulted() > 14, 'the faults happened');
    // Counted once each: the retry pass does not process user3 a second time.
    assert.deepEqual([report.processed, report.created + report.updated], [10, 10]);
    await assertExactState(target, directory);
    assert.deepEqual(await linkStatuses(testDb, provider.id), { ok: 10 });
  });

  test("a group the run's retry pass sends again for a member it brought, and the target then refuses, is counted once: failed", async (t) => {
    const { testDb, engine, target, directory, provider, faulted } = await retryPassWorld(t);
    // New groups are created with their members in one POST; only that second sending changes a group, and the
    // target refuses it for good.
    for (const method of ['PATCH', 'PUT']) {
      await target.failNext({ method, pathPrefix: '/Groups', status: 400, times: 100 });
    }

    const { report } = await engine.fullSync(provider);
    assert.equal(report.status, 'succeeded');
    assert.ok(faulted() > 14, 'user3 was left for the retry pass');
    const group = directory.groups[1]!;
    const { rows } = await testDb.db.query<{ status: string }>(
      'SELECT status FROM provider_links WHERE provider_id = $1 AND local_id = $2',
      [provider.id, group.id],
    );
    assert.equal(rows[0]?.status, 'failed', "the group's second sending was refused");
    // Ten objects, one outcome each: the refused group is failed and not also created.
    assert.deepEqual(
      [report.processed, report.created + report.updated, report.failed, report.retrying, report.unchanged],
      [10, 9, 1, 0, 0],
    );
  });

  test('a target that only fails opens the breaker and fails the run with ERR_SCIM_UNAVAILABLE, not a retry storm', async (t) => {
    const { testDb, engine, proxy, newProvider } = await world(
      t,
      { rates: { serverError: 1 }, applies: ({ path }) => path.startsWith('/Users') },
      { targets: { retry: { baseDelayMs: 20, maxDelayMs: 100 }, breaker: { openAfterMs: 300, cooldownMs: 60_000 } } },
    );
    await seedDirectory(testDb, 40, 0);
    const provider = await newProvider({ pageSize: 50, concurrency: 4 });
    await assert.rejects(engine.fullSync(provider));
    const { rows } = await testDb.db.query<{ status: string; error: { code: string } }>(
      'SELECT status, error FROM sync_runs WHERE provider_id = $1',
      [provider.id],
    );
    assert.deepEqual(
      rows.map((r) => [r.status, r.error.code]),
      [['failed', 'ERR_SCIM_UNAVAILABLE']],
    );
    // Once open, the breaker answers without asking the target: far fewer requests than 40 objects' budgets.
    assert.ok(proxy.requests().length < 40 * 9, `${proxy.requests().length} requests`);
  });
});

describe('cancellation', () => {
  test('a killed activity attempt stops sending: its worker stops with the batch half done', async (t) => {
    const { testDb, engine, target, proxy, newProvider } = await world(
      t,
      { rates: { slow: 1 }, slowMs: 150 },
      { shutdownGraceTime: '100 milliseconds' },
    );
    await seedDirectory(testDb, 60, 0);
    const provider = await newProvider({ pageSize: 60, concurrency: 2 });
    const sync = engine.fullSync(provider).catch(() => undefined);
    while (proxy.requests().filter((r) => r.method === 'POST').length < 4) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // The worker shuts down: after its grace time it cancels the running batch, and returns once that has ended.
    await engine.shutdown();
    const sent = proxy.requests().length;
    const created = (await target.users()).length;
    assert.ok(created < 60, `the batch stopped early (${created} of 60 created)`);
    // Nothing is sent once the attempt is over: the log is what it was when the worker returned.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(proxy.requests().length, sent);
    void sync;
  });
});
