/**
 * Usernames and group names are unique in any letter case across the whole directory (SCIM's userName and a group's
 * displayName are caseExact false, and a target refuses a second user whose userName differs only in case). The
 * tables' unique constraints are exact: a database may hold case variants written before this rule, and they stay (each
 * can still be changed, keeping its name). So every write that gives a user or a group a name checks it here, in its
 * transaction, under advisory locks that make the check and the write one step for concurrent writers: a write of one
 * name (a create, a rename) locks that name, lower-cased (`claimName`). Rows are locked before names: a rename locks
 * its row first, so that no transaction holding a name lock waits for a row that another one, waiting for that name,
 * holds.
 */
import { ScimflowError } from '../errors/index.ts';
import type { Queryable } from './pool.ts';

/** What a name names. */
export type NamedKind = 'user' | 'group';

// Each kind's table and name column (which is also the field the API calls it), and the first key of its name locks
// (int4: the two-key form of pg_advisory_xact_lock).
const NAMES = {
  user: { table: 'users', column: 'username', lock: 15_001 },
  group: { table: 'groups', column: 'name', lock: 15_002 },
} as const;

/**
 * Refuses `name` for a `kind` when another one (not `ownId`) has it in any letter case: ERR_CONFLICT naming the field.
 * The name stays locked until the transaction ends, so a concurrent write of it in any letter case waits, then sees
 * this one. A rename calls it after locking its row, and only when the name changes.
 */
export async function claimName(q: Queryable, kind: NamedKind, name: string, ownId?: string): Promise<void> {
  const { table, column, lock } = NAMES[kind];
  await q.query('SELECT pg_advisory_xact_lock($1, hashtext(lower($2)))', [lock, name]);
  const { rows } = await q.query<{ holder: string }>(
    `SELECT ${column} AS holder FROM ${table} WHERE lower(${column}) = lower($1) AND ($2::uuid IS NULL OR id <> $2)
     LIMIT 1`,
    [name, ownId ?? null],
  );
  const holder = rows[0]?.holder;
  if (holder === undefined) return;
  const how = holder === name ? '' : ', in another letter case';
  throw new ScimflowError('ERR_CONFLICT', `${column} "${name}" is already taken${how}`, { details: { field: column } });
}
