/**
 * Many workers (`npm run bench -- workers`): one full sync of one provider on three `scimflow worker` processes that
 * share a task queue, against the loopback target answering `BENCH_LATENCY_MS` (20) late; one worker is SIGKILLed
 * once it has done part of the run (`BENCH_KILL=0` keeps all three). Prints what each worker examined (the run's
 * `workers`), how long the run took, and whether the target ended with exactly the directory (no object twice).
 * `BENCH_USERS` (3,000), `BENCH_GROUPS` (users / 20), `BENCH_CONCURRENCY` (8), `BENCH_PAGE` (50) size it.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Client, Connection } from '@temporalio/client';
import { createSecretBox, generateSecretKey } from '../db/index.ts';
import { createSyncControl } from '../engine/index.ts';
import { eventually } from '../test/incremental/harness.ts';
import { createTestDatabase } from '../test/support/db.ts';
import { testTemporalAddress } from '../test/support/temporal.ts';
import { startWorkerProcess, type WorkerProcess } from '../test/support/worker-process.ts';
import { call, createBenchProvider, seedBenchDirectory, startLoopbackTarget, type BenchRow } from './full-sync.ts';
import { envNumber } from './scale.ts';

/** Runs the many-workers benchmark and returns its table rows. */
export async function runWorkersBench(): Promise<BenchRow[]> {
  const users = envNumber('BENCH_USERS', 3000);
  const groups = envNumber('BENCH_GROUPS', Math.max(1, Math.round(users / 20)));
  const concurrency = envNumber('BENCH_CONCURRENCY', 8);
  const pageSize = envNumber('BENCH_PAGE', 50);
  const latencyMs = envNumber('BENCH_LATENCY_MS', 20);
  const kill = process.env['BENCH_KILL'] !== '0';
  const address = await testTemporalAddress();
  const testDb = await createTestDatabase();
  const target = await startLoopbackTarget();
  const connection = await Connection.connect({ address });
  const secretKey = generateSecretKey();
  const taskQueue = `bench-workers-${randomBytes(4).toString('hex')}`;
  const workers: WorkerProcess[] = [];
  try {
    await call(target.origin, 'POST', `/_latency?ms=${latencyMs}`);
    await seedBenchDirectory(testDb.db, users, groups);
    const env = {
      TEMPORAL_ADDRESS: address,
      DATABASE_URL: testDb.url,
      SCIMFLOW_SECRET_KEY: secretKey,
      SCIMFLOW_TASK_QUEUE: taskQueue,
    };
    workers.push(...(await Promise.all([0, 1, 2].map(() => startWorkerProcess(env)))));
    const identity = (worker: WorkerProcess) => `${worker.pid}@${hostname()}`;
    const provider = await createBenchProvider(testDb.db, createSecretBox(secretKey), 'workers', target.url, {
      pageSize,
      concurrency,
    });
    const control = createSyncControl({ client: new Client({ connection }), taskQueue });
    const started = performance.now();
    const { runId } = await control.requestFullSync(provider);
    const runRow = async () =>
      (
        await testDb.db.query<{ status: string; processed: number; total: number; workers: Record<string, number> }>(
          'SELECT status, processed, total, workers FROM sync_runs WHERE id = $1',
          [runId],
        )
      ).rows[0]!;
    let killedAt: { seconds: number; processed: number; own: number } | null = null;
    if (kill) {
      const victim = workers[0]!;
      await eventually(
        'the first worker to have done part of the run',
        async () => {
          const run = await runRow();
          return (run.workers[identity(victim)] ?? 0) > 0 || run.status !== 'running' ? true : undefined;
        },
        600_000,
      );
      const run = await runRow();
      await victim.kill();
      killedAt = {
        seconds: (performance.now() - started) / 1000,
        processed: run.processed,
        own: run.workers[identity(victim)] ?? 0,
      };
    }
    await eventually(
      'the run to end',
      async () => ((await runRow()).status !== 'running' ? true : undefined),
      1_800_000,
    );
    const seconds = (performance.now() - started) / 1000;
    const run = await runRow();
    const stats = (await call(target.origin, 'GET', '/_stats')) as { users: number; groups: number };
    const exact = stats.users === users && stats.groups === groups;
    if (!exact) {
      // What differs, and what scimflow recorded for it.
      const listed = (await call(target.origin, 'GET', '/Users')) as { Resources: Array<{ userName: string }> };
      const remote = new Set(listed.Resources.map((user) => user.userName.toLowerCase()));
      const { rows: missing } = await testDb.db.query<{
        username: string;
        status: string | null;
        remote_id: string | null;
      }>(
        `SELECT u.username, l.status, l.remote_id FROM users u
           LEFT JOIN provider_links l ON l.local_id = u.id AND l.provider_id = $1 AND l.object_type = 'user'`,
        [provider.id],
      );
      const absent = missing.filter((row) => !remote.has(row.username.toLowerCase()));
      console.log(`missing on the target: ${JSON.stringify(absent.slice(0, 10))}`);
      const { rows: runs } = await testDb.db.query(
        'SELECT kind, status, processed, created, updated, failed, retrying, skipped, error FROM sync_runs WHERE provider_id = $1',
        [provider.id],
      );
      console.log(`runs: ${JSON.stringify(runs)}`);
    }
    return [
      {
        variant: 'directory',
        value: `${users} users in ${groups} groups, concurrency ${concurrency}, page ${pageSize}, target ${latencyMs} ms late, 3 worker processes`,
      },
      { variant: 'run', value: `${run.status} in ${seconds.toFixed(1)} s, ${run.processed} of ${run.total} examined` },
      ...workers.map((worker, i) => ({
        variant: `worker ${i + 1} (${identity(worker)})`,
        value:
          `${run.workers[identity(worker)] ?? 0} objects` +
          (i === 0 && killedAt
            ? ` (SIGKILLed at ${killedAt.seconds.toFixed(1)} s, with ${killedAt.own} done and the run at ${killedAt.processed})`
            : ''),
      })),
      {
        variant: 'target afterwards',
        value: `${stats.users} users, ${stats.groups} groups: ${exact ? 'exactly the directory' : 'NOT the directory'}`,
      },
    ];
  } finally {
    for (const worker of workers) await worker.kill();
    target.child.kill();
    await once(target.child, 'exit').catch(() => undefined);
    await connection.close();
    await testDb.drop();
  }
}
