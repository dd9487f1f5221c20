/**
 * Inbound SCIM sources: each has a slug (its URL), a bearer token (stored as a SHA-256 hash, shown once) and a
 * directory service account whose token it is. A source owns the users and groups it created (see
 * 0007_scim_sources.sql); with `claim` it may also take over objects no source owns.
 */
import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { NotFoundError, ScimflowError } from '../errors/index.ts';
import { conflictOr, insertUser, removeUser } from './directory.ts';
import { inTransaction, type Queryable } from './pool.ts';
import { SlugSchema } from './schemas.ts';
import { hashSecretHex, secretMatchesHex } from './secret-hash.ts';

/** A source as the API accepts it on create. */
export const SourceInputSchema = z.strictObject({
  slug: SlugSchema,
  name: z.string().min(1).max(256).optional(),
  /** What a SCIM DELETE of a user does in the directory. */
  deletePolicy: z.enum(['delete', 'deactivate']).default('delete'),
  /** Whether the source may also manage objects no source owns (created through the admin API). */
  claim: z.boolean().default(false),
});
export type SourceInput = z.infer<typeof SourceInputSchema>;

/** The changeable settings of a source. */
export const SourceUpdateSchema = z.strictObject({
  name: z.string().min(1).max(256).optional(),
  deletePolicy: z.enum(['delete', 'deactivate']).optional(),
  claim: z.boolean().optional(),
});
export type SourceUpdate = z.infer<typeof SourceUpdateSchema>;

/** A source as stored and returned; the token is never included, only its first characters. */
export interface SourceView {
  id: string;
  slug: string;
  name: string;
  tokenPrefix: string;
  serviceAccountId: string;
  deletePolicy: 'delete' | 'deactivate';
  claim: boolean;
  createdAt: string;
  tokenRotatedAt: string;
}

/** A source together with its new token: the only time the token exists outside the client that receives it. */
export interface SourceWithToken {
  source: SourceView;
  token: string;
}

interface SourceRow {
  id: string;
  slug: string;
  name: string;
  token_prefix: string;
  service_account_id: string;
  delete_policy: 'delete' | 'deactivate';
  claim: boolean;
  created_at: Date;
  token_rotated_at: Date;
}

const SOURCE_COLUMNS =
  'id, slug, name, token_prefix, service_account_id, delete_policy, claim, created_at, token_rotated_at';
const TOKEN_PREFIX = 'scimsrc_';
const SHOWN_PREFIX_LENGTH = TOKEN_PREFIX.length + 6;

function toSource(row: SourceRow): SourceView {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    tokenPrefix: row.token_prefix,
    serviceAccountId: row.service_account_id,
    deletePolicy: row.delete_policy,
    claim: row.claim,
    createdAt: row.created_at.toISOString(),
    tokenRotatedAt: row.token_rotated_at.toISOString(),
  };
}

/** The notification channel on which a changed or deleted source's slug is announced (migration 0018). */
export const SOURCE_CHANGES_CHANNEL = 'scimflow_sources';

function newToken(): { token: string; hash: string; prefix: string } {
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashSecretHex(token), prefix: token.slice(0, SHOWN_PREFIX_LENGTH) };
}

/** The username of a source's service account. */
export function sourceServiceAccountName(slug: string): string {
  return `scim-source-${slug}`;
}

