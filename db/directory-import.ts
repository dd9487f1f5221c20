/**
 * Directory imports: users upserted by username and groups by name, written in batches of their own transactions so
 * that an import of any size never becomes one giant transaction. `importDirectory` takes a whole document (checked as
 * a whole first); `importStream` takes lines one at a time (NDJSON) and never holds more than one batch of them.
 * Upserts match names exactly; a name the directory has only in another letter case is refused (ERR_CONFLICT), as
 * every other write refuses it (see directory-names.ts), rather than made a second user or group. A group's members
 * name users by username in any letter case, as usernames are unique in any letter case (see `unresolvedMembers`).
 */
import { isScimflowError, ScimflowError, ValidationError } from '../errors/index.ts';
import {
  clashMessage,
  foldNames,
  lockNamesForBatch,
  nameClashes,
  type NameClash,
  type NamedKind,
} from './directory-names.ts';
import { inTransaction, type Db, type Queryable } from './pool.ts';
import {
  DirectoryImportSchema,
  ImportGroupSchema,
  UserInputSchema,
  type DirectoryImport,
  type DirectoryImportInput,
  type ImportGroup,
  type ImportLine,
  type UserInput,
} from './schemas.ts';

/** How many objects a directory import created, changed and left as they were. */
export interface ImportCounts {
  users: { created: number; updated: number; unchanged: number };
  groups: { created: number; updated: number; unchanged: number };
  members: { added: number; removed: number };
}

// Serialises whole-directory imports: two concurrent ones would otherwise lock rows in different orders.
const IMPORT_LOCK_KEY = 7_206_517_002;

type Issue = { path: string; message: string };

// The field of each kind's name, as import entries and lines spell it.
const NAME_FIELD = { user: 'username', group: 'name' } as const;

/**
 * An issue for each of `names` that an earlier one gave already, in any letter case: `folded` are the names as the
 * directory compares them (see `foldNames`), so that the import refuses exactly the pairs a directory check would.
 */
function repeatedNames(
  names: readonly string[],
  folded: readonly string[],
  list: 'users' | 'groups',
  field: string,
): Issue[] {
  const first = new Map<string, number>();
  return names.flatMap((name, i) => {
    const key = folded[i]!;
    const earlier = first.get(key);
    if (earlier === undefined) {
      first.set(key, i);
      return [];
    }
    const message =
      names[earlier] === name
        ? `"${name}" appears twice`
        : `"${name}" is "${names[earlier]}" of ${list}.${earlier} in another letter case`;
    return [{ path: `${list}.${i}.${field}`, message }];
  });
}

/** Refuses an import that lists a user or group twice, in any letter case (ERR_VALIDATION naming each repeat). */
async function checkImport(q: Queryable, input: DirectoryImport): Promise<void> {
  const usernames = input.users.map((user) => user.username);
  const groupNames = input.groups.map((group) => group.name);
  const issues = [
    ...repeatedNames(usernames, await foldNames(q, usernames), 'users', NAME_FIELD.user),
    ...repeatedNames(groupNames, await foldNames(q, groupNames), 'groups', NAME_FIELD.group),
  ];
  if (issues.length > 0) throw new ValidationError('the import lists the same object twice', issues);
}

/** The issues of `clashes` (names of `kind` the directory has in another letter case), at `path` (`users.3`). */
function clashIssues(kind: NamedKind, clashes: readonly NameClash[], path: (index: number) => string): Issue[] {
  return clashes.map((clash) => ({
    path: `${path(clash.index)}.${NAME_FIELD[kind]}`,
    message: clashMessage(kind, clash),
  }));
}

/** ERR_CONFLICT for `issues` (from `clashIssues`); `field` is the first one's. */
function clashError(issues: readonly Issue[], field: string): ScimflowError {
  const more = issues.length > 1 ? `; and ${issues.length - 1} more` : '';
  return new ScimflowError('ERR_CONFLICT', `${issues[0]!.path}: ${issues[0]!.message}${more}`, {
    details: { field, issues },
  });
}

