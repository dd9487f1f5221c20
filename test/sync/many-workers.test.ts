/** A full sync spreads over every worker process of its task queue; killing one mid-run loses nothing. */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { createProvider } from '../../db/index.ts';
import { eventually } from '../incremental/harness.ts';
import { seedDirectory } from '../support/directory.ts';
import { workerProcessWorld } from '../support/worker-process-world.ts';
import { testProviderInput } from '../support/providers.ts';

const USERS = 120;

test('a full sync runs on three worker processes; one SIGKILLed mid-run loses nothing: the exact state, no duplicate', async (t) => {
  // 40 ms per request: the run lasts long enough to kill a worker in the middle of it.
  const { db, target, proxy, secrets, control, workers, startWorker } = await workerProcessWorld(t, 'many-workers', 40);
  await Promise.all([0, 1, 2].map(() => startWorker()));

  const { users } = await seedDirectory(db, USERS, 1);
  // Small pages and six ranges of users at a time, so every worker gets some.
  const provider = await createProvider(db, secrets, {
    ...testProviderInput(target, 'many', { pageSize: 5, concurrency: 6 }),
    baseUrl: proxy.url,
  });
  const { runId } = await control.requestFullSync(provider);

  // The victim is a worker that has done part of the run, while the run is not over (which of the three gets work
  // first is Temporal's choice: waiting for the first one, the run once ended before it had any).
  const victim = await eventually(
    'a worker to have examined some objects mid-run',
    async () => {
      const { rows } = await db.query<{ workers: Record<string, number>; processed: number; status: string }>(
        'SELECT workers, processed, status FROM sync_runs WHERE id = $1',
        [runId],
      );
      const run = rows[0];
      assert.equal(run?.status, 'running', 'the run is still running when a worker has worked');
      return workers.find((worker) => (run?.workers[`${worker.pid}@${hostname()}`] ?? 0) > 0);
    },
    60_000,
  );
  await victim.kill();

  // Its activities time out (heartbeat) and resume on the two others from their last resume point.
  const status = await eventually(
    'the run to end',
    async () => {
      const { rows } = await db.query<{ status: string }>('SELECT status FROM sync_runs WHERE id = $1', [runId]);
      return rows[0]?.status === 'running' ? undefined : rows[0]?.status;
    },
    180_000,
  );
  assert.equal(status, 'succeeded');
  const remote = await target.users();
  assert.equal(remote.length, USERS, 'every user on the target');
  assert.equal(new Set(remote.map((user) => user.userName)).size, USERS, 'no user created twice');
  assert.deepEqual(remote.map((user) => user.userName).sort(), users.map((user) => user.username).sort());
  const groups = await target.groups();
  assert.equal(groups.length, 1);
  assert.equal(groups[0]!.members?.length, USERS, 'the group with every member');
  const { rows } = await db.query<{ workers: Record<string, number> }>('SELECT workers FROM sync_runs WHERE id = $1', [
    runId,
  ]);
  const counts = rows[0]!.workers;
  assert.ok(Object.keys(counts).length >= 2, `the run spread over the workers: ${JSON.stringify(counts)}`);
  assert.ok(
    workers.some((worker) => worker !== victim && (counts[`${worker.pid}@${hostname()}`] ?? 0) > 0),
    'a surviving worker finished what the killed one left',
  );
});
