/**
 * The pre-upgrade check: replays workflow histories against this version's workflow code, so a change that would
 * break the workflows already running (a nondeterminism error, which blocks them until the old code is back) is
 * found before the new workers are rolled out.
 */
import type { Client } from '@temporalio/client';
import type { HistoryAndWorkflowId } from '@temporalio/common';
import { Worker, type ReplayResult } from '@temporalio/worker';
import { workflowBundle } from './worker.ts';

/** One replayed workflow: its id and run, and why it failed to replay (absent when it replayed cleanly). */
export interface ReplayOutcome {
  workflowId: string;
  runId: string;
  error?: string;
}

/** Replays `histories` against this version's workflow code, one outcome per history. */
export async function replayHistories(
  histories: AsyncIterable<HistoryAndWorkflowId> | Iterable<HistoryAndWorkflowId>,
): Promise<ReplayOutcome[]> {
  const outcomes: ReplayOutcome[] = [];
  const results: AsyncIterable<ReplayResult> = Worker.runReplayHistories(
    { workflowBundle: await workflowBundle() },
    histories,
  );
  for await (const { workflowId, runId, error } of results) {
    outcomes.push({ workflowId, runId, ...(error ? { error: `${error.name}: ${error.message}` } : {}) });
  }
  return outcomes;
}

/** The visibility query for the workflows still running on `taskQueue`. */
export function openWorkflowsQuery(taskQueue: string): string {
  return `TaskQueue = '${taskQueue.replace(/'/g, "\\'")}' AND ExecutionStatus = 'Running'`;
}

/** Replays every workflow still running on `taskQueue` (provider workflows, full syncs under way). */
export async function replayOpenWorkflows(client: Client, taskQueue: string): Promise<ReplayOutcome[]> {
  return replayHistories(client.workflow.list({ query: openWorkflowsQuery(taskQueue) }).intoHistories());
}