/** Names of the import that the directory has in another letter case: checked before any write, as ERR_CONFLICT. */
async function checkImportNames(q: Queryable, input: DirectoryImport): Promise<void> {
  const users = clashIssues(
    'user',
    await nameClashes(
      q,
      'user',
      input.users.map((user) => user.username),
    ),
    (i) => `users.${i}`,
  );
  const groups = clashIssues(
    'group',
    await nameClashes(
      q,
      'group',
      input.groups.map((group) => group.name),
    ),
    (i) => `groups.${i}`,
  );
  if (users.length + groups.length > 0) {
    throw clashError([...users, ...groups], NAME_FIELD[users.length > 0 ? 'user' : 'group']);
  }
}

/**
 * In an import batch's transaction, before its upsert of `kind`s by `names` (the import's entries from `start` on):
 * locks them (see `lockNamesForBatch`) and refuses the batch when the directory has one in another letter case, which a
 * write since `checkImportNames` may have made.
 */
async function claimBatchNames(q: Queryable, kind: NamedKind, names: readonly string[], start: number): Promise<void> {
  const issues = clashIssues(kind, await lockNamesForBatch(q, kind, names), (i) => `${kind}s.${start + i}`);
  if (issues.length > 0) throw clashError(issues, NAME_FIELD[kind]);
}

/**
 * Of the member names `wanted`, each that does not name one user, with the usernames it matches in another letter case
 * (none: no user has it). A member name names the user with exactly that username, else the one whose username equals
 * it in another letter case (PostgreSQL's lower(), as every name check compares them: see directory-names.ts); when
 * the directory has several such variants from before names were unique in any letter case, and none exactly, it names
 * none of them. `imported` are usernames an import writes before its members, counted as the directory's.
 */
async function unresolvedMembers(
  q: Queryable,
  wanted: readonly string[],
  imported: readonly string[] = [],
): Promise<Map<string, string[]>> {
  const { rows } = await q.query<{ username: string; variants: string[] }>(
    `WITH wanted AS (SELECT DISTINCT w AS username FROM unnest($1::text[]) AS w),
     known AS (
       SELECT u.username FROM users u WHERE lower(u.username) IN (SELECT lower(username) FROM wanted)
       UNION SELECT unnest($2::text[])
     )
     SELECT w.username, array_remove(array_agg(k.username ORDER BY k.username), NULL) AS variants
       FROM wanted w LEFT JOIN known k ON lower(k.username) = lower(w.username)
      GROUP BY w.username
     HAVING count(k.username) <> 1 AND NOT coalesce(bool_or(k.username = w.username), false)`,
    [wanted, imported],
  );
  return new Map(rows.map((row) => [row.username, row.variants]));
}

/** What an issue says of a member name that names no one user (see `unresolvedMembers`). */
function unresolvedMessage(username: string, variants: readonly string[]): string {
  if (variants.length === 0) return `no user "${username}"`;
  const listed = variants.map((variant) => `"${variant}"`).join(', ');
  return `"${username}" matches several users in other letter cases (${listed}): name one of them exactly`;
}

/** An issue for each of a group's `members` that `unresolved` holds, at `path` (its index in the list). */
function memberIssues(
  members: readonly string[] | undefined,
  unresolved: ReadonlyMap<string, readonly string[]>,
  path: (index: number) => string,
): Issue[] {
  return (members ?? []).flatMap((username, j) => {
    const variants = unresolved.get(username);
    return variants === undefined ? [] : [{ path: path(j), message: unresolvedMessage(username, variants) }];
  });
}

/** Members of the import that name no one user, neither of the import nor of the directory: checked before any write. */
async function checkImportMembers(q: Queryable, input: DirectoryImport): Promise<void> {
  const wanted = [...new Set(input.groups.flatMap((group) => group.members ?? []))];
  if (wanted.length === 0) return;
  const unresolved = await unresolvedMembers(
    q,
    wanted,
    input.users.map((user) => user.username),
  );
  if (unresolved.size === 0) return;
  const issues = input.groups.flatMap((group, i) =>
    memberIssues(group.members, unresolved, (j) => `groups.${i}.members.${j}`),
  );
  const missing = [...unresolved.values()].some((variants) => variants.length === 0);
  throw new ValidationError(
    missing ? 'group members name users that do not exist' : 'group members match several users each',
    issues,
  );
}

/** Objects (users, groups, or memberships) an import writes per transaction. */
export const IMPORT_BATCH_SIZE = 1000;

