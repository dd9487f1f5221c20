import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Client } from '@temporalio/client';
import type { Db } from '../../db/index.ts';
import { fullSyncWorkflowId, providerSyncWorkflowId } from '../../workflows/index.ts';
import { endedRun, eventually, heldFullSyncWorld } from './harness.ts';

const USERS = 200;
const ABANDONED =
  /^the workflow running this run ended, or could not start, before the run did \(terminated or timed out/;

/** Runs of the provider that have not ended. */
async function openRuns(db: Db, providerId: string): Promise<Array<{ id: string; status: string }>> {
  const { rows } = await db.query<{ id: string; status: string }>(
    'SELECT id, status FROM sync_runs WHERE provider_id = $1 AND finished_at IS NULL ORDER BY started_at',
    [providerId],
  );
  return rows;
}

/** Waits until workflow `workflowId` has closed (terminated, cancelled, …). */
function closed(client: Client, workflowId: string): Promise<true> {
  return eventually(`workflow ${workflowId} closed`, async () => {
    const { status } = await client.workflow.getHandle(workflowId).describe();
    return status.name === 'RUNNING' ? undefined : true;
  });
}

test('a full sync whose workflow an operator terminates is closed as abandoned, and the next one finishes the job', async (t) => {
  const { db, client, target, control, proxy, provider, running } = await heldFullSyncWorld(t, USERS);
  await client.workflow.getHandle(fullSyncWorkflowId(provider.slug)).terminate('stopped by an operator');

  const run = await endedRun(db, running.runId);
  assert.equal(run.status, 'cancelled');
  assert.equal(run.error?.code, 'ERR_RUN_ABANDONED');
  assert.match(run.error.message, ABANDONED);
  // Its range activity learns at its next heartbeat that its workflow is gone: the write it had sent is answered (a
  // write once sent is kept to its deadline, for the id it returns), and it sends nothing more.
  proxy.open();

  const again = await control.requestFullSync(provider);
  assert.equal((await endedRun(db, again.runId)).status, 'succeeded');
  const names = (await target.users()).map((user) => user.userName);
  assert.equal(names.length, USERS);
  assert.equal(new Set(names).size, USERS, 'no user created twice');
  assert.deepEqual(await openRuns(db, provider.id), []);
});

test('runs left open by a terminated provider workflow are closed when it starts again: none stays queued for good', async (t) => {
  const { db, client, target, control, proxy, provider, running } = await heldFullSyncWorld(t, USERS);
  const queued = await control.requestFullSync(provider, { answer: 'queued' });
  assert.equal(queued.queued, true);
  await client.workflow.getHandle(providerSyncWorkflowId(provider.slug)).terminate('stopped by an operator');
  proxy.open();

  // The full sync under way is cancelled with its parent and closes its own run; the queued one had no workflow yet.
  assert.equal((await endedRun(db, running.runId)).status, 'cancelled');
  await closed(client, fullSyncWorkflowId(provider.slug));
  assert.deepEqual(await openRuns(db, provider.id), [{ id: queued.runId, status: 'queued' }]);

  // The next request starts the provider workflow afresh: the queued run is closed before its own run is opened.
  const again = await control.requestFullSync(provider);
  assert.notEqual(again.runId, queued.runId);
  const abandoned = await endedRun(db, queued.runId);
  assert.equal(abandoned.status, 'cancelled');
  assert.equal(abandoned.error?.code, 'ERR_RUN_ABANDONED');
  assert.match(abandoned.error.message, ABANDONED);
  assert.equal((await endedRun(db, again.runId)).status, 'succeeded');
  assert.equal((await target.users()).length, USERS);
  assert.deepEqual(await openRuns(db, provider.id), []);
});
