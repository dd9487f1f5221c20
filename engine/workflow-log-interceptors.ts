/**
 * Workflow interceptors bundled with the workflow code (see `workflow-bundler.ts`): they run in the workflow sandbox,
 * so this module imports only what the sandbox may (no Node built-ins, no activities).
 *
 * The SDK logs a failed workflow ('Workflow failed', its `error` the failure) through a sink, which structured-clones
 * the line's fields: an error arrives in the worker as a plain `Error`, its class name gone unless it is one of
 * JavaScript's own and its own properties gone (an ApplicationFailure's type, our error code), so the line could not
 * say which failure it was. The failure is described here, inside the sandbox, and rides along on the same line;
 * `temporal-logging.ts` writes that description as the line's `error`.
 */
import { ContinueAsNew, isCancellation, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { describeLoggedError, FAILURE_CHAIN, type LoggedError, SANDBOX_ERROR_FIELD } from './logged-error.ts';

export const interceptors: WorkflowInterceptorsFactory = () => {
  // This workflow's failure, once it has failed; what its next log lines (the SDK's 'Workflow failed') carry.
  let failure: LoggedError | undefined;
  return {
    inbound: [
      {
        execute(input, next) {
          const result = next(input);
          // Watched beside the chain, not awaited in it: the workflow's promise reaches the SDK unchanged, with no
          // added turn of the event loop. This handler runs before the SDK's, which was attached after it.
          result.then(undefined, (error: unknown) => {
            if (error instanceof Error && !isCancellation(error) && !(error instanceof ContinueAsNew))
              failure = describeLoggedError(error, FAILURE_CHAIN);
          });
          return result;
        },
      },
    ],
    outbound: [
      {
        getLogAttributes(input, next) {
          const attributes = next(input);
          return failure === undefined ? attributes : { ...attributes, [SANDBOX_ERROR_FIELD]: failure };
        },
      },
    ],
  };
};
