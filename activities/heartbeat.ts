import { Context } from '@temporalio/activity';

/** Heartbeats the current activity with `details`; a no-op outside an activity (unit tests call functions directly). */
export function beat(details?: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Outside an activity: nothing to heartbeat.
  }
}

/** The current activity's cancellation signal; undefined outside an activity. */
export function cancellation(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}
