/**
 * Checks OIDC bearer tokens for the admin API: a JWT signed by one of the issuer's published keys (found through its
 * discovery document), for this API's audience, unexpired, whose role claim maps to a role.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { OidcSettings } from '../config/index.ts';
import { ROLES, type Role } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';

/** Why an OIDC token was refused: not a valid token of the issuer, expired, or no role in its claim. */
export type OidcRefusal = 'unknown' | 'expired' | 'no-role';

/** The outcome of checking one token. */
export type OidcResult = { ok: true; name: string; role: Role } | { ok: false; reason: OidcRefusal; message: string };

/** Checks OIDC bearer tokens; throws ERR_AUTH_UNAVAILABLE when the issuer's keys cannot be fetched. */
export interface OidcVerifier {
  verify(token: string): Promise<OidcResult>;
}

/** What a verifier is built from besides its settings. */
export interface OidcVerifierOptions {
  /** The clock tokens are checked against (tests move it). */
  now?: () => Date;
  /** Milliseconds to wait for the discovery document and the keys. */
  timeoutMs?: number;
}

// Signature algorithms with public keys only: a JWKS never holds the secret an HMAC would need.
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
// jose's codes for a key set that could not be fetched or read, as opposed to a token that does not check out.
const UNAVAILABLE_CODES = new Set(['ERR_JWKS_TIMEOUT', 'ERR_JOSE_GENERIC']);

function unavailable(issuer: string, reason: string, cause?: unknown): ScimflowError {
  return new ScimflowError('ERR_AUTH_UNAVAILABLE', `the OIDC issuer ${issuer} could not be reached: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The `jwks_uri` of `issuer`'s discovery document, which must name the same issuer. */
async function discoverKeys(issuer: string, timeoutMs: number): Promise<URL> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let document: { issuer?: unknown; jwks_uri?: unknown };
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    if (!response.ok) throw unavailable(issuer, `${url} answered ${response.status}`);
    document = (await response.json()) as typeof document;
  } catch (error) {
    if (error instanceof ScimflowError) throw error;
    throw unavailable(issuer, `${url}: ${(error as Error).message}`, error);
  }
  if (document.issuer !== issuer) {
    throw unavailable(issuer, `its discovery document names the issuer ${JSON.stringify(document.issuer)}`);
  }
  if (typeof document.jwks_uri !== 'string' || !URL.canParse(document.jwks_uri)) {
    throw unavailable(issuer, 'its discovery document has no jwks_uri');
  }
  return new URL(document.jwks_uri);
}

/** The value at `path` in the claims (`['realm_access', 'roles']`). */
function claimAt(payload: JWTPayload, path: readonly string[]): unknown {
  let value: unknown = payload;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** The strongest role the claim's values map to, or null. */
function roleOf(claim: unknown, roles: OidcSettings['roles']): Role | null {
  const values = (Array.isArray(claim) ? claim : [claim]).filter((v): v is string => typeof v === 'string');
  let best: Role | null = null;
  for (const value of values) {
    const role = roles === null ? ROLES.find((name) => name === value) : roles.get(value);
    if (role !== undefined && (best === null || ROLES.indexOf(role) > ROLES.indexOf(best))) best = role;
  }
  return best;
}

/** A verifier for `settings`; the discovery document and keys are fetched on first use (a failure is retried). */
export function createOidcVerifier(settings: OidcSettings, options: OidcVerifierOptions = {}): OidcVerifier {
  const timeoutMs = options.timeoutMs ?? 5000;
  let keys: Promise<JWTVerifyGetKey> | undefined;
  const keySet = (): Promise<JWTVerifyGetKey> => {
    keys ??= discoverKeys(settings.issuer, timeoutMs).then(
      (jwksUri) => createRemoteJWKSet(jwksUri, { timeoutDuration: timeoutMs }),
      (error: unknown) => {
        keys = undefined;
        throw error;
      },
    );
    return keys;
  };
  return {
    async verify(token) {
      const getKey = await keySet();
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, getKey, {
          issuer: settings.issuer,
          audience: settings.audience,
          algorithms: ALGORITHMS,
          ...(options.now ? { currentDate: options.now() } : {}),
        }));
      } catch (error) {
        if (error instanceof errors.JWTExpired)
          return { ok: false, reason: 'expired', message: 'the OIDC token has expired' };
        if (!(error instanceof errors.JOSEError) || UNAVAILABLE_CODES.has(error.code)) {
          throw unavailable(settings.issuer, `its keys could not be fetched (${(error as Error).message})`, error);
        }
        return { ok: false, reason: 'unknown', message: `the OIDC token is not valid: ${error.message}` };
      }
      const nameClaim = payload[settings.nameClaim] ?? payload.sub;
      const name = `oidc:${typeof nameClaim === 'string' ? nameClaim : String(payload.sub)}`;
      const role = roleOf(claimAt(payload, settings.roleClaim), settings.roles);
      if (role === null) {
        const claim = settings.roleClaim.join('.');
        return {
          ok: false,
          reason: 'no-role',
          message: `the OIDC token of ${name} has no value in its "${claim}" claim that maps to a role (SCIMFLOW_OIDC_ROLES)`,
        };
      }
      return { ok: true, name, role };
    },
  };
}
