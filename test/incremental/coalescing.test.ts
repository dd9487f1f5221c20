import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import { createUser, importDirectory, updateUser, type DirectoryUser } from '../../db/index.ts';
import { isScimflowError } from '../../errors/index.ts';
import { fullSyncWantedSignal, providerSyncWorkflowId, requestFullSyncUpdate } from '../../workflows/index.ts';
import { gatedProxy } from '../support/gated-proxy.ts';
import { endedRun, eventually, incrementalWorld, person, syncState } from './harness.ts';

/**
 * What the provider workflow's history says: whether a workflow task has completed since the last signal (so the
 * workflow has acted on every change handed to it), and how many `pushChanges` activities are scheduled and not
 * yet closed.
 */
async function writerState(writer: WorkflowHandle) {
  const events = (await writer.fetchHistory()).events ?? [];
  let lastSignal = 0;
  let lastTaskCompleted = 0;
  const open = new Set<number>();
  for (const event of events) {
    const id = Number(event.eventId);
    if (event.workflowExecutionSignaledEventAttributes) lastSignal = id;
    if (event.workflowTaskCompletedEventAttributes) lastTaskCompleted = id;
    if (event.activityTaskScheduledEventAttributes?.activityType?.name === 'pushChanges') open.add(id);
    const closed =
      event.activityTaskCompletedEventAttributes ??
      event.activityTaskFailedEventAttributes ??
      event.activityTaskTimedOutEventAttributes ??
      event.activityTaskCanceledEventAttributes;
    if (closed) open.delete(Number(closed.scheduledEventId));
  }
  return { signalsHandled: lastTaskCompleted > lastSignal, pushesInFlight: open.size };
}

test('changes that arrive while a batch is being pushed go out together in the next batch, one write per object', async (t) => {
  const { db, client, target, newProvider } = await incrementalWorld(t);
  const proxy = await gatedProxy(target.url);
  t.after(async () => {
    proxy.open();
    await proxy.stop();
  });
  const provider = await newProvider({ baseUrl: proxy.url });
  const writer = client.workflow.getHandle(providerSyncWorkflowId(provider.slug));
  const users: DirectoryUser[] = [];
  for (let i = 0; i < 5; i += 1) users.push(await createUser(db, person(i)));
  await eventually('5 users on the target', async () => ((await target.users()).length === 5 ? true : undefined));
  await eventually('every change relayed', async () => {
    const { rows } = await db.query('SELECT 1 FROM outbox WHERE dispatched_at IS NULL');
    return rows.length === 0 ? true : undefined;
  });
  await target.resetLog();

  // The writer is idle: the first change goes out on its own, and its write is held at the proxy.
  proxy.close();
  await updateUser(db, users[0]!.id, { displayName: 'Person 0 v1' });
  await eventually('the first push under way', () => Promise.resolve(proxy.held() === 1 ? true : undefined));

  // Meanwhile every user changes three times, and every change reaches the provider workflow.
  for (let round = 2; round <= 4; round += 1) {
    for (const [i, user] of users.entries()) await updateUser(db, user.id, { displayName: `Person ${i} v${round}` });
  }
  await eventually('every change relayed and seen by the provider workflow', async () => {
    const { rows } = await db.query('SELECT 1 FROM outbox WHERE dispatched_at IS NULL');
    return rows.length === 0 && (await writerState(writer)).signalsHandled ? true : undefined;
  });
  // Had the workflow started a second push on these changes, the task that took them would have scheduled it.
  assert.equal((await writerState(writer)).pushesInFlight, 1, 'one push at a time per provider (one writer)');
  assert.equal(proxy.held(), 1, 'nothing else is written while a push is under way');

  proxy.open();
  await eventually('every user at its last name', async () => {
    const remote = await target.users();
    return users.every((u, i) => remote.find((r) => r.userName === u.username)?.displayName === `Person ${i} v4`)
      ? true
      : undefined;
  });
  const writes = (await target.requests()).filter((r) => r.method !== 'GET');
  // The held write, then the 15 changes coalesced into one write per user.
  assert.equal(writes.length, 1 + users.length, JSON.stringify(writes.map((w) => `${w.method} ${w.path}`)));
});

/** A world whose provider's first full sync (of 3 users) is under way, its writes held at a closed gated proxy. */
async function fullSyncUnderWay(t: TestContext) {
  const world = await incrementalWorld(t, { relay: false });
  const proxy = await gatedProxy(world.target.url);
  t.after(async () => {
    proxy.open();
    await proxy.stop();
  });
  for (let i = 0; i < 3; i += 1) await createUser(world.db, person(i));
  const provider = await world.newProvider({ baseUrl: proxy.url });
  proxy.close();
  const first = await world.control.requestFullSync(provider);
  await eventually('the first full sync under way', () => Promise.resolve(proxy.held() > 0 ? true : undefined));
  return { ...world, proxy, provider, first };
}

