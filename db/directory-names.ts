/**
 * Usernames and group names are unique in any letter case across the whole directory (SCIM's userName and a group's
 * displayName are caseExact false, and a target refuses a second user whose userName differs only in case). The
 * tables' unique constraints are exact: a database may hold case variants written before this rule, and they stay (each
 * can still be changed, keeping its name). So every write that gives a user or a group a name checks it here, in its
 * transaction, under advisory locks that make the check and the write one step for concurrent writers:
 * - a write of one name (a create, a rename) locks that name, lower-cased, and shares the lock of every name of its
 *   kind (`claimName`);
 * - an import batch, which writes up to thousands of names, holds the lock of every name of its kind alone
 *   (`lockNamesForBatch`): one lock, where a lock for each name could fill PostgreSQL's lock table.
 * Rows are locked before names: a rename locks its row first, and an import batch the rows it will update, so that no
 * transaction holding a name lock waits for a row that another one, waiting for that name, holds.
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
// The lock of every name of a kind: (EVERY_NAME, the kind's `lock`).
const EVERY_NAME = 15_003;

/**
 * Refuses `name` for a `kind` when another one (not `ownId`) has it in any letter case: ERR_CONFLICT naming the field.
 * The name stays locked until the transaction ends, so a concurrent write of it in any letter case waits, then sees
 * this one. A rename calls it after locking its row, and only when the name changes.
 */
export async function claimName(q: Queryable, kind: NamedKind, name: string, ownId?: string): Promise<void> {
  const { table, column, lock } = NAMES[kind];
  await q.query('SELECT pg_advisory_xact_lock_shared($1, $2)', [EVERY_NAME, lock]);
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

/**
 * For a batch that upserts `kind`s by their exact `names`: locks the rows it will update, then every name of the kind,
 * so that no write of one name runs until the batch's transaction ends, and returns the `nameClashes` of `names` as
 * they stand under those locks: the batch may write the names before the first.
 */
export async function lockNamesForBatch(q: Queryable, kind: NamedKind, names: readonly string[]): Promise<NameClash[]> {
  const { table, column, lock } = NAMES[kind];
  await q.query(`SELECT 1 FROM ${table} WHERE ${column} = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE`, [names]);
  await q.query('SELECT pg_advisory_xact_lock($1, $2)', [EVERY_NAME, lock]);
  return nameClashes(q, kind, names);
}

/**
 * `names` (in order) lower-cased as every name check compares them: by PostgreSQL's lower() under the database's
 * collation, which folds some letters otherwise than JavaScript's toLowerCase() (İ, U+0130, is i rather than i̇, and Σ
 * is σ even at the end of a word, where JavaScript gives ς). Two names are the same name when these are equal.
 */
export async function foldNames(q: Queryable, names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const { rows } = await q.query<{ folded: string }>(
    'SELECT lower(x.name) AS folded FROM unnest($1::text[]) WITH ORDINALITY AS x(name, n) ORDER BY x.n',
    [names],
  );
  return rows.map((row) => row.folded);
}

/** A name of a batch that another object has in another letter case. */
export interface NameClash {
  /** Its position in the batch. */
  index: number;
  name: string;
  /** The name as the directory has it. */
  holder: string;
}

/**
 * Of `names`, in order, each that no `kind` has exactly but one has in another letter case: upserted by its exact name
 * it would make a second one. A name the directory has exactly is an update of that one, even where the directory
 * also has a variant of it from before this rule.
 */
export async function nameClashes(q: Queryable, kind: NamedKind, names: readonly string[]): Promise<NameClash[]> {
  const { table, column } = NAMES[kind];
  const { rows } = await q.query<NameClash>(
    `SELECT (x.n - 1)::int AS index, x.name, h.holder
       FROM unnest($1::text[]) WITH ORDINALITY AS x(name, n)
       CROSS JOIN LATERAL (SELECT t.${column} AS holder FROM ${table} t WHERE lower(t.${column}) = lower(x.name)
                            ORDER BY t.${column} LIMIT 1) h
      WHERE NOT EXISTS (SELECT 1 FROM ${table} t WHERE t.${column} = x.name)
      ORDER BY x.n`,
    [names],
  );
  return rows;
}

/** What an import's issue says of a clash: `"Ada" is the user "ada" in another letter case …`. */
export function clashMessage(kind: NamedKind, clash: NameClash): string {
  const rule = `${NAMES[kind].column}s are unique in any letter case`;
  return `"${clash.name}" is the ${kind} "${clash.holder}" in another letter case (${rule})`;
}
