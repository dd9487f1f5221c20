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
 * Runs `stoppers` newest-first when the process is asked to stop, then exits; a second signal exits at once.
 * The listeners stay registered (not `once`): the embedded Temporal server's own signal hook steps aside only while
 * the host listens, and would otherwise kill the process before the stoppers ran.
 */
export function stopOnSignals(stoppers: Stopper[], log: Logger): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'stopping scimflow at once');
      process.exit(128 + osConstants.signals[signal]);
    }
    stopping = true;
    log.info({ signal }, 'stopping scimflow');
    await runStoppers(stoppers, log);
    process.exit(0);
  };
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
