/** A full sync whose worker is killed mid-run reports counters that match what the target received, object by object. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createProvider } from '../../db/index.ts';
import { eventually } from '../incremental/harness.ts';
import { testProviderInput } from '../support/providers.ts';
import { workerProcessWorld } from '../support/worker-process-world.ts';

const USERS = 300;

test('a worker killed mid-run: the run counts each object once, as created or updated exactly as the target saw it', async (t) => {
  // Every request 40 ms late: the run lasts long enough to be killed in the middle.
  const { db, target, proxy, secrets, control, startWorker, explain } = await workerProcessWorld(t, 'crash', 40);
  // The waits end, with what the sync was doing, before the test's own timeout (300 s) would end it unexplained.
  const deadline = Date.now() + 270_000;
  // Started before the provider exists: its startup reconcile gives the provider no schedule, whose immediate kick
  // could start a full sync of its own before the one asked for below (which would then wait for it to end).
  const first = await startWorker();
  // Written without outbox rows: only the full sync sends them.
  await db.query(
    `INSERT INTO users (username, display_name, email)
     SELECT 'crash.user' || n, 'Crash User ' || n, 'crash.user' || n || '@example.test' FROM generate_series(1, $1) AS n`,
    [USERS],
  );
  const provider = await createProvider(
    db,
    secrets,
    testProviderInput(target, 'crash', { baseUrl: proxy.url, pageSize: 20, concurrency: 2 }),
  );

  const { runId } = await control.requestFullSync(provider);
  await eventually(
    'a third of the users on the target',
    async () => ((await target.users()).length >= USERS / 3 ? true : undefined),
    120_000,
    () => explain(provider),
  );
  await first.kill();
  const killedAt = (await target.users()).length;
  const killedTime = Date.now();
  await startWorker();
  // The killed worker's activities time out (20 s without a heartbeat) and are retried on the new worker.
  const run = await eventually(
    'the run to end',
    async () => {
      const { rows } = await db.query<{
        status: string;
        processed: number;
        created: number;
        updated: number;
        failed: number;
        retrying: number;
        unchanged: number;
      }>(
        `SELECT status, processed, created, updated, failed, retrying, unchanged FROM sync_runs
          WHERE id = $1 AND status <> 'running'`,
        [runId],
      );
      return rows[0];
    },
    deadline - Date.now(),
    () => explain(provider),
  );
  t.diagnostic(`the run ended ${((Date.now() - killedTime) / 1000).toFixed(1)} s after the kill`);
  assert.ok(killedAt < USERS, `the worker was killed mid-run (${killedAt} of ${USERS} users on the target)`);

  assert.equal(run.status, 'succeeded');
  const remote = await target.users();
  assert.equal(remote.length, USERS, 'each user once on the target');
  const requests = proxy.requests();
  const created = requests.filter((r) => r.method === 'POST' && r.path === '/Users' && r.status === 201).length;
  // A create whose answer died with the worker is found on the target by the retry and adopted: an update.
  const adopted = new Set(requests.filter((r) => r.method === 'PUT' || r.method === 'PATCH').map((r) => r.path)).size;
  t.diagnostic(`killed with ${killedAt} users on the target; ${adopted} creates adopted after their answer was lost`);
  assert.equal(created, USERS, 'the target created each user once');
  assert.deepEqual(
    {
      processed: run.processed,
      created: run.created,
      updated: run.updated,
      failed: run.failed,
      retrying: run.retrying,
      unchanged: run.unchanged,
    },
    { processed: USERS, created: USERS - adopted, updated: adopted, failed: 0, retrying: 0, unchanged: 0 },
  );
});
