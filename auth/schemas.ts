/**
 * How a provider authenticates to its SCIM endpoint: one discriminated union, validated on save. Secret fields
 * (tokens, passwords, client secrets, private keys, token parameter values) are write-only: they are sealed at rest
 * and views show only which ones are set.
 */
import * as z from 'zod';

/** An HTTP header field name (RFC 9110 token). */
const HeaderNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'must be an HTTP header name')
  .refine((name) => !['host', 'content-type', 'content-length', 'accept'].includes(name.toLowerCase()), {
    message: 'must not be a header scimflow sets itself',
  });

/**
 * A secret that is encoded before it is sent (a basic-auth password in base64, a client secret in base64 or a form
 * field): any character but a line break.
 */
const SecretSchema = z
  .string()
  .min(1)
  .max(8192)
  .regex(/^[^\r\n]*$/, 'must not contain line breaks');

/**
 * A secret sent as an HTTP header value as it is (a bearer token, in `Authorization` or its own header): visible
 * ASCII, with spaces or tabs only between other characters. The HTTP client refuses a control character on every
 * request, would send a non-ASCII character as some other byte than the target expects, and a header value loses
 * leading and trailing whitespace; so such a token could never authenticate. The message never repeats the value.
 */
const HeaderSecretSchema = z
  .string()
  .min(1)
  .max(8192)
  .regex(
    /^[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?$/,
    'must be printable ASCII, with spaces only between other characters (it is sent as an HTTP header value)',
  );

/** An absolute https URL (http only for loopback hosts, where nothing crosses the network) without credentials. */
export const EndpointUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
  .superRefine((value, ctx) => {
    const url = new URL(value);
    if (url.username !== '' || url.password !== '')
      ctx.addIssue({ code: 'custom', message: 'must not carry credentials' });
    if (url.hash !== '') ctx.addIssue({ code: 'custom', message: 'must not carry a fragment' });
    if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
      ctx.addIssue({ code: 'custom', message: 'must use https (http is accepted only for loopback hosts)' });
    }
  });

/** True for hosts that never leave the machine: `localhost`, 127.0.0.0/8 and ::1. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host.endsWith('.localhost') || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

// Parameters scimflow sets itself from the fields above; a token parameter may not override them.
const RESERVED_TOKEN_PARAMS = new Set([
  'client_id',
  'client_secret',
  'scope',
  'resource',
  'audience',
  'code',
  'code_verifier',
  'redirect_uri',
  'refresh_token',
]);

/** Extra token request parameters, e.g. `grant_type`, `subject_token`, `client_assertion`; values are secret. */
const TokenParamsSchema = z
  .record(
    z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'parameter names are letters, digits and _ . : -')
      .refine((name) => !RESERVED_TOKEN_PARAMS.has(name), {
        message: 'is set from its own field, not a token parameter',
      }),
    z.string().max(16_384),
  )
  .refine((params) => Object.keys(params).length <= 32, 'at most 32 token parameters');

/** How scimflow authenticates itself to the token endpoint. */
export const ClientAuthSchema = z.enum(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']);
export type ClientAuthMethod = z.infer<typeof ClientAuthSchema>;

const OAuthFields = {
  /** Issuer URL; the token (and authorization) endpoints come from its discovery document. */
  issuer: EndpointUrlSchema.optional(),
  /** Token endpoint, for an authorization server without discovery. */
  tokenUrl: EndpointUrlSchema.optional(),
  clientId: z.string().min(1).max(1024),
  clientAuth: ClientAuthSchema.default('client_secret_basic'),
  clientSecret: SecretSchema.optional(),
  /** PKCS#8 PEM or a private JWK (JSON) signing the client assertion of `private_key_jwt`. */
  privateKey: z.string().min(1).max(16_384).optional(),
  /** `kid` put in the client assertion's header. */
  privateKeyId: z.string().min(1).max(256).optional(),
  scope: z.string().min(1).max(2048).optional(),
  /** RFC 8707 resource indicator. */
  resource: z.url().max(2048).optional(),
  audience: z.string().min(1).max(2048).optional(),
  tokenParams: TokenParamsSchema.optional(),
};

type OAuthShape = {
  issuer?: string | undefined;
  tokenUrl?: string | undefined;
  clientAuth: ClientAuthMethod;
  clientSecret?: string | undefined;
  privateKey?: string | undefined;
};

/** Cross-field rules both OAuth modes share; each issue names its field. */
function checkOAuth(interactive: boolean) {
  return (value: OAuthShape, ctx: z.core.$RefinementCtx<OAuthShape>): void => {
    if (interactive) {
      if (value.issuer === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['issuer'],
          message: 'is required: the authorization endpoint comes from discovery',
        });
      }
      if (value.tokenUrl !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['tokenUrl'], message: 'is not used: the endpoints come from discovery' });
      }
    } else if ((value.issuer === undefined) === (value.tokenUrl === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['tokenUrl'], message: 'give exactly one of issuer and tokenUrl' });
    }
    const needsSecret = value.clientAuth === 'client_secret_basic' || value.clientAuth === 'client_secret_post';
    if (needsSecret && value.clientSecret === undefined) {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: `is required for ${value.clientAuth}` });
    }
    if (!needsSecret && value.clientSecret !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: `is not used by ${value.clientAuth}` });
    }
    if (value.clientAuth === 'private_key_jwt' && value.privateKey === undefined) {
      ctx.addIssue({ code: 'custom', path: ['privateKey'], message: 'is required for private_key_jwt' });
    }
    if (value.clientAuth !== 'private_key_jwt' && value.privateKey !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['privateKey'], message: `is not used by ${value.clientAuth}` });
    }
  };
}