/** `items` in slices of `size`, each with the index of its first item. */
function* slices<T>(items: readonly T[], size: number): Generator<[start: number, slice: T[]]> {
  for (let start = 0; start < items.length; start += size) yield [start, items.slice(start, start + size)];
}

/** `groups` in runs whose listed members add up to at most `size`, a group with more in a run of its own. */
function* groupBatches(groups: readonly ImportGroup[], size: number): Generator<ImportGroup[]> {
  let run: ImportGroup[] = [];
  let members = 0;
  for (const group of groups) {
    const count = group.members?.length ?? 0;
    if (run.length > 0 && (members + count > size || run.length >= size)) {
      yield run;
      run = [];
      members = 0;
    }
    run.push(group);
    members += count;
  }
  if (run.length > 0) yield run;
}

/** Runs one batch of an import in a transaction of its own, after any other import's batch under way. */
function importBatch<T>(db: Db, fn: (client: Queryable) => Promise<T>): Promise<T> {
  return inTransaction(db, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [IMPORT_LOCK_KEY]);
    return fn(client);
  });
}

// The end of an import's upsert of `kind` (from `upserted`: id, inserted): an outbox row each, and the counts.
const announceUpserted = (kind: 'user' | 'group') => `logged AS (
     INSERT INTO outbox (object_type, object_id, change)
     SELECT '${kind}', id, CASE WHEN inserted THEN 'created' ELSE 'updated' END FROM upserted
   )
   SELECT (count(*) FILTER (WHERE inserted))::int AS created, (count(*) FILTER (WHERE NOT inserted))::int AS updated FROM upserted`;

const UPSERT_USERS = `WITH input AS (
     SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(username text, display_name text, email text, given_name text,
            family_name text, active boolean, kind text, attributes jsonb)
   ), upserted AS (
     INSERT INTO users AS u (username, display_name, email, given_name, family_name, active, kind, attributes)
     SELECT username, display_name, email, given_name, family_name, active, kind, attributes FROM input
     ON CONFLICT (username) DO UPDATE SET display_name = EXCLUDED.display_name, email = EXCLUDED.email,
       given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name, active = EXCLUDED.active,
       kind = EXCLUDED.kind, attributes = EXCLUDED.attributes, updated_at = now()
     WHERE ROW(u.display_name, u.email, u.given_name, u.family_name, u.active, u.kind, u.attributes)
           IS DISTINCT FROM ROW(EXCLUDED.display_name, EXCLUDED.email, EXCLUDED.given_name, EXCLUDED.family_name,
                                EXCLUDED.active, EXCLUDED.kind, EXCLUDED.attributes)
     -- xmax is 0 only on a freshly inserted row version: it tells a create from an update.
     RETURNING u.id, (u.xmax = 0) AS inserted
   ), ${announceUpserted('user')}`;

const UPSERT_GROUPS = `WITH upserted AS (
     INSERT INTO groups AS g (name, attributes)
     SELECT name, attributes FROM jsonb_to_recordset($1::jsonb) AS x(name text, attributes jsonb)
     ON CONFLICT (name) DO UPDATE SET attributes = EXCLUDED.attributes, updated_at = now()
     WHERE g.attributes IS DISTINCT FROM EXCLUDED.attributes
     RETURNING g.id, (g.xmax = 0) AS inserted
   ), ${announceUpserted('group')}`;

// The user that a listed member name `x.username` names, as `m.id` (see `unresolvedMembers`): the user with exactly
// that username, else the only one with it in another letter case. A name that names no one user joins no row.
const MEMBER_USER = `JOIN LATERAL (
       SELECT (array_agg(u.id ORDER BY u.username = x.username DESC))[1] AS id
         FROM users u WHERE lower(u.username) = lower(x.username)
       HAVING count(*) = 1 OR bool_or(u.username = x.username)
     ) m ON true`;

