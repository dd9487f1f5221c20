/**
 * How a log line describes an error: its class, message, code, stack, a ScimflowError's details and chosen causes,
 * nothing else. Imports nothing of Node's, so the workflow sandbox can describe its errors the same way before they
 * cross into the worker (see `workflow-log-interceptors.ts`).
 */
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import { ScimflowError } from '../errors/index.ts';

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
  follows: (cause: unknown) => cause is Error;
  /** @default true */
  causeStacks?: boolean;
}

/**
 * What a logged error says: its class, message, code, stack, a ScimflowError's details, and the causes `follows`
 * admits described the same way. Not its other own properties: pino's own serializer wrote them all out (a request
 * with its headers, a response with its body), deeper than redaction reaches.
 */
export function describeLoggedError(error: Error, options: DescribeErrorOptions, depth = 0): LoggedError {
  const { follows, causeStacks = true } = options;
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

/**
 * How the Temporal SDK's lines describe errors: causes followed only while they are Temporal failures, without their
 * stacks. A cause that is not one (a request with its headers, a driver's error) never reaches Temporal, as activities
 * send only `toApplicationFailure`'s message, code and details, so it stays out of the logs too.
 */
export const FAILURE_CHAIN: DescribeErrorOptions = {
  follows: (cause): cause is TemporalFailure => cause instanceof TemporalFailure,
  causeStacks: false,
};

/**
 * The field on which a workflow's log line carries its failure as the workflow sandbox described it (see
 * `workflow-log-interceptors.ts`); the worker writes it as the line's `error`, never under this name.
 */
export const SANDBOX_ERROR_FIELD = 'scimflowSandboxError';
