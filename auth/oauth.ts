/**
 * Talks to a provider's OAuth 2.0 authorization server with openid-client: discovery (or a fixed token endpoint),
 * client authentication, the client-credentials (or configured) grant, refresh, and the authorization code flow.
 * Every failure becomes a ScimflowError with an ERR_AUTH_* code and a secret-free message.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import * as oidc from 'openid-client';
import { ScimflowError } from '../errors/index.ts';
import { redactSecrets } from '../scim/redact.ts';
import type { OAuthAuth } from './schemas.ts';
import type { IssuedToken } from './token-cache.ts';

/** A token response: the access token and, for interactive grants, a (possibly rotated) refresh token. */
export interface GrantResult extends IssuedToken {
  refreshToken: string | undefined;
}

/** One provider's authorization server, as scimflow uses it. */
export interface OAuthClient {
  /** An access token from the configured grant (client credentials, or the `grant_type` token parameter). */
  requestToken(): Promise<GrantResult>;
  /** A new access token for a refresh token. */
  refresh(refreshToken: string): Promise<GrantResult>;
  /** The URL that sends an administrator to the authorization server (code flow with PKCE S256 and `state`). */
  authorizationUrl(params: { redirectUri: string; state: string; codeVerifier: string }): Promise<URL>;
  /** Exchanges the code the authorization server sent back to `redirectUri` (query `callbackQuery`). */
  exchangeCode(params: {
    redirectUri: string;
    callbackQuery: string;
    state: string;
    codeVerifier: string;
  }): Promise<GrantResult>;
}

/** Options of `createOAuthClient`. */
export interface OAuthClientOptions {
  /** Names the provider in error messages. */
  label: string;
  /** Clock for `expiresAt`. @default Date.now */
  now?: () => number;
  /** Seconds one HTTP exchange may take. @default 30 */
  timeoutSeconds?: number;
}

/** Builds the client; nothing is fetched until the first call (discovery is done once and kept). */
export function createOAuthClient(auth: OAuthAuth, options: OAuthClientOptions): OAuthClient {
  const now = options.now ?? Date.now;
  const secrets = secretsOf(auth);
  const fail = (error: unknown, step: string): never => {
    throw classifyOAuthError(error, { label: options.label, clientId: auth.clientId, step, secrets });
  };
  let configuration: Promise<oidc.Configuration> | undefined;

  function config(): Promise<oidc.Configuration> {
    configuration ??= configure(auth, options.timeoutSeconds ?? 30).catch((error: unknown) => {
      configuration = undefined; // a failed discovery is tried again next time
      return fail(error, 'discovery');
    });
    return configuration;
  }

  function result(response: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers): GrantResult {
    const expiresIn = response.expiresIn();
    return {
      accessToken: response.access_token,
      expiresAt: expiresIn === undefined ? undefined : now() + expiresIn * 1000,
      refreshToken: response.refresh_token,
    };
  }

  const shared = sharedParams(auth);
  return {
    async requestToken() {
      const cfg = await config();
      const { grant_type: grantType, ...params } = { ...shared, ...auth.tokenParams };
      try {
        const response =
          grantType === undefined || grantType === 'client_credentials'
            ? await oidc.clientCredentialsGrant(cfg, params)
            : await oidc.genericGrantRequest(cfg, grantType, params);
        return result(response);
      } catch (error) {
        return fail(error, 'token');
      }
    },
    async refresh(refreshToken) {
      const cfg = await config();
      try {
        return result(await oidc.refreshTokenGrant(cfg, refreshToken, { ...shared, ...auth.tokenParams }));
      } catch (error) {
        return fail(error, 'refresh');
      }
    },
    async authorizationUrl({ redirectUri, state, codeVerifier }) {
      const cfg = await config();
      return oidc.buildAuthorizationUrl(cfg, {
        ...shared,
        redirect_uri: redirectUri,
        response_type: 'code',
        state,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      });
    },
    async exchangeCode({ redirectUri, callbackQuery, state, codeVerifier }) {
      const cfg = await config();
      const current = new URL(redirectUri);
      current.search = callbackQuery;
      try {
        return result(
          await oidc.authorizationCodeGrant(
            cfg,
            current,
            { pkceCodeVerifier: codeVerifier, expectedState: state, idTokenExpected: false },
            auth.tokenParams,
          ),
        );
      } catch (error) {
        return fail(error, 'authorization code exchange');
      }
    },
  };
}

