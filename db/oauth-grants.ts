/**
 * Interactive OAuth grants: each provider's refresh token (sealed, bound to the provider id), its status, and the
 * authorisation an administrator has started but not finished (hashed `state`, sealed PKCE verifier).
 */
import type { GrantStore } from '../auth/credentials.ts';
import type { GrantResult } from '../auth/oauth.ts';
import type { OAuthStatus } from '../auth/schemas.ts';
import { isScimflowError, ScimflowError } from '../errors/index.ts';
import type { SecretBox, SecretSealer } from './crypto.ts';
import { inTransaction, type Db, type Queryable } from './pool.ts';
import { hashSecretHex } from './secret-hash.ts';

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
const callbackContext = (providerId: string): string => `${providerId}:oauth_callback`;
/** Every sealed column of provider_oauth_grants, with the associated data it is sealed under. */
export const GRANT_SEALED_COLUMNS = {
  refresh_token: refreshContext,
  pending_verifier: verifierContext,
  pending_callback: callbackContext,
} as const satisfies Record<string, (providerId: string) => string>;

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

/** An authorisation in progress, as the API starts it. */
export interface PendingAuthorisation {
  /** The `state` sent to the authorization server (only its hash is stored). */
  state: string;
  /** The PKCE verifier (stored sealed; only a worker opens it). */
  codeVerifier: string;
  /** The admin API token that started it: the callback is refused once that token no longer holds the admin role. */
  startedBy: string | null;
}

/** Records an authorisation in progress, replacing any earlier one of the provider. */
export async function startAuthorisation(
  q: Queryable,
  secrets: SecretSealer,
  providerId: string,
  pending: PendingAuthorisation,
): Promise<void> {
  await q.query(
    `INSERT INTO provider_oauth_grants (provider_id, pending_state_hash, pending_verifier, pending_created_at,
                                        pending_started_by, pending_callback)
     VALUES ($1, $2, $3, now(), $4, NULL)
     ON CONFLICT (provider_id) DO UPDATE SET pending_state_hash = $2, pending_verifier = $3,
       pending_created_at = now(), pending_started_by = $4, pending_callback = NULL, updated_at = now()`,
    [
      providerId,
      hashSecretHex(pending.state),
      secrets.seal(pending.codeVerifier, verifierContext(providerId)),
      pending.startedBy,
    ],
  );
}

/** Why a callback was refused before anything was exchanged. */
type CallbackRefusal = 'unknown' | 'expired' | 'admin';

/**
 * The API's half of the callback: finds the authorisation whose `state` matches, uses it up (a state works once,
 * whatever happens next), checks that the admin token which started it is still a live admin token, and stores the
 * callback's query sealed for the worker to exchange. `callbackQuery` null (the authorization server sent an error)
 * only uses the state up. Returns the provider id and the name of the token that started the authorisation.
 */
export async function acceptCallback(
  db: Db,
  secrets: SecretSealer,
  state: string,
  callbackQuery: string | null,
): Promise<{ providerId: string; startedBy: string | null }> {
  const outcome = await inTransaction(
    db,
    async (client): Promise<{ providerId: string; startedBy: string | null } | { refused: CallbackRefusal }> => {
      const { rows } = await client.query<{
        provider_id: string;
        fresh: boolean;
        admin: boolean;
        started_by: string | null;
      }>(
        `SELECT g.provider_id, g.pending_created_at > now() - make_interval(mins => $2) AS fresh,
              (SELECT t.name FROM api_tokens t WHERE t.id = g.pending_started_by) AS started_by,
              EXISTS (SELECT 1 FROM api_tokens t WHERE t.id = g.pending_started_by AND t.role = 'admin'
                        AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())) AS admin
         FROM provider_oauth_grants g WHERE g.pending_state_hash = $1 FOR UPDATE`,
        [hashSecretHex(state), PENDING_MINUTES],
      );
      const row = rows[0];
      if (row === undefined) return { refused: 'unknown' };
      const usable = row.fresh && row.admin && callbackQuery !== null;
      await client.query(
        `UPDATE provider_oauth_grants SET pending_state_hash = NULL, pending_created_at = NULL, pending_callback = $2,
           pending_verifier = CASE WHEN $3 THEN pending_verifier END, updated_at = now()
         WHERE provider_id = $1`,
        [row.provider_id, usable ? secrets.seal(callbackQuery, callbackContext(row.provider_id)) : null, usable],
      );
      if (!row.fresh) return { refused: 'expired' };
      if (!row.admin) return { refused: 'admin' };
      return { providerId: row.provider_id, startedBy: row.started_by };
    },
  );
  if ('providerId' in outcome) return outcome;
  if (outcome.refused === 'admin') {
    throw new ScimflowError(
      'ERR_FORBIDDEN',
      'the admin API token that started this authorisation is no longer valid (revoked, expired or no longer admin); start again',
      { details: { reason: 'started-by' } },
    );
  }
  throw new ScimflowError(
    'ERR_VALIDATION',
    'this authorisation is unknown, used or expired; start again from the authorise URL',
    { details: { issues: [{ path: 'state', message: 'does not match an authorisation in progress' }] } },
  );
}

/** The grant store the credentials service refreshes interactive tokens through. */
export function createGrantStore(db: Db, secrets: SecretBox): GrantStore {
  return {
    async complete(providerId, exchange) {
      const pending = await inTransaction(db, async (client) => {
        const { rows } = await client.query<{ pending_verifier: Buffer | null; pending_callback: Buffer | null }>(
          `SELECT pending_verifier, pending_callback FROM provider_oauth_grants WHERE provider_id = $1 FOR UPDATE`,
          [providerId],
        );
        await client.query(
          `UPDATE provider_oauth_grants SET pending_verifier = NULL, pending_callback = NULL, pending_started_by = NULL
            WHERE provider_id = $1`,
          [providerId],
        );
        const row = rows[0];
        if (!row?.pending_verifier || !row.pending_callback) return undefined;
        return {
          codeVerifier: secrets.open(row.pending_verifier, verifierContext(providerId)),
          callbackQuery: secrets.open(row.pending_callback, callbackContext(providerId)),
        };
      });
      if (pending === undefined) {
        throw new ScimflowError('ERR_VALIDATION', 'no authorisation of this provider is waiting to be completed', {
          details: { issues: [{ path: 'state', message: 'does not match an authorisation in progress' }] },
        });
      }
      const result = await exchange(pending);
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
    },
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
