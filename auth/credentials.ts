/**
 * The credentials service on the worker: turns a provider's auth settings into the Credential its SCIM client asks
 * for a header. OAuth tokens are cached per provider until shortly before expiry, fetched once for all concurrent
 * requests, and fetched anew once when the target refuses one.
 */
import { ScimflowError } from '../errors/index.ts';
import type { AuthHeader, Credential } from '../scim/credential.ts';
import { createOAuthClient, type GrantResult, type OAuthClient } from './oauth.ts';
import type { OAuthAuth, OAuthStatus, ProviderAuthInput } from './schemas.ts';
import { createTokenCache, type TokenCache } from './token-cache.ts';

/** The provider fields a credential is built from. */
export interface CredentialSource {
  id: string;
  slug: string;
  configVersion: number;
  auth: ProviderAuthInput;
}

/** Where interactive providers' refresh tokens live (the database, on the worker). */
export interface GrantStore {
  /**
   * Runs `refresh` with the provider's refresh token while no other worker refreshes it (rotation would otherwise
   * invalidate one of them), then stores the rotated refresh token and the expiry. Throws ERR_AUTH_REAUTHORIZE when
   * there is no usable grant, and records `refresh`'s refusal as needing re-authorisation.
   */
  refresh(providerId: string, refresh: (refreshToken: string) => Promise<GrantResult>): Promise<GrantResult>;
  /**
   * Finishes the authorisation whose callback the API accepted: `exchange` gets the sealed PKCE verifier and callback
   * query, opened, and returns the tokens, whose refresh token is stored sealed. Both are used up whatever happens.
   */
  complete(
    providerId: string,
    exchange: (pending: { codeVerifier: string; callbackQuery: string }) => Promise<GrantResult>,
  ): Promise<OAuthStatus>;
}

/** A provider's credential, plus what `providers test` needs to know of it. */
export interface ProviderCredential extends Credential {
  /** Fetches a token now (bypassing the cache), to check the configuration; undefined for static modes. */
  check(): Promise<{ expiresAt: number | undefined } | undefined>;
}

/** Hands out one credential per provider configuration. */
export interface CredentialService {
  credentialFor(provider: CredentialSource): ProviderCredential;
  /** A credential of its own with an empty cache (connection checks), not shared with `credentialFor`. */
  fresh(provider: CredentialSource): ProviderCredential;
}

/** What the service is built from. */
export interface CredentialServiceDeps {
  /** Required for interactive providers. */
  grants?: GrantStore;
  /** Clock for token expiry. @default Date.now */
  now?: () => number;
  /** Seconds one exchange with an authorization server may take. @default 30 */
  timeoutSeconds?: number;
}

/** Builds the service; credentials live as long as their provider's configuration version. */
export function createCredentialService(deps: CredentialServiceDeps = {}): CredentialService {
  const cache = new Map<string, { configVersion: number; credential: ProviderCredential }>();
  return {
    credentialFor(provider) {
      const cached = cache.get(provider.id);
      if (cached?.configVersion === provider.configVersion) return cached.credential;
      const credential = build(provider, deps);
      cache.set(provider.id, { configVersion: provider.configVersion, credential });
      return credential;
    },
    fresh: (provider) => build(provider, deps),
  };
}

function build(provider: CredentialSource, deps: CredentialServiceDeps): ProviderCredential {
  const auth = provider.auth;
  switch (auth.mode) {
    case 'none':
      return fixed(undefined);
    case 'bearer':
      return fixed(
        auth.headerName === undefined
          ? { name: 'authorization', value: `Bearer ${auth.token}`, secrets: [auth.token] }
          : { name: auth.headerName, value: auth.token, secrets: [auth.token] },
      );
    case 'basic': {
      const encoded = Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64');
      return fixed({ name: 'authorization', value: `Basic ${encoded}`, secrets: [auth.password, encoded] });
    }
    case 'oauth_client_credentials':
    case 'oauth_interactive':
      return oauthCredential(provider, auth, deps);
  }
}

function fixed(header: AuthHeader | undefined): ProviderCredential {
  return {
    authorization: () => Promise.resolve(header),
    invalidate: () => false,
    check: () => Promise.resolve(undefined),
  };
}

function oauthCredential(provider: CredentialSource, auth: OAuthAuth, deps: CredentialServiceDeps): ProviderCredential {
  const now = deps.now ?? Date.now;
  const client: OAuthClient = createOAuthClient(auth, {
    label: provider.slug,
    now,
    ...(deps.timeoutSeconds === undefined ? {} : { timeoutSeconds: deps.timeoutSeconds }),
  });
  const fetch = (): Promise<GrantResult> => {
    if (auth.mode === 'oauth_client_credentials') return client.requestToken();
    if (deps.grants === undefined) {
      throw new ScimflowError('ERR_CONFIG', `provider ${provider.slug}: interactive OAuth needs the grant store`);
    }
    return deps.grants.refresh(provider.id, (refreshToken) => client.refresh(refreshToken));
  };
  const tokens: TokenCache = createTokenCache(fetch, now);
  return {
    async authorization() {
      const token = await tokens.get();
      return { name: 'authorization', value: `Bearer ${token}`, secrets: [token] };
    },
    invalidate(header) {
      tokens.invalidate(header.secrets[0] ?? '');
      return true;
    },
    async check() {
      const issued = await fetch();
      return { expiresAt: issued.expiresAt };
    },
  };
}
