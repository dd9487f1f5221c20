/**
 * The directory: users, groups and memberships. Every write appends its changes to `outbox` in the same
 * transaction, so the relay never misses a change and never sees one that was rolled back.
 */
import { NotFoundError, ScimflowError, ValidationError } from '../errors/index.ts';
import { claimName } from './directory-names.ts';
import { inTransaction, type Db, type Queryable } from './pool.ts';
import { providersScopingGroup } from './providers.ts';
import {
  type DirectoryGroup,
  type DirectoryUser,
  type GroupInput,
  type GroupUpdate,
  type UserInput,
  type UserUpdate,
} from './schemas.ts';

/** One page of a keyset-paged listing; `next` is the `after` cursor of the following page, null on the last. */
export interface Page<T> {
  items: T[];
  next: string | null;
}

/** Keyset paging: objects with an id greater than `after`, at most `limit` of them. */
export interface PageRequest {
  after?: string | undefined;
  /** @default 100 */
  limit?: number | undefined;
}

/** One row of the transactional outbox. */
interface OutboxEntry {
  objectType: 'user' | 'group' | 'membership';
  objectId: string;
  relatedId?: string | undefined;
  change: 'created' | 'updated' | 'deleted' | 'member_added' | 'member_removed';
}

/** A users row as selected with USER_COLUMNS. */
export interface UserRow {
  id: string;
  username: string;
  display_name: string | null;
  email: string | null;
  given_name: string | null;
  family_name: string | null;
  active: boolean;
  kind: 'internal' | 'service_account';
  attributes: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

/** A groups row as selected with GROUP_COLUMNS. */
export interface GroupRow {
  id: string;
  name: string;
  attributes: Record<string, unknown>;
  parent_id: string | null;
  created_at: Date;
  updated_at: Date;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;

/** The users columns (alias `u`) that toUser reads. */
export const USER_COLUMNS =
  'u.id, u.username, u.display_name, u.email, u.given_name, u.family_name, u.active, u.kind, u.attributes, u.created_at, u.updated_at';
/** The groups columns (alias `g`) that toGroup reads. */
export const GROUP_COLUMNS = 'g.id, g.name, g.attributes, g.parent_id, g.created_at, g.updated_at';

// Which column each updatable field lives in; jsonb columns need their parameter cast and JSON-encoded.
const USER_FIELD_COLUMNS = {
  username: 'username',
  displayName: 'display_name',
  email: 'email',
  givenName: 'given_name',
  familyName: 'family_name',
  active: 'active',
  kind: 'kind',
  attributes: 'attributes',
} as const satisfies Record<keyof UserUpdate, string>;
const GROUP_FIELD_COLUMNS = { name: 'name', attributes: 'attributes', parentId: 'parent_id' } as const satisfies Record<
  keyof GroupUpdate,
  string
>;
const JSONB_COLUMNS: ReadonlySet<string> = new Set(['attributes']);
const UNIQUE_FIELDS: Record<string, string> = { users_username_key: 'username', groups_name_key: 'name' };

/** A users row as the directory returns it. */
export function toUser(row: UserRow): DirectoryUser {
  return {
    id: row.id,
    username: row.username,
    displayName: row.display_name,
    email: row.email,
    givenName: row.given_name,
    familyName: row.family_name,
    active: row.active,
    kind: row.kind,
    attributes: row.attributes,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/** A groups row as the directory returns it. */
export function toGroup(row: GroupRow): DirectoryGroup {
  return {
    id: row.id,
    name: row.name,
    attributes: row.attributes,
    parentId: row.parent_id,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

function isUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}

function pageLimit(limit: number | undefined): number {
  const value = limit ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(value) || value < 1 || value > MAX_PAGE_SIZE) {
    throw new ValidationError('invalid page size', [
      { path: 'limit', message: `must be an integer from 1 to ${MAX_PAGE_SIZE}` },
    ]);
  }
  return value;
}

function pageCursor(after: string | undefined): string | null {
  if (after === undefined) return null;
  if (!isUuid(after))
    throw new ValidationError('invalid page cursor', [
      { path: 'after', message: 'must be an id from a previous page' },
    ]);
  return after;
}

function toPage<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const items = rows.slice(0, limit);
  return { items, next: rows.length > limit ? (items.at(-1)?.id ?? null) : null };
}

function pgCode(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as { code?: string }).code : undefined;
}

/** Turns a unique violation into ERR_CONFLICT naming the field; anything else is rethrown as it is. */
export function conflictOr(error: unknown, value: string | undefined): never {
  if (pgCode(error) === '23505') {
    const field = UNIQUE_FIELDS[(error as { constraint?: string }).constraint ?? ''] ?? 'unknown';
    throw new ScimflowError('ERR_CONFLICT', `${field} ${value === undefined ? '' : `"${value}" `}is already taken`, {
      details: { field },
      cause: error,
    });
  }
  throw error;
}

async function appendOutbox(q: Queryable, entries: readonly OutboxEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await q.query(
    `INSERT INTO outbox (object_type, object_id, related_id, change)
     SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[])`,
    [
      entries.map((e) => e.objectType),
      entries.map((e) => e.objectId),
      entries.map((e) => e.relatedId ?? null),
      entries.map((e) => e.change),
    ],
  );
}

/**
 * Builds `SET a = $2, b = $3::jsonb` and the matching `(a, b) IS DISTINCT FROM ($2, $3::jsonb)` guard for the
 * fields present in `patch`, so an update that changes nothing matches no row and writes nothing.
 */
function patchClauses(
  patch: Record<string, unknown>,
  columns: Record<string, string>,
): { set: string; changed: string; values: unknown[] } {
  const sets: string[] = [];
  const current: string[] = [];
  const next: string[] = [];
  const values: unknown[] = [];
  for (const [field, column] of Object.entries(columns)) {
    const value = patch[field];
    if (value === undefined) continue;
    const jsonb = JSONB_COLUMNS.has(column);
    values.push(jsonb ? JSON.stringify(value) : value);
    const param = `$${values.length + 1}${jsonb ? '::jsonb' : ''}`;
    sets.push(`${column} = ${param}`);
    current.push(column);
    next.push(param);
  }
  return {
    set: sets.join(', '),
    changed: `ROW(${current.join(', ')}) IS DISTINCT FROM ROW(${next.join(', ')})`,
    values,
  };
}

async function missingUsers(q: Queryable, userIds: readonly string[]): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(
    `SELECT x.id FROM unnest($1::uuid[]) AS x(id) WHERE NOT EXISTS (SELECT 1 FROM users WHERE users.id = x.id)`,
    [userIds],
  );
  return rows.map((row) => row.id);
}

function requireUuids(ids: readonly string[], kind: string): void {
  const bad = ids.find((id) => !isUuid(id));
  if (bad !== undefined) throw new NotFoundError(kind, bad);
}

/** Locks a group row for the rest of the transaction and returns its name; NotFoundError when there is none. */
export async function lockGroup(q: Queryable, groupId: string): Promise<string> {
  if (!isUuid(groupId)) throw new NotFoundError('group', groupId);
  const { rows } = await q.query<{ name: string }>('SELECT name FROM groups WHERE id = $1 FOR UPDATE', [groupId]);
  if (!rows[0]) throw new NotFoundError('group', groupId);
  return rows[0].name;
}

/** Locks a user row for the rest of the transaction and returns its username; NotFoundError when there is none. */
async function lockUser(q: Queryable, id: string): Promise<string> {
  if (!isUuid(id)) throw new NotFoundError('user', id);
  const { rows } = await q.query<{ username: string }>('SELECT username FROM users WHERE id = $1 FOR UPDATE', [id]);
  if (!rows[0]) throw new NotFoundError('user', id);
  return rows[0].username;
}

/** Adds the given users to a group locked by `lockGroup`, skipping those already in it; returns who was added. */
export async function insertMembers(q: Queryable, groupId: string, userIds: readonly string[]): Promise<string[]> {
  const unique = [...new Set(userIds)];
  if (unique.length === 0) return [];
  requireUuids(unique, 'user');
  const missing = await missingUsers(q, unique);
  if (missing[0] !== undefined) throw new NotFoundError('user', missing[0]);
  const { rows } = await q.query<{ user_id: string }>(
    `INSERT INTO group_members (group_id, user_id) SELECT $1, x.id FROM unnest($2::uuid[]) AS x(id)
     ON CONFLICT DO NOTHING RETURNING user_id`,
    [groupId, unique],
  );
  const added = rows.map((row) => row.user_id);
  await appendOutbox(
    q,
    added.map((userId) => ({ objectType: 'membership', objectId: groupId, relatedId: userId, change: 'member_added' })),
  );
  return added;
}

/** Removes the given users from a group locked by `lockGroup`; users not in it are skipped; returns who was removed. */
export async function deleteMembers(q: Queryable, groupId: string, userIds: readonly string[]): Promise<string[]> {
  const ids = [...new Set(userIds)].filter(isUuid);
  if (ids.length === 0) return [];
  const { rows } = await q.query<{ user_id: string }>(
    'DELETE FROM group_members WHERE group_id = $1 AND user_id = ANY($2::uuid[]) RETURNING user_id',
    [groupId, ids],
  );
  const removed = rows.map((row) => row.user_id);
  await appendOutbox(
    q,
    removed.map((userId) => ({
      objectType: 'membership',
      objectId: groupId,
      relatedId: userId,
      change: 'member_removed',
    })),
  );
  return removed;
}

/** Refuses a parent that does not exist or that would make the group its own ancestor. */
async function checkParent(q: Queryable, groupId: string | null, parentId: string): Promise<void> {
  if (!isUuid(parentId)) throw new NotFoundError('group', parentId);
  const { rows } = await q.query<{ id: string }>(
    `WITH RECURSIVE ancestors(id, parent_id) AS (
       SELECT id, parent_id FROM groups WHERE id = $1
       UNION SELECT g.id, g.parent_id FROM groups g JOIN ancestors a ON g.id = a.parent_id
     ) SELECT id FROM ancestors`,
    [parentId],
  );
  if (rows.length === 0) throw new NotFoundError('group', parentId);
  if (groupId !== null && rows.some((row) => row.id === groupId)) {
    throw new ValidationError('a group cannot be its own ancestor', [
      { path: 'parentId', message: 'would create a cycle of parent groups' },
    ]);
  }
}

/**
 * Creates a user inside the caller's transaction, with its outbox row; ERR_CONFLICT when another user has its username
 * in any letter case.
 */
export async function insertUser(q: Queryable, input: UserInput): Promise<DirectoryUser> {
  await claimName(q, 'user', input.username);
  const { rows } = await q.query<UserRow>(
    `INSERT INTO users AS u (username, display_name, email, given_name, family_name, active, kind, attributes)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) RETURNING ${USER_COLUMNS}`,
    [
      input.username,
      input.displayName ?? null,
      input.email ?? null,
      input.givenName ?? null,
      input.familyName ?? null,
      input.active,
      input.kind,
      JSON.stringify(input.attributes),
    ],
  );
  const user = toUser(rows[0]!);
  await appendOutbox(q, [{ objectType: 'user', objectId: user.id, change: 'created' }]);
  return user;
}

/** Creates a user. */
export async function createUser(db: Db, input: UserInput): Promise<DirectoryUser> {
  try {
    return await inTransaction(db, (client) => insertUser(client, input));
  } catch (error) {
    conflictOr(error, input.username);
  }
}

/** The user with this id; NotFoundError when there is none. */
export async function getUser(q: Queryable, id: string): Promise<DirectoryUser> {
  if (!isUuid(id)) throw new NotFoundError('user', id);
  const { rows } = await q.query<UserRow>(`SELECT ${USER_COLUMNS} FROM users u WHERE u.id = $1`, [id]);
  if (!rows[0]) throw new NotFoundError('user', id);
  return toUser(rows[0]);
}

/** Users in id order, one keyset page at a time. */
export async function listUsers(q: Queryable, page: PageRequest = {}): Promise<Page<DirectoryUser>> {
  const limit = pageLimit(page.limit);
  const { rows } = await q.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM users u WHERE ($1::uuid IS NULL OR u.id > $1) ORDER BY u.id LIMIT $2`,
    [pageCursor(page.after), limit + 1],
  );
  return toPage(rows.map(toUser), limit);
}

/**
 * `updateUser` inside the caller's transaction: a new username another user has in any letter case is ERR_CONFLICT
 * (its own, unchanged, never is); a unique violation is left to the caller (see `conflictOr`).
 */
export async function changeUser(q: Queryable, id: string, patch: UserUpdate): Promise<DirectoryUser> {
  if (!isUuid(id)) throw new NotFoundError('user', id);
  const { set, changed, values } = patchClauses(patch, USER_FIELD_COLUMNS);
  if (values.length === 0) return getUser(q, id);
  if (patch.username !== undefined && patch.username !== (await lockUser(q, id))) {
    await claimName(q, 'user', patch.username, id);
  }
  const { rows } = await q.query<UserRow>(
    `UPDATE users u SET ${set}, updated_at = now() WHERE u.id = $1 AND ${changed} RETURNING ${USER_COLUMNS}`,
    [id, ...values],
  );
  if (!rows[0]) return getUser(q, id);
  await appendOutbox(q, [{ objectType: 'user', objectId: id, change: 'updated' }]);
  return toUser(rows[0]);
}

/** Changes the fields present in `patch`; a patch that changes nothing writes nothing and keeps `updatedAt`. */
export async function updateUser(db: Db, id: string, patch: UserUpdate): Promise<DirectoryUser> {
  try {
    return await inTransaction(db, (client) => changeUser(client, id, patch));
  } catch (error) {
    conflictOr(error, patch.username);
  }
}

/** Deletes a user; its memberships go with it, each announced as `member_removed` before the user's `deleted`. */
export async function deleteUser(db: Db, id: string): Promise<void> {
  await inTransaction(db, (client) => removeUser(client, id));
}

/** `deleteUser` inside the caller's transaction. */
export async function removeUser(client: Queryable, id: string): Promise<void> {
  await lockUser(client, id);
  const removed = await client.query<{ group_id: string }>(
    'DELETE FROM group_members WHERE user_id = $1 RETURNING group_id',
    [id],
  );
  await client.query('DELETE FROM users WHERE id = $1', [id]);
  await appendOutbox(client, [
    ...removed.rows.map((row): OutboxEntry => ({
      objectType: 'membership',
      objectId: row.group_id,
      relatedId: id,
      change: 'member_removed',
    })),
    { objectType: 'user', objectId: id, change: 'deleted' },
  ]);
}

/** `createGroup` inside the caller's transaction; ERR_CONFLICT when another group has its name in any letter case. */
export async function insertGroup(q: Queryable, input: GroupInput): Promise<DirectoryGroup> {
  await claimName(q, 'group', input.name);
  if (input.parentId != null) await checkParent(q, null, input.parentId);
  const { rows } = await q.query<GroupRow>(
    `INSERT INTO groups AS g (name, attributes, parent_id) VALUES ($1, $2::jsonb, $3) RETURNING ${GROUP_COLUMNS}`,
    [input.name, JSON.stringify(input.attributes), input.parentId ?? null],
  );
  const group = toGroup(rows[0]!);
  await appendOutbox(q, [{ objectType: 'group', objectId: group.id, change: 'created' }]);
  await insertMembers(q, group.id, input.members ?? []);
  return group;
}

/** Creates a group, with its initial members when `input.members` lists user ids. */
export async function createGroup(db: Db, input: GroupInput): Promise<DirectoryGroup> {
  try {
    return await inTransaction(db, (client) => insertGroup(client, input));
  } catch (error) {
    conflictOr(error, input.name);
  }
}

/** The group with this id; NotFoundError when there is none. */
export async function getGroup(q: Queryable, id: string): Promise<DirectoryGroup> {
  if (!isUuid(id)) throw new NotFoundError('group', id);
  const { rows } = await q.query<GroupRow>(`SELECT ${GROUP_COLUMNS} FROM groups g WHERE g.id = $1`, [id]);
  if (!rows[0]) throw new NotFoundError('group', id);
  return toGroup(rows[0]);
}

/** Groups in id order, one keyset page at a time. */
export async function listGroups(q: Queryable, page: PageRequest = {}): Promise<Page<DirectoryGroup>> {
  const limit = pageLimit(page.limit);
  const { rows } = await q.query<GroupRow>(
    `SELECT ${GROUP_COLUMNS} FROM groups g WHERE ($1::uuid IS NULL OR g.id > $1) ORDER BY g.id LIMIT $2`,
    [pageCursor(page.after), limit + 1],
  );
  return toPage(rows.map(toGroup), limit);
}

/**
 * `updateGroup` inside the caller's transaction: a new name another group has in any letter case is ERR_CONFLICT (its
 * own, unchanged, never is); a unique violation is left to the caller (see `conflictOr`).
 */
export async function changeGroup(q: Queryable, id: string, patch: GroupUpdate): Promise<DirectoryGroup> {
  if (!isUuid(id)) throw new NotFoundError('group', id);
  const { set, changed, values } = patchClauses(patch, GROUP_FIELD_COLUMNS);
  if (values.length === 0) return getGroup(q, id);
  const name = await lockGroup(q, id);
  if (patch.name !== undefined && patch.name !== name) await claimName(q, 'group', patch.name, id);
  if (patch.parentId != null) await checkParent(q, id, patch.parentId);
  const { rows } = await q.query<GroupRow>(
    `UPDATE groups g SET ${set}, updated_at = now() WHERE g.id = $1 AND ${changed} RETURNING ${GROUP_COLUMNS}`,
    [id, ...values],
  );
  if (!rows[0]) return getGroup(q, id);
  await appendOutbox(q, [{ objectType: 'group', objectId: id, change: 'updated' }]);
  return toGroup(rows[0]);
}

/** Changes the fields present in `patch`; a patch that changes nothing writes nothing and keeps `updatedAt`. */
export async function updateGroup(db: Db, id: string, patch: GroupUpdate): Promise<DirectoryGroup> {
  try {
    return await inTransaction(db, (client) => changeGroup(client, id, patch));
  } catch (error) {
    conflictOr(error, patch.name);
  }
}

/**
 * Deletes a group; each of its memberships is announced as removed, and its child groups lose their parent, each
 * announced as `updated`. A group a provider's scope names is refused with ERR_CONFLICT naming those providers: its
 * deletion would take every member out of that provider's scope (or every group out of its filter) and deprovision
 * them. Take it out of their scope first.
 */
export async function deleteGroup(db: Db, id: string): Promise<void> {
  await inTransaction(db, (client) => removeGroup(client, id));
}

/** `deleteGroup` inside the caller's transaction. */
export async function removeGroup(client: Queryable, id: string): Promise<void> {
  await lockGroup(client, id);
  const providers = await providersScopingGroup(client, id);
  if (providers.length > 0) {
    const [which, its] = providers.length === 1 ? ['provider', 'its'] : ['providers', 'their'];
    const names = providers.map((slug) => `"${slug}"`).join(', ');
    throw new ScimflowError(
      'ERR_CONFLICT',
      `group ${id} is in the scope of ${which} ${names}; take it out of ${its} scope before deleting it`,
      { details: { providers } },
    );
  }
  // Done here rather than by the foreign key's SET NULL so the children's updated_at and outbox rows stay right.
  const orphans = await client.query<{ id: string }>(
    'UPDATE groups SET parent_id = NULL, updated_at = now() WHERE parent_id = $1 RETURNING id',
    [id],
  );
  const members = await client.query<{ user_id: string }>(
    'DELETE FROM group_members WHERE group_id = $1 RETURNING user_id',
    [id],
  );
  await client.query('DELETE FROM groups WHERE id = $1', [id]);
  await appendOutbox(client, [
    ...orphans.rows.map((row): OutboxEntry => ({ objectType: 'group', objectId: row.id, change: 'updated' })),
    ...members.rows.map((row): OutboxEntry => ({
      objectType: 'membership',
      objectId: id,
      relatedId: row.user_id,
      change: 'member_removed',
    })),
    { objectType: 'group', objectId: id, change: 'deleted' },
  ]);
}

/** The members of a group in user id order, one keyset page at a time. */
export async function listMembers(q: Queryable, groupId: string, page: PageRequest = {}): Promise<Page<DirectoryUser>> {
  const limit = pageLimit(page.limit);
  const after = pageCursor(page.after);
  await getGroup(q, groupId);
  const { rows } = await q.query<UserRow>(
    `SELECT ${USER_COLUMNS} FROM group_members gm JOIN users u ON u.id = gm.user_id
      WHERE gm.group_id = $1 AND ($2::uuid IS NULL OR u.id > $2) ORDER BY u.id LIMIT $3`,
    [groupId, after, limit + 1],
  );
  return toPage(rows.map(toUser), limit);
}

/** Adds users to a group; users already in it are skipped (no outbox row), so repeating the call is harmless. */
export async function addMembers(db: Db, groupId: string, userIds: readonly string[]): Promise<{ added: string[] }> {
  return inTransaction(db, async (client) => {
    await lockGroup(client, groupId);
    return { added: await insertMembers(client, groupId, userIds) };
  });
}

/** Removes a user from a group; NotFoundError when the group does not exist or the user is not in it. */
export async function removeMember(db: Db, groupId: string, userId: string): Promise<void> {
  await inTransaction(db, async (client) => {
    await lockGroup(client, groupId);
    const { rowCount } = isUuid(userId)
      ? await client.query('DELETE FROM group_members WHERE group_id = $1 AND user_id = $2', [groupId, userId])
      : { rowCount: 0 };
    if (rowCount === 0) throw new NotFoundError('member', userId);
    await appendOutbox(client, [
      { objectType: 'membership', objectId: groupId, relatedId: userId, change: 'member_removed' },
    ]);
  });
}
