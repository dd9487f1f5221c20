import * as z from 'zod';
import { ScimflowError } from '../errors/index.ts';
import { checkOidcEnv, OidcEnvShape } from './oidc.ts';
import { checkTemporalEnv, TemporalEnvShape } from './temporal.ts';

export { oidcSettings, type OidcSettings } from './oidc.ts';

export {
  describeTemporalSecurity,
  temporalConnectionOptions,
  type TemporalConnectionOptions,
  type TemporalEnv,
} from './temporal.ts';

/** Process configuration, read once from the environment. */
export const EnvSchema = z
  .object({
    DATABASE_URL: z.string().default('postgres://scimflow@127.0.0.1:5432/scimflow'),
    /** Address of a Temporal frontend; when unset, `scimflow start` runs an embedded dev server. */
    TEMPORAL_ADDRESS: z.string().optional(),
    TEMPORAL_NAMESPACE: z.string().default('default'),
    /** TLS, mutual TLS and API key of the Temporal connection (see config/temporal.ts). */
    ...TemporalEnvShape,
    /** Temporal Web UI base URL, for links printed by `scimflow start` when TEMPORAL_ADDRESS is set. */
    TEMPORAL_UI_URL: z.url().optional(),
    SCIMFLOW_TASK_QUEUE: z.string().default('scimflow'),
    /** 32-byte key (base64 or hex) that encrypts provider secrets at rest. */
    SCIMFLOW_SECRET_KEY: z.string().optional(),
    /**
     * Comma-separated keys that decrypt but never encrypt: the previous key while `scimflow secrets rotate-key` runs,
     * or the next one while it is rolled out.
     */
    SCIMFLOW_DECRYPT_KEYS: z.string().default(''),
    SCIMFLOW_API_HOST: z.string().default('127.0.0.1'),
    SCIMFLOW_API_PORT: z.coerce.number().int().min(0).max(65535).default(7400),
    /**
     * The URL browsers reach the API at, when it is not the address it listens on (a proxy, TLS in front); interactive
     * OAuth redirects to `<this>/oauth/callback`.
     */
    SCIMFLOW_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
    /** Comma-separated host names the API answers to besides localhost, 127.0.0.1 and [::1] (`*`: any). */
    SCIMFLOW_API_ALLOWED_HOSTS: z.string().default(''),
    /** Comma-separated origins (`https://console.example.com`) whose browser requests the API accepts. */
    SCIMFLOW_API_ALLOWED_ORIGINS: z.string().default(''),
    /** OIDC bearer tokens of the organisation's identity provider (see config/oidc.ts). */
    ...OidcEnvShape,
    /** Largest admin API request body in bytes (the directory import has its own limit). */
    SCIMFLOW_API_MAX_BODY_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024),
    /** Largest `POST /api/v1/import` body in bytes. */
    SCIMFLOW_API_IMPORT_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(64 * 1024 * 1024),
    /** Longest line of a streamed import (`POST /api/v1/import/stream`) in bytes. */
    SCIMFLOW_API_IMPORT_MAX_LINE_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024),
    /** Rows (a user; a group and each member it lists) a streamed import writes per transaction. */
    SCIMFLOW_API_IMPORT_BATCH_ROWS: z.coerce.number().int().min(1).max(100_000).default(1000),
    /** Most resources one list page of an inbound SCIM source returns (a larger `count` is lowered to it). */
    SCIMFLOW_SOURCE_MAX_RESULTS: z.coerce.number().int().min(1).max(10_000).default(200),
    /** Requests per second each inbound source token may make, in bursts of twice as many. */
    SCIMFLOW_SOURCE_RATE_PER_SECOND: z.coerce.number().int().min(1).max(100_000).default(100),
    /** Days dispatched outbox rows are kept before the housekeeping deletes them. */
    SCIMFLOW_OUTBOX_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(7),
    /** Days finished sync runs (and their per-object events) are kept; each provider's latest run always is. */
    SCIMFLOW_RUN_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(90),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** `json` or `pretty` (readable lines); unset: `pretty` when stdout is a terminal, else `json`. */
    LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  })
  .superRefine((env, ctx) => {
    checkTemporalEnv(env, ctx);
    checkOidcEnv(env, ctx);
  });
export type Env = z.infer<typeof EnvSchema>;

/** Parses `source` (default: `process.env`) or throws one ERR_CONFIG naming every bad variable. */
export function loadEnv(source: Record<string, string | undefined> = process.env): Env {
  const parsed = EnvSchema.safeParse(source);
  if (!parsed.success) {
    const names = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ');
    throw new ScimflowError('ERR_CONFIG', `invalid environment: ${names}`);
  }
  return parsed.data;
}
