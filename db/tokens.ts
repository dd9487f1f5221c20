/**
 * Admin API tokens. A token is `sfa_` + 8 characters that name it in logs and listings + 43 secret characters; only
 * its SHA-256 is stored (it has 256 random bits, so no slow hash is needed), and it is shown once, when created.
 */
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { NotFoundError, ScimflowError } from '../errors/index.ts';
import type { AuditEntry } from './audit.ts';
import type { Queryable } from './pool.ts';
import { hashSecret } from './secret-hash.ts';

/** Roles, weakest first; each can do everything the ones before it can. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
/** What a token may do: `viewer` reads, `operator` also starts syncs and previews, `admin` changes everything. */
export type Role = (typeof ROLES)[number];

/** True when `held` is at least `needed`. */
export function roleAllows(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** A token's name: letters, digits and `._@:-`, up to 64 characters, starting with a letter or digit. */
export const TokenNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]{0,63}$/, 'letters, digits and ._@:- only, at most 64, no leading symbol');

/** `POST /tokens` body and `scimflow tokens create` options. */
export const TokenInputSchema = z.strictObject({
  name: TokenNameSchema,
  role: z.enum(ROLES),
  /** Days until the token stops working; left out, it works until revoked. */
  expiresInDays: z.int().min(1).max(3650).optional(),
});
export type TokenInput = z.infer<typeof TokenInputSchema>;

/** A token as listings show it: never the token itself. */
export interface TokenView {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

/** The token a caller presented, once it checked out. */
export interface AuthenticatedToken {
  id: string;
  name: string;
  prefix: string;
  role: Role;
}

/** Why a presented token was refused. */
export type TokenRefusal = 'unknown' | 'expired' | 'revoked';

interface TokenRow {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  created_at: Date;
  created_by: string;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS = 'id, name, prefix, role, created_at, created_by, expires_at, last_used_at, revoked_at';
const TOKEN_PATTERN = /^sfa_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}$/;
const PREFIX_LENGTH = 'sfa_'.length + 8;
// Writing last_used_at on every request would make each read a write; a minute's precision is enough.
const LAST_USED_PRECISION = "interval '1 minute'";

function toView(row: TokenRow): TokenView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    role: row.role,
    createdAt: row.created_at.toISOString(),
    createdBy: row.created_by,
    expiresAt: row.expires_at?.toISOString() ?? null,
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}

/** The part of a token that may be shown (`sfa_` and 8 characters); the whole string when it is not one of ours. */
export function tokenPrefix(token: string): string {
  return TOKEN_PATTERN.test(token) ? token.slice(0, PREFIX_LENGTH) : '(not a scimflow token)';
}

/** Creates a token; returns it (the only time it exists outside the caller's hands) with its view. */
export async function createApiToken(
  q: Queryable,
  input: TokenInput,
  createdBy: string,
): Promise<{ token: string; view: TokenView }> {
  const token = `sfa_${randomBytes(6).toString('base64url')}_${randomBytes(32).toString('base64url')}`;
  try {
    const { rows } = await q.query<TokenRow>(
      `INSERT INTO api_tokens (name, prefix, token_hash, role, created_by, expires_at)
       VALUES ($1, $2, $3, $4, $5, CASE WHEN $6::int IS NULL THEN NULL ELSE now() + make_interval(days => $6::int) END)
       RETURNING ${COLUMNS}`,
      [
        input.name,
        token.slice(0, PREFIX_LENGTH),
        hashSecret(token),
        input.role,
        createdBy,
        input.expiresInDays ?? null,
      ],
    );
    return { token, view: toView(rows[0]!) };
  } catch (error) {
    if ((error as { code?: string }).code === '23505') {
      throw new ScimflowError('ERR_CONFLICT', `a live token named "${input.name}" already exists; revoke it first`, {
        details: { field: 'name' },
        cause: error,
      });
    }
    throw error;
  }
}

/** The audit entry of a token's creation or revocation (its prefix and role, never the token). */
export function tokenAuditEntry(
  action: 'token.create' | 'token.revoke',
  view: TokenView,
  extra: Record<string, unknown> = {},
): Omit<AuditEntry, 'actor' | 'remoteAddress'> {
  return {
    action,
    targetType: 'token',
    targetId: view.id,
    targetName: view.name,
    details: {
      role: view.role,
      prefix: view.prefix,
      ...(action === 'token.create' ? { expiresAt: view.expiresAt } : {}),
      ...extra,
    },
  };
}

/** Every token, live ones first, each group by name. */
export async function listApiTokens(q: Queryable): Promise<TokenView[]> {
  const { rows } = await q.query<TokenRow>(
    `SELECT ${COLUMNS} FROM api_tokens ORDER BY revoked_at IS NOT NULL, name, created_at DESC`,
  );
  return rows.map(toView);
}

/** Revokes the live token with this name; NotFoundError when there is none. Takes effect on its next request. */
export async function revokeApiToken(q: Queryable, name: string): Promise<TokenView> {
  const { rows } = await q.query<TokenRow>(
    `UPDATE api_tokens SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL RETURNING ${COLUMNS}`,
    [name],
  );
  if (!rows[0]) throw new NotFoundError('token', name);
  return toView(rows[0]);
}

/** Checks a presented token: who it is, or why it is refused. Records its use (to the minute). */
export async function authenticateApiToken(
  q: Queryable,
  token: string,
): Promise<{ ok: true; token: AuthenticatedToken } | { ok: false; reason: TokenRefusal }> {
  if (!TOKEN_PATTERN.test(token)) return { ok: false, reason: 'unknown' };
  const { rows } = await q.query<TokenRow & { expired: boolean; stale: boolean }>(
    `SELECT ${COLUMNS}, expires_at IS NOT NULL AND expires_at <= now() AS expired,
            last_used_at IS NULL OR last_used_at < now() - ${LAST_USED_PRECISION} AS stale
       FROM api_tokens WHERE token_hash = $1`,
    [hashSecret(token)],
  );
  const row = rows[0];
  if (!row) return { ok: false, reason: 'unknown' };
  if (row.revoked_at !== null) return { ok: false, reason: 'revoked' };
  if (row.expired) return { ok: false, reason: 'expired' };
  if (row.stale) await q.query('UPDATE api_tokens SET last_used_at = now() WHERE id = $1', [row.id]);
  return { ok: true, token: { id: row.id, name: row.name, prefix: row.prefix, role: row.role } };
}
