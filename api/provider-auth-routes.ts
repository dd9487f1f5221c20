import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import type { AuthorisationOutcome } from '../activities/provider-authorisation.ts';
import { ProviderCheckSchema, type ProviderCheck } from '../auth/check.ts';
import { createOAuthClient } from '../auth/oauth.ts';
import { OAuthStatusSchema, type OAuthAuth } from '../auth/schemas.ts';
import {
  acceptCallback,
  getOAuthStatus,
  getProvider,
  startAuthorisation,
  type Db,
  type ProviderView,
  type SecretSealer,
} from '../db/index.ts';
import { ERROR_CODES, isScimflowError, ScimflowError, type ErrorCode } from '../errors/index.ts';
import type { Auditor } from './audit.ts';
import { defineRoute, named, type ApiRoute } from './route.ts';

/** What the worker side does for these routes (only workers decrypt provider secrets). */
export interface ProviderAuthWorker {
  /** Fetches a token and reads ServiceProviderConfig, reporting each step. */
  check(provider: Pick<ProviderView, 'id' | 'slug'>): Promise<ProviderCheck>;
  /** Exchanges the code of an accepted callback for a refresh token (the exchange needs the client secret). */
  completeAuthorisation(
    provider: Pick<ProviderView, 'id' | 'slug'>,
    redirectUri: string,
  ): Promise<AuthorisationOutcome>;
}

/** What the provider auth routes are built from. */
export interface ProviderAuthRouteDeps {
  db: Db;
  secrets: SecretSealer;
  worker: ProviderAuthWorker;
  audit: Auditor;
  /** The URL browsers reach the API at (`SCIMFLOW_PUBLIC_URL`); the OAuth redirect URI is under it. */
  publicUrl: () => string;
}

/** Where the authorization server sends the administrator's browser back to, under the API's public URL. */
export const OAUTH_CALLBACK_PATH = '/oauth/callback';

