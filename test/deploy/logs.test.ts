import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { generateSecretKey } from '../../db/index.ts';
import { startScimflow, type CliProcess } from '../support/cli.ts';
import { createTestDatabase } from '../support/db.ts';

/** Waits, in bounded steps, until the process's stdout matches `pattern` (false if it ends or time runs out). */
async function printed(run: CliProcess, pattern: RegExp, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(run.output().stdout)) {
    if (run.child.exitCode !== null || run.child.signalCode !== null || Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

test("every line scimflow worker writes on stdout is JSON, the Temporal SDK's and its core's among them", async (t) => {
  assert.ok(process.env['TEMPORAL_ADDRESS'], 'npm test provides a Temporal server');
  const testDb = await createTestDatabase();
  const configDir = mkdtempSync(join(tmpdir(), 'scimflow-logs-config-'));
  t.after(async () => {
    await testDb.drop();
    rmSync(configDir, { recursive: true, force: true });
  });
  const taskQueue = `logs-${randomBytes(4).toString('hex')}`;
  const worker = startScimflow(['worker'], {
    env: {
      SCIMFLOW_CONFIG_DIR: configDir,
      SCIMFLOW_API_TOKEN: undefined,
      DATABASE_URL: testDb.url,
      SCIMFLOW_SECRET_KEY: generateSecretKey(),
      SCIMFLOW_TASK_QUEUE: taskQueue,
      LOG_LEVEL: 'info',
    },
  });
  t.after(() => {
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
  });
  assert.ok(await printed(worker, /scimflow worker running/, 180_000), JSON.stringify(worker.output()));
  // The SDK's lines reach the logger up to 100 ms late (it orders them with the core's); the old code never wrote one.
  await printed(worker, /Worker state changed/, 5_000);
  worker.child.kill('SIGTERM');
  const ended = await worker.done;
  assert.equal(ended.code, 0, ended.stderr);

  const lines = ended.stdout.split('\n').filter((line) => line !== '');
  const logged = lines.map((line) => {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      assert.fail(`not a JSON line on stdout: ${line}`);
    }
    // The shape of every pino line of the process.
    assert.equal(typeof parsed['level'], 'number', line);
    assert.equal(typeof parsed['time'], 'number', line);
    assert.equal(typeof parsed['msg'], 'string', line);
    return parsed;
  });
  assert.equal(ended.stderr, '', 'nothing, the SDK included, writes plain text on stderr');

  const states = logged
    .filter((line) => line['sdkComponent'] === 'worker' && line['msg'] === 'Worker state changed')
    .map((line) => [line['level'], line['taskQueue'], line['state']]);
  assert.deepEqual(
    states.filter(([, , state]) => state === 'RUNNING' || state === 'STOPPED'),
    [
      [30, taskQueue, 'RUNNING'],
      [30, taskQueue, 'STOPPED'],
    ],
    `the SDK's worker state changes, at INFO, with their task queue:\n${ended.stdout}`,
  );
  assert.ok(
    logged.some((line) => line['sdkComponent'] === 'core' && typeof line['target'] === 'string'),
    `the core's lines are forwarded too:\n${ended.stdout}`,
  );
});
