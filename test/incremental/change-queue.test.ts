import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import type { temporal } from '@temporalio/proto';
import {
  createUser,
  dropTakenChanges,
  queueChanges,
  queuedChanges,
  takeChanges,
  updateUser,
  type DirectoryUser,
} from '../../db/index.ts';
import { providerSyncStartOptions } from '../../engine/index.ts';
import { providerSync, providerSyncWorkflowId } from '../../workflows/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { eventually, incrementalWorld, person } from './harness.ts';

test('a change to an object a push has taken waits for the next push; a retried push takes what it took before', async (t) => {
  const testDb = await createTestDatabase();
  t.after(() => testDb.drop());
  const db = testDb.db;
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO providers (slug, name, base_url) VALUES ('q', 'queue', 'http://127.0.0.1:9/scim') RETURNING id`,
  );
  const providerId = rows[0]!.id;
  const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
  await queueChanges(db, providerId, { userIds: [a, b, a], groupIds: [c] });
  assert.equal(await queuedChanges(db, providerId, 10), 3, 'one row per object');

  const push = randomUUID();
  const taken = await takeChanges(db, providerId, push, 2);
  assert.equal(taken.userIds.length + taken.groupIds.length, 2);
  assert.equal(await queuedChanges(db, providerId, 10), 1, 'taken changes no longer wait');
  const again = await takeChanges(db, providerId, push, 2);
  assert.deepEqual(
    [...again.userIds, ...again.groupIds].sort(),
    [...taken.userIds, ...taken.groupIds].sort(),
    'a retried attempt takes its own changes first',
  );

  // One of the taken objects changes again while the push runs: it must outlive the push's end.
  const changedAgain = taken.userIds[0] ?? taken.groupIds[0]!;
  const kind = taken.userIds.length > 0 ? 'userIds' : 'groupIds';
  await queueChanges(db, providerId, { userIds: [], groupIds: [], [kind]: [changedAgain] });
  await dropTakenChanges(db, push);
  const next = await takeChanges(db, providerId, randomUUID(), 10);
  assert.deepEqual(
    [...next.userIds, ...next.groupIds].sort(),
    [changedAgain, ...[a, b, c].filter((id) => ![...taken.userIds, ...taken.groupIds].includes(id))].sort(),
    'the next push gets the object changed again and the one never taken',
  );
});

test('changes reach the provider workflow through its queue: a stream across continue-as-new sends no signal per change and fails no workflow task', async (t) => {
  const { db, client, taskQueue, target, newProvider } = await incrementalWorld(t);
  const provider = await newProvider();
  const options = providerSyncStartOptions(provider, taskQueue);
  const handle = await client.workflow.start(providerSync, {
    ...options,
    args: [{ ...options.args[0], historyLimit: 30 }],
  });
  const users: DirectoryUser[] = [];
  let changes = 0;
  for (let i = 0; i < 40; i += 1) {
    users.push(await createUser(db, person(i)));
    changes += 1;
    if (i % 4 === 3) {
      await updateUser(db, users[i - 2]!.id, { displayName: `Person ${i - 2} edited` });
      changes += 1;
      await eventually('the batch pushed', async () => ((await target.users()).length === i + 1 ? true : undefined));
    }
  }
  await eventually(
    'every user with its last name',
    async () => {
      const remote = await target.users();
      return users.every(
        (u, i) =>
          remote.find((r) => r.userName === u.username)?.displayName ===
          (i % 4 === 1 ? `Person ${i} edited` : `Person ${i}`),
      )
        ? true
        : undefined;
    },
    30_000,
  );

  let signals = 0;
  let failedTasks = 0;
  let runs = 0;
  let runId: string | undefined = (await handle.describe()).runId;
  while (runId) {
    const history: temporal.api.history.v1.IHistory = await client.workflow
      .getHandle(handle.workflowId, runId)
      .fetchHistory();
    const events: temporal.api.history.v1.IHistoryEvent[] = history.events ?? [];
    runs += 1;
    for (const event of events) {
      if (event.workflowExecutionSignaledEventAttributes?.signalName === 'directoryChanges') signals += 1;
      if (event.workflowTaskFailedEventAttributes) failedTasks += 1;
    }
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
  }
  assert.ok(runs > 1, `the workflow continued as new (${runs} runs)`);
  // The relay signals a provider only to wake it: once when it first delivers, again only if changes sat untaken.
  assert.ok(signals * 10 < changes, `${signals} directoryChanges signals for ${changes} changes`);
  assert.equal(failedTasks, 0, 'no workflow task failed (a signal meeting a continue-as-new fails one)');
});

test("a worker that shuts down ends an idle provider's wait for changes at once instead of holding its grace time", async (t) => {
  const { db, client, target, newProvider, stopWorker, startRelay } = await incrementalWorld(t, {
    shutdownGraceTime: '10 minutes',
    relay: false,
  });
  const relay = await startRelay();
  const provider = await newProvider();
  const user = await createUser(db, person(1));
  await eventually('the user on the target', async () =>
    (await target.users()).find((u) => u.userName === user.username),
  );
  const handle = client.workflow.getHandle(providerSyncWorkflowId(provider.slug));
  await eventually('the provider waiting for changes in an activity', async () => {
    const { raw } = await handle.describe();
    return raw.pendingActivities?.some((a) => a.activityType?.name === 'awaitChanges') ? true : undefined;
  });

  // The relay's own LISTEN connection goes first, so that the pool holds no other.
  await relay.stop();
  // Without the early end, the wait (up to 10 minutes) would hold the shutdown for the whole grace time.
  let timer: NodeJS.Timeout | undefined;
  const held = new Promise<string>((resolve) => (timer = setTimeout(resolve, 60_000, 'held for the grace time')));
  const outcome = await Promise.race([stopWorker().then(() => 'stopped'), held]);
  clearTimeout(timer);
  assert.equal(outcome, 'stopped');
  // The wait's LISTEN connection is back in the pool as the worker stops, not when the wait's poll would have ended.
  assert.equal(db.totalCount - db.idleCount, 0, 'no connection of the pool is still out');
});
