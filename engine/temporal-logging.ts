/**
 * The Temporal SDK's own logs (the worker's, the workflow and activity context loggers', and the Rust core's, which
 * the SDK forwards) written through the process's pino logger: JSON lines at its level, with the SDK's metadata
 * (workflow id, activity type, task queue, …) as fields and every error reduced to what its failure already tells
 * Temporal, so nothing reaches a line that `createLogger` would not let through.
 */
import { types } from 'node:util';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import type { Level, Logger } from 'pino';
import { describeLoggedError, FAILURE_CHAIN, type LoggedError, SANDBOX_ERROR_FIELD } from './logged-error.ts';

/** The level the SDK and its core log at for each pino level; pino filters their lines again. */
const TEMPORAL_LEVELS: Record<Level | 'silent', LogLevel> = {
  fatal: 'ERROR',
  error: 'ERROR',
  warn: 'WARN',
  info: 'INFO',
  debug: 'DEBUG',
  trace: 'TRACE',
  silent: 'ERROR',
};

const PINO_METHODS = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;

/**
 * `described` when it describes `error`, else nothing. An error logged in a workflow reaches the worker through a sink
 * as a structured clone: a plain `Error` with the message, stack and causes, but neither its class (unless it is one of
 * JavaScript's own) nor its code. The sandbox described the original (`describeLoggedError`, `FAILURE_CHAIN`) before it
 * crossed, and that description is the one a line carries; a description of another error is not used.
 */
function describedInSandbox(error: Error, described: unknown): LoggedError | undefined {
  if (typeof described !== 'object' || described === null) return undefined;
  const { type, message, stack } = described as Partial<Record<keyof LoggedError, unknown>>;
  if (typeof type !== 'string' || message !== error.message || stack !== error.stack) return undefined;
  return described as LoggedError;
}

/**
 * The fields of one SDK line: its metadata, each error described. They keep the SDK's names (`error`, not `err`,
 * whose serializer follows every cause).
 */
function fields(meta: LogMetadata | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const { [SANDBOX_ERROR_FIELD]: sandboxed, ...rest } = meta ?? {};
  // Object.entries skips symbol keys, such as the timestamp the SDK keeps on its buffered entries.
  for (const [key, value] of Object.entries(rest)) {
    out[key] = types.isNativeError(value)
      ? (describedInSandbox(value, sandboxed) ?? describeLoggedError(value, FAILURE_CHAIN))
      : value;
  }
  return out;
}

/** A Temporal SDK logger writing every entry through `log` (its level, its redaction) as one JSON line. */
export function temporalLogger(log: Logger): TemporalLogger {
  const write = (level: LogLevel, message: string, meta?: LogMetadata): void => {
    const method = PINO_METHODS[level];
    if (log.isLevelEnabled(method)) log[method](fields(meta), message);
  };
  return {
    log: write,
    trace: (message, meta) => write('TRACE', message, meta),
    debug: (message, meta) => write('DEBUG', message, meta),
    info: (message, meta) => write('INFO', message, meta),
    warn: (message, meta) => write('WARN', message, meta),
    error: (message, meta) => write('ERROR', message, meta),
  };
}

let configured = false;

/**
 * Sends the Temporal SDK's logs (worker state changes are INFO) and its core's into `log`, at `log`'s level. Must
 * run before the first native connection or worker of the process; later calls do nothing.
 */
export function configureTemporalLogging(log: Logger): void {
  if (configured) return;
  configured = true;
  const level = TEMPORAL_LEVELS[log.level as Level | 'silent'] ?? 'INFO';
  // The options the SDK makes its runtime with when the first native connection or worker needs it, not a runtime
  // now: one that forwards the core's logs keeps the process alive until it shuts down, which it does when its last
  // connection or worker closes. A process that fails before making one (no database, no Temporal) still exits.
  Runtime.defaultOptions = {
    logger: temporalLogger(log),
    // The core's own lines at the same level, but never below INFO: its debug lines print whole workflow tasks
    // (hundreds of KB a run, task tokens in their text). Those of the libraries under it only when they fail.
    telemetryOptions: { logging: { filter: { core: coreLevel(level), other: 'ERROR' }, forward: {} } },
  };
}

/** The level the core logs at for the process's `level`: the same, but INFO at most verbose. */
function coreLevel(level: LogLevel): LogLevel {
  return level === 'DEBUG' || level === 'TRACE' ? 'INFO' : level;
}