test('full-sync requests made while one runs all join one next run, and schedule kicks join it too', async (t) => {
  const { db, client, control, proxy, provider, first } = await fullSyncUnderWay(t);
  const joined = Promise.all(Array.from({ length: 5 }, () => control.requestFullSync(provider)));
  const writer = client.workflow.getHandle(providerSyncWorkflowId(provider.slug));
  for (let i = 0; i < 3; i += 1) await writer.signal(fullSyncWantedSignal);
  proxy.open();

  const tickets = await joined;
  const next = tickets[0]!.runId;
  assert.notEqual(next, first.runId);
  assert.deepEqual(
    tickets.map((ticket) => ticket.runId),
    Array.from({ length: 5 }, () => next),
  );
  assert.equal((await endedRun(db, first.runId)).status, 'succeeded');
  assert.equal((await endedRun(db, next)).status, 'succeeded');
  const { rows } = await db.query(`SELECT id FROM sync_runs WHERE provider_id = $1 AND kind = 'full'`, [provider.id]);
  assert.equal(rows.length, 2, 'two full runs in all: the one running and the one every later request joined');
});

/** `promise`, or a failure naming `what` if it has not settled within `ms`. */
async function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

test('a request answered once queued is answered while a full sync runs: its run waits as queued, then runs', async (t) => {
  const { db, client, control, proxy, provider, first } = await fullSyncUnderWay(t);
  const queued = await within('a queued request', 30_000, control.requestFullSync(provider, { answer: 'queued' }));
  const again = await within(
    'a second queued request',
    30_000,
    control.requestFullSync(provider, { answer: 'queued' }),
  );
  assert.ok(proxy.held() > 0, 'answered while the first full sync is still held at the target');
  assert.equal(queued.queued, true);
  assert.notEqual(queued.runId, first.runId);
  assert.equal(again.runId, queued.runId, 'a later request joins the queued run');
  const { rows: waiting } = await db.query<{ status: string }>('SELECT status FROM sync_runs WHERE id = $1', [
    queued.runId,
  ]);
  assert.deepEqual(waiting, [{ status: 'queued' }]);

  proxy.open();
  assert.equal((await endedRun(db, first.runId)).status, 'succeeded');
  assert.equal((await endedRun(db, queued.runId)).status, 'succeeded');
  const { rows } = await db.query<{ id: string; started_at: Date; finished_at: Date }>(
    `SELECT id, started_at, finished_at FROM sync_runs WHERE provider_id = $1 AND kind = 'full' ORDER BY started_at`,
    [provider.id],
  );
  assert.deepEqual(
    rows.map((run) => run.id),
    [first.runId, queued.runId],
  );
  assert.ok(rows[1]!.started_at >= rows[0]!.finished_at, 'the queued run started once the first had ended');

  // With no full sync under way (the provider workflow waits for changes again once both full syncs returned to it),
  // nothing is queued: the run starts at once. A run's row ends before its workflow returns, and a wait cancelled
  // before the first sync may still be listed as pending: the history says when the workflow is idle.
  const writer = client.workflow.getHandle(providerSyncWorkflowId(provider.slug));
  await eventually('the provider workflow waiting for changes after both full syncs', async () => {
    const events = (await writer.fetchHistory()).events ?? [];
    const returned = events.flatMap((e, i) => (e.childWorkflowExecutionCompletedEventAttributes ? [i] : []));
    const waits = events.findIndex(
      (e, i) =>
        i > (returned[1] ?? Infinity) && e.activityTaskScheduledEventAttributes?.activityType?.name === 'awaitChanges',
    );
    return returned.length === 2 && waits > 0 ? true : undefined;
  });
  const idle = await within(
    'a request to an idle provider',
    30_000,
    control.requestFullSync(provider, { answer: 'queued' }),
  );
  assert.equal(idle.queued, false);
  assert.equal((await endedRun(db, idle.runId)).status, 'succeeded');
});