// Removes from the groups named in `$2` every member not listed for it in `$1` (a JSON array of group name and username).
const REMOVE_UNLISTED_MEMBERS = `WITH listed AS (
     SELECT g.id AS group_id, m.id AS user_id
       FROM jsonb_to_recordset($1::jsonb) AS x(name text, username text)
       JOIN groups g ON g.name = x.name ${MEMBER_USER}
   ), removed AS (
     DELETE FROM group_members gm USING groups g
      WHERE g.id = gm.group_id AND g.name = ANY($2::text[])
        AND NOT EXISTS (SELECT 1 FROM listed l WHERE l.group_id = gm.group_id AND l.user_id = gm.user_id)
     RETURNING gm.group_id, gm.user_id
   ), logged AS (
     INSERT INTO outbox (object_type, object_id, related_id, change)
     SELECT 'membership', group_id, user_id, 'member_removed' FROM removed
   )
   SELECT count(*)::int AS removed FROM removed`;

// Adds the memberships in `$1` (a JSON array of group name and username), those not there already.
const ADD_MEMBERS = `WITH added AS (
     INSERT INTO group_members (group_id, user_id)
     SELECT DISTINCT g.id, m.id FROM jsonb_to_recordset($1::jsonb) AS x(name text, username text)
       JOIN groups g ON g.name = x.name ${MEMBER_USER}
     ON CONFLICT DO NOTHING RETURNING group_id, user_id
   ), logged AS (
     INSERT INTO outbox (object_type, object_id, related_id, change)
     SELECT 'membership', group_id, user_id, 'member_added' FROM added
   )
   SELECT count(*)::int AS added FROM added`;

type Upserted = { created: number; updated: number };

/** Upserts `users` by username; how many were created and how many changed. */
async function upsertUsers(q: Queryable, users: readonly UserInput[]): Promise<Upserted> {
  const rows = users.map((user) => ({
    username: user.username,
    display_name: user.displayName ?? null,
    email: user.email ?? null,
    given_name: user.givenName ?? null,
    family_name: user.familyName ?? null,
    active: user.active,
    kind: user.kind,
    attributes: user.attributes,
  }));
  return (await q.query<Upserted>(UPSERT_USERS, [JSON.stringify(rows)])).rows[0]!;
}

/** Upserts `groups` by name (their attributes; members are set apart); how many were created and how many changed. */
async function upsertGroups(q: Queryable, groups: readonly ImportGroup[]): Promise<Upserted> {
  const rows = groups.map((group) => ({ name: group.name, attributes: group.attributes }));
  return (await q.query<Upserted>(UPSERT_GROUPS, [JSON.stringify(rows)])).rows[0]!;
}

/** Each listed member of `groups` as a (group name, username) pair. */
function memberPairs(groups: readonly ImportGroup[]): Array<{ name: string; username: string }> {
  return groups.flatMap((group) => (group.members ?? []).map((username) => ({ name: group.name, username })));
}

/** Removes from each of `groups` the members it does not list; how many were removed. */
async function removeUnlistedMembers(q: Queryable, groups: readonly ImportGroup[]): Promise<number> {
  const { rows } = await q.query<{ removed: number }>(REMOVE_UNLISTED_MEMBERS, [
    JSON.stringify(memberPairs(groups)),
    groups.map((group) => group.name),
  ]);
  return rows[0]!.removed;
}

/** Adds the listed memberships not there already; how many were added. */
async function addListedMembers(
  q: Queryable,
  pairs: ReadonlyArray<{ name: string; username: string }>,
): Promise<number> {
  return (await q.query<{ added: number }>(ADD_MEMBERS, [JSON.stringify(pairs)])).rows[0]!.added;
}

/**
 * Upserts `entries` of `kind` by their names (`nameOf`) with `upsert`, `batchSize` a transaction, each batch's names
 * claimed first (see `claimBatchNames`); how many were created and how many changed.
 */
async function upsertInBatches<T>(
  db: Db,
  kind: NamedKind,
  entries: readonly T[],
  batchSize: number,
  nameOf: (entry: T) => string,
  upsert: (q: Queryable, batch: readonly T[]) => Promise<Upserted>,
): Promise<Upserted> {
  const total = { created: 0, updated: 0 };
  for (const [start, batch] of slices(entries, batchSize)) {
    const upserted = await importBatch(db, async (client) => {
      await claimBatchNames(client, kind, batch.map(nameOf), start);
      return upsert(client, batch);
    });
    total.created += upserted.created;
    total.updated += upserted.updated;
  }
  return total;
}

