import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { createUser, syncHealth, type Db } from '../../db/index.ts';
import { queueDeliver, startOutboxRelay, temporalDeliver } from '../../engine/index.ts';
import type { FaultProxyOptions } from '../servers/index.ts';
import { eventually } from '../incremental/harness.ts';
import { startFaultWorld, type FaultWorldOptions } from '../support/fault-world.ts';

/** A fault world with the outbox relay running: directory changes reach the provider workflow as pushes. */
async function pushWorld(t: TestContext, proxy: Omit<FaultProxyOptions, 'target'>, options: FaultWorldOptions) {
  const world = await startFaultWorld(t, proxy, options);
  const relay = await startOutboxRelay({
    db: world.db,
    deliver: queueDeliver(world.db, temporalDeliver(world.engine.client, world.engine.taskQueue)),
    pollIntervalMs: 200,
  });
  world.stopFirst(() => relay.stop());
  return world;
}

function person(db: Db, name: string) {
  return createUser(db, {
    username: `${name}@x.test`,
    displayName: name,
    email: `${name}@x.test`,
    givenName: name,
    familyName: 'Test',
    active: true,
    kind: 'internal',
    attributes: {},
  });
}

async function linkOf(db: Db, providerId: string, localId: string) {
  const { rows } = await db.query<{ status: string; remote_id: string | null }>(
    'SELECT status, remote_id FROM provider_links WHERE provider_id = $1 AND local_id = $2',
    [providerId, localId],
  );
  return rows[0];
}

async function runsOf(db: Db, providerId: string) {
  const { rows } = await db.query<{ id: string; kind: string; status: string; error: { code: string } | null }>(
    'SELECT id, kind, status, error FROM sync_runs WHERE provider_id = $1 ORDER BY started_at',
    [providerId],
  );
  return rows;
}

