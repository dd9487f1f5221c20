/**
 * What one source sees of the directory, in SQL. A source sees the users and groups it owns (it created them, or
 * claimed them); with `claim` on it also sees internal users and groups no source owns. Reads page with the
 * source's filter translated to SQL; writes go through the directory's own in-transaction functions.
 */
import {
  GROUP_COLUMNS,
  toGroup,
  toUser,
  USER_COLUMNS,
  type DirectoryGroup,
  type DirectoryUser,
  type GroupRow,
  type Queryable,
  type SourceView,
  type UserRow,
} from '../../db/index.ts';
import type { Filter } from '../../scim/path.ts';
import { GROUP_RESOURCE, USER_RESOURCE } from '../../scim/resource-schema.ts';
import { filterToSql, type FilterTarget, type SqlParams } from './filter-sql.ts';

/** A directory object with its version (microseconds of its last change), the source of its ETag. */
export interface Versioned<T> {
  object: T;
  version: string;
}

/** One page of a filtered, sorted listing. */
export interface ListRequest {
  filter: Filter | undefined;
  /** SQL expression to sort by (from sortExpression) and direction; by creation otherwise. */
  sort: { sql: string; descending: boolean } | undefined;
  /** 0-based offset (SCIM startIndex - 1). */
  offset: number;
  limit: number;
}

const VERSION = (alias: string) => `(extract(epoch FROM ${alias}.updated_at) * 1000000)::bigint::text AS version`;
// Serialises writes that check a case-insensitive name before taking it (two creates of "Bob" and "bob").
const NAME_LOCK_NAMESPACE = 15_001; // int4: the two-key form of pg_advisory_xact_lock

/** FROM/WHERE of the objects `source` may see; `$1` is the source id. */
function scope(target: FilterTarget, source: SourceView): { from: string; where: string } {
  const [table, alias, own, key] =
    target === 'user'
      ? ['users', 'u', 'scim_source_users', 'user_id']
      : ['groups', 'g', 'scim_source_groups', 'group_id'];
  const live = target === 'user' ? ' AND o.deleted_at IS NULL' : '';
  if (!source.claim) {
    return {
      from: `${table} ${alias} JOIN ${own} o ON o.${key} = ${alias}.id AND o.source_id = $1${live}`,
      where: 'true',
    };
  }
  const unowned = target === 'user' ? `o.${key} IS NULL AND ${alias}.kind = 'internal'` : `o.${key} IS NULL`;
  return {
    from: `${table} ${alias} LEFT JOIN ${own} o ON o.${key} = ${alias}.id`,
    where: `((o.source_id = $1${live}) OR (${unowned}))`,
  };
}

async function list<Row extends { version: string }, T>(
  q: Queryable,
  target: FilterTarget,
  source: SourceView,
  request: ListRequest,
  toObject: (row: Row) => T,
): Promise<{ total: number; items: Versioned<T>[] }> {
  const alias = target === 'user' ? 'u' : 'g';
  const params: SqlParams = { values: [source.id] };
  const { from, where } = scope(target, source);
  const condition = request.filter
    ? filterToSql(request.filter, target === 'user' ? USER_RESOURCE : GROUP_RESOURCE, target, params)
    : 'true';
  const counted = await q.query<{ total: number }>(
    `SELECT count(*)::int AS total FROM ${from} WHERE ${where} AND ${condition}`,
    params.values,
  );
  const total = counted.rows[0]?.total ?? 0;
  if (request.limit === 0 || request.offset >= total) return { total, items: [] };
  const order = request.sort
    ? `${request.sort.sql} ${request.sort.descending ? 'DESC' : 'ASC'} NULLS LAST, ${alias}.id`
    : `${alias}.created_at, ${alias}.id`;
  const columns = target === 'user' ? USER_COLUMNS : GROUP_COLUMNS;
  const { rows } = await q.query<Row>(
    `SELECT ${columns}, ${VERSION(alias)} FROM ${from} WHERE ${where} AND ${condition}
     ORDER BY ${order} LIMIT ${request.limit} OFFSET ${request.offset}`,
    params.values,
  );
  return { total, items: rows.map((row) => ({ object: toObject(row), version: row.version })) };
}

/** A page of the users `source` sees. */
export function listSourceUsers(q: Queryable, source: SourceView, request: ListRequest) {
  return list<UserRow & { version: string }, DirectoryUser>(q, 'user', source, request, toUser);
}