test('requests for a provider whose run cannot be opened are refused with the reason, and none is left unanswered', async (t) => {
  const { db, client, control, newProvider } = await incrementalWorld(t, { relay: false });
  await createUser(db, person(0));
  const provider = await newProvider();
  assert.equal((await endedRun(db, (await control.requestFullSync(provider)).runId)).status, 'succeeded');

  // Deleted behind the provider workflow's back (the API would have ended the workflow): no run can be opened.
  await db.query('DELETE FROM providers WHERE id = $1', [provider.id]);
  const writer = client.workflow.getHandle(providerSyncWorkflowId(provider.slug));
  await writer.signal(fullSyncWantedSignal);
  for (const attempt of ['first', 'second']) {
    await assert.rejects(
      within(`the ${attempt} request`, 60_000, control.requestFullSync(provider)),
      (error: Error) => {
        // What the API answers with (a 404 here), the workflow's refusal mapped at the engine's boundary.
        assert.ok(isScimflowError(error), String(error));
        assert.equal(error.code, 'ERR_NOT_FOUND');
        assert.match(error.message, /^the full sync could not be queued: provider [0-9a-f-]{36} not found$/);
        return true;
      },
    );
  }
  assert.equal((await writer.describe()).status.name, 'RUNNING', 'a kick that could not open its run is dropped');
});

test('a request that arrives while a kick opens its run joins that run: it is answered, and no run is left open', async (t) => {
  const { db, client, control, newProvider } = await incrementalWorld(t, { relay: false });
  for (let i = 0; i < 3; i += 1) await createUser(db, person(i));
  const provider = await newProvider();
  const first = await control.requestFullSync(provider);
  assert.equal((await endedRun(db, first.runId)).status, 'succeeded');

  // The kick's run row cannot be written while the test holds sync_runs: its activity waits on the lock, and the
  // request is taken in while the workflow waits for that activity.
  const writer = client.workflow.getHandle(providerSyncWorkflowId(provider.slug));
  const holder = await db.connect();
  let request;
  try {
    await holder.query('BEGIN');
    await holder.query('LOCK TABLE sync_runs IN SHARE MODE');
    await writer.signal(fullSyncWantedSignal);
    await eventually('the kick opening its run', async () => {
      const { rows } = await db.query(
        `SELECT 1 FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO sync_runs%'`,
      );
      return rows.length > 0 ? true : undefined;
    });
    request = await writer.startUpdate(requestFullSyncUpdate, {
      args: [{}],
      waitForStage: WorkflowUpdateStage.ACCEPTED,
    });
  } finally {
    await holder.query('COMMIT');
    holder.release();
  }

  const ticket = await within('the request', 60_000, request.result());
  assert.equal((await endedRun(db, ticket.runId)).status, 'succeeded');
  const { rows } = await db.query<{ id: string; status: string }>(
    `SELECT id, status FROM sync_runs WHERE provider_id = $1 AND kind = 'full' ORDER BY started_at`,
    [provider.id],
  );
  assert.deepEqual(
    rows.map((run) => [run.id, run.status]),
    [
      [first.runId, 'succeeded'],
      [ticket.runId, 'succeeded'],
    ],
    'the kick and the request made one run, and none is left running',
  );
});

test('a mass change beyond maxPending becomes one full sync instead of a queue of pushes', async (t) => {
  const { db, client, target, newProvider } = await incrementalWorld(t, { flush: { maxPending: 20 } });
  const provider = await newProvider();
  await importDirectory(db, { users: Array.from({ length: 60 }, (_, i) => person(i)) });

  await eventually(
    '60 users on the target',
    async () => ((await target.users()).length === 60 ? true : undefined),
    30_000,
    () => syncState(db, client, provider),
  );
  await eventually('the full sync ended', async () => {
    const { rows: full } = await db.query(`SELECT 1 FROM sync_runs WHERE kind = 'full' AND status <> 'running'`);
    return full.length > 0 ? true : undefined;
  });
  await eventually('every change handled', async () => {
    const { rows: pending } = await db.query(`SELECT 1 FROM outbox WHERE dispatched_at IS NULL`);
    const { rows: running } = await db.query(`SELECT 1 FROM sync_runs WHERE status = 'running'`);
    return pending.length === 0 && running.length === 0 ? true : undefined;
  });
  const { rows: fullRuns } = await db.query(`SELECT 1 FROM sync_runs WHERE provider_id = $1 AND kind = 'full'`, [
    provider.id,
  ]);
  assert.equal(fullRuns.length, 1, 'one full sync');
  const { rows } = await db.query<{ kind: string; created: number }>(
    `SELECT kind, created FROM sync_runs WHERE provider_id = $1 AND status = 'succeeded'`,
    [provider.id],
  );
  const created = (kind: string) => rows.filter((row) => row.kind === kind).reduce((sum, row) => sum + row.created, 0);
  assert.equal(created('full'), 60, 'the full sync created them all');
  assert.equal(created('incremental'), 0, 'no incremental push carried the dropped changes');
});