/** Creates a source and its service account in one transaction; returns the token, which is not stored. */
export async function createSource(q: Queryable, input: SourceInput): Promise<SourceWithToken> {
  const { token, hash, prefix } = newToken();
  try {
    return await inTransaction(q, async (client) => {
      // Asked first: the service account's username, taken by the existing source's, would be the conflict reported.
      const { rows: existing } = await client.query('SELECT 1 FROM scim_sources WHERE slug = $1', [input.slug]);
      if (existing.length > 0) throw sourceExists(input.slug);
      const account = await insertUser(client, {
        username: sourceServiceAccountName(input.slug),
        displayName: `SCIM source ${input.name ?? input.slug}`,
        active: true,
        kind: 'service_account',
        attributes: {},
      });
      const { rows } = await client.query<SourceRow>(
        `INSERT INTO scim_sources (slug, name, token_hash, token_prefix, service_account_id, delete_policy, claim)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${SOURCE_COLUMNS}`,
        [input.slug, input.name ?? input.slug, hash, prefix, account.id, input.deletePolicy, input.claim],
      );
      return { source: toSource(rows[0]!), token };
    });
  } catch (error) {
    if ((error as { constraint?: string }).constraint === 'scim_sources_slug_key') throw sourceExists(input.slug);
    conflictOr(error, sourceServiceAccountName(input.slug));
  }
}

function sourceExists(slug: string): ScimflowError {
  return new ScimflowError('ERR_CONFLICT', `a source "${slug}" already exists`, { details: { field: 'slug' } });
}

/** Every source in slug order. */
export async function listSources(q: Queryable): Promise<SourceView[]> {
  const { rows } = await q.query<SourceRow>(`SELECT ${SOURCE_COLUMNS} FROM scim_sources ORDER BY slug`);
  return rows.map(toSource);
}

/** The source with this slug; NotFoundError when there is none. */
export async function getSource(q: Queryable, slug: string): Promise<SourceView> {
  const { rows } = await q.query<SourceRow>(`SELECT ${SOURCE_COLUMNS} FROM scim_sources WHERE slug = $1`, [slug]);
  if (!rows[0]) throw new NotFoundError('source', slug);
  return toSource(rows[0]);
}

/** Changes a source's settings. */
export async function updateSource(q: Queryable, slug: string, patch: SourceUpdate): Promise<SourceView> {
  const { rows } = await q.query<SourceRow>(
    `UPDATE scim_sources SET name = coalesce($2, name), delete_policy = coalesce($3, delete_policy),
       claim = coalesce($4, claim) WHERE slug = $1 RETURNING ${SOURCE_COLUMNS}`,
    [slug, patch.name ?? null, patch.deletePolicy ?? null, patch.claim ?? null],
  );
  if (!rows[0]) throw new NotFoundError('source', slug);
  return toSource(rows[0]);
}

/** Replaces a source's token; the old one stops working at once. */
export async function rotateSourceToken(q: Queryable, slug: string): Promise<SourceWithToken> {
  const { token, hash, prefix } = newToken();
  const { rows } = await q.query<SourceRow>(
    `UPDATE scim_sources SET token_hash = $2, token_prefix = $3, token_rotated_at = now() WHERE slug = $1
     RETURNING ${SOURCE_COLUMNS}`,
    [slug, hash, prefix],
  );
  if (!rows[0]) throw new NotFoundError('source', slug);
  return { source: toSource(rows[0]), token };
}

/**
 * Deletes a source and its service account. The users and groups it created stay in the directory, owned by no
 * source from then on.
 */
export async function deleteSource(q: Queryable, slug: string): Promise<void> {
  await inTransaction(q, async (client) => {
    const { rows } = await client.query<{ service_account_id: string }>(
      'SELECT service_account_id FROM scim_sources WHERE slug = $1 FOR UPDATE',
      [slug],
    );
    if (!rows[0]) throw new NotFoundError('source', slug);
    // The source row goes with its service account (ON DELETE CASCADE), and the ownership rows with the source.
    await removeUser(client, rows[0].service_account_id);
  });
}

/** The source `slug` when `token` is its current token; null otherwise (unknown slug or wrong token alike). */
export async function authenticateSource(q: Queryable, slug: string, token: string): Promise<SourceView | null> {
  const { rows } = await q.query<SourceRow & { token_hash: string }>(
    `SELECT ${SOURCE_COLUMNS}, token_hash FROM scim_sources WHERE slug = $1`,
    [slug],
  );
  const row = rows[0];
  if (!row) return null;
  return secretMatchesHex(token, row.token_hash) ? toSource(row) : null;
}
