/** A failed workflow's log lines say which failure it was: its class and error code, as its activity's line does. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createUser } from '../../db/index.ts';
import { SANDBOX_ERROR_FIELD } from '../../engine/index.ts';
import { providerSyncWorkflowId } from '../../workflows/index.ts';
import { endedRun, eventually, person } from '../incremental/harness.ts';
import { jsonLines } from '../support/log-lines.ts';
import { assertNoToken, tokenEcho } from './token-echo.ts';
import { startWorkerLogWorld } from './worker-log-world.ts';

const TOKEN = 'Hv4Tq9Wm2Kd7Rx5Ln8Bc3Jf6Gs1';

test("a full sync refused with a 401 is logged as failed with its class and code, the target's echo of the token taken out", async (t) => {
  const { testDb, target, client, control, worker, newProvider } = await startWorkerLogWorld(t, TOKEN);

  await createUser(testDb.db, person(1));
  const provider = await newProvider();
  // Every request is refused, and the refusal quotes the token.
  await target.failNext({ status: 401, body: tokenEcho(TOKEN, 401), times: 1000 });
  const { runId, workflowId } = await control.requestFullSync(provider);
  const run = await endedRun(testDb.db, runId);
  assert.equal(run.status, 'failed');
  // The run is recorded as failed before its workflow ends: the line comes with the workflow's end, and the
  // provider workflow's own line after it.
  await assert.rejects(client.workflow.getHandle(workflowId).result());
  const providerLine = () => jsonLines(worker.output()).find((line) => line['msg'] === 'full sync failed');
  await eventually('the provider workflow to log the failed full sync', () => Promise.resolve(providerLine()));
  assert.equal(await worker.stop(), 0, worker.output());
  const output = worker.output();

  const { rows } = await testDb.db.query<{ error: { code: string; message: string } }>(
    'SELECT error FROM sync_runs WHERE id = $1',
    [runId],
  );
  const recorded = rows[0]!.error;
  assert.equal(recorded.code, 'ERR_SCIM_UNAUTHORIZED');
  const failed = jsonLines(output).filter(
    (line) => line['msg'] === 'Workflow failed' && line['workflowId'] === workflowId,
  );
  assert.equal(failed.length, 1, `one 'Workflow failed' line for the full sync:\n${output}`);
  const line = failed[0]!;
  assert.equal(line['level'], 40);
  const error = line['error'] as Record<string, unknown>;
  assert.equal(error['type'], 'ApplicationFailure', JSON.stringify(line));
  assert.equal(error['code'], 'ERR_SCIM_UNAUTHORIZED', JSON.stringify(line));
  assert.equal(error['message'], recorded.message);
  assert.match(String(error['message']), /401: .*Bearer \[redacted\] refused/);
  assert.match(String(error['stack']), /^ApplicationFailure: /);
  assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'stack', 'type'], 'nothing else of the failure');
  // The provider workflow, which started the full sync as its child, logs the same failure under its own.
  const { error: childError, ...fields } = providerLine() as { error: Record<string, unknown> } & Record<
    string,
    unknown
  >;
  // Its run ids: the Temporal run's (which the SDK puts on every workflow line) and scimflow's sync run's, apart.
  const providerRun = await client.workflow.getHandle(providerSyncWorkflowId(provider.slug)).describe();
  assert.equal(fields['runId'], providerRun.runId, JSON.stringify(fields));
  assert.equal(fields['syncRunId'], runId, JSON.stringify(fields));
  assert.equal(childError['type'], 'ChildWorkflowFailure', JSON.stringify(childError));
  assert.deepEqual(childError['cause'], {
    type: 'ApplicationFailure',
    message: recorded.message,
    code: 'ERR_SCIM_UNAUTHORIZED',
  });
  // The description that carried the class and code out of the workflow sandbox is not written as a field of its own.
  assert.ok(!output.includes(SANDBOX_ERROR_FIELD), 'no line carries the sandbox field');
  assertNoToken(TOKEN, output, 'the worker log');
});
