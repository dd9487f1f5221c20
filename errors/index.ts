/**
 * One error hierarchy for scimflow. Every error the engine raises on purpose is a `ScimflowError` with a
 * stable `code`; callers switch on `code`, never on message text or `instanceof` across process or
 * isolate boundaries.
 */

/**
 * How far a failure reaches, which decides who retries it:
 * - `request`: transient; the same request may succeed when sent again (retried in the activity, with backoff, within
 *   the object's budget).
 * - `object`: this object, as it is, will not succeed; it is recorded as failed and the run goes on with the others.
 * - `run`: every further request would fail the same way (credentials, configuration, a target that is down); the
 *   run stops.
 */
export type ErrorScope = 'request' | 'object' | 'run';

/** Every stable error code, with its scope (the one table of retryability) and its HTTP status in the API. */
export const ERROR_CODES = {
  /** Input (API body, config file, CLI flag) failed validation. */
  ERR_VALIDATION: { scope: 'run', httpStatus: 400 },
  /** A directory object, provider, run or mapping does not exist. */
  ERR_NOT_FOUND: { scope: 'run', httpStatus: 404 },
  /** A uniqueness rule of the directory was violated (e.g. a second user with the same username). */
  ERR_CONFLICT: { scope: 'object', httpStatus: 409 },
  /** The engine's own configuration is unusable (missing secret key, bad provider URL, unknown plugin). */
  ERR_CONFIG: { scope: 'run', httpStatus: 400 },
  /** The SCIM target rejected the object (400 / 422, or another 4xx that says the request will never succeed). */
  ERR_SCIM_BAD_REQUEST: { scope: 'object', httpStatus: 502 },
  /** The SCIM target refused our credentials (401). Permanent for the run until the token is fixed. */
  ERR_SCIM_UNAUTHORIZED: { scope: 'run', httpStatus: 502 },
  /** The SCIM target refused the operation (403): our credentials lack a permission. */
  ERR_SCIM_FORBIDDEN: { scope: 'run', httpStatus: 502 },
  /** The SCIM target has no such resource (404). */
  ERR_SCIM_NOT_FOUND: { scope: 'object', httpStatus: 502 },
  /** The SCIM target reports a uniqueness conflict (409) that adoption could not resolve. */
  ERR_SCIM_CONFLICT: { scope: 'object', httpStatus: 502 },
  /** The remote object an object matches is already linked to another directory object; it is not adopted twice. */
  ERR_LINK_CONFLICT: { scope: 'object', httpStatus: 409 },
  /** The SCIM target throttled us (429); `retryAfterMs` says how long to wait. */
  ERR_SCIM_RATE_LIMITED: { scope: 'request', httpStatus: 502 },
  /** The SCIM target failed (5xx), or asked to be asked again later (408). */
  ERR_SCIM_SERVER: { scope: 'request', httpStatus: 502 },
  /** The SCIM target could not be reached, or the connection broke. */
  ERR_SCIM_NETWORK: { scope: 'request', httpStatus: 502 },
  /** The SCIM target did not answer in time. */
  ERR_SCIM_TIMEOUT: { scope: 'request', httpStatus: 502 },
  /** The SCIM target answered with something that is not the SCIM it promised (or more than we accept). */
  ERR_SCIM_INVALID_RESPONSE: { scope: 'object', httpStatus: 502 },
  /** The SCIM target has answered nothing but failures for a while: its circuit breaker is open. */
  ERR_SCIM_UNAVAILABLE: { scope: 'run', httpStatus: 502 },
  /** A mapping failed to compile, threw, timed out, ran out of memory or returned an invalid object. */
  ERR_MAPPING: { scope: 'object', httpStatus: 400 },
  /** The provider was disabled while its full sync ran or waited: the run stops, and ends `cancelled`. */
  ERR_PROVIDER_DISABLED: { scope: 'run', httpStatus: 409 },
  /** The workflow running a run ended before the run did (terminated in Temporal): the run is closed `cancelled`. */
  ERR_RUN_ABANDONED: { scope: 'run', httpStatus: 409 },
  /** A sync would remove more objects from the target than the provider's deletion limit allows; none were removed. */
  ERR_DELETION_GUARD: { scope: 'run', httpStatus: 409 },
  /** The authorization server refused the token request (invalid_scope, invalid_target, an unusable grant, …). */
  ERR_AUTH_TOKEN: { scope: 'run', httpStatus: 502 },
  /** The admin API request carried no credential, or one that is unknown, expired or revoked. */
  ERR_UNAUTHENTICATED: { scope: 'run', httpStatus: 401 },
  /** The credential's role is too weak, or the request's Origin or Host is not an allowed one. */
  ERR_FORBIDDEN: { scope: 'run', httpStatus: 403 },
  /** A write request's body is not `application/json` (`application/x-ndjson` for a streamed import). */
  ERR_UNSUPPORTED_MEDIA_TYPE: { scope: 'run', httpStatus: 415 },
  /** The authorization server refused scimflow's client credentials (invalid_client): fix the client id, secret or key. */
  ERR_AUTH_INVALID_CLIENT: { scope: 'run', httpStatus: 502 },
  /** The authorization server could not be reached, timed out, throttled or failed (5xx); a later attempt may work. */
  ERR_AUTH_UNAVAILABLE: { scope: 'request', httpStatus: 502 },
  /** The provider's interactive OAuth grant is missing, expired or revoked: an administrator must authorise it again. */
  ERR_AUTH_REAUTHORIZE: { scope: 'run', httpStatus: 409 },
} as const satisfies Record<string, { scope: ErrorScope; httpStatus: number }>;