describe('incremental pushes through a faulty network', () => {
  test('an object a push left retrying goes again with the next push, before any full sync', async (t) => {
    let stuck = true;
    const { db, target, newProvider } = await pushWorld(
      t,
      { rates: { serverError: 1 }, applies: ({ path, body }) => stuck && `${path} ${body}`.includes('stuck') },
      { targets: { retry: { retries: 2, baseDelayMs: 5, maxDelayMs: 20 } } },
    );
    const provider = await newProvider();
    const first = await person(db, 'stuck');
    await eventually('the push to leave it retrying', async () =>
      (await linkOf(db, provider.id, first.id))?.status === 'retrying' ? true : undefined,
    );

    stuck = false;
    await person(db, 'next');
    await eventually('both users on the target', async () => ((await target.users()).length === 2 ? true : undefined));
    // The target answers the POST before the link is written: the link turns ok just after, not with the response.
    await eventually('the retried user linked ok', async () =>
      (await linkOf(db, provider.id, first.id))?.status === 'ok' ? true : undefined,
    );
    // A push created it (its events are written when that push's batch ends): the one that brought the next change,
    // or one that started just before that change was queued (seen once on a clean-clone run), never a full sync.
    const runs = await eventually('the create event of the retried user', async () => {
      const { rows: created } = await db.query<{ kind: string }>(
        `SELECT r.kind FROM sync_events e JOIN sync_runs r ON r.id = e.run_id
         WHERE e.local_id = $1 AND e.action IN ('create', 'adopt')`,
        [first.id],
      );
      return created.length > 0 ? created : undefined;
    });
    assert.deepEqual(
      runs.map((run) => run.kind),
      ['incremental'],
    );
    assert.ok(
      (await runsOf(db, provider.id)).every((run) => run.kind === 'incremental'),
      'no full sync ran',
    );
  });

  test('a full sync asked for while a push keeps retrying starts at once: the push gives way and the full sync converges', async (t) => {
    let down = true;
    const { db, engine, target, proxy, newProvider } = await pushWorld(
      t,
      { rates: { serverError: 1 }, applies: ({ method, path }) => down && method === 'POST' && path === '/Users' },
      // A push that would retry for minutes, and a breaker that would not open before.
      {
        targets: {
          retry: { retries: 1000, budgetMs: 600_000, baseDelayMs: 100, maxDelayMs: 300 },
          breaker: { openAfterMs: 600_000, cooldownMs: 600_000 },
        },
      },
    );
    const provider = await newProvider();
    const users = [await person(db, 'first'), await person(db, 'second')];
    await eventually('the push to be retrying its POSTs', () =>
      Promise.resolve(proxy.requests().filter((r) => r.fault === 'server-error').length >= 5 ? true : undefined),
    );

    const ticket = await engine.control.requestFullSync(provider);
    assert.ok(ticket.runId, 'the full sync started while the target still failed');
    const pushes = (await runsOf(db, provider.id)).filter((run) => run.kind === 'incremental');
    assert.deepEqual(
      pushes.map((run) => run.status),
      ['cancelled'],
      'the push gave way',
    );

    down = false;
    const result: unknown = await engine.client.workflow.getHandle(ticket.workflowId).result();
    assert.equal((result as { status: string }).status, 'succeeded');
    assert.deepEqual(
      (await target.users()).map((u) => u.userName).sort(),
      users.map((u) => u.username).sort(),
      'each user once',
    );
    for (const user of users) assert.equal((await linkOf(db, provider.id, user.id))?.status, 'ok');
  });

  test('a full sync asked for during a push starts only once the push has stopped sending: one writer at a time', async (t) => {
    const { db, engine, target, proxy, newProvider } = await pushWorld(
      t,
      // The target never answers the push's create of this user: only the push giving up ends that request.
      { holdFirst: ({ method, path, body }) => method === 'POST' && path === '/Users' && body.includes('held@') },
      {},
    );
    const provider = await newProvider();
    const user = await person(db, 'held');
    await eventually('the push to be waiting for the target', () =>
      Promise.resolve(proxy.requests().some((r) => r.fault === 'held') ? true : undefined),
    );

    const ticket = await engine.control.requestFullSync(provider);
    const result: unknown = await engine.client.workflow.getHandle(ticket.workflowId).result();
    assert.equal((result as { status: string }).status, 'succeeded');
    const requests = proxy.requests();
    const held = requests.find((r) => r.fault === 'held')!;
    assert.ok(held.abandoned !== undefined, 'the cancelled push closed its request');
    assert.deepEqual(
      requests.filter((r) => r.arrived > held.arrived && r.arrived < held.abandoned!),
      [],
      'nothing reached the target while the push still had a request out',
    );
    assert.deepEqual(
      (await runsOf(db, provider.id)).map((run) => [run.kind, run.status]),
      [
        ['incremental', 'cancelled'],
        ['full', 'succeeded'],
      ],
    );
    assert.deepEqual(
      (await target.users()).map((u) => u.userName),
      [user.username],
    );
    assert.equal((await linkOf(db, provider.id, user.id))?.status, 'ok');
  });

  test('a provider whose pushes keep failing shows as stalled until one works again', async (t) => {
    const { db, target, newProvider } = await pushWorld(t, {}, {});
    const provider = await newProvider();
    // The target refuses the next three user creations with 403: each push fails as a whole.
    await target.failNext({ method: 'POST', pathPrefix: '/Users', status: 403, times: 3 });
    for (let i = 0; i < 3; i += 1) {
      await person(db, `refused${i}`);
      await eventually(`push ${i + 1} to fail`, async () =>
        (await runsOf(db, provider.id)).filter((run) => run.status === 'failed').length === i + 1 ? true : undefined,
      );
    }
    const stalled = await syncHealth(db, provider.id);
    assert.equal(stalled.state, 'stalled');
    assert.equal(stalled.failedPushesInARow, 3);
    assert.equal(stalled.lastError?.['code'], 'ERR_SCIM_FORBIDDEN');

    await person(db, 'accepted');
    await eventually('a push to work again', async () =>
      (await runsOf(db, provider.id)).some((run) => run.kind === 'incremental' && run.status === 'succeeded')
        ? true
        : undefined,
    );
    const healthy = await syncHealth(db, provider.id);
    assert.deepEqual([healthy.state, healthy.failedPushesInARow], ['ok', 0]);
    assert.ok((await target.users()).some((u) => u.userName === 'accepted@x.test'));
  });
});

describe("a provider's health", () => {
  test('full syncs that fail make it failing, then stalled, and one that works makes it ok again', async (t) => {
    const { engine, target, newProvider, db } = await startFaultWorld(t, {}, {});
    const provider = await newProvider();
    // The target refuses the next two discoveries with 403: each full sync fails as a whole.
    await target.failNext({ method: 'GET', pathPrefix: '/ServiceProviderConfig', status: 403, times: 2 });

    await assert.rejects(engine.fullSync(provider));
    const failing = await syncHealth(db, provider.id);
    assert.deepEqual([failing.state, failing.failedFullSyncsInARow, failing.failedPushesInARow], ['failing', 1, 0]);
    assert.equal(failing.lastError?.['code'], 'ERR_SCIM_FORBIDDEN');

    await assert.rejects(engine.fullSync(provider));
    const stalled = await syncHealth(db, provider.id);
    assert.deepEqual([stalled.state, stalled.failedFullSyncsInARow], ['stalled', 2]);
    const runs = await runsOf(db, provider.id);
    assert.equal(stalled.failingSince, (await startedAt(db, runs[0]!.id)).toISOString(), 'since the first of them');

    await engine.fullSync(provider);
    const healthy = await syncHealth(db, provider.id);
    assert.deepEqual([healthy.state, healthy.failedFullSyncsInARow, healthy.lastError], ['ok', 0, null]);
  });
});

async function startedAt(db: Db, runId: string): Promise<Date> {
  const { rows } = await db.query<{ started_at: Date }>('SELECT started_at FROM sync_runs WHERE id = $1', [runId]);
  return rows[0]!.started_at;
}
