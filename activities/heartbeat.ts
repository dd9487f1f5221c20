import { Context } from '@temporalio/activity';

// The resume point each running activity last recorded: every heartbeat carries it, so a retry starts there.
const resumePoints = new WeakMap<Context, unknown>();

/**
 * Heartbeats the current activity with `details`, or else with its resume point (see {@link markResumePoint});
 * a no-op outside an activity (unit tests call functions directly).
 */
export function beat(details?: unknown): void {
  try {
    const context = Context.current();
    context.heartbeat(details ?? resumePoints.get(context));
  } catch {
    // Outside an activity: nothing to heartbeat.
  }
}

/** Records where a retry of the current activity should start, and heartbeats it; a no-op outside an activity. */
export function markResumePoint(point: unknown): void {
  try {
    const context = Context.current();
    resumePoints.set(context, point);
    context.heartbeat(point);
  } catch {
    // Outside an activity: nothing to resume.
  }
}

/** The resume point the last attempt of the current activity heartbeated; undefined on a first attempt. */
export function lastResumePoint(): unknown {
  try {
    return Context.current().info.heartbeatDetails as unknown;
  } catch {
    return undefined;
  }
}

/** Whether the current activity runs its first attempt (no earlier one can still be running); false outside one. */
export function firstAttempt(): boolean {
  try {
    return Context.current().info.attempt === 1;
  } catch {
    return false;
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

/**
 * Runs `fn` heartbeating every `everyMs` meanwhile, so the activity learns of its cancellation (delivered with a
 * heartbeat's answer) even while one request or query blocks it; outside an activity it only runs `fn`.
 */
export async function heartbeating<T>(fn: () => Promise<T>, everyMs = 1000): Promise<T> {
  const timer = setInterval(() => beat(), everyMs);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}
