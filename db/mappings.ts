/** Mappings (sandboxed JavaScript function bodies) and which providers use them. */
import * as z from 'zod';
import { NotFoundError, ScimflowError } from '../errors/index.ts';
import { inTransaction, type Queryable } from './pool.ts';

/** A mapping as the API accepts it on create. */
export const MappingInputSchema = z.strictObject({
  name: z.string().min(1).max(128),
  objectType: z.enum(['user', 'group']),
  expression: z.string().min(1).max(65536),
});
export type MappingInput = z.infer<typeof MappingInputSchema>;

/** A mapping update: absent fields stay as they are; the object type never changes. */
export const MappingUpdateSchema = MappingInputSchema.omit({ objectType: true }).partial();
export type MappingUpdate = z.infer<typeof MappingUpdateSchema>;

/** A stored mapping. */
export interface MappingView {
  id: string;
  name: string;
  objectType: 'user' | 'group';
  expression: string;
  version: number;
  builtin: boolean;
  createdAt: string;
  updatedAt: string;
}

/** One mapping as a provider's sync runs it. */
export interface ProviderMapping {
  id: string;
  name: string;
  expression: string;
  version: number;
}

interface MappingRow {
  id: string;
  name: string;
  object_type: 'user' | 'group';
  expression: string;
  version: number;
  builtin: boolean;
  created_at: Date;
  updated_at: Date;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COLUMNS = 'id, name, object_type, expression, version, builtin, created_at, updated_at';

function toView(row: MappingRow): MappingView {
  return {
    id: row.id,
    name: row.name,
    objectType: row.object_type,
    expression: row.expression,
    version: row.version,
    builtin: row.builtin,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function conflictOr(error: unknown, name: string | undefined): never {
  if (typeof error === 'object' && error !== null && (error as { code?: string }).code === '23505') {
    throw new ScimflowError('ERR_CONFLICT', `mapping name "${name ?? ''}" is already taken`, {
      details: { field: 'name' },
      cause: error,
    });
  }
  throw error;
}

/** Creates a mapping (the caller has compiled it). */
export async function createMapping(q: Queryable, input: MappingInput): Promise<MappingView> {
  try {
    const { rows } = await q.query<MappingRow>(
      `INSERT INTO mappings (name, object_type, expression) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
      [input.name, input.objectType, input.expression],
    );
    return toView(rows[0]!);
  } catch (error) {
    conflictOr(error, input.name);
  }
}

/** The mapping with this id or name; NotFoundError when there is none. */
export async function getMapping(q: Queryable, idOrName: string): Promise<MappingView> {
  if (UUID_PATTERN.test(idOrName)) {
    const byId = await q.query<MappingRow>(`SELECT ${COLUMNS} FROM mappings WHERE id = $1`, [idOrName]);
    if (byId.rows[0]) return toView(byId.rows[0]);
  }
  const byName = await q.query<MappingRow>(`SELECT ${COLUMNS} FROM mappings WHERE name = $1`, [idOrName]);
  if (!byName.rows[0]) throw new NotFoundError('mapping', idOrName);
  return toView(byName.rows[0]);
}

/** Every mapping by name, optionally of one object type. */
export async function listMappings(
  q: Queryable,
  filter: { objectType?: 'user' | 'group' | undefined } = {},
): Promise<MappingView[]> {
  const { rows } = await q.query<MappingRow>(
    `SELECT ${COLUMNS} FROM mappings WHERE ($1::text IS NULL OR object_type = $1) ORDER BY name`,
    [filter.objectType ?? null],
  );
  return rows.map(toView);
}

/** Changes a mapping's name or expression; a real change bumps its version (and so its providers' set version). */
export async function updateMapping(q: Queryable, idOrName: string, patch: MappingUpdate): Promise<MappingView> {
  const before = await getMapping(q, idOrName);
  const name = patch.name ?? before.name;
  const expression = patch.expression ?? before.expression;
  if (name === before.name && expression === before.expression) return before;
  try {
    const { rows } = await q.query<MappingRow>(
      `UPDATE mappings SET name = $2, expression = $3, version = version + 1, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`,
      [before.id, name, expression],
    );
    if (!rows[0]) throw new NotFoundError('mapping', idOrName);
    return toView(rows[0]);
  } catch (error) {
    conflictOr(error, name);
  }
}

/**
 * Deletes a mapping; providers that used it stop using it. A built-in one is refused (ERR_CONFLICT): every new
 * provider is given the built-ins, nothing puts one back, and a provider without them sends nothing.
 */
export async function deleteMapping(q: Queryable, idOrName: string): Promise<MappingView> {
  const mapping = await getMapping(q, idOrName);
  if (mapping.builtin) {
    throw new ScimflowError(
      'ERR_CONFLICT',
      `mapping "${mapping.name}" is built in and cannot be deleted; edit it, or take it out of a provider's set`,
      { details: { field: 'builtin' } },
    );
  }
  await q.query('DELETE FROM mappings WHERE id = $1', [mapping.id]);
  return mapping;
}

/** Attaches mappings to a provider (already attached ones stay). */
export async function attachMappings(q: Queryable, providerId: string, mappingIds: readonly string[]): Promise<void> {
  await q.query(
    `INSERT INTO provider_mappings (provider_id, mapping_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`,
    [providerId, mappingIds],
  );
}

/** Detaches mappings from a provider. */
export async function detachMappings(q: Queryable, providerId: string, mappingIds: readonly string[]): Promise<void> {
  await q.query('DELETE FROM provider_mappings WHERE provider_id = $1 AND mapping_id = ANY($2::uuid[])', [
    providerId,
    mappingIds,
  ]);
}

/** Replaces a provider's whole mapping set in one transaction; NotFoundError names an unknown mapping id. */
export async function setProviderMappings(
  q: Queryable,
  providerId: string,
  mappingIds: readonly string[],
): Promise<MappingView[]> {
  return inTransaction(q, async (client) => {
    const ids = [...new Set(mappingIds)];
    const { rows } = await client.query<{ id: string }>('SELECT id FROM mappings WHERE id = ANY($1::uuid[])', [ids]);
    const known = new Set(rows.map((r) => r.id));
    const missing = ids.find((id) => !known.has(id));
    if (missing) throw new NotFoundError('mapping', missing);
    await client.query('DELETE FROM provider_mappings WHERE provider_id = $1 AND NOT (mapping_id = ANY($2::uuid[]))', [
      providerId,
      ids,
    ]);
    await attachMappings(client, providerId, ids);
    return listProviderMappings(client, providerId);
  });
}

/** The mappings a provider uses, by name. */
export async function listProviderMappings(q: Queryable, providerId: string): Promise<MappingView[]> {
  const { rows } = await q.query<MappingRow>(
    `SELECT ${COLUMNS.split(', ')
      .map((c) => `m.${c}`)
      .join(', ')}
       FROM mappings m JOIN provider_mappings pm ON pm.mapping_id = m.id WHERE pm.provider_id = $1 ORDER BY m.name`,
    [providerId],
  );
  return rows.map(toView);
}

/** A provider's user and group mappings as the sync runs them, each list in name order. */
export async function loadProviderMappings(
  q: Queryable,
  providerId: string,
): Promise<{ user: ProviderMapping[]; group: ProviderMapping[] }> {
  const all = await listProviderMappings(q, providerId);
  const pick = (type: 'user' | 'group') =>
    all
      .filter((m) => m.objectType === type)
      .map(({ id, name, expression, version }) => ({ id, name, expression, version }));
  return { user: pick('user'), group: pick('group') };
}

/** The providers that use a mapping. */
export async function providersUsingMapping(q: Queryable, mappingId: string): Promise<string[]> {
  const { rows } = await q.query<{ provider_id: string }>(
    'SELECT provider_id FROM provider_mappings WHERE mapping_id = $1',
    [mappingId],
  );
  return rows.map((r) => r.provider_id);
}

/**
 * Forgets the last sent payload hash of every link of these providers, so the next full sync re-sends each of
 * their objects. Not needed after a mapping change (every full sync re-maps every object and sends what differs);
 * kept for forcing a full re-send.
 */
export async function invalidateProviderLinks(q: Queryable, providerIds: readonly string[]): Promise<number> {
  if (providerIds.length === 0) return 0;
  const result = await q.query(
    'UPDATE provider_links SET last_payload_hash = NULL, input_hash = NULL WHERE provider_id = ANY($1::uuid[])',
    [providerIds],
  );
  return result.rowCount ?? 0;
}

/** A provider's partial sandbox limits (`providers.mapping_limits`). */
export async function loadMappingLimits(q: Queryable, providerId: string): Promise<Record<string, unknown>> {
  const { rows } = await q.query<{ mapping_limits: Record<string, unknown> }>(
    'SELECT mapping_limits FROM providers WHERE id = $1',
    [providerId],
  );
  if (!rows[0]) throw new NotFoundError('provider', providerId);
  return rows[0].mapping_limits;
}