/**
 * Makes the directory match `input`: users upserted by username (fields absent from the import become null), groups
 * upserted by name, and each group that lists `members` gets exactly those members (usernames, in any letter case:
 * see `unresolvedMembers`; one that names no one user is ERR_VALIDATION). Objects not in the import are left
 * alone. A name listed twice in any letter case is ERR_VALIDATION, and one the directory has only in another letter
 * case ERR_CONFLICT. The whole import is checked first (nothing is written when any of it is invalid), then written
 * `batchSize` objects per transaction (users, then groups, then each listed group's removed members, then added
 * memberships), so that a large import never becomes one giant transaction; a failure part-way leaves the batches
 * before it written, and importing the same input again completes it (an import changes nothing the second time).
 */
export async function importDirectory(
  db: Db,
  raw: DirectoryImportInput,
  options: { batchSize?: number } = {},
): Promise<ImportCounts> {
  const parsed = DirectoryImportSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ValidationError(
      'invalid directory import',
      parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    );
  }
  const input = parsed.data;
  const batchSize = options.batchSize ?? IMPORT_BATCH_SIZE;
  await checkImport(db, input);
  await checkImportMembers(db, input);
  await checkImportNames(db, input);
  const users = await upsertInBatches(db, 'user', input.users, batchSize, (user) => user.username, upsertUsers);
  const groups = await upsertInBatches(db, 'group', input.groups, batchSize, (group) => group.name, upsertGroups);
  const members = { added: 0, removed: 0 };
  const listed = input.groups.filter((group) => group.members !== undefined);
  // Groups together while their listed members fit in a batch; a larger group alone (its removal needs its whole list).
  for (const batch of groupBatches(listed, batchSize)) {
    members.removed += await importBatch(db, (client) => removeUnlistedMembers(client, batch));
  }
  for (const [, batch] of slices(memberPairs(listed), batchSize)) {
    members.added += await importBatch(db, (client) => addListedMembers(client, batch));
  }
  return {
    users: { ...users, unchanged: input.users.length - users.created - users.updated },
    groups: { ...groups, unchanged: input.groups.length - groups.created - groups.updated },
    members,
  };
}

/** A line of a streamed import with its number in the input (1-based, blank lines counted). */
export interface NumberedImportLine {
  line: number;
  entry: ImportLine;
}

/** What a streamed import wrote: the counts, the lines written and the transactions they took. */
export interface StreamImportCounts extends ImportCounts {
  lines: number;
  batches: number;
}

/** What a stopped streamed import kept, in words: `the 250 lines before it were imported (3 batches), …`. */
function importedBefore({ lines, batches }: StreamImportCounts): string {
  if (lines === 0) return 'nothing was imported';
  const what = lines === 1 ? 'the line before it was' : `the ${lines} lines before it were`;
  return `${what} imported (${batches} ${batches === 1 ? 'batch' : 'batches'}), nothing from it on`;
}

/**
 * The error that stops a streamed import at line `line`: ERR_VALIDATION with `issues` (paths inside the line, such as
 * `user.email`) and, once the import has stopped, `committed`: what the lines before it wrote. With `field`, the line
 * names a user or group the directory has in another letter case: ERR_CONFLICT naming that field.
 */
export function importLineError(
  line: number,
  issues: readonly Issue[],
  committed?: StreamImportCounts,
  field?: string,
): ScimflowError {
  const summary = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ');
  const kept = committed === undefined ? '' : `; ${importedBefore(committed)}`;
  return new ScimflowError(field === undefined ? 'ERR_VALIDATION' : 'ERR_CONFLICT', `line ${line}: ${summary}${kept}`, {
    details: {
      issues,
      line,
      ...(field === undefined ? {} : { field }),
      ...(committed === undefined ? {} : { committed }),
    },
  });
}

/** Checks one parsed line of a streamed import: `{"user": {...}}` or `{"group": {...}}`; importLineError otherwise. */
export function parseImportLine(line: number, value: unknown): ImportLine {
  const keys = typeof value === 'object' && value !== null && !Array.isArray(value) ? Object.keys(value) : [];
  const kind = keys.length === 1 ? keys[0] : undefined;
  if (kind !== 'user' && kind !== 'group') {
    throw importLineError(line, [{ path: '', message: 'must be an object with one key, "user" or "group"' }]);
  }
  const inner = (value as Record<string, unknown>)[kind];
  const parsed = kind === 'user' ? UserInputSchema.safeParse(inner) : ImportGroupSchema.safeParse(inner);
  if (!parsed.success) {
    throw importLineError(
      line,
      parsed.error.issues.flatMap((issue) =>
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((key) => ({
              path: [kind, ...issue.path.map(String), key].join('.'),
              message: 'is not a known field',
            }))
          : [{ path: [kind, ...issue.path.map(String)].join('.'), message: issue.message }],
      ),
    );
  }
  return kind === 'user' ? { user: parsed.data as UserInput } : { group: parsed.data as ImportGroup };
}

