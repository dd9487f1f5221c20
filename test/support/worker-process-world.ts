/** The world of a test that runs `scimflow worker` processes: database, target behind a proxy, task queue, control. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { createSecretBox, generateSecretKey } from '../../db/index.ts';
import { createSyncControl } from '../../engine/index.ts';
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