/** The closed set of error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The scope of any thrown value: ours by its code; anything else (a bug, a database hiccup) fails the run. */
export function errorScope(error: unknown): ErrorScope {
  return isScimflowError(error) ? ERROR_CODES[error.code].scope : 'run';
}

/** Codes after which retrying the same activity cannot help (every scope but `request`); retry policies list them. */
export const NON_RETRYABLE_CODES: readonly ErrorCode[] = (Object.keys(ERROR_CODES) as ErrorCode[]).filter(
  (code) => ERROR_CODES[code].scope !== 'request',
);

/** Base of every deliberate scimflow error. */
export class ScimflowError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** Safe, secret-free details for logs, API bodies and Temporal failure details. */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options?: { details?: Record<string, unknown>; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ScimflowError';
    this.code = code;
    this.details = options?.details ?? {};
  }

  /** Whether sending the same request again can succeed (scope `request`). */
  get retryable(): boolean {
    return ERROR_CODES[this.code].scope === 'request';
  }

  /** A plain, serialisable form (no stack, no cause). */
  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** Input failed validation; `issues` name the offending fields. */
export class ValidationError extends ScimflowError {
  constructor(message: string, issues: ReadonlyArray<{ path: string; message: string }>) {
    super('ERR_VALIDATION', message, { details: { issues } });
    this.name = 'ValidationError';
  }
}

/** A named object does not exist. */
export class NotFoundError extends ScimflowError {
  constructor(kind: string, id: string) {
    super('ERR_NOT_FOUND', `${kind} ${id} not found`, { details: { kind, id } });
    this.name = 'NotFoundError';
  }
}

/** A SCIM request failed; `status` is the HTTP status (0 for network errors and timeouts). */
export class ScimRequestError extends ScimflowError {
  readonly status: number;
  readonly scimType: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    fields: {
      status: number;
      scimType?: string | undefined;
      retryAfterMs?: number | undefined;
      method: string;
      path: string;
      detail?: string | undefined;
    },
    cause?: unknown,
  ) {
    super(code, message, {
      details: {
        status: fields.status,
        method: fields.method,
        path: fields.path,
        ...(fields.scimType === undefined ? {} : { scimType: fields.scimType }),
        ...(fields.detail === undefined ? {} : { detail: fields.detail }),
        ...(fields.retryAfterMs === undefined ? {} : { retryAfterMs: fields.retryAfterMs }),
      },
      cause,
    });
    this.name = 'ScimRequestError';
    this.status = fields.status;
    this.scimType = fields.scimType;
    this.retryAfterMs = fields.retryAfterMs;
  }
}

/** True for any value carrying one of our codes, even across realms where `instanceof` fails. */
export function isScimflowError(value: unknown): value is ScimflowError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    (value as { code: string }).code in ERROR_CODES
  );
}

/** A short, secret-free description of any thrown value. */
export function describeError(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
