/**
 * A real OAuth 2.0 authorization server for tests (oidc-provider) on loopback. It issues ES256 JWT access tokens
 * for one SCIM resource, which a SCIM target started with `jwtRules` accepts and nothing else does.
 */
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Adapter, type AdapterPayload, type KoaContextWithOIDC } from 'oidc-provider';
import type { JwtRules } from './jwt-verify.ts';

/** The resource (audience) every access token is issued for. */
export const SCIM_RESOURCE = 'https://scim.test/';
/** The grant type of the token-exchange test client. */
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** One token request the server answered. */
export interface TokenRequest {
  clientId: string | undefined;
  grantType: string;
  /** Every form parameter received, credentials included (this is a test server). */
  params: Record<string, unknown>;
  ok: boolean;
  error?: string | undefined;
}

/** Clients registered on the server. */
export interface OAuthTestClients {
  basic: { clientId: string; clientSecret: string };
  post: { clientId: string; clientSecret: string };
  /** Authenticates with private_key_jwt; `privateKeyPem` is PKCS#8. */
  jwt: { clientId: string; privateKeyPem: string };
  /** Uses the token-exchange grant; the server accepts `subjectToken` as `subject_token`. */
  exchange: { clientId: string; clientSecret: string; subjectToken: string };
  /** Authorization code + refresh token; redirects only to `redirectUri`. */
  interactive: { clientId: string; clientSecret: string };
}

/** A running authorization server. */
export interface OAuthTestServer {
  issuer: string;
  tokenUrl: string;
  clients: OAuthTestClients;
  /** What a SCIM target must check to accept this server's tokens. */
  jwtRules: JwtRules;
  /** Token requests answered so far, oldest first. */
  tokenRequests: TokenRequest[];
  /** Every access and refresh token the token endpoint has sent, oldest first (to look for them where none belongs). */
  issuedTokens: string[];
  /** Answers the next `count` token requests with 503. */
  failTokenRequests(count: number): void;
  /** Revokes every refresh token and grant (an administrator withdrew consent). */
  revokeAllGrants(): Promise<void>;
  close(): Promise<void>;
}

/** A Map-backed adapter class over `store`, so tests can revoke grants. */
function memoryAdapter(store: Map<string, AdapterPayload>) {
  return class MemoryAdapter implements Adapter {
    readonly model: string;
    constructor(model: string) {
      this.model = model;
    }
    private key(id: string): string {
      return `${this.model}:${id}`;
    }
    upsert(id: string, payload: AdapterPayload): Promise<void> {
      store.set(this.key(id), payload);
      return Promise.resolve();
    }
    find(id: string): Promise<AdapterPayload | undefined> {
      return Promise.resolve(store.get(this.key(id)));
    }
    findByUserCode(): Promise<AdapterPayload | undefined> {
      return Promise.resolve(undefined);
    }
    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      for (const [key, payload] of store) {
        if (key.startsWith(`${this.model}:`) && payload.uid === uid) return Promise.resolve(payload);
      }
      return Promise.resolve(undefined);
    }
    consume(id: string): Promise<void> {
      const payload = store.get(this.key(id));
      if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      return Promise.resolve();
    }
    destroy(id: string): Promise<void> {
      store.delete(this.key(id));
      return Promise.resolve();
    }
    revokeByGrantId(grantId: string): Promise<void> {
      for (const [key, payload] of store) if (payload.grantId === grantId) store.delete(key);
      return Promise.resolve();
    }
  };
}

/**
 * Starts the server on 127.0.0.1; `redirectUri` is the interactive client's only redirect URI. `resource` is the
 * audience of every access token (default SCIM_RESOURCE); `tokenClaims` adds claims to the tokens of each client.
 */
