import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createUser } from '../../db/index.ts';
import { replayHistories } from '../../engine/index.ts';
import { providerSyncWorkflowId } from '../../workflows/index.ts';
import { fullSyncRun, incrementalWorld, person } from '../incremental/harness.ts';
import { runScimflow } from '../support/cli.ts';

test('replay-check replays the running provider workflows cleanly, and a history the code does not match fails', async (t) => {
  const { db, client, taskQueue, control, newProvider } = await incrementalWorld(t, { relay: false });
  await createUser(db, person(1));
  const provider = await newProvider();
  assert.equal((await fullSyncRun(db, control, provider)).status, 'succeeded');

  const checked = await runScimflow(['replay-check'], { env: { SCIMFLOW_TASK_QUEUE: taskQueue } });
  assert.equal(checked.code, 0, checked.stderr);
  assert.match(checked.stdout, /^1 running workflow\(s\) replay cleanly on this version: safe to roll it out$/m);

  // The same history with one activity renamed stands for workflow code that changed under a running workflow.
  const workflowId = providerSyncWorkflowId(provider.slug);
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const [clean] = await replayHistories([{ workflowId, history }]);
  assert.equal(clean?.workflowId, workflowId);
  assert.equal(clean?.error, undefined);
  const scheduled = history.events?.find((event) => event.activityTaskScheduledEventAttributes?.activityType?.name);
  assert.ok(scheduled, 'the provider workflow scheduled an activity');
  scheduled.activityTaskScheduledEventAttributes!.activityType!.name = 'anActivityThisVersionNeverCalls';
  const [outcome] = await replayHistories([{ workflowId, history }]);
  assert.match(outcome?.error ?? '', /DeterminismViolationError/);
});
