/**
 * Who is calling the admin API: the bearer token of each request, an API token checked against the database or, when
 * configured, an OIDC token of the organisation's identity provider, and its role.
 */
import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { authenticateApiToken, roleAllows, tokenPrefix, type Db, type Role, type TokenRefusal } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';
import type { OidcVerifier } from './oidc.ts';

/** The authenticated caller of a request. */
export interface Caller {
  /** The API token's name, or `oidc:<name claim>`; the audit log's "who". */
  name: string;
  role: Role;
  /** The socket peer; the audit log's "from where". Null when there is no socket (in-memory requests). */
  remoteAddress: string | null;
  /** The API token's id (absent for OIDC callers). */
  tokenId?: string;
}

/** Hono context variables the API sets. */
export interface ApiVariables {
  caller: Caller;
}

const REFUSALS: Record<TokenRefusal | 'missing', string> = {
  missing: 'no API token: send `Authorization: Bearer <token>` (create one with `scimflow tokens create`)',
  unknown: 'the API token is not valid',
  expired: 'the API token has expired',
  revoked: 'the API token has been revoked',
};

function refuse(reason: TokenRefusal | 'missing'): ScimflowError {
  return new ScimflowError('ERR_UNAUTHENTICATED', REFUSALS[reason], { details: { reason } });
}

/** The socket peer address, or null when the request did not come over a socket. */
export function remoteAddress(c: Context): string | null {
  try {
    return getConnInfo(c).remote.address ?? null;
  } catch {
    return null;
  }
}

/** Checks an OIDC token: sets the caller, or throws 401 (not valid, expired) or 403 (no role). */
async function oidcCaller(oidc: OidcVerifier, token: string, remote: string | null): Promise<Caller> {
  const result = await oidc.verify(token);
  if (result.ok) return { name: result.name, role: result.role, remoteAddress: remote };
  if (result.reason === 'no-role') {
    throw new ScimflowError('ERR_FORBIDDEN', result.message, { details: { reason: 'no-role' } });
  }
  throw new ScimflowError('ERR_UNAUTHENTICATED', result.message, { details: { reason: result.reason } });
}

/** A presented API token that was refused: its shown prefix (never the token), why, and from where. */
export interface TokenRefused {
  tokenPrefix: string;
  reason: TokenRefusal;
  remoteAddress: string | null;
}

/**
 * Authenticates every request it guards (401 otherwise) and sets the `caller` variable. A bearer token that is not a
 * scimflow API token (`sfa_…`) goes to `oidc` when it is given; `onRefused` hears of each refused API token.
 */
export function authenticate(
  db: Db,
  options: { oidc?: OidcVerifier | undefined; onRefused?: (refused: TokenRefused) => void } = {},
): MiddlewareHandler<{ Variables: ApiVariables }> {
  const { oidc, onRefused } = options;
  return async (c, next) => {
    const header = c.req.header('authorization');
    if (header === undefined || header.trim() === '') throw refuse('missing');
    const match = /^Bearer +(\S+)\s*$/i.exec(header);
    if (!match) throw refuse('unknown');
    if (oidc !== undefined && !match[1]!.startsWith('sfa_')) {
      c.set('caller', await oidcCaller(oidc, match[1]!, remoteAddress(c)));
      await next();
      return;
    }
    const result = await authenticateApiToken(db, match[1]!);
    if (!result.ok) {
      onRefused?.({ tokenPrefix: tokenPrefix(match[1]!), reason: result.reason, remoteAddress: remoteAddress(c) });
      throw refuse(result.reason);
    }
    c.set('caller', {
      name: result.token.name,
      role: result.token.role,
      remoteAddress: remoteAddress(c),
      tokenId: result.token.id,
    });
    await next();
  };
}

/** Throws ERR_FORBIDDEN (403) unless `caller` holds at least `needed`; `what` names the action in the message. */
export function requireRole(caller: Caller | null, needed: Role, what: string): void {
  if (caller === null) throw refuse('missing');
  if (roleAllows(caller.role, needed)) return;
  throw new ScimflowError(
    'ERR_FORBIDDEN',
    `${what} needs the ${needed} role; token "${caller.name}" has ${caller.role}`,
    { details: { reason: 'role', required: needed, role: caller.role } },
  );
}
