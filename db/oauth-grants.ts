/**
 * Interactive OAuth grants: each provider's refresh token (sealed, bound to the provider id), its status, and the
 * authorisation an administrator has started but not finished (hashed `state`, sealed PKCE verifier).
 */
import { createHash } from 'node:crypto';
import type { GrantStore } from '../auth/credentials.ts';
import type { GrantResult } from '../auth/oauth.ts';
import type { OAuthStatus } from '../auth/schemas.ts';
import { isScimflowError, ScimflowError } from '../errors/index.ts';
import type { SecretBox } from './crypto.ts';
import { inTransaction, type Db, type Queryable } from './pool.ts';

/** How long an administrator has between opening the authorise URL and the callback. */
const PENDING_MINUTES = 10;

interface GrantRow {
  status: OAuthStatus['state'];
  refresh_token: Buffer | null;
  authorised_at: Date | null;
  expires_at: Date | null;
  error: string | null;
}

const refreshContext = (providerId: string): string => `${providerId}:refresh_token`;
const verifierContext = (providerId: string): string => `${providerId}:pkce_verifier`;
const hashState = (state: string): string => createHash('sha256').update(state).digest('hex');

/** The provider's interactive OAuth status (not_authorised when it never was). */
export async function getOAuthStatus(q: Queryable, providerId: string): Promise<OAuthStatus> {
  const { rows } = await q.query<GrantRow>(
    'SELECT status, refresh_token, authorised_at, expires_at, error FROM provider_oauth_grants WHERE provider_id = $1',
    [providerId],
  );
  const row = rows[0];
  return {
    state: row?.status ?? 'not_authorised',
    authorisedAt: row?.authorised_at?.toISOString() ?? null,
    expiresAt: row?.expires_at?.toISOString() ?? null,
    error: row?.error ?? null,
  };
}

/** Records an authorisation in progress: the `state` (hashed) and the PKCE verifier (sealed) the callback must match. */
export async function startAuthorisation(
  q: Queryable,
  secrets: SecretBox,
  providerId: string,
  pending: { state: string; codeVerifier: string },
): Promise<void> {
  await q.query(
    `INSERT INTO provider_oauth_grants (provider_id, pending_state_hash, pending_verifier, pending_created_at)
     VALUES ($1, $2, $3, now())
     ON CONFLICT (provider_id) DO UPDATE SET pending_state_hash = $2, pending_verifier = $3,
       pending_created_at = now(), updated_at = now()`,
    [providerId, hashState(pending.state), secrets.seal(pending.codeVerifier, verifierContext(providerId))],
  );
}

/**
 * Finishes the authorisation whose `state` matches: `exchange` gets the PKCE verifier and returns the tokens, whose
 * refresh token is stored sealed. The pending authorisation is used up whatever happens.
 */
export async function completeAuthorisation(
  db: Db,
  secrets: SecretBox,
  providerId: string,
  state: string,
  exchange: (codeVerifier: string) => Promise<GrantResult>,
): Promise<OAuthStatus> {
  const codeVerifier = await inTransaction(db, async (client) => {
    const { rows } = await client.query<{ pending_verifier: Buffer | null }>(
      `SELECT pending_verifier FROM provider_oauth_grants
        WHERE provider_id = $1 AND pending_state_hash = $2 AND pending_created_at > now() - make_interval(mins => $3)
        FOR UPDATE`,
      [providerId, hashState(state), PENDING_MINUTES],
    );
    await client.query(
      `UPDATE provider_oauth_grants SET pending_state_hash = NULL, pending_verifier = NULL, pending_created_at = NULL
        WHERE provider_id = $1 AND pending_state_hash = $2`,
      [providerId, hashState(state)],
    );
    const sealed = rows[0]?.pending_verifier;
    if (!sealed) {
      throw new ScimflowError(
        'ERR_VALIDATION',
        'this authorisation is unknown, used or expired; start again from the authorise URL',
        { details: { issues: [{ path: 'state', message: 'does not match an authorisation in progress' }] } },
      );
    }
    return secrets.open(sealed, verifierContext(providerId));
  });
  const result = await exchange(codeVerifier);
  if (result.refreshToken === undefined) {
    throw new ScimflowError(
      'ERR_AUTH_TOKEN',
      'the authorization server issued no refresh token; allow offline access (e.g. scope offline_access) for this client',
    );
  }
  await db.query(
    `UPDATE provider_oauth_grants SET status = 'authorised', refresh_token = $2, authorised_at = now(),
       expires_at = $3, error = NULL, updated_at = now() WHERE provider_id = $1`,
    [providerId, secrets.seal(result.refreshToken, refreshContext(providerId)), toDate(result.expiresAt)],
  );
  return getOAuthStatus(db, providerId);
}

/** The grant store the credentials service refreshes interactive tokens through. */
export function createGrantStore(db: Db, secrets: SecretBox): GrantStore {
  return {
    async refresh(providerId, refresh) {
      // The row lock makes concurrent refreshes (several workers) take turns: with rotating refresh tokens, the
      // second would otherwise present a used token and be refused.
      const outcome = await inTransaction(db, async (client): Promise<{ result: GrantResult } | { refused: Error }> => {
        const { rows } = await client.query<GrantRow>(
          `SELECT status, refresh_token, authorised_at, expires_at, error FROM provider_oauth_grants
            WHERE provider_id = $1 FOR UPDATE`,
          [providerId],
        );
        const row = rows[0];
        if (row?.status !== 'authorised' || row.refresh_token === null) {
          throw new ScimflowError(
            'ERR_AUTH_REAUTHORIZE',
            row?.status === 'needs_reauthorisation'
              ? `the provider needs re-authorisation: ${row.error ?? 'its grant was refused'}`
              : 'the provider is not authorised yet: an administrator must open its authorise URL',
          );
        }
        let result: GrantResult;
        try {
          result = await refresh(secrets.open(row.refresh_token, refreshContext(providerId)));
        } catch (error) {
          if (!isScimflowError(error) || error.retryable) throw error;
          return { refused: error };
        }
        await client.query(
          `UPDATE provider_oauth_grants SET refresh_token = $2, expires_at = $3, updated_at = now()
            WHERE provider_id = $1`,
          [
            providerId,
            result.refreshToken === undefined
              ? row.refresh_token
              : secrets.seal(result.refreshToken, refreshContext(providerId)),
            toDate(result.expiresAt),
          ],
        );
        return { result };
      });
      if ('result' in outcome) return outcome.result;
      // A refused refresh (revoked, expired, client changed) will not heal by retrying: an administrator must act.
      await db.query(
        `UPDATE provider_oauth_grants SET status = 'needs_reauthorisation', refresh_token = NULL, error = $2,
           updated_at = now() WHERE provider_id = $1`,
        [providerId, outcome.refused.message],
      );
      throw new ScimflowError(
        'ERR_AUTH_REAUTHORIZE',
        `the provider needs re-authorisation: ${outcome.refused.message}`,
      );
    },
  };
}

function toDate(epochMs: number | undefined): Date | null {
  return epochMs === undefined ? null : new Date(epochMs);
}
