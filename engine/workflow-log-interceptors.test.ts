import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { ContinueAsNew } from '@temporalio/workflow';
import { SANDBOX_ERROR_FIELD } from './logged-error.ts';
import { interceptors } from './workflow-log-interceptors.ts';

/** The log attributes a workflow's lines get after its execution ended with `outcome`. */
async function attributesAfter(outcome: Promise<unknown>): Promise<Record<string, unknown>> {
  const { inbound, outbound } = interceptors();
  const execute = inbound![0]!.execute!;
  const getLogAttributes = outbound![0]!.getLogAttributes!;
  const before = getLogAttributes({ workflowId: 'w' }, (input) => input);
  assert.deepEqual(before, { workflowId: 'w' }, 'nothing is added while the workflow runs');
  const result = execute({ args: [], headers: {} }, () => outcome);
  assert.equal(result, outcome, "the workflow's own promise is passed on");
  await result.catch(() => undefined);
  return getLogAttributes({ workflowId: 'w' }, (input) => input);
}

test("a failed workflow's log lines carry its failure as the sandbox describes it", async () => {
  const failure = ApplicationFailure.nonRetryable('refused (401)', 'ERR_SCIM_UNAUTHORIZED');
  const attributes = await attributesAfter(Promise.reject(failure));
  assert.deepEqual(attributes, {
    workflowId: 'w',
    [SANDBOX_ERROR_FIELD]: {
      type: 'ApplicationFailure',
      message: 'refused (401)',
      code: 'ERR_SCIM_UNAUTHORIZED',
      stack: failure.stack,
    },
  });
});

test('a workflow that completes, is cancelled or continues as new adds nothing to its lines', async () => {
  const ends = [
    Promise.resolve('done'),
    Promise.reject(new CancelledFailure('cancelled')),
    Promise.reject(new ContinueAsNew({ workflowType: 'fullSync', arguments: [], headers: {}, taskQueue: 'q' })),
  ];
  for (const end of ends) assert.deepEqual(await attributesAfter(end), { workflowId: 'w' });
});
