/** The provider token stays out of the worker's log, even at debug level and when the target echoes it back. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { createProvider, createSecretBox, createUser, generateSecretKey } from '../../db/index.ts';
import { createSyncControl } from '../../engine/index.ts';
import { endedRun, eventually, person } from '../incremental/harness.ts';
import { startScimTarget } from '../servers/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { testProviderInput } from '../support/providers.ts';
import { refuseUserEchoingToken, tokenEcho } from './token-echo.ts';

const BIN = fileURLToPath(new URL('../../cli/bin.mjs', import.meta.url));
const TOKEN = 'Zq8Rw2Lx7Nc4Vb9Kt3Hs6Pj1Dm5';

/** Fails naming `what` when any six characters in a row of the token appear in `text`. */
function assertNoToken(text: string, what: string): void {
  for (let i = 0; i + 6 <= TOKEN.length; i += 1) {
    const part = TOKEN.slice(i, i + 6);
    const at = text.indexOf(part);
    assert.ok(at < 0, `${what} carries part of the token: …${text.slice(Math.max(0, at - 200), at + 200)}…`);
  }
}

test("a worker syncing through a bearer provider logs neither the token nor a target's echo of it, at debug level", async (t) => {
  assert.ok(process.env['TEMPORAL_ADDRESS'], 'npm test provides a Temporal server');
  const testDb = await createTestDatabase();
  const target = await startScimTarget({ token: TOKEN });
  const secretKey = generateSecretKey();
  const taskQueue = `worker-log-${randomBytes(4).toString('hex')}`;
  const connection = await Connection.connect({ address: process.env['TEMPORAL_ADDRESS'] });
  const control = createSyncControl({ client: new Client({ connection }), taskQueue });

  // The worker role as an operator runs it, in its own process, so everything it prints is captured.
  const child = spawn(process.execPath, [BIN, 'worker'], {
    env: {
      ...process.env,
      DATABASE_URL: testDb.url,
      SCIMFLOW_SECRET_KEY: secretKey,
      SCIMFLOW_TASK_QUEUE: taskQueue,
      SCIMFLOW_API_TOKEN: undefined,
      LOG_LEVEL: 'debug',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    await connection.close();
    await target.close();
    await testDb.drop();
  });
  await eventually(
    'the worker running',
    () => Promise.resolve(/scimflow worker running/.test(output) ? true : undefined),
    60_000,
  );

  const refused = await createUser(testDb.db, person(1));
  await createUser(testDb.db, person(2));
  // One user refused for good, echoing the token; then a run whose every request is refused with a 401 echo.
  await refuseUserEchoingToken(target, refused.username);
  const secrets = createSecretBox(secretKey);
  const provider = await createProvider(testDb.db, secrets, testProviderInput(target, 'log'));
  const first = await endedRun(testDb.db, (await control.requestFullSync(provider)).runId);
  assert.equal(first.status, 'succeeded');
  assert.equal((await target.users()).length, 1, 'one user created, the other refused');
  // The relay in the worker process pushes a change too, and that push meets the 401.
  await target.failNext({ status: 401, body: tokenEcho(TOKEN, 401), times: 1000 });
  await createUser(testDb.db, person(3));
  const second = await endedRun(testDb.db, (await control.requestFullSync(provider)).runId);
  assert.equal(second.status, 'failed');
  await eventually('the incremental push to fail', async () => {
    const { rows } = await testDb.db.query(
      `SELECT 1 FROM sync_runs WHERE provider_id = $1 AND kind = 'incremental' AND status = 'failed'`,
      [provider.id],
    );
    return rows.length > 0 ? true : undefined;
  });

  child.kill('SIGTERM');
  assert.equal(await exited, 0, output);
  // The log is not empty: the worker said what it did at debug level, the failed runs included.
  assert.match(output, /\[DEBUG\] Activity completed/, 'debug lines were printed');
  // The target's echo reached the log, with the token taken out.
  assert.match(output, /\[WARN\] Activity failed[^]*Bearer \[redacted\] refused/, 'the 401 echo was logged');
  assert.match(output, /\[WARN\] incremental push failed/, 'the failed push was logged');
  assertNoToken(output, 'the worker log');
});
