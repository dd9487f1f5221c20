/**
 * Providers: the downstream SCIM endpoints. Auth secrets are sealed with the provider id as associated data and are
 * only ever decrypted by `getProviderForSync`, on the worker side; every other read returns whether one is set.
 * A keyed fingerprint answers "are these the stored settings" without decrypting, and a secret stays bound to the
 * origin it was given for: moving the base URL to another origin clears it unless new auth comes with the move.
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { NotFoundError, ScimflowError, ValidationError } from '../errors/index.ts';
import type { SecretBox, SecretSealer } from './crypto.ts';
import { authView, openAuth, sameAuth, sealAuth, type AuthColumns, type GrantJson } from './provider-auth.ts';
import { inTransaction, type Db, type Queryable } from './pool.ts';
import {
  checkBaseUrlScheme,
  ProviderScopeSchema,
  type ProviderForSync,
  type ProviderInput,
  type ProviderScope,
  type ProviderUpdate,
  type RateLimitConfig,
  type ProviderView,
} from './schemas.ts';

interface ProviderRow extends AuthColumns {
  id: string;
  slug: string;
  name: string;
  base_url: string;
  plugin: string;
  scope: Record<string, unknown>;
  options: Record<string, unknown>;
  deprovision: ProviderView['deprovision'];
  page_size: number;
  concurrency: number;
  full_sync_interval_minutes: number;
  deletion_limit: number | null;
  rate_limit: RateLimitConfig | null;
  adopt_by: ProviderView['adoptBy'];
  allow_insecure_http: boolean;
  dry_run: boolean;
  enabled: boolean;
  config_version: number;
  created_at: Date;
  updated_at: Date;
  /** The interactive OAuth grant's status (timestamps as JSON text), null when there is none. */
  oauth_grant: GrantJson | null;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COLUMNS = `id, slug, name, base_url, plugin, auth_mode, auth_options, auth_secret, auth_fingerprint, scope, options, deprovision, page_size, concurrency,
  full_sync_interval_minutes, deletion_limit, rate_limit, adopt_by, allow_insecure_http, dry_run, enabled, config_version, created_at, updated_at,
  (SELECT json_build_object('state', g.status, 'authorisedAt', g.authorised_at, 'expiresAt', g.expires_at,
                            'error', g.error)
     FROM provider_oauth_grants g WHERE g.provider_id = providers.id) AS oauth_grant`;

// Plain columns an update may change, by the field of ProviderUpdate that carries them.
const FIELD_COLUMNS = {
  name: 'name',
  baseUrl: 'base_url',
  plugin: 'plugin',
  pluginOptions: 'options',
  scope: 'scope',
  deprovision: 'deprovision',
  pageSize: 'page_size',
  concurrency: 'concurrency',
  fullSyncIntervalMinutes: 'full_sync_interval_minutes',
  deletionLimit: 'deletion_limit',
  rateLimit: 'rate_limit',
  adoptBy: 'adopt_by',
  allowInsecureHttp: 'allow_insecure_http',
  dryRun: 'dry_run',
  enabled: 'enabled',
} as const satisfies Record<Exclude<keyof ProviderUpdate, 'auth'>, keyof ProviderRow>;
const JSONB_COLUMNS: ReadonlySet<string> = new Set(['scope', 'options', 'rate_limit']);

function parseScope(raw: Record<string, unknown>): ProviderScope {
  // Rows written by hand (seeds, SQL) may hold `{}`; read them with the same defaults the API applies.
  const parsed = ProviderScopeSchema.safeParse(raw);
  return parsed.success ? parsed.data : { includeServiceAccounts: false, accessGroups: [] };
}

