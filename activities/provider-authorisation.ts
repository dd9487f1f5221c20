import type { GrantStore } from '../auth/credentials.ts';
import { createOAuthClient } from '../auth/oauth.ts';
import type { OAuthStatus } from '../auth/schemas.ts';
import type { ProviderForSync } from '../db/index.ts';
import { describeError, isScimflowError, ScimflowError } from '../errors/index.ts';

/** How an interactive authorisation ended: the provider's new status, or a secret-free reason. */
export type AuthorisationOutcome = { ok: true; status: OAuthStatus } | { ok: false; code: string; message: string };

/** What the authorisation activity is built from. */
export interface ProviderAuthorisationDeps {
  loadProvider: (providerId: string) => Promise<ProviderForSync>;
  grants: GrantStore;
  /** Seconds one exchange with the authorization server may take. @default 30 */
  timeoutSeconds?: number;
}

/** Builds `completeProviderAuthorisation`: exchanges the code of an accepted callback for a refresh token. */
export function createProviderAuthorisationActivities(deps: ProviderAuthorisationDeps) {
  return {
    /**
     * Exchanges the authorization code the API accepted (sealed in the database, with the PKCE verifier) on a
     * worker, the only process that holds the client secret. Never throws for a refused exchange, it reports it.
     */
    async completeProviderAuthorisation(providerId: string, redirectUri: string): Promise<AuthorisationOutcome> {
      try {
        const provider = await deps.loadProvider(providerId);
        const auth = provider.auth;
        if (auth.mode !== 'oauth_interactive') {
          throw new ScimflowError('ERR_CONFLICT', `provider ${provider.slug} does not use interactive OAuth`);
        }
        const client = createOAuthClient(auth, {
          label: provider.slug,
          ...(deps.timeoutSeconds === undefined ? {} : { timeoutSeconds: deps.timeoutSeconds }),
        });
        const status = await deps.grants.complete(providerId, ({ codeVerifier, callbackQuery }) =>
          client.exchangeCode({
            redirectUri,
            callbackQuery,
            state: new URLSearchParams(callbackQuery).get('state') ?? '',
            codeVerifier,
          }),
        );
        return { ok: true, status };
      } catch (error) {
        if (isScimflowError(error)) {
          return { ok: false, code: error.code, message: error.message };
        }
        return { ok: false, code: 'ERR_INTERNAL', message: describeError(error) };
      }
    },
  };
}

/** The authorisation activity, as workflows import its type. */
export type ProviderAuthorisationActivities = ReturnType<typeof createProviderAuthorisationActivities>;