/** A page of the groups `source` sees. */
export function listSourceGroups(q: Queryable, source: SourceView, request: ListRequest) {
  return list<GroupRow & { version: string }, DirectoryGroup>(q, 'group', source, request, toGroup);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The user `id` if `source` sees it (locked for update when `lock`), else null. */
export async function getSourceUser(
  q: Queryable,
  source: SourceView,
  id: string,
  lock = false,
): Promise<Versioned<DirectoryUser> | null> {
  if (!UUID.test(id)) return null;
  const { from, where } = scope('user', source);
  const { rows } = await q.query<UserRow & { version: string }>(
    `SELECT ${USER_COLUMNS}, ${VERSION('u')} FROM ${from} WHERE ${where} AND u.id = $2${lock ? ' FOR UPDATE OF u' : ''}`,
    [source.id, id],
  );
  return rows[0] ? { object: toUser(rows[0]), version: rows[0].version } : null;
}

/** The group `id` if `source` sees it (locked for update when `lock`), else null. */
export async function getSourceGroup(
  q: Queryable,
  source: SourceView,
  id: string,
  lock = false,
): Promise<Versioned<DirectoryGroup> | null> {
  if (!UUID.test(id)) return null;
  const { from, where } = scope('group', source);
  const { rows } = await q.query<GroupRow & { version: string }>(
    `SELECT ${GROUP_COLUMNS}, ${VERSION('g')} FROM ${from} WHERE ${where} AND g.id = $2${lock ? ' FOR UPDATE OF g' : ''}`,
    [source.id, id],
  );
  return rows[0] ? { object: toGroup(rows[0]), version: rows[0].version } : null;
}

/** Of `ids`, those naming users `source` sees. */
export async function visibleUserIds(q: Queryable, source: SourceView, ids: readonly string[]): Promise<Set<string>> {
  const valid = ids.filter((id) => UUID.test(id));
  if (valid.length === 0) return new Set();
  const { from, where } = scope('user', source);
  const { rows } = await q.query<{ id: string }>(`SELECT u.id FROM ${from} WHERE ${where} AND u.id = ANY($2::uuid[])`, [
    source.id,
    valid,
  ]);
  return new Set(rows.map((row) => row.id));
}

/** The members of each group that `source` sees (id and userName), in userName order. */
export async function sourceGroupMembers(
  q: Queryable,
  source: SourceView,
  groupIds: readonly string[],
): Promise<Map<string, Array<{ id: string; username: string }>>> {
  const result = new Map(groupIds.map((id) => [id, [] as Array<{ id: string; username: string }>]));
  if (groupIds.length === 0) return result;
  const { from, where } = scope('user', source);
  const { rows } = await q.query<{ group_id: string; id: string; username: string }>(
    `SELECT gm.group_id, u.id, u.username FROM group_members gm JOIN (SELECT u.id, u.username FROM ${from} WHERE ${where}) u
       ON u.id = gm.user_id WHERE gm.group_id = ANY($2::uuid[]) ORDER BY u.username`,
    [source.id, groupIds],
  );
  for (const row of rows) result.get(row.group_id)?.push({ id: row.id, username: row.username });
  return result;
}

/** The groups `source` sees that each user is a direct member of (id and displayName). */
export async function sourceUserGroups(
  q: Queryable,
  source: SourceView,
  userIds: readonly string[],
): Promise<Map<string, Array<{ id: string; name: string }>>> {
  const result = new Map(userIds.map((id) => [id, [] as Array<{ id: string; name: string }>]));
  if (userIds.length === 0) return result;
  const { from, where } = scope('group', source);
  const { rows } = await q.query<{ user_id: string; id: string; name: string }>(
    `SELECT gm.user_id, g.id, g.name FROM group_members gm JOIN (SELECT g.id, g.name FROM ${from} WHERE ${where}) g
       ON g.id = gm.group_id WHERE gm.user_id = ANY($2::uuid[]) ORDER BY g.name`,
    [source.id, userIds],
  );
  for (const row of rows) result.get(row.user_id)?.push({ id: row.id, name: row.name });
  return result;
}

/**
 * Whether a user other than `exceptId` has `username` in any letter case (the whole directory: userName is unique
 * across sources). Takes a transaction-scoped lock on the lower-cased name first, so two concurrent writes of the
 * same name are serialised and the second one sees the first.
 */
export async function usernameTaken(q: Queryable, username: string, exceptId?: string): Promise<boolean> {
  await q.query('SELECT pg_advisory_xact_lock($1, hashtext(lower($2)))', [NAME_LOCK_NAMESPACE, username]);
  const { rowCount } = await q.query(
    'SELECT 1 FROM users WHERE lower(username) = lower($1) AND ($2::uuid IS NULL OR id <> $2) LIMIT 1',
    [username, exceptId ?? null],
  );
  return (rowCount ?? 0) > 0;
}

/** `usernameTaken` for group displayNames. */
export async function groupNameTaken(q: Queryable, name: string, exceptId?: string): Promise<boolean> {
  await q.query('SELECT pg_advisory_xact_lock($1, hashtext(lower($2)))', [NAME_LOCK_NAMESPACE + 1, name]);
  const { rowCount } = await q.query(
    'SELECT 1 FROM groups WHERE lower(name) = lower($1) AND ($2::uuid IS NULL OR id <> $2) LIMIT 1',
    [name, exceptId ?? null],
  );
  return (rowCount ?? 0) > 0;
}

/** Records that `source` owns the object (a no-op when it already does: the first owner keeps it). */
export async function takeOwnership(q: Queryable, source: SourceView, target: FilterTarget, id: string) {
  const [table, key] = target === 'user' ? ['scim_source_users', 'user_id'] : ['scim_source_groups', 'group_id'];
  await q.query(`INSERT INTO ${table} (${key}, source_id) VALUES ($1, $2) ON CONFLICT (${key}) DO NOTHING`, [
    id,
    source.id,
  ]);
}

/** Hides a user from `source` for good after a DELETE under the deactivate policy (it stays owned by it). */
export async function markUserDeleted(q: Queryable, source: SourceView, id: string): Promise<void> {
  await q.query(
    `INSERT INTO scim_source_users (user_id, source_id, deleted_at) VALUES ($1, $2, now())
     ON CONFLICT (user_id) DO UPDATE SET deleted_at = now()`,
    [id, source.id],
  );
}

/** Moves a group's version on: its members changed, which its own row does not show. */
export async function touchGroup(q: Queryable, id: string): Promise<void> {
  await q.query('UPDATE groups SET updated_at = now() WHERE id = $1', [id]);
}