function toView(row: ProviderRow): ProviderView {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    baseUrl: row.base_url,
    allowInsecureHttp: row.allow_insecure_http,
    plugin: row.plugin,
    pluginOptions: row.options,
    auth: authView(row, row.oauth_grant),
    scope: parseScope(row.scope),
    deprovision: row.deprovision,
    pageSize: row.page_size,
    concurrency: row.concurrency,
    fullSyncIntervalMinutes: row.full_sync_interval_minutes,
    deletionLimit: row.deletion_limit,
    rateLimit: row.rate_limit,
    adoptBy: row.adopt_by,
    dryRun: row.dry_run,
    enabled: row.enabled,
    configVersion: row.config_version,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

async function findRow(q: Queryable, idOrSlug: string, lock = false): Promise<ProviderRow> {
  const suffix = lock ? ' FOR UPDATE' : '';
  if (UUID_PATTERN.test(idOrSlug)) {
    const byId = await q.query<ProviderRow>(`SELECT ${COLUMNS} FROM providers WHERE id = $1${suffix}`, [idOrSlug]);
    if (byId.rows[0]) return byId.rows[0];
  }
  const bySlug = await q.query<ProviderRow>(`SELECT ${COLUMNS} FROM providers WHERE slug = $1${suffix}`, [idOrSlug]);
  if (!bySlug.rows[0]) throw new NotFoundError('provider', idOrSlug);
  return bySlug.rows[0];
}

function conflictOr(error: unknown, slug: string): never {
  if (typeof error === 'object' && error !== null && (error as { code?: string }).code === '23505') {
    throw new ScimflowError('ERR_CONFLICT', `slug "${slug}" is already taken`, {
      details: { field: 'slug' },
      cause: error,
    });
  }
  throw error;
}

/**
 * Refuses a scope that names a group the directory does not have (ERR_VALIDATION, an issue for each): an access
 * group nobody can be a member of leaves every user out of scope, and the next sync deprovisions them all. The groups
 * it names stay locked (FOR KEY SHARE) until the transaction ends, so a delete of one waits for this write, then
 * sees the scope that names it (see `removeGroup`).
 */
async function checkScopeGroups(client: Queryable, scope: ProviderScope): Promise<void> {
  const ids = [...new Set([...scope.accessGroups, ...(scope.groups ?? [])].map((id) => id.toLowerCase()))];
  if (ids.length === 0) return;
  const { rows } = await client.query<{ id: string }>(
    'SELECT id FROM groups WHERE id = ANY($1::uuid[]) ORDER BY id FOR KEY SHARE',
    [ids],
  );
  const known = new Set(rows.map((row) => row.id));
  const missing = ids.filter((id) => !known.has(id));
  if (missing.length === 0) return;
  const issues = (['accessGroups', 'groups'] as const).flatMap((field) =>
    (scope[field] ?? []).flatMap((id, i) =>
      known.has(id.toLowerCase()) ? [] : [{ path: `scope.${field}.${i}`, message: `no directory group ${id}` }],
    ),
  );
  throw new ValidationError(`the scope names groups the directory does not have: ${missing.join(', ')}`, issues);
}

/**
 * The slugs of the providers whose scope (as their syncs read it) names this group, as an access group or in the
 * groups filter. Called with the group locked, so a provider write naming it either committed before (and is seen
 * here) or waits for the caller's transaction (see `checkScopeGroups`).
 */
export async function providersScopingGroup(q: Queryable, groupId: string): Promise<string[]> {
  const { rows } = await q.query<{ slug: string; scope: Record<string, unknown> }>(
    'SELECT slug, scope FROM providers ORDER BY slug',
  );
  const id = groupId.toLowerCase();
  return rows
    .filter(({ scope }) => {
      const { accessGroups, groups = [] } = parseScope(scope);
      return [...accessGroups, ...groups].some((named) => named.toLowerCase() === id);
    })
    .map((row) => row.slug);
}

function originOf(url: string): string {
  return new URL(url).origin;
}

/** What an update did to the stored credential. */
export type CredentialChange = 'unchanged' | 'replaced' | 'removed' | 'cleared-origin-changed';

/** An update's outcome: the provider, the fields that really changed, and what happened to its credential. */
export interface ProviderChange {
  provider: ProviderView;
  changed: string[];
  credential: CredentialChange;
}

/** Creates a provider, sealing its token; returns it without the secret. */
export async function createProvider(q: Queryable, secrets: SecretSealer, input: ProviderInput): Promise<ProviderView> {
  checkBaseUrlScheme(input.baseUrl, input.allowInsecureHttp);
  // The id is made here, not by the database, because it is the sealed token's associated data.
  const id = randomUUID();
  const auth = sealAuth(secrets, id, input.auth);
  try {
    return await inTransaction(q, async (client) => {
      await checkScopeGroups(client, input.scope);
      const { rows } = await client.query<ProviderRow>(
        // One statement, so the provider and its built-in mappings are created atomically.
        `WITH created AS (
           INSERT INTO providers (id, slug, name, base_url, plugin, auth_mode, auth_secret, scope, options, deprovision,
                                  page_size, concurrency, full_sync_interval_minutes, deletion_limit, dry_run, enabled,
                                  auth_fingerprint, auth_options, rate_limit, adopt_by, allow_insecure_http)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13, $14, $15, $16, $17, $18::jsonb,
                   $19::jsonb, $20, $21)
           RETURNING ${COLUMNS}
         ), attached AS (
           INSERT INTO provider_mappings (provider_id, mapping_id) SELECT created.id, m.id FROM created, mappings m WHERE m.builtin
         )
         SELECT * FROM created`,
        [
          id,
          input.slug,
          input.name,
          input.baseUrl,
          input.plugin,
          auth.auth_mode,
          auth.auth_secret,
          JSON.stringify(input.scope),
          JSON.stringify(input.pluginOptions),
          input.deprovision,
          input.pageSize,
          input.concurrency,
          input.fullSyncIntervalMinutes,
          input.deletionLimit,
          input.dryRun,
          input.enabled,
          auth.auth_fingerprint,
          JSON.stringify(auth.auth_options),
          input.rateLimit === null ? null : JSON.stringify(input.rateLimit),
          input.adoptBy,
          input.allowInsecureHttp,
        ],
      );
      return toView(rows[0]!);
    });
  } catch (error) {
    conflictOr(error, input.slug);
  }
}

/** The provider with this id or slug; NotFoundError when there is none. */
export async function getProvider(q: Queryable, idOrSlug: string): Promise<ProviderView> {
  return toView(await findRow(q, idOrSlug));
}

/** Every provider, by slug. */
export async function listProviders(q: Queryable): Promise<ProviderView[]> {
  const { rows } = await q.query<ProviderRow>(`SELECT ${COLUMNS} FROM providers ORDER BY slug`);
  return rows.map(toView);
}

/**
 * Changes the fields present in `patch`. Every real change bumps `configVersion` (plugin caches key on it); a
 * patch that changes nothing, including re-sending the current token, writes nothing.
 */
export async function updateProvider(
  db: Db,
  secrets: SecretSealer,
  idOrSlug: string,
  patch: ProviderUpdate,
): Promise<ProviderView> {
  return (await changeProvider(db, secrets, idOrSlug, patch)).provider;
}

/**
 * `updateProvider`, telling what changed. A base URL moved to another origin (scheme, host or port) clears the
 * stored token unless the same patch gives one, so a token is never sent to a host it was not given for; any new
 * base URL drops the provider's links, so the next sync finds or creates every object at the new endpoint.
 */
export async function changeProvider(
  q: Queryable,
  secrets: SecretSealer,
  idOrSlug: string,
  patch: ProviderUpdate,
): Promise<ProviderChange> {
  return inTransaction(q, async (client) => {
    const row = await findRow(client, idOrSlug, true);
    checkBaseUrlScheme(patch.baseUrl ?? row.base_url, patch.allowInsecureHttp ?? row.allow_insecure_http);
    if (patch.scope !== undefined) await checkScopeGroups(client, patch.scope);
    const sets: string[] = [];
    const values: unknown[] = [];
    const changed: string[] = [];
    const set = (column: string, value: unknown, cast = ''): void => {
      values.push(value);
      sets.push(`${column} = $${values.length + 1}${cast}`);
    };
    for (const [field, column] of Object.entries(FIELD_COLUMNS)) {
      const value = patch[field as keyof typeof FIELD_COLUMNS];
      if (value === undefined) continue;
      const current = column === 'scope' ? parseScope(row.scope) : row[column];
      if (isDeepStrictEqual(current, value)) continue;
      changed.push(field);
      if (JSONB_COLUMNS.has(column)) set(column, value === null ? null : JSON.stringify(value), '::jsonb');
      else set(column, value);
    }
    const clearSecret = (): void => {
      set('auth_secret', null);
      set('auth_fingerprint', null);
    };
    let credential: CredentialChange = 'unchanged';
    if (patch.auth !== undefined && !sameAuth(secrets, row.id, row, patch.auth)) {
      const auth = sealAuth(secrets, row.id, patch.auth);
      set('auth_mode', auth.auth_mode);
      set('auth_options', JSON.stringify(auth.auth_options), '::jsonb');
      set('auth_secret', auth.auth_secret);
      set('auth_fingerprint', auth.auth_fingerprint);
      credential = patch.auth.mode === 'none' ? 'removed' : 'replaced';
    } else if (
      patch.auth === undefined &&
      row.auth_secret !== null &&
      patch.baseUrl !== undefined &&
      originOf(patch.baseUrl) !== originOf(row.base_url)
    ) {
      clearSecret();
      credential = 'cleared-origin-changed';
    }
    if (credential !== 'unchanged') {
      changed.push('auth');
      // An interactive grant belongs to the settings it was given under.
      await client.query('DELETE FROM provider_oauth_grants WHERE provider_id = $1', [row.id]);
    }
    if (sets.length === 0) return { provider: toView(row), changed, credential };
    if (changed.includes('baseUrl')) {
      // Remote ids name objects on the endpoint they came from: at a new base URL the next sync looks every object up
      // again (adopting what is there) instead of trusting links that say it is already in place.
      await client.query('DELETE FROM provider_links WHERE provider_id = $1', [row.id]);
    }
    const { rows } = await client.query<ProviderRow>(
      `UPDATE providers SET ${sets.join(', ')}, config_version = config_version + 1, updated_at = now()
        WHERE id = $1 RETURNING ${COLUMNS}`,
      [row.id, ...values],
    );
    return { provider: toView(rows[0]!), changed, credential };
  });
}

/** Deletes a provider with its links and runs; returns what was deleted. */
export async function deleteProvider(q: Queryable, idOrSlug: string): Promise<ProviderView> {
  const row = await findRow(q, idOrSlug);
  const { rows } = await q.query<ProviderRow>(`DELETE FROM providers WHERE id = $1 RETURNING ${COLUMNS}`, [row.id]);
  if (!rows[0]) throw new NotFoundError('provider', idOrSlug);
  return toView(rows[0]);
}

/** The provider with its token decrypted, for the sync activities; must never leave the worker process. */
export async function getProviderForSync(q: Queryable, secrets: SecretBox, id: string): Promise<ProviderForSync> {
  const row = await findRow(q, id);
  const { auth: _auth, createdAt: _createdAt, updatedAt: _updatedAt, ...rest } = toView(row);
  return { ...rest, auth: openAuth(secrets, row.id, row.slug, row) };
}

/** Whether provider `id` is enabled now (false once it is gone). */
export async function providerEnabled(q: Queryable, id: string): Promise<boolean> {
  const { rows } = await q.query<{ enabled: boolean }>('SELECT enabled FROM providers WHERE id = $1', [id]);
  return rows[0]?.enabled ?? false;
}