/**
 * The lines of one batch: all users or all groups, each name once (an upsert writes a name once), at most `size` rows
 * (a listed member counts one). Names that are one in another letter case are split apart when the batch is written
 * (see `firstRepeat`), where PostgreSQL folds them.
 */
class PendingBatch {
  kind: 'user' | 'group' | null = null;
  readonly lines: NumberedImportLine[] = [];
  readonly names = new Set<string>();
  rows = 0;

  /** Whether `entry` must go in the next batch rather than this one. */
  refuses(entry: ImportLine, size: number): boolean {
    if (this.lines.length === 0) return false;
    const kind = 'user' in entry ? 'user' : 'group';
    return kind !== this.kind || this.names.has(nameOf(entry)) || this.rows + rowsOf(entry) > size;
  }

  add(item: NumberedImportLine): void {
    this.kind = 'user' in item.entry ? 'user' : 'group';
    this.lines.push(item);
    this.names.add(nameOf(item.entry));
    this.rows += rowsOf(item.entry);
  }

  /** Empties the batch; what it held. */
  take(): NumberedImportLine[] {
    const lines = this.lines.splice(0);
    this.kind = null;
    this.names.clear();
    this.rows = 0;
    return lines;
  }
}

const nameOf = (entry: ImportLine) => ('user' in entry ? entry.user.username : entry.group.name);
const rowsOf = (entry: ImportLine) => ('user' in entry ? 1 : 1 + (entry.group.members?.length ?? 0));

/**
 * Where a streamed import's batch stops: at its line `index`, with what is wrong with it; `field` when the line names a
 * user or group the directory has in another letter case (a conflict rather than invalid input).
 */
interface BatchStop {
  index: number;
  issues: Issue[];
  field?: string;
}

/** Among `groups`, the first whose members name no one user of the directory, with those members. */
async function firstUnknownMembers(q: Queryable, groups: readonly ImportGroup[]): Promise<BatchStop | null> {
  const wanted = [...new Set(groups.flatMap((group) => group.members ?? []))];
  if (wanted.length === 0) return null;
  const unresolved = await unresolvedMembers(q, wanted);
  if (unresolved.size === 0) return null;
  const index = groups.findIndex((group) => (group.members ?? []).some((username) => unresolved.has(username)));
  const issues = memberIssues(groups[index]!.members, unresolved, (j) => `group.members.${j}`);
  return { index, issues };
}

/**
 * Where a batch of `lines` must end: at the first whose name an earlier one has in another letter case, as the
 * directory compares names (see `foldNames`), so that it is written after that one and meets it in the directory;
 * the number of lines when there is none.
 */
async function firstRepeat(q: Queryable, lines: readonly NumberedImportLine[]): Promise<number> {
  const folded = await foldNames(
    q,
    lines.map((item) => nameOf(item.entry)),
  );
  const seen = new Set<string>();
  for (const [index, name] of folded.entries()) {
    if (seen.has(name)) return index;
    seen.add(name);
  }
  return lines.length;
}

/** Of two stops of one batch, the one at the earlier line (either, when one is null). */
function earliest(a: BatchStop | null, b: BatchStop | null): BatchStop | null {
  if (a === null || b === null) return a ?? b;
  return b.index < a.index ? b : a;
}

/**
 * Locks the `names` of a batch of `kind`s for its upsert (see `lockNamesForBatch`); the first of them that the
 * directory has in another letter case.
 */
async function firstClash(q: Queryable, kind: NamedKind, names: readonly string[]): Promise<BatchStop | null> {
  const [clash] = await lockNamesForBatch(q, kind, names);
  if (clash === undefined) return null;
  const field = NAME_FIELD[kind];
  return { index: clash.index, issues: [{ path: `${kind}.${field}`, message: clashMessage(kind, clash) }], field };
}

