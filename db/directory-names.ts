/**
 * Usernames and group names are unique in any letter case across the whole directory (SCIM's userName and a group's
 * displayName are caseExact false, and a target refuses a second user whose userName differs only in case). The
 * tables' unique constraints are exact, so the check is made here, under a lock on the lower-cased name.
 */
import type { Queryable } from './pool.ts';

// Serialises writes that check a case-insensitive name before taking it (two creates of "Bob" and "bob").
const NAME_LOCK_NAMESPACE = 15_001; // int4: the two-key form of pg_advisory_xact_lock

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