/** scope, resource and audience, when set. */
function sharedParams(auth: OAuthAuth): Record<string, string> {
  return {
    ...(auth.scope === undefined ? {} : { scope: auth.scope }),
    ...(auth.resource === undefined ? {} : { resource: auth.resource }),
    ...(auth.audience === undefined ? {} : { audience: auth.audience }),
  };
}

/** The secret strings of an OAuth configuration, for redaction. */
function secretsOf(auth: OAuthAuth): string[] {
  return [auth.clientSecret, ...Object.values(auth.tokenParams ?? {})].filter(
    (value): value is string => value !== undefined,
  );
}

async function configure(auth: OAuthAuth, timeoutSeconds: number): Promise<oidc.Configuration> {
  const clientAuth = clientAuthentication(auth);
  const insecure = [auth.issuer, auth.tokenUrl].some((url) => url !== undefined && new URL(url).protocol === 'http:');
  const execute = insecure ? [oidc.allowInsecureRequests] : [];
  let cfg: oidc.Configuration;
  if (auth.issuer !== undefined) {
    const issuer = new URL(auth.issuer);
    const discover = (algorithm: 'oidc' | 'oauth2') =>
      oidc.discovery(issuer, auth.clientId, undefined, clientAuth, { execute, algorithm, timeout: timeoutSeconds });
    try {
      cfg = await discover('oidc');
    } catch (error) {
      // Plain OAuth 2.0 servers publish RFC 8414 metadata instead of OpenID Connect's.
      if (isTransport(error)) throw error;
      cfg = await discover('oauth2');
    }
  } else {
    const tokenUrl = new URL(auth.tokenUrl!);
    cfg = new oidc.Configuration(
      { issuer: tokenUrl.origin, token_endpoint: tokenUrl.href },
      auth.clientId,
      undefined,
      clientAuth,
    );
    cfg.timeout = timeoutSeconds;
    for (const extension of execute) extension(cfg);
  }
  return cfg;
}

function clientAuthentication(auth: OAuthAuth): oidc.ClientAuth {
  switch (auth.clientAuth) {
    case 'client_secret_basic':
      return oidc.ClientSecretBasic(auth.clientSecret);
    case 'client_secret_post':
      return oidc.ClientSecretPost(auth.clientSecret);
    case 'none':
      return oidc.None();
    case 'private_key_jwt': {
      const key = signingKey(parsePrivateKey(auth.privateKey!));
      return oidc.PrivateKeyJwt(auth.privateKeyId === undefined ? key : { key, kid: auth.privateKeyId });
    }
  }
}

/** Parses a PKCS#8 / PKCS#1 / SEC1 PEM or a private JWK; throws ERR_VALIDATION naming the field otherwise. */
export function parsePrivateKey(text: string): KeyObject {
  try {
    const trimmed = text.trim();
    const key = trimmed.startsWith('{')
      ? createPrivateKey({ key: JSON.parse(trimmed) as never, format: 'jwk' })
      : createPrivateKey(trimmed);
    if (key.type !== 'private') throw new Error('not a private key');
    return key;
  } catch {
    // The cause may quote key material; it is left out on purpose.
    throw new ScimflowError('ERR_VALIDATION', 'privateKey is not a PEM or JWK private key', {
      details: { issues: [{ path: 'auth.privateKey', message: 'is not a PEM or JWK private key' }] },
    });
  }
}