/**
 * Imports a stream of lines in order, `batchSize` rows per transaction (a user is one row, a group one plus its listed
 * members), holding only the batch being filled: a batch is written as soon as it is full, so the directory grows
 * while the stream is still being read. A batch holds users or groups, each name once: a group's members must name
 * users of the directory or of earlier lines (in any letter case, see `unresolvedMembers`), and a name listed twice is
 * written twice (the later line wins).
 *
 * A line that is malformed, a group naming a user that does not exist, or a name the directory (or an earlier line)
 * has in another letter case stops the import there: every line before it is written (the batch it would have joined
 * is written without it), nothing from it on is read, and the error (see `importLineError`) says what was committed.
 * Sending the same input again, fixed, completes it (an import that changes nothing writes nothing), as does sending
 * the lines from the failed one on.
 */
export async function importStream(
  db: Db,
  lines: AsyncIterable<NumberedImportLine>,
  options: { batchSize?: number } = {},
): Promise<StreamImportCounts> {
  const batchSize = options.batchSize ?? IMPORT_BATCH_SIZE;
  const counts: StreamImportCounts = {
    users: { created: 0, updated: 0, unchanged: 0 },
    groups: { created: 0, updated: 0, unchanged: 0 },
    members: { added: 0, removed: 0 },
    lines: 0,
    batches: 0,
  };
  const tally = (into: ImportCounts['users'], upserted: Upserted, total: number) => {
    into.created += upserted.created;
    into.updated += upserted.updated;
    into.unchanged += total - upserted.created - upserted.updated;
  };
  const pending = new PendingBatch();
  // Writes `items` of `kind` in a transaction, up to the first whose name an earlier one has in another letter case
  // (see `firstRepeat`); the items from that one on, left for a transaction of their own.
  const writeBatch = async (kind: 'user' | 'group', items: NumberedImportLine[]): Promise<NumberedImportLine[]> => {
    const { stop, cut } = await importBatch(db, async (client) => {
      const cut = await firstRepeat(client, items);
      const batch = items.slice(0, cut);
      const users = kind === 'user' ? batch.map((item) => (item.entry as { user: UserInput }).user) : [];
      const groups = kind === 'group' ? batch.map((item) => (item.entry as { group: ImportGroup }).group) : [];
      const found =
        kind === 'user'
          ? await firstClash(
              client,
              'user',
              users.map((user) => user.username),
            )
          : earliest(
              await firstUnknownMembers(client, groups),
              await firstClash(
                client,
                'group',
                groups.map((group) => group.name),
              ),
            );
      const written = found === null ? batch.length : found.index;
      if (written === 0) return { stop: found, cut };
      if (kind === 'user') {
        tally(counts.users, await upsertUsers(client, users.slice(0, written)), written);
      } else {
        const upserted = groups.slice(0, written);
        tally(counts.groups, await upsertGroups(client, upserted), written);
        const listed = upserted.filter((group) => group.members !== undefined);
        counts.members.removed += await removeUnlistedMembers(client, listed);
        counts.members.added += await addListedMembers(client, memberPairs(listed));
      }
      counts.lines += written;
      counts.batches += 1;
      return { stop: found, cut };
    });
    if (stop !== null) throw importLineError(items[stop.index]!.line, stop.issues, counts, stop.field);
    return items.slice(cut);
  };
  const write = async (): Promise<void> => {
    const kind = pending.kind;
    let rest = pending.take();
    while (kind !== null && rest.length > 0) rest = await writeBatch(kind, rest);
  };

  const iterator = lines[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<NumberedImportLine>;
      try {
        next = await iterator.next();
      } catch (error) {
        // A malformed line (or a broken stream): the lines before it are written, then the import stops.
        await write();
        const details = isScimflowError(error) ? error.details : {};
        if (typeof details['line'] === 'number' && Array.isArray(details['issues'])) {
          throw importLineError(details['line'], details['issues'] as Issue[], counts);
        }
        throw error;
      }
      if (next.done) break;
      if (pending.refuses(next.value.entry, batchSize)) await write();
      pending.add(next.value);
      if (pending.rows >= batchSize) await write();
    }
    await write();
    return counts;
  } finally {
    await iterator.return?.();
  }
}
