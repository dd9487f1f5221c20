/** What the worker log tests share: a worker in its own process, at debug level, and a target that knows a token. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { createProvider, createSecretBox, generateSecretKey } from '../../db/index.ts';
import { createSyncControl, type TemporalSyncControl } from '../../engine/index.ts';
import { startScimTarget, type ScimTarget } from '../servers/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { testProviderInput } from '../support/providers.ts';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process.ts';

export interface WorkerLogWorld {
  testDb: TestDatabase;
  target: ScimTarget;
  client: Client;
  control: TemporalSyncControl;
  worker: WorkerProcess;
  /** Creates a bearer provider of `target` (slug prefix `log`), its token sealed with the worker's key. */
  newProvider: () => ReturnType<typeof createProvider>;
}

/** Starts the world on a task queue of its own; `t.after` takes it down. */
export async function startWorkerLogWorld(t: TestContext, token: string): Promise<WorkerLogWorld> {
  assert.ok(process.env['TEMPORAL_ADDRESS'], 'npm test provides a Temporal server');
  const testDb = await createTestDatabase();
  const target = await startScimTarget({ token });
  const secretKey = generateSecretKey();
  const taskQueue = `worker-log-${randomBytes(4).toString('hex')}`;
  const connection = await Connection.connect({ address: process.env['TEMPORAL_ADDRESS'] });
  const client = new Client({ connection });
  const control = createSyncControl({ client, taskQueue });

  const started: { worker?: WorkerProcess } = {};
  t.after(async () => {
    await started.worker?.kill();
    await connection.close();
    await target.close();
    await testDb.drop();
  });
  // The worker role as an operator runs it, in its own process, so everything it prints is captured.
  const worker = (started.worker = await startWorkerProcess({
    DATABASE_URL: testDb.url,
    SCIMFLOW_SECRET_KEY: secretKey,
    SCIMFLOW_TASK_QUEUE: taskQueue,
    LOG_LEVEL: 'debug',
  }));
  const secrets = createSecretBox(secretKey);
  const newProvider = () => createProvider(testDb.db, secrets, testProviderInput(target, 'log'));
  return { testDb, target, client, control, worker, newProvider };
}