/** The redirect URI registered at the authorization server for every interactive provider of this scimflow. */
export function oauthRedirectUri(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}${OAUTH_CALLBACK_PATH}`;
}

const AuthorisationStartSchema = z.object({
  /** Open this in a browser: it leads to the authorization server's login and consent. */
  authorizationUrl: z.string(),
  /** The redirect URI the authorization server must have registered for the client. */
  redirectUri: z.string(),
  /** The authorisation must be finished before then; the URL works once. */
  expiresAt: z.string(),
});

/** What an authorization server sends back to the redirect URI (RFC 6749 §4.1.2, RFC 9207's `iss`). */
const CallbackQuerySchema = z.looseObject({
  state: z.string().min(1).max(512),
  code: z.string().min(1).max(4096).optional(),
  error: z.string().max(256).optional(),
  error_description: z.string().max(1024).optional(),
  iss: z.string().max(2048).optional(),
});

/** How long an authorise URL stays usable (the database keeps the same window). */
const AUTHORISE_MINUTES = 10;

/** Connection checks, interactive OAuth status, and starting an interactive authorisation. */
export function providerAuthRoutes(deps: ProviderAuthRouteDeps): ApiRoute[] {
  const { db, worker } = deps;
  const interactive = async (id: string): Promise<ProviderView> => {
    const provider = await getProvider(db, id);
    if (provider.auth.mode !== 'oauth_interactive') {
      throw new ScimflowError('ERR_CONFLICT', `provider ${provider.slug} does not use interactive OAuth`, {
        details: { field: 'auth.mode' },
      });
    }
    return provider;
  };
  return [
    defineRoute({
      method: 'POST',
      path: '/providers/:id/test',
      operationId: 'testProvider',
      summary: "Fetch a token and read the target's ServiceProviderConfig, reporting which step failed",
      tag: 'providers',
      role: 'operator',
      status: 200,
      response: named('ProviderCheck', ProviderCheckSchema),
      handle: async ({ params }) => worker.check(await getProvider(db, params['id']!)),
    }),
    defineRoute({
      method: 'GET',
      path: '/providers/:id/oauth',
      operationId: 'getProviderOAuthStatus',
      summary: 'Interactive OAuth status: authorised, when the access token expires, or needs re-authorisation',
      tag: 'providers',
      role: 'viewer',
      status: 200,
      response: named('OAuthStatus', OAuthStatusSchema),
      conflicts: true,
      handle: async ({ params }) => getOAuthStatus(db, (await interactive(params['id']!)).id),
    }),
    defineRoute({
      method: 'POST',
      path: '/providers/:id/oauth/authorize',
      operationId: 'authorizeProvider',
      summary:
        "Start (re-)authorising an interactive OAuth provider: a single-use URL to the authorization server's login, valid 10 minutes",
      tag: 'providers',
      role: 'admin',
      status: 200,
      response: named('AuthorisationStart', AuthorisationStartSchema),
      conflicts: true,
      handle: async ({ params, caller }) => {
        if (caller?.tokenId === undefined) {
          // The callback checks again that the token which started it is a live admin token; an OIDC token cannot be.
          throw new ScimflowError(
            'ERR_FORBIDDEN',
            'starting an interactive OAuth authorisation needs a scimflow API token (its callback is bound to that token), not an OIDC token',
            { details: { reason: 'api-token-required' } },
          );
        }
        const provider = await interactive(params['id']!);
        const redirectUri = oauthRedirectUri(deps.publicUrl());
        const state = randomBytes(32).toString('base64url');
        const codeVerifier = randomBytes(32).toString('base64url');
        // Only public settings are needed to build the URL (discovery, client id, scope): the API decrypts nothing.
        const client = createOAuthClient(publicOAuthSettings(provider), { label: provider.slug });
        const url = await client.authorizationUrl({ redirectUri, state, codeVerifier });
        await deps.audit.change(
          caller,
          (q) =>
            startAuthorisation(q, deps.secrets, provider.id, {
              state,
              codeVerifier,
              startedBy: caller?.tokenId ?? null,
            }),
          () => ({
            action: 'provider.authorize',
            targetType: 'provider',
            targetId: provider.id,
            targetName: provider.slug,
            details: { redirectUri },
          }),
        );
        return {
          authorizationUrl: url.href,
          redirectUri,
          expiresAt: new Date(Date.now() + AUTHORISE_MINUTES * 60_000).toISOString(),
        };
      },
    }),
  ];
}

/**
 * `GET /oauth/callback`, outside `/api/v1`: the authorization server redirects the administrator's browser here, and
 * a browser following a redirect carries no API token. It is protected by `state` instead: 256 random bits, stored
 * hashed, bound to one provider and to the admin token that asked for the URL (refused once that token is no longer
 * a live admin token), usable once and for ten minutes. With PKCE, a code taken from the redirect is useless without
 * the verifier, which never leaves the database unsealed except on a worker.
 */
export function oauthCallbackRoutes(deps: ProviderAuthRouteDeps): ApiRoute[] {
  return [
    defineRoute({
      method: 'GET',
      path: OAUTH_CALLBACK_PATH,
      operationId: 'oauthCallback',
      summary:
        "Where the authorization server sends the administrator's browser back to; protected by the single-use state, not a token",
      tag: 'providers',
      role: 'public',
      status: 200,
      query: CallbackQuerySchema,
      handle: async ({ query }) => {
        try {
          if (query.error !== undefined || query.code === undefined) {
            await acceptCallback(deps.db, deps.secrets, query.state, null);
            const reason = query.error ?? 'no authorization code';
            const description = query.error_description === undefined ? '' : `: ${printable(query.error_description)}`;
            return page(
              400,
              `The authorization server did not authorise scimflow (${printable(reason)}${description}).`,
            );
          }
          const search = new URLSearchParams(
            Object.entries(query).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
          ).toString();
          const { providerId, startedBy } = await acceptCallback(deps.db, deps.secrets, query.state, search);
          const provider = await getProvider(deps.db, providerId);
          const outcome = await deps.worker.completeAuthorisation(provider, oauthRedirectUri(deps.publicUrl()));
          // The grant was stored by the worker, in a transaction of its own: the row records the outcome it reported.
          await deps.audit.record(
            { name: startedBy ?? 'anonymous', role: 'admin', remoteAddress: null },
            {
              action: outcome.ok ? 'provider.authorized' : 'provider.authorize.failed',
              targetType: 'provider',
              targetId: provider.id,
              targetName: provider.slug,
              details: outcome.ok ? {} : { code: outcome.code },
            },
          );
          if (!outcome.ok) {
            const status = outcome.code in ERROR_CODES ? ERROR_CODES[outcome.code as ErrorCode].httpStatus : 500;
            return page(status, `Provider ${provider.slug} was not authorised: ${outcome.code} ${outcome.message}`);
          }
          return page(
            200,
            `Provider ${provider.slug} is authorised. Its syncs use this grant from now on; you can close this window.`,
          );
        } catch (error) {
          if (!isScimflowError(error)) throw error;
          return page(ERROR_CODES[error.code].httpStatus, `${error.code}: ${error.message}`);
        }
      },
    }),
  ];
}

/** A plain-text page for the browser: nothing it shows is interpreted, cached, or sent on as a referrer. */
function page(status: number, text: string): Response {
  return new Response(`${text}\n`, {
    status,
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
    },
  });
}

/** Text from the query, without control characters. */
function printable(text: string): string {
  return text.replace(/[\p{Cc}]/gu, ' ').slice(0, 300);
}

/** The interactive settings a view shows, enough to build the authorise URL (public client: no secret needed). */
function publicOAuthSettings(provider: ProviderView): OAuthAuth {
  const { issuer, clientId, scope, resource, audience } = provider.auth;
  if (issuer === undefined || clientId === undefined) {
    throw new ScimflowError('ERR_CONFIG', `provider ${provider.slug} has incomplete interactive OAuth settings`);
  }
  return {
    mode: 'oauth_interactive',
    issuer,
    clientId,
    clientAuth: 'none',
    ...(scope === undefined ? {} : { scope }),
    ...(resource === undefined ? {} : { resource }),
    ...(audience === undefined ? {} : { audience }),
  };
}