/** The WebCrypto signing key for a private key, with the algorithm its type implies. */
function signingKey(key: KeyObject): oidc.CryptoKey {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return key.toCryptoKey({ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
    case 'rsa-pss':
      return key.toCryptoKey({ name: 'RSA-PSS', hash: 'SHA-256' }, false, ['sign']);
    case 'ec': {
      const curve = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }[details.namedCurve ?? ''];
      if (curve === undefined) break;
      return key.toCryptoKey({ name: 'ECDSA', namedCurve: curve }, false, ['sign']);
    }
    case 'ed25519':
      return key.toCryptoKey({ name: 'Ed25519' }, false, ['sign']);
  }
  throw new ScimflowError(
    'ERR_CONFIG',
    `private keys of type ${key.asymmetricKeyType ?? 'unknown'} cannot sign a client assertion`,
  );
}

/** Errors where nothing (or nothing usable) came back: network, timeout, TLS. */
function isTransport(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'TimeoutError' || error.name === 'AbortError') return true;
  // fetch() failures: "fetch failed" with the socket error as cause.
  return error instanceof TypeError && error.message === 'fetch failed';
}

/** The HTTP status of the response behind an openid-client error (on the error, or on its Response cause). */
function statusOf(error: unknown): number {
  if (typeof error !== 'object' || error === null) return 0;
  const { status, cause } = error as { status?: unknown; cause?: unknown };
  if (typeof status === 'number') return status;
  return cause instanceof Response ? cause.status : 0;
}

/** What went wrong, for the message. */
interface ErrorContext {
  label: string;
  clientId: string;
  step: string;
  secrets: readonly string[];
}

/** Maps an openid-client (or fetch) failure to ERR_AUTH_UNAVAILABLE, ERR_AUTH_INVALID_CLIENT or ERR_AUTH_TOKEN. */
export function classifyOAuthError(error: unknown, context: ErrorContext): ScimflowError {
  if (error instanceof ScimflowError) return error;
  const where = `provider ${context.label}: OAuth ${context.step}`;
  const clean = (text: string): string => redactSecrets(text, context.secrets).slice(0, 300);
  if (isTransport(error)) {
    return new ScimflowError('ERR_AUTH_UNAVAILABLE', `${where} failed: the authorization server did not answer`, {
      details: { step: context.step },
    });
  }
  const status = statusOf(error);
  if (status >= 500 || status === 429 || status === 408) {
    return new ScimflowError('ERR_AUTH_UNAVAILABLE', `${where} failed: the authorization server answered ${status}`, {
      details: { step: context.step, status },
    });
  }
  if (error instanceof oidc.ResponseBodyError || error instanceof oidc.WWWAuthenticateChallengeError) {
    const code =
      error instanceof oidc.ResponseBodyError
        ? error.error
        : (error.cause.find((challenge) => challenge.parameters.error)?.parameters.error ?? 'invalid_client');
    const description = error instanceof oidc.ResponseBodyError ? error.error_description : undefined;
    const reason = `${code}${description === undefined ? '' : ` (${clean(description)})`}`;
    if (code === 'invalid_client' || code === 'unauthorized_client' || status === 401) {
      return new ScimflowError(
        'ERR_AUTH_INVALID_CLIENT',
        `provider ${context.label}: the authorization server refused client "${context.clientId}" (${reason}) at the OAuth ${context.step} step; check the client id, secret or key`,
        { details: { step: context.step, status, error: code } },
      );
    }
    return new ScimflowError('ERR_AUTH_TOKEN', `${where} was refused: ${reason}`, {
      details: { step: context.step, status, error: code },
    });
  }
  const message = error instanceof Error ? clean(error.message) : 'unknown error';
  if (status === 0 && error instanceof Error && /HTTPS/i.test(message)) {
    return new ScimflowError('ERR_CONFIG', `${where} failed: ${message}`, { details: { step: context.step } });
  }
  return new ScimflowError('ERR_AUTH_TOKEN', `${where} failed: ${message}`, {
    details: { step: context.step, ...(status === 0 ? {} : { status }) },
  });
}
