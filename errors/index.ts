/**
 * One error hierarchy for scimflow. Every error the engine raises on purpose is a `ScimflowError` with a
 * stable `code`; callers switch on `code`, never on message text or `instanceof` across process or
 * isolate boundaries.
 */

/** Every stable error code, with whether a retry can help. */
export const ERROR_CODES = {
  /** Input (API body, config file, CLI flag) failed validation. */
  ERR_VALIDATION: { retryable: false, httpStatus: 400 },
  /** A directory object, provider, run or mapping does not exist. */
  ERR_NOT_FOUND: { retryable: false, httpStatus: 404 },
  /** A uniqueness rule of the directory was violated (e.g. a second user with the same username). */
  ERR_CONFLICT: { retryable: false, httpStatus: 409 },
  /** The engine's own configuration is unusable (missing secret key, bad provider URL, unknown plugin). */
  ERR_CONFIG: { retryable: false, httpStatus: 400 },
  /** The SCIM target rejected the object (400 / 422). Permanent for that object. */
  ERR_SCIM_BAD_REQUEST: { retryable: false, httpStatus: 502 },
  /** The SCIM target refused our credentials (401). Permanent for the run until the token is fixed. */
  ERR_SCIM_UNAUTHORIZED: { retryable: false, httpStatus: 502 },
  /** The SCIM target refused the operation (403). */
  ERR_SCIM_FORBIDDEN: { retryable: false, httpStatus: 502 },
  /** The SCIM target has no such resource (404). */
  ERR_SCIM_NOT_FOUND: { retryable: false, httpStatus: 502 },
  /** The SCIM target reports a uniqueness conflict (409) that adoption could not resolve. */
  ERR_SCIM_CONFLICT: { retryable: false, httpStatus: 502 },
  /** The SCIM target throttled us (429); `retryAfterMs` says how long to wait. */
  ERR_SCIM_RATE_LIMITED: { retryable: true, httpStatus: 502 },
  /** The SCIM target failed (5xx). */
  ERR_SCIM_SERVER: { retryable: true, httpStatus: 502 },
  /** The SCIM target could not be reached, or the connection broke. */
  ERR_SCIM_NETWORK: { retryable: true, httpStatus: 502 },
  /** The SCIM target did not answer in time. */
  ERR_SCIM_TIMEOUT: { retryable: true, httpStatus: 502 },
  /** The SCIM target answered with something that is not the SCIM it promised. */
  ERR_SCIM_INVALID_RESPONSE: { retryable: false, httpStatus: 502 },
  /** A mapping failed to compile, threw, timed out, ran out of memory or returned an invalid object. */
  ERR_MAPPING: { retryable: false, httpStatus: 400 },
  /** A sync would remove more objects from the target than the provider's deletion limit allows; none were removed. */
  ERR_DELETION_GUARD: { retryable: false, httpStatus: 409 },
  /** The authorization server refused the token request (invalid_scope, invalid_target, an unusable grant, …). */
  ERR_AUTH_TOKEN: { retryable: false, httpStatus: 502 },
  /** The admin API request carried no credential, or one that is unknown, expired or revoked. */
  ERR_UNAUTHENTICATED: { retryable: false, httpStatus: 401 },
  /** The credential's role is too weak, or the request's Origin or Host is not an allowed one. */
  ERR_FORBIDDEN: { retryable: false, httpStatus: 403 },
  /** A write request's body is not `application/json`. */
  ERR_UNSUPPORTED_MEDIA_TYPE: { retryable: false, httpStatus: 415 },
  /** The authorization server refused scimflow's client credentials (invalid_client): fix the client id, secret or key. */
  ERR_AUTH_INVALID_CLIENT: { retryable: false, httpStatus: 502 },
  /** The authorization server could not be reached, timed out, throttled or failed (5xx); a later attempt may work. */
  ERR_AUTH_UNAVAILABLE: { retryable: true, httpStatus: 502 },
  /** The provider's interactive OAuth grant is missing, expired or revoked: an administrator must authorise it again. */
  ERR_AUTH_REAUTHORIZE: { retryable: false, httpStatus: 409 },
} as const satisfies Record<string, { retryable: boolean; httpStatus: number }>;

/** The closed set of error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Codes after which retrying the same activity cannot help; every sync activity's retry policy lists them. */
export const NON_RETRYABLE_CODES: readonly ErrorCode[] = [
  'ERR_CONFIG',
  'ERR_NOT_FOUND',
  'ERR_VALIDATION',
  'ERR_SCIM_UNAUTHORIZED',
  'ERR_SCIM_FORBIDDEN',
  'ERR_AUTH_TOKEN',
  'ERR_AUTH_INVALID_CLIENT',
  'ERR_AUTH_REAUTHORIZE',
];

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

  /** Whether retrying the same operation later can succeed. */
  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
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
