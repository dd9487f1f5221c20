/** `scimflow replay-check`: the pre-upgrade check of the workflows running now against this version's code. */
import { Client, Connection } from '@temporalio/client';
import { loadEnv, temporalConnectionOptions } from '../config/index.ts';
import { configureTemporalLogging, createLogger, replayOpenWorkflows } from '../engine/index.ts';
import { ScimflowError } from '../errors/index.ts';
import type { Output } from './output.ts';

/** Replays the open workflows of SCIMFLOW_TASK_QUEUE on TEMPORAL_ADDRESS; resolves to the exit code. */
export async function runReplayCheck(output: Output): Promise<number> {
  const env = loadEnv();
  if (!env.TEMPORAL_ADDRESS)
    throw new ScimflowError(
      'ERR_CONFIG',
      'TEMPORAL_ADDRESS must be set: replay-check reads the running workflows there',
    );
  // Only the SDK's errors, on stderr: stdout carries the verdict.
  configureTemporalLogging(createLogger('error', process.stderr));
  const connection = await Connection.connect(temporalConnectionOptions(env, env.TEMPORAL_ADDRESS));
  try {
    const client = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE });
    const outcomes = await replayOpenWorkflows(client, env.SCIMFLOW_TASK_QUEUE);
    const failed = outcomes.filter((outcome) => outcome.error !== undefined);
    for (const outcome of failed) output.out(`FAILS   ${outcome.workflowId} (run ${outcome.runId}): ${outcome.error}`);
    output.out(
      failed.length === 0
        ? `${outcomes.length} running workflow(s) replay cleanly on this version: safe to roll it out`
        : `${failed.length} of ${outcomes.length} running workflow(s) cannot replay on this version: do not roll it out`,
    );
    return failed.length === 0 ? 0 : 1;
  } finally {
    await connection.close();
  }
}
