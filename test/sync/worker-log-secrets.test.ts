/** The provider token stays out of the worker's log, even at debug level and when the target echoes it back. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createUser } from '../../db/index.ts';
import { endedRun, eventually, person } from '../incremental/harness.ts';
import { assertNoToken, refuseUserEchoingToken, tokenEcho } from './token-echo.ts';
import { startWorkerLogWorld } from './worker-log-world.ts';
import { hasLogLine } from '../support/log-lines.ts';

const TOKEN = 'Zq8Rw2Lx7Nc4Vb9Kt3Hs6Pj1Dm5';

test("a worker syncing through a bearer provider logs neither the token nor a target's echo of it, at debug level", async (t) => {
  const { testDb, target, control, worker, newProvider } = await startWorkerLogWorld(t, TOKEN);

  const refused = await createUser(testDb.db, person(1));
  await createUser(testDb.db, person(2));
  // One user refused for good, echoing the token; then a run whose every request is refused with a 401 echo.
  await refuseUserEchoingToken(target, refused.username);
  const provider = await newProvider();
  const first = await endedRun(testDb.db, (await control.requestFullSync(provider)).runId);
  assert.equal(first.status, 'succeeded');
  assert.equal((await target.users()).length, 1, 'one user created, the other refused');
  // The relay in the worker process pushes a change too, and that push meets the 401. It must end before the next
  // full sync is asked for: a full sync asked for during a push cancels the push.
  await target.failNext({ status: 401, body: tokenEcho(TOKEN, 401), times: 1000 });
  await createUser(testDb.db, person(3));
  await eventually('the incremental push to fail', async () => {
    const { rows } = await testDb.db.query(
      `SELECT 1 FROM sync_runs WHERE provider_id = $1 AND kind = 'incremental' AND status = 'failed'`,
      [provider.id],
    );
    return rows.length > 0 ? true : undefined;
  });
  const second = await endedRun(testDb.db, (await control.requestFullSync(provider)).runId);
  assert.equal(second.status, 'failed');

  assert.equal(await worker.stop(), 0, worker.output());
  const output = worker.output();
  // The log is not empty: the worker said what it did at debug level, the failed runs included.
  assert.ok(hasLogLine(output, 'debug', 'Activity completed'), 'debug lines were printed');
  // The target's echo reached the log, with the token taken out.
  assert.ok(hasLogLine(output, 'warn', 'Activity failed', /Bearer \[redacted\] refused/), 'the 401 echo was logged');
  assert.ok(hasLogLine(output, 'warn', 'incremental push failed'), 'the failed push was logged');
  assertNoToken(TOKEN, output, 'the worker log');
});
