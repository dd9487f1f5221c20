/** An incremental push whose worker process dies mid-way is finished by another worker: nothing lost, nothing twice. */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { createProvider, createUser } from '../../db/index.ts';
import { providerSyncWorkflowId } from '../../workflows/index.ts';
import { testProviderInput } from '../support/providers.ts';
import { workerProcessWorld } from '../support/worker-process-world.ts';
import { endedRun, eventually, person } from './harness.ts';

const USERS = 30;

test('a worker SIGKILLed mid-push: another worker finishes the same run, every user on the target once', async (t) => {
  // 150 ms per request, one request at a time: the push of the users takes seconds, long enough to kill its worker.
  const { db, target, proxy, secrets, client, control, workers, startWorker } = await workerProcessWorld(
    t,
    'killed-push',
    150,
  );
  // Each runs a worker and an outbox relay, as `scimflow worker` does in production.
  await Promise.all([startWorker(), startWorker()]);

  const provider = await createProvider(db, secrets, {
    ...testProviderInput(target, 'killed-push', { concurrency: 1 }),
    baseUrl: proxy.url,
  });
  // The provider's workflow starts with a full sync of the empty directory, then waits for changes.
  assert.equal((await endedRun(db, (await control.requestFullSync(provider)).runId)).status, 'succeeded');

  const users = [];
  for (let i = 0; i < USERS; i += 1) users.push(await createUser(db, person(i)));

  // The worker whose push has sent some of the users and not all of them.
  const handle = client.workflow.getHandle(providerSyncWorkflowId(provider.slug));
  const { victim, runId, sent } = await eventually(
    'a push part way through',
    async () => {
      const sent = (await target.users()).length;
      if (sent === 0) return undefined;
      assert.ok(sent < USERS, 'the push was still under way when it had sent a user');
      const { raw } = await handle.describe();
      const push = (raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'pushChanges');
      const victim = workers.find((w) => push?.lastWorkerIdentity === `${w.pid}@${hostname()}`);
      const { rows } = await db.query<{ id: string }>(
        `SELECT id FROM sync_runs WHERE provider_id = $1 AND kind = 'incremental' AND status = 'running'`,
        [provider.id],
      );
      return victim && rows.length === 1 ? { victim, runId: rows[0]!.id, sent } : undefined;
    },
    60_000,
  );
  await victim.kill();

  // Its push times out (heartbeat) and runs again, with the same run, on the other worker.
  const run = await eventually(
    'the killed push to end',
    async () => {
      const { rows } = await db.query<{ status: string; workers: Record<string, number> }>(
        'SELECT status, workers FROM sync_runs WHERE id = $1',
        [runId],
      );
      return rows[0]?.status === 'running' ? undefined : rows[0];
    },
    120_000,
  );
  assert.equal(run?.status, 'succeeded');
  const survivor = workers.find((w) => w !== victim)!;
  assert.ok(
    (run.workers[`${survivor.pid}@${hostname()}`] ?? 0) > 0,
    `the surviving worker finished the push: ${JSON.stringify(run.workers)}`,
  );
  // Users the relay handed to a later push may still be on their way.
  await eventually('every user pushed and no run under way', async () => {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM sync_runs WHERE provider_id = $1 AND status = 'running'`,
      [provider.id],
    );
    return rows[0]!.n === 0 && (await target.users()).length >= USERS ? true : undefined;
  });
  const remote = await target.users();
  assert.ok(remote.length > sent, 'users were sent after the kill');
  assert.equal(remote.length, USERS, 'every user on the target, none twice');
  assert.deepEqual(remote.map((user) => user.userName).sort(), users.map((user) => user.username).sort());
  const { rows: links } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM provider_links WHERE provider_id = $1 AND object_type = 'user' AND remote_id IS NOT NULL`,
    [provider.id],
  );
  assert.equal(links[0]!.n, USERS, 'every user linked to its remote user');
});
