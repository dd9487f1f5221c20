import { Context } from '@temporalio/activity';

// The resume point each running activity last recorded: every heartbeat carries it, so a retry starts there.
const resumePoints = new WeakMap<Context, unknown>();
// When each running activity last heartbeated for itself (an object done, a wait reported, a resume point marked).
const ownBeats = new WeakMap<Context, number>();

/** What a heartbeat of `context` carries: its resume point, else the one its last attempt heartbeated. */
function resumePointOf(context: Context): unknown {
  return resumePoints.has(context) ? resumePoints.get(context) : context.info.heartbeatDetails;
}

/**
 * Heartbeats the current activity with `details`, or else with its resume point (see {@link markResumePoint}; until
 * it marks one, the point its last attempt reached, so that a retry of this attempt still starts there);
 * a no-op outside an activity (unit tests call functions directly).
 */
export function beat(details?: unknown): void {
  try {
    const context = Context.current();
    context.heartbeat(details ?? resumePointOf(context));
    ownBeats.set(context, performance.now());
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
    ownBeats.set(context, performance.now());
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
export function heartbeating<T>(fn: () => Promise<T>, everyMs = 1000): Promise<T> {
  return keptAlive(fn, everyMs, Infinity);
}

/**
 * Runs the current activity's `fn` heartbeating every `everyMs` (with its resume point) for as long as it heartbeats
 * for itself at least every `stalledAfterMs`: a dead worker is noticed one heartbeat timeout after it died, however
 * long a healthy attempt may go between objects (a slow request, a long query), while an attempt that stopped making
 * progress still stops heartbeating, and is timed out and retried. Outside an activity it only runs `fn`.
 */
export async function keptAlive<T>(fn: () => Promise<T>, everyMs = 5_000, stalledAfterMs = 120_000): Promise<T> {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return fn();
  }
  ownBeats.set(context, performance.now());
  const timer = setInterval(() => {
    if (performance.now() - (ownBeats.get(context) ?? 0) <= stalledAfterMs) {
      context.heartbeat(resumePointOf(context));
    }
  }, everyMs);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}
