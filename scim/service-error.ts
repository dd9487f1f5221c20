/** Errors a SCIM service provider answers with (RFC 7644 §3.12): an HTTP status and, for 400s, a `scimType`. */
import { SCHEMA_ERROR } from './schemas.ts';

/** The `scimType` keywords of RFC 7644 Table 9. */
export type ScimErrorType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

/** Statuses a SCIM service provider answers errors with. */
export type ScimErrorStatus = 400 | 401 | 403 | 404 | 409 | 412 | 413 | 429 | 500 | 501;

/** A request a SCIM service provider refuses; becomes a SCIM error body at the HTTP boundary. */
export class ScimServiceError extends Error {
  readonly status: ScimErrorStatus;
  readonly scimType: ScimErrorType | undefined;

  constructor(status: ScimErrorStatus, detail: string, scimType?: ScimErrorType) {
    super(detail);
    this.name = 'ScimServiceError';
    this.status = status;
    this.scimType = scimType;
  }

  /** The RFC 7644 error body. */
  toBody(): { schemas: string[]; status: string; scimType?: ScimErrorType; detail: string } {
    return {
      schemas: [SCHEMA_ERROR],
      status: String(this.status),
      ...(this.scimType === undefined ? {} : { scimType: this.scimType }),
      detail: this.message,
    };
  }
}

/** A 400 with a scimType. */
export function badRequest(scimType: ScimErrorType, detail: string): ScimServiceError {
  return new ScimServiceError(400, detail, scimType);
}
