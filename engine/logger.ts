/**
 * The process logger (pino), with redaction of every field that can carry a secret: whatever object is logged, a
 * token, password, client secret, private key, refresh or access token, PKCE verifier, authorization header or
 * Temporal task token in it is written as `[redacted]`, at the top level and two levels down; a logged error (`err`)
 * keeps only what describes it (see `describeLoggedError`). Lines are JSON, or readable ones for a terminal.
 */
import { createRequire } from 'node:module';
import { types } from 'node:util';
import pino, { type DestinationStream, type Logger } from 'pino';
import type PinoPretty from 'pino-pretty';
import { describeLoggedError, type DescribeErrorOptions } from './logged-error.ts';

/** Field names whose values are secrets wherever they appear in a logged object. */
export const SECRET_LOG_FIELDS = [
  'token',
  'password',
  'secret',
  'clientSecret',
  'client_secret',
  'privateKey',
  'refreshToken',
  'refresh_token',
  'accessToken',
  'access_token',
  'codeVerifier',
  'code_verifier',
  'tokenParams',
  'authorization',
  'cookie',
  // A Temporal activity's task token (on the SDK's activity lines) completes or fails that activity.
  'taskToken',
  'SCIMFLOW_SECRET_KEY',
  'SCIMFLOW_DECRYPT_KEYS',
] as const;

/** The redaction paths: each field at the top level, one and two levels down, and in `headers` objects. */
export const REDACT_PATHS: readonly string[] = SECRET_LOG_FIELDS.flatMap((field) => [
  field,
  `*.${field}`,
  `*.*.${field}`,
  `headers.${field}`,
  `*.headers.${field}`,
]);

/** What redacted values are replaced with (the same marker error texts use). */
export const REDACTED = '[redacted]';

/** An `err` line follows every cause that is an error, of any realm (a workflow sandbox's too). */
const ANY_CAUSE: DescribeErrorOptions = { follows: types.isNativeError };

/** How log lines are written: `json`, one JSON object a line; `pretty`, a readable line (time, level, message, fields). */
export type LogFormat = 'json' | 'pretty';

/** The format of a process's logs when LOG_FORMAT does not say: readable on a terminal, JSON anywhere else. */
export function defaultLogFormat(stdout: { isTTY?: boolean } = process.stdout): LogFormat {
  return stdout.isTTY === true ? 'pretty' : 'json';
}

/**
 * A logger at `level` writing to `destination` (stdout by default) in `format`, secrets redacted. A readable line is
 * made from the JSON one, so it is redacted alike; it is coloured when written to a terminal that takes colours.
 */
export function createLogger(level: string, destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  const options = {
    level,
    base: null,
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    serializers: {
      err: (error: unknown) => (types.isNativeError(error) ? describeLoggedError(error, ANY_CAUSE) : error),
    },
  };
  if (format === 'pretty') {
    // Loaded only here: the processes that log JSON (tests, containers) do not pay its 20 ms.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    const readable = pretty({
      // Written as logged, as JSON lines are: none is lost when the process exits right after.
      sync: true,
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ...(destination === undefined ? {} : { destination, colorize: false }),
    });
    return pino(options, readable);
  }
  return destination === undefined ? pino(options) : pino(options, destination);
}
