import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { ActivityFailure, ApplicationFailure, RetryState } from '@temporalio/common';
import { describeLoggedError, FAILURE_CHAIN, SANDBOX_ERROR_FIELD } from './logged-error.ts';
import { createLogger } from './logger.ts';
import { temporalLogger } from './temporal-logging.ts';

function capture(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk
        .toString()
        .split('\n')
        .filter((text) => text !== ''))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: temporalLogger(createLogger(level, sink)) };
}

test("the SDK's entries are JSON lines at the process's level, its metadata as fields", () => {
  const { lines, logger } = capture('info');
  logger.debug('Activity started', { activityType: 'syncBatch' });
  logger.trace('Got workflow activation', { runId: 'r1' });
  logger.info('Worker state changed', {
    sdkComponent: 'worker',
    taskQueue: 'scimflow',
    state: 'RUNNING',
    [Symbol.for('log_timestamp')]: 1n,
  });
  logger.log('WARN', 'Error polling', { sdkComponent: 'core', target: 'temporalio_sdk_core::poll', error: 'timeout' });
  assert.equal(lines.length, 2, 'below the level nothing is written');
  const [state, core] = lines;
  assert.deepEqual(
    { ...state, time: 0 },
    {
      level: 30,
      time: 0,
      sdkComponent: 'worker',
      taskQueue: 'scimflow',
      state: 'RUNNING',
      msg: 'Worker state changed',
    },
  );
  assert.equal(core?.['level'], 40);
  assert.equal(core?.['target'], 'temporalio_sdk_core::poll');
  assert.equal(core?.['error'], 'timeout', "the core's fields are kept as they are");
});

test('an activity failure is logged as its failure reads, nothing the error held besides, its task token redacted', () => {
  const { lines, logger } = capture('debug');
  // What an activity that did not convert its error would throw: a request's headers on it, a driver error as cause.
  const raw = Object.assign(new Error('the target refused the request', { cause: new Error('pw=s3cr3t-cause') }), {
    request: { headers: { authorization: 'Bearer s3cr3t-header' }, body: 's3cr3t-body' },
  });
  logger.warn('Activity failed', {
    sdkComponent: 'worker',
    activityType: 'syncBatch',
    workflowId: 'full-sync-acme',
    taskToken: 's3cr3t-task-token',
    error: raw,
    durationMs: 12,
  });
  const failure = ApplicationFailure.create({
    message: 'the target refused our credentials (401)',
    type: 'ERR_SCIM_UNAUTHORIZED',
    details: [{ status: 401 }],
    cause: new Error('s3cr3t in a cause that is no failure'),
  });
  logger.warn('Workflow failed', {
    workflowId: 'full-sync-acme',
    error: new ActivityFailure(
      'Activity task failed',
      'syncBatch',
      '3',
      RetryState.NON_RETRYABLE_FAILURE,
      'w',
      failure,
    ),
  });
  assert.equal(lines.length, 2);
  for (const line of lines) assert.doesNotMatch(JSON.stringify(line), /s3cr3t/);

  const [activity, workflow] = lines as [Record<string, unknown>, Record<string, unknown>];
  assert.equal(activity['activityType'], 'syncBatch');
  assert.equal(activity['workflowId'], 'full-sync-acme');
  assert.equal(activity['durationMs'], 12);
  assert.equal(activity['taskToken'], '[redacted]');
  const err = activity['error'] as Record<string, unknown>;
  assert.equal(err['type'], 'Error');
  assert.equal(err['message'], 'the target refused the request');
  assert.match(String(err['stack']), /^Error: the target refused the request\n/);
  assert.deepEqual(Object.keys(err).sort(), ['message', 'stack', 'type']);

  const chain = workflow['error'] as Record<string, unknown>;
  assert.equal(chain['type'], 'ActivityFailure');
  assert.deepEqual(chain['cause'], {
    type: 'ApplicationFailure',
    message: 'the target refused our credentials (401)',
    code: 'ERR_SCIM_UNAUTHORIZED',
  });
});

test("a workflow's failure, cloned out of its sandbox, is logged as the sandbox described it, class and code kept", () => {
  const { lines, logger } = capture('info');
  const failure = new ActivityFailure(
    'Activity task failed',
    'beginFullSync',
    '1',
    RetryState.NON_RETRYABLE_FAILURE,
    'w',
    ApplicationFailure.create({ message: 'refused (401)', type: 'ERR_SCIM_UNAUTHORIZED', nonRetryable: true }),
  );
  // What a workflow's sink hands the worker: a structured clone of the failure, its class and type gone, and the
  // sandbox's description of it.
  const clone = structuredClone(failure);
  assert.equal(clone.name, 'Error');
  const described = describeLoggedError(failure, FAILURE_CHAIN);
  logger.warn('Workflow failed', { workflowId: 'w', error: clone, [SANDBOX_ERROR_FIELD]: described });
  // A description of another error is not taken for this one's.
  logger.warn('Workflow failed', { workflowId: 'w', error: new Error('another'), [SANDBOX_ERROR_FIELD]: described });

  const [own, other] = lines as [Record<string, unknown>, Record<string, unknown>];
  assert.deepEqual(own['error'], {
    type: 'ActivityFailure',
    message: 'Activity task failed',
    stack: failure.stack,
    cause: { type: 'ApplicationFailure', message: 'refused (401)', code: 'ERR_SCIM_UNAUTHORIZED' },
  });
  assert.deepEqual(Object.keys(other['error'] as object).sort(), ['message', 'stack', 'type']);
  assert.equal((other['error'] as Record<string, unknown>)['type'], 'Error');
  for (const line of lines) assert.ok(!(SANDBOX_ERROR_FIELD in line), 'the description is no field of its own');
});