export async function startOAuthServer(
  options: {
    redirectUri?: string;
    accessTokenTtlSeconds?: number;
    resource?: string;
    tokenClaims?: (clientId: string) => Record<string, unknown>;
  } = {},
): Promise<OAuthTestServer> {
  const http: Server = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

  const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signingJwk = { ...signing.privateKey.export({ format: 'jwk' }), kid: 'as-key', alg: 'ES256', use: 'sig' };
  const publicJwk: JsonWebKey = { ...signing.publicKey.export({ format: 'jwk' }), kid: 'as-key' };
  const clientKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const clients: OAuthTestClients = {
    basic: { clientId: 'scimflow-basic', clientSecret: 'basic-secret-7f3a9c' },
    post: { clientId: 'scimflow-post', clientSecret: 'post-secret-2b8e1d' },
    jwt: {
      clientId: 'scimflow-jwt',
      privateKeyPem: clientKey.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    },
    exchange: {
      clientId: 'scimflow-exchange',
      clientSecret: 'exchange-secret-9d4c2a',
      subjectToken: 'subject-5e7f1b3c',
    },
    interactive: { clientId: 'scimflow-interactive', clientSecret: 'interactive-secret-6a1f8e' },
  };
  const common = { id_token_signed_response_alg: 'ES256', response_types: [], redirect_uris: [] };
  const ttl = options.accessTokenTtlSeconds ?? 600;
  const resource = options.resource ?? SCIM_RESOURCE;

  const store = new Map<string, AdapterPayload>();
  const provider = new Provider(issuer, {
    adapter: memoryAdapter(store),
    jwks: { keys: [signingJwk] },
    clients: [
      {
        ...common,
        client_id: clients.basic.clientId,
        client_secret: clients.basic.clientSecret,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        ...common,
        client_id: clients.post.clientId,
        client_secret: clients.post.clientSecret,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'client_secret_post',
      },
      {
        ...common,
        client_id: clients.jwt.clientId,
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: 'ES256',
        jwks: { keys: [{ ...clientKey.publicKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig' }] },
      },
      {
        ...common,
        client_id: clients.exchange.clientId,
        client_secret: clients.exchange.clientSecret,
        grant_types: [TOKEN_EXCHANGE],
        token_endpoint_auth_method: 'client_secret_post',
      },
      {
        ...common,
        client_id: clients.interactive.clientId,
        client_secret: clients.interactive.clientSecret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: options.redirectUri === undefined ? [] : [options.redirectUri],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    scopes: ['scim', 'offline_access'],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'scim',
          audience: resource,
          accessTokenFormat: 'jwt',
          accessTokenTTL: ttl,
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(type: string): boolean }) =>
      client.grantTypeAllowed('refresh_token'),
    extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) =>
      options.tokenClaims && token.clientId !== undefined ? options.tokenClaims(token.clientId) : undefined,
    pkce: { required: () => true },
    ttl: { AccessToken: ttl, ClientCredentials: ttl, RefreshToken: 24 * 3600 },
  });

  // Token exchange (RFC 8693) with a fixed accepted subject token: proves extra parameters reach the endpoint.
  provider.registerGrantType(
    TOKEN_EXCHANGE,
    async (ctx) => {
      if (ctx.oidc.params?.['subject_token'] !== clients.exchange.subjectToken) {
        ctx.status = 400;
        ctx.body = { error: 'invalid_grant', error_description: 'subject_token not accepted' };
        return;
      }
      const token = new provider.ClientCredentials({ client: ctx.oidc.client, scope: 'scim' });
      token.resourceServer = new provider.ResourceServer(resource, {
        scope: 'scim',
        audience: resource,
        accessTokenFormat: 'jwt',
        accessTokenTTL: ttl,
        jwt: { sign: { alg: 'ES256' } },
      });
      const value = await token.save();
      ctx.body = {
        access_token: value,
        token_type: 'Bearer',
        expires_in: token.expiration,
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      };
    },
    ['subject_token', 'subject_token_type', 'audience', 'resource', 'scope'],
  );

  const tokenRequests: TokenRequest[] = [];
  const record = (ctx: KoaContextWithOIDC, ok: boolean, error?: Error): void => {
    const params = { ...(ctx.oidc.body ?? {}) };
    tokenRequests.push({
      clientId: ctx.oidc.client?.clientId,
      grantType: String(params['grant_type']),
      params,
      ok,
      error: (error as { error?: string } | undefined)?.error,
    });
  };
  provider.on('grant.success', (ctx) => record(ctx, true));
  provider.on('grant.error', (ctx, error) => record(ctx, false, error));

  const issuedTokens: string[] = [];
  /** Keeps the tokens of a token response as it is written. */
  const recordIssued = (res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
    const end = res.end.bind(res) as (chunk?: unknown, ...rest: unknown[]) => ServerResponse;
    const keep = (chunk: unknown): void => {
      if (typeof chunk === 'string' || chunk instanceof Uint8Array) chunks.push(Buffer.from(chunk));
    };
    res.write = ((chunk: unknown, ...rest: unknown[]) => (keep(chunk), write(chunk, ...rest))) as typeof res.write;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      keep(chunk);
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        for (const field of ['access_token', 'refresh_token']) {
          if (typeof body[field] === 'string') issuedTokens.push(body[field]);
        }
      } catch {
        // not a JSON token response (an error page)
      }
      return end(chunk, ...rest);
    }) as typeof res.end;
  };

  let failures = 0;
  const handle = provider.callback();
  http.on('request', (req, res) => {
    if (failures > 0 && req.method === 'POST' && req.url?.startsWith('/token')) {
      failures -= 1;
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"temporarily_unavailable"}');
      return;
    }
    if (req.method === 'POST' && req.url?.startsWith('/token')) recordIssued(res);
    handle(req, res);
  });

  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    clients,
    jwtRules: { issuer, audience: resource, keys: [publicJwk] },
    tokenRequests,
    issuedTokens,
    failTokenRequests(count) {
      failures = count;
    },
    revokeAllGrants() {
      for (const key of [...store.keys()]) {
        if (key.startsWith('RefreshToken:') || key.startsWith('Grant:')) store.delete(key);
      }
      return Promise.resolve();
    },
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
