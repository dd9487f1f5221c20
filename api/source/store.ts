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
export interface Versioned<T, R = never> {
  object: T;
  version: string;
  /** The related resources `source` sees (a user's groups, a group's members), when they were asked for. */
  related?: R;
}

/** A group a user is a direct member of, as a user resource shows it. */
export interface GroupRef {
  id: string;
  name: string;
}

/** A member of a group, as a group resource shows it. */
export interface MemberRef {
  id: string;
  username: string;
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

/** FROM/WHERE of the objects `source` may see, the objects aliased `alias` and their ownership rows `own`; `$1` is the source id. */
function scope(
  target: FilterTarget,
  source: SourceView,
  alias = target === 'user' ? 'u' : 'g',
  own = 'o',
): { from: string; where: string } {
  const [table, ownTable, key] =
    target === 'user' ? ['users', 'scim_source_users', 'user_id'] : ['groups', 'scim_source_groups', 'group_id'];
  const live = target === 'user' ? ` AND ${own}.deleted_at IS NULL` : '';
  if (!source.claim) {
    return {
      from: `${table} ${alias} JOIN ${ownTable} ${own} ON ${own}.${key} = ${alias}.id AND ${own}.source_id = $1${live}`,
      where: 'true',
    };
  }
  const unowned = target === 'user' ? `${own}.${key} IS NULL AND ${alias}.kind = 'internal'` : `${own}.${key} IS NULL`;
  return {
    from: `${table} ${alias} LEFT JOIN ${ownTable} ${own} ON ${own}.${key} = ${alias}.id`,
    where: `((${own}.source_id = $1${live}) OR (${unowned}))`,
  };
}

/**
 * A select-list item `related`: the groups of user `u` (target user), or the members of group `g` (target group),
 * that `source` sees, as a JSON array in name order. Read in the same statement as the objects themselves.
 */
function relatedColumn(target: FilterTarget, source: SourceView): string {
  if (target === 'user') {
    const { from, where } = scope('group', source, 'rg', 'ro');
    return `(SELECT coalesce(json_agg(json_build_object('id', rg.id, 'name', rg.name) ORDER BY rg.name), '[]'::json)
      FROM group_members rm JOIN (${from}) ON rg.id = rm.group_id WHERE rm.user_id = u.id AND ${where}) AS related`;
  }
  const { from, where } = scope('user', source, 'ru', 'ro');
  return `(SELECT coalesce(json_agg(json_build_object('id', ru.id, 'username', ru.username) ORDER BY ru.username), '[]'::json)
    FROM group_members rm JOIN (${from}) ON ru.id = rm.user_id WHERE rm.group_id = g.id AND ${where}) AS related`;
}

type Row<R> = { version: string; related?: R };

function versioned<Raw extends Row<R>, T, R>(row: Raw, toObject: (row: Raw) => T): Versioned<T, R> {
  return {
    object: toObject(row),
    version: row.version,
    ...(row.related === undefined ? {} : { related: row.related }),
  };
}

/**
 * One page and the total. A page that is neither full nor past the end tells the total by itself (the usual
 * `userName eq` lookup is then one statement); otherwise the total is counted.
 */
async function list<Raw extends Row<R>, T, R>(
  q: Queryable,
  target: FilterTarget,
  source: SourceView,
  request: ListRequest,
  withRelated: boolean,
  toObject: (row: Raw) => T,
): Promise<{ total: number; items: Versioned<T, R>[] }> {
  const alias = target === 'user' ? 'u' : 'g';
  const params: SqlParams = { values: [source.id] };
  const { from, where } = scope(target, source);
  const condition = request.filter
    ? filterToSql(request.filter, target === 'user' ? USER_RESOURCE : GROUP_RESOURCE, target, params)
    : 'true';
  const order = request.sort
    ? `${request.sort.sql} ${request.sort.descending ? 'DESC' : 'ASC'} NULLS LAST, ${alias}.id`
    : `${alias}.created_at, ${alias}.id`;
  const columns = target === 'user' ? USER_COLUMNS : GROUP_COLUMNS;
  const related = withRelated ? `, ${relatedColumn(target, source)}` : '';
  const rows =
    request.limit === 0
      ? []
      : (
          await q.query<Raw>(
            `SELECT ${columns}, ${VERSION(alias)}${related} FROM ${from} WHERE ${where} AND ${condition}
             ORDER BY ${order} LIMIT ${request.limit} OFFSET ${request.offset}`,
            params.values,
          )
        ).rows;
  const told = rows.length > 0 ? rows.length < request.limit : request.offset === 0 && request.limit > 0;
  const total = told
    ? request.offset + rows.length
    : ((
        await q.query<{ total: number }>(
          `SELECT count(*)::int AS total FROM ${from} WHERE ${where} AND ${condition}`,
          params.values,
        )
      ).rows[0]?.total ?? 0);
  return { total, items: rows.map((row) => versioned(row, toObject)) };
}

/** A page of the users `source` sees, with their groups when `withRelated`. */
export function listSourceUsers(q: Queryable, source: SourceView, request: ListRequest, withRelated = false) {
  return list<UserRow & Row<GroupRef[]>, DirectoryUser, GroupRef[]>(q, 'user', source, request, withRelated, toUser);
}

/** A page of the groups `source` sees, with their members when `withRelated`. */
export function listSourceGroups(q: Queryable, source: SourceView, request: ListRequest, withRelated = false) {
  return list<GroupRow & Row<MemberRef[]>, DirectoryGroup, MemberRef[]>(
    q,
    'group',
    source,
    request,
    withRelated,
    toGroup,
  );
}

/** How one object is read: locked for this transaction's update, or with its related resources. */
export type LoadOptions = { lock?: boolean; related?: false } | { lock?: false; related: boolean };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function getOne<Raw extends Row<R>, T, R>(
  q: Queryable,
  target: FilterTarget,
  source: SourceView,
  id: string,
  options: LoadOptions,
  toObject: (row: Raw) => T,
): Promise<Versioned<T, R> | null> {
  if (!UUID.test(id)) return null;
  const alias = target === 'user' ? 'u' : 'g';
  const { from, where } = scope(target, source);
  const related = options.related ? `, ${relatedColumn(target, source)}` : '';
  const { rows } = await q.query<Raw>(
    `SELECT ${target === 'user' ? USER_COLUMNS : GROUP_COLUMNS}, ${VERSION(alias)}${related} FROM ${from}
     WHERE ${where} AND ${alias}.id = $2${options.lock ? ` FOR UPDATE OF ${alias}` : ''}`,
    [source.id, id],
  );
  return rows[0] ? versioned(rows[0], toObject) : null;
}

/** The user `id` if `source` sees it, else null. */
export function getSourceUser(q: Queryable, source: SourceView, id: string, options: LoadOptions = {}) {
  return getOne<UserRow & Row<GroupRef[]>, DirectoryUser, GroupRef[]>(q, 'user', source, id, options, toUser);
}

/** The group `id` if `source` sees it, else null. */
export function getSourceGroup(q: Queryable, source: SourceView, id: string, options: LoadOptions = {}) {
  return getOne<GroupRow & Row<MemberRef[]>, DirectoryGroup, MemberRef[]>(q, 'group', source, id, options, toGroup);
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

/** The members of group `groupId` that `source` sees, in userName order. */
export async function sourceGroupMembers(q: Queryable, source: SourceView, groupId: string): Promise<MemberRef[]> {
  const { from, where } = scope('user', source);
  const { rows } = await q.query<MemberRef>(
    `SELECT u.id, u.username FROM group_members gm JOIN (${from}) ON u.id = gm.user_id
     WHERE gm.group_id = $2 AND ${where} ORDER BY u.username`,
    [source.id, groupId],
  );
  return rows;
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

/** Moves a group's version on: its members changed, which its own row does not show. Returns the new version. */
export async function touchGroup(q: Queryable, id: string): Promise<string> {
  const { rows } = await q.query<{ version: string }>(
    `UPDATE groups g SET updated_at = now() WHERE g.id = $1 RETURNING ${VERSION('g')}`,
    [id],
  );
  return rows[0]!.version;
}