/** How a provider authenticates to its SCIM endpoint, as the API accepts it. */
export const ProviderAuthInputSchema = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('none') }),
  z.strictObject({
    mode: z.literal('bearer'),
    token: HeaderSecretSchema,
    /** Send the token as-is in this header instead of `Authorization: Bearer <token>`. */
    headerName: HeaderNameSchema.optional(),
  }),
  z.strictObject({
    mode: z.literal('basic'),
    username: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[^:\r\n]*$/, 'must not contain ":" or line breaks'),
    password: SecretSchema,
  }),
  z.strictObject({ mode: z.literal('oauth_client_credentials'), ...OAuthFields }).superRefine(checkOAuth(false)),
  z.strictObject({ mode: z.literal('oauth_interactive'), ...OAuthFields }).superRefine(checkOAuth(true)),
]);
export type ProviderAuthInput = z.infer<typeof ProviderAuthInputSchema>;
/** An auth mode. */
export type AuthMode = ProviderAuthInput['mode'];
/** The OAuth modes' settings. */
export type OAuthAuth = Extract<ProviderAuthInput, { mode: 'oauth_client_credentials' | 'oauth_interactive' }>;

/** The field names of each mode that hold secrets; everything else is shown in views. */
export const SECRET_FIELDS = ['token', 'password', 'clientSecret', 'privateKey', 'tokenParams'] as const;
type SecretField = (typeof SECRET_FIELDS)[number];

/** An auth split into what may be shown (`config`) and what is sealed at rest (`secret`). */
export interface SplitAuth {
  mode: AuthMode;
  config: Record<string, unknown>;
  secret: Partial<Record<SecretField, unknown>>;
}

/** Splits validated auth settings into their public and secret halves. */
export function splitAuth(auth: ProviderAuthInput): SplitAuth {
  const { mode, ...fields } = auth;
  const config: Record<string, unknown> = {};
  const secret: SplitAuth['secret'] = {};
  for (const [name, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if ((SECRET_FIELDS as readonly string[]).includes(name)) secret[name as SecretField] = value;
    else config[name] = value;
  }
  // Token parameter names are not secret and say what the provider sends; their values may be (subject_token).
  if (auth.mode === 'oauth_client_credentials' || auth.mode === 'oauth_interactive') {
    if (auth.tokenParams !== undefined) config['tokenParamNames'] = Object.keys(auth.tokenParams).sort();
  }
  return { mode, config, secret };
}

/** Joins the halves `splitAuth` made back into the settings; throws when they no longer validate. */
export function joinAuth(
  mode: string,
  config: Record<string, unknown>,
  secret: Record<string, unknown>,
): ProviderAuthInput {
  const { tokenParamNames: _names, ...rest } = config;
  return ProviderAuthInputSchema.parse({ ...rest, ...secret, mode });
}

/** Interactive authorisation state, as views show it. */
export const OAuthStatusSchema = z.object({
  state: z.enum(['not_authorised', 'authorised', 'needs_reauthorisation']),
  authorisedAt: z.string().nullable(),
  /** When the current access token expires (null when none is known). */
  expiresAt: z.string().nullable(),
  /** Why re-authorisation is needed (no secrets). */
  error: z.string().nullable(),
});
export type OAuthStatus = z.infer<typeof OAuthStatusSchema>;

/** A provider's auth as views show it: mode, public settings, which secrets are set. */
export const ProviderAuthViewSchema = z.object({
  mode: z.enum(['none', 'bearer', 'basic', 'oauth_client_credentials', 'oauth_interactive']),
  secretSet: z.boolean(),
  headerName: z.string().optional(),
  username: z.string().optional(),
  issuer: z.string().optional(),
  tokenUrl: z.string().optional(),
  clientId: z.string().optional(),
  clientAuth: ClientAuthSchema.optional(),
  privateKeyId: z.string().optional(),
  scope: z.string().optional(),
  resource: z.string().optional(),
  audience: z.string().optional(),
  tokenParamNames: z.array(z.string()).optional(),
  oauth: OAuthStatusSchema.optional(),
});
export type ProviderAuthView = z.infer<typeof ProviderAuthViewSchema>;
