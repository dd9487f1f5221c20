/**
 * How a scimflow process stops what it started: each part registers a stopper as it starts, and they run newest-first
 * on a signal, on a failed start, or when the Temporal worker ends on an error.
 */
import { constants as osConstants } from 'node:os';
import type { Logger } from 'pino';

/** Stops one part of the process. */
export type Stopper = () => Promise<void>;

/**
 * Runs `stoppers` newest-first, and takes them out of the list: a second call (a signal during a stop after a failure)
 * runs none twice. One that fails is logged and the rest still run.
 */
export async function runStoppers(stoppers: Stopper[], log: Logger): Promise<void> {
  for (const fn of stoppers.splice(0).reverse()) {
    await fn().catch((error: unknown) => log.warn({ err: error }, 'error while stopping'));
  }
}

/**
 * Signals this close together are one request to stop. A signal to a process group reaches scimflow both directly and
 * through a parent that passes it on (bin.mjs with no terminal, or a supervisor that signals every process, as
 * systemd does): taken as a second request, it turned a graceful stop into an abrupt one (exit 130 or 143 at once).
 */
export const SAME_REQUEST_MS = 500;

/**
 * What to do on a stop signal: the first runs `stoppers` newest-first, then exits 0; another within
 * {@link SAME_REQUEST_MS} is the same request; one after that exits at once (128 + its number).
 */
export function signalHandler(
  stoppers: Stopper[],
  log: Logger,
  exit: (code: number) => void = (code) => process.exit(code),
  now: () => number = () => performance.now(),
): (signal: NodeJS.Signals) => Promise<void> {
  let stoppingSince: number | undefined;
  return async (signal) => {
    if (stoppingSince !== undefined) {
      if (now() - stoppingSince < SAME_REQUEST_MS) return;
      log.warn({ signal }, 'stopping scimflow at once');
      exit(128 + osConstants.signals[signal]);
      return;
    }
    stoppingSince = now();
    log.info({ signal }, 'stopping scimflow');
    await runStoppers(stoppers, log);
    exit(0);
  };
}

/**
 * Stops the process on SIGINT and SIGTERM (see {@link signalHandler}). The listeners stay registered (not `once`):
 * the embedded Temporal server's own signal hook steps aside only while the host listens, and would otherwise kill the
 * process before the stoppers ran.
 */
export function stopOnSignals(stoppers: Stopper[], log: Logger): void {
  const stop = signalHandler(stoppers, log);
  process.on('SIGINT', (s) => void stop(s));
  process.on('SIGTERM', (s) => void stop(s));
}

/**
 * Waits for the Temporal worker's run to end. When it ends on an error, everything else stops too and the error is
 * thrown: a process whose worker died would otherwise go on serving its API and relaying changes nobody pushes,
 * held open by them, and a supervisor would never restart it.
 */
export async function untilWorkerEnds(done: Promise<void>, stoppers: Stopper[], log: Logger): Promise<void> {
  try {
    await done;
  } catch (error) {
    log.fatal({ err: error }, 'the Temporal worker stopped on an error; stopping scimflow');
    await runStoppers(stoppers, log);
    throw error;
  }
}
