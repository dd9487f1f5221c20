/**
 * The process logger (pino), with redaction of every field that can carry a secret: whatever object is logged, a
 * token, password, client secret, private key, refresh or access token, PKCE verifier, authorization header or
 * Temporal task token in it is written as `[redacted]`, at the top level and two levels down; a logged error (`err`)
 * keeps only what describes it (see `describeLoggedError`).
 */
import { types } from 'node:util';
import { ApplicationFailure } from '@temporalio/common';
import pino, { type DestinationStream, type Logger } from 'pino';
import { ScimflowError } from '../errors/index.ts';

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

/** How many causes of a logged error are described (a cause chain can be long, or a cycle). */
const MAX_CAUSES = 5;

/** An error as a log line carries it (`err`); see {@link describeLoggedError}. */
export interface LoggedError {
  type: string;
  message: string;
  /** A string or numeric `code` (ours, Node's, PostgreSQL's SQLSTATE), else an ApplicationFailure's type. */
  code?: string | number;
  /** A ScimflowError's details, secret-free by contract. */
  details?: unknown;
  stack?: string;
  cause?: LoggedError;
}

/** Which of an error's causes `describeLoggedError` follows, and whether theirs stacks are kept. */
export interface DescribeErrorOptions {
  /** @default any error (of any realm: a workflow sandbox's too) */
  follows?: (cause: unknown) => cause is Error;
  /** @default true */
  causeStacks?: boolean;
}

/**
 * What a logged error says: its class, message, code, stack, a ScimflowError's details, and the causes `follows`
 * admits described the same way. Not its other own properties: pino's own serializer wrote them all out (a request
 * with its headers, a response with its body), deeper than redaction reaches.
 */
export function describeLoggedError(error: Error, options: DescribeErrorOptions = {}, depth = 0): LoggedError {
  const { follows = types.isNativeError, causeStacks = true } = options;
  const described: LoggedError = { type: error.name, message: error.message };
  const { code, details } = error as { code?: unknown; details?: unknown };
  if (typeof code === 'string' || typeof code === 'number') described.code = code;
  else if (error instanceof ApplicationFailure && error.type) described.code = error.type;
  if (error instanceof ScimflowError) described.details = details;
  if (error.stack !== undefined && (depth === 0 || causeStacks)) described.stack = error.stack;
  if (follows(error.cause) && depth < MAX_CAUSES)
    described.cause = describeLoggedError(error.cause, options, depth + 1);
  return described;
}

/** A logger at `level` writing JSON lines to `destination` (stdout by default), secrets redacted. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: null,
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    // An error from another realm (a workflow's sandbox) is an Error all the same.
    serializers: { err: (error: unknown) => (types.isNativeError(error) ? describeLoggedError(error) : error) },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
