/** The world of a test that runs `scimflow worker` processes: database, target behind a proxy, task queue, control. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { createSecretBox, generateSecretKey, type ProviderView } from '../../db/index.ts';
import { createSyncControl } from '../../engine/index.ts';
import { fullSyncWorkflowId } from '../../workflows/index.ts';
import { syncState, workflowState } from '../incremental/harness.ts';
import { startFaultProxy, startScimTarget } from '../servers/index.ts';
import { createTestDatabase } from './db.ts';
import { startWorkerProcess, type WorkerProcess } from './worker-process.ts';

/**
 * What a test of worker processes works with: a fresh database, a SCIMMY target behind a fault proxy `latencyMs`
 * late (so a run lasts long enough to kill a worker in the middle), a task queue of its own and a sync control on it.
 * `startWorker` adds a worker process; everything is stopped and dropped after the test.
 */
export async function workerProcessWorld(t: TestContext, prefix: string, latencyMs: number) {
  assert.ok(process.env['TEMPORAL_ADDRESS'], 'npm test provides a Temporal server');
  const testDb = await createTestDatabase();
  const target = await startScimTarget();
  const proxy = await startFaultProxy({ target: target.url, latencyMs });
  const secretKey = generateSecretKey();
  const taskQueue = `${prefix}-${randomBytes(4).toString('hex')}`;
  const connection = await Connection.connect({ address: process.env['TEMPORAL_ADDRESS'] });
  const client = new Client({ connection });
  const workers: WorkerProcess[] = [];
  t.after(async () => {
    for (const worker of workers) await worker.kill();
    await connection.close();
    await proxy.close();
    await target.close();
    await testDb.drop();
  });
  return {
    db: testDb.db,
    target,
    proxy,
    secrets: createSecretBox(secretKey),
    client,
    control: createSyncControl({ client, taskQueue }),
    workers,
    /**
     * What a provider's sync is doing, for a test that timed out: its workflows, the full sync's pending activities
     * (attempt, worker, last heartbeat, last failure), its queue and runs, and each worker's last lines.
     */
    explain: async (provider: Pick<ProviderView, 'id' | 'slug'>): Promise<string> => {
      const fullSync = await workflowState(client, fullSyncWorkflowId(provider.slug));
      const lines = workers.map(
        (w) =>
          `worker ${w.pid}, last lines:\n${w
            .output()
            .split('\n')
            .slice(-30)
            .map((line) => line.slice(0, 400))
            .join('\n')}`,
      );
      return [`full sync: ${fullSync}`, await syncState(testDb.db, client, provider), ...lines].join('\n');
    },
    /** Starts a worker process (worker, outbox relay and schedules, as `scimflow worker`) on the task queue. */
    startWorker: async (): Promise<WorkerProcess> => {
      const worker = await startWorkerProcess({
        DATABASE_URL: testDb.url,
        SCIMFLOW_SECRET_KEY: secretKey,
        SCIMFLOW_TASK_QUEUE: taskQueue,
      });
      workers.push(worker);
      return worker;
    },
  };
}
