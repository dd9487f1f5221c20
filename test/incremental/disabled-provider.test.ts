import assert from 'node:assert/strict';
import { test } from 'node:test';
import { endedRun, heldFullSyncWorld } from './harness.ts';

const USERS = 400;

test('disabling a provider stops its full sync under way and the one queued behind it; enabling it again finishes the job', async (t) => {
  const { db, target, control, proxy, provider, running } = await heldFullSyncWorld(t, USERS);
  const queued = await control.requestFullSync(provider, { answer: 'queued' });
  assert.equal(queued.queued, true);
  await db.query('UPDATE providers SET enabled = false WHERE id = $1', [provider.id]);
  proxy.open();

  for (const runId of [running.runId, queued.runId]) {
    const run = await endedRun(db, runId);
    assert.equal(run.status, 'cancelled', `run ${runId}`);
    assert.equal(run.error?.code, 'ERR_PROVIDER_DISABLED');
    assert.match(run.error.message, new RegExp(`provider ${provider.slug} was disabled; its full sync stopped`));
  }
  const sent = (await target.users()).length;
  assert.ok(sent > 0 && sent < USERS, `the stretches read after the provider was disabled were not sent: ${sent}`);

  await db.query('UPDATE providers SET enabled = true WHERE id = $1', [provider.id]);
  const again = await control.requestFullSync(provider);
  assert.equal((await endedRun(db, again.runId)).status, 'succeeded');
  const names = (await target.users()).map((user) => user.userName);
  assert.equal(names.length, USERS);
  assert.equal(new Set(names).size, USERS, 'no user created twice');
});
