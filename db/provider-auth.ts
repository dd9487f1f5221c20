/**
 * A provider's auth settings in its row: the mode, the public settings (`auth_options`) and the secret fields sealed
 * as one JSON object (`auth_secret`, the provider id as associated data).
 */
import { isDeepStrictEqual } from 'node:util';
import {
  joinAuth,
  splitAuth,
  type OAuthStatus,
  type ProviderAuthInput,
  type ProviderAuthView,
  type SplitAuth,
} from '../auth/schemas.ts';
import { ScimflowError } from '../errors/index.ts';
import { canonicalJson } from '../activities/payload-hash.ts';
import type { SecretBox, SecretSealer } from './crypto.ts';

/** The auth columns of a provider row. */
export interface AuthColumns {
  auth_mode: ProviderAuthInput['mode'];
  auth_options: Record<string, unknown>;
  auth_secret: Buffer | null;
  /** Keyed HMAC of the sealed JSON (canonical), so the API can compare settings without decrypting. */
  auth_fingerprint: Buffer | null;
}

/** The columns that store `auth` for provider `id`. */
export function sealAuth(secrets: SecretSealer, id: string, auth: ProviderAuthInput): AuthColumns {
  const { mode, config, secret } = splitAuth(auth);
  const plaintext = secretPlaintext(secret);
  return {
    auth_mode: mode,
    auth_options: config,
    auth_secret: plaintext === null ? null : secrets.seal(plaintext, id),
    auth_fingerprint: plaintext === null ? null : secrets.fingerprint(plaintext, id),
  };
}

/** The auth settings of provider `id` with their secrets decrypted; only the worker calls this. */
export function openAuth(secrets: SecretBox, id: string, slug: string, row: AuthColumns): ProviderAuthInput {
  let secret: Record<string, unknown> = {};
  if (row.auth_secret !== null) {
    const plaintext = secrets.open(row.auth_secret, id);
    secret = parseSecret(row.auth_mode, plaintext);
  }
  try {
    return joinAuth(row.auth_mode, row.auth_options, secret);
  } catch {
    throw new ScimflowError(
      'ERR_CONFIG',
      `provider ${slug} has incomplete or invalid ${row.auth_mode} settings; set its auth again`,
    );
  }
}

/** Rows written before version 8 sealed a bearer token as the bare string. */
function parseSecret(mode: string, plaintext: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(plaintext);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // not JSON: a legacy token
  }
  if (mode === 'bearer') return { token: plaintext };
  throw new ScimflowError('ERR_CONFIG', 'stored secret has an unknown format');
}

/** An interactive grant's status as the provider query reads it (timestamps as JSON text). */
export interface GrantJson {
  state: OAuthStatus['state'];
  authorisedAt: string | null;
  expiresAt: string | null;
  error: string | null;
}

const isoOrNull = (text: string | null): string | null => (text === null ? null : new Date(text).toISOString());

/**
 * The auth as views show it: mode, public settings, whether a secret is set, and an interactive provider's grant
 * status (authorised, expires, needs re-authorisation); never a secret value.
 */
export function authView(row: AuthColumns, grant: GrantJson | null = null): ProviderAuthView {
  const oauth: OAuthStatus | undefined =
    row.auth_mode !== 'oauth_interactive'
      ? undefined
      : {
          state: grant?.state ?? 'not_authorised',
          authorisedAt: isoOrNull(grant?.authorisedAt ?? null),
          expiresAt: isoOrNull(grant?.expiresAt ?? null),
          error: grant?.error ?? null,
        };
  return {
    ...(row.auth_options as Partial<ProviderAuthView>),
    mode: row.auth_mode,
    secretSet: row.auth_secret !== null,
    ...(oauth === undefined ? {} : { oauth }),
  };
}

/** True when `auth` is what the row already stores, compared by fingerprint (nothing is decrypted). */
export function sameAuth(secrets: SecretSealer, id: string, row: AuthColumns, auth: ProviderAuthInput): boolean {
  const { mode, config, secret } = splitAuth(auth);
  if (row.auth_mode !== mode || !isDeepStrictEqual(row.auth_options, config)) return false;
  const plaintext = secretPlaintext(secret);
  if (plaintext === null || row.auth_fingerprint === null) return plaintext === null && row.auth_secret === null;
  // Under whichever key of the ring made it: a rotation in progress does not make every setting look changed.
  return secrets.fingerprintMatches(row.auth_fingerprint, plaintext, id);
}

/** The one string sealed (and fingerprinted) for a mode's secret fields; null when it has none. */
function secretPlaintext(secret: SplitAuth['secret']): string | null {
  return Object.keys(secret).length > 0 ? canonicalJson(secret) : null;
}

/**
 * The auth columns of provider `id` re-sealed under the box's current key, from what they hold now (rows from
 * before version 8 become the JSON form); for the key rotation, on a process that may decrypt.
 */
export function resealAuth(
  secrets: SecretBox,
  id: string,
  row: Pick<AuthColumns, 'auth_mode' | 'auth_secret'>,
): Pick<AuthColumns, 'auth_secret' | 'auth_fingerprint'> {
  if (row.auth_secret === null) return { auth_secret: null, auth_fingerprint: null };
  const plaintext = canonicalJson(parseSecret(row.auth_mode, secrets.open(row.auth_secret, id)));
  return { auth_secret: secrets.seal(plaintext, id), auth_fingerprint: secrets.fingerprint(plaintext, id) };
}
