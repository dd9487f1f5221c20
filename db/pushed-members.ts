/**
 * The members scimflow has sent to a provider's remote groups (migration 0019), and the difference between them and
 * the members the directory wants there, read a chunk at a time: a group of 100,000 members is never held whole.
 */
import { inTransaction, type Queryable } from './pool.ts';
import type { ProviderScope } from './schemas.ts';
import { storableJson } from './text.ts';
import { USER_SCOPE } from './sync-store.ts';

/** What a group's wanted membership is: how many members, and a digest of their sorted remote ids. */
export interface MemberDigest {
  count: number;
  digest: string;
}

/**
 * `l.remote_id`: the remote id of member `gm.user_id` when it is in scope (given as jsonb in `$1`) and provider `$2`
 * has an ok link for it. A LATERAL subquery with LIMIT 1, which PostgreSQL cannot turn inside out: a group's members
 * are read from group_members and each looked up, even when the planner believes the provider has no links (with
 * statistics taken before a first sync wrote 100,000 of them, it walked every link for each group: 2 s a query).
 */
const MEMBER_LINK = `CROSS JOIN LATERAL (
    SELECT l.remote_id FROM provider_links l JOIN users u ON u.id = l.local_id
     WHERE l.provider_id = $2 AND l.object_type = 'user' AND l.local_id = gm.user_id
       AND l.status = 'ok' AND l.remote_id IS NOT NULL AND ${USER_SCOPE}
     LIMIT 1) l`;

/**
 * The remote ids of the in-scope members of groups `$3` that provider `$2` has an ok link for, by group and sorted.
 * Each member is looked up as {@link MEMBER_LINK} says: as a join, planned from statistics taken before a first sync
 * wrote its links, a page of 100 groups walked all 100,000 links (350-400 ms a page), and planned from fresh ones it
 * read every user (21 ms; looked up, 12 ms either way). Exported for the test of its plan.
 */
export const MEMBER_REMOTE_IDS_SQL = `SELECT gm.group_id, l.remote_id FROM group_members gm ${MEMBER_LINK}
  WHERE gm.group_id = ANY($3::uuid[])
  ORDER BY gm.group_id, l.remote_id`;

/** For each group, the remote ids of its in-scope members that the provider has an ok link for, sorted. */
export async function memberRemoteIds(
  q: Queryable,
  scope: ProviderScope,
  providerId: string,
  groupIds: readonly string[],
): Promise<Map<string, string[]>> {
  const result = new Map<string, string[]>(groupIds.map((id) => [id, []]));
  if (groupIds.length === 0) return result;
  const { rows } = await q.query<{ group_id: string; remote_id: string }>(MEMBER_REMOTE_IDS_SQL, [
    JSON.stringify(scope),
    providerId,
    groupIds,
  ]);
  for (const row of rows) result.get(row.group_id)?.push(row.remote_id);
  return result;
}

/**
 * For each group, the digest of the remote ids of its in-scope members that the provider has an ok link for (the
 * ids `memberRemoteIds` lists), computed by PostgreSQL; a group without such members has count 0.
 */
export async function memberDigests(
  q: Queryable,
  scope: ProviderScope,
  providerId: string,
  groupIds: readonly string[],
): Promise<Map<string, MemberDigest>> {
  const result = new Map<string, MemberDigest>(groupIds.map((id) => [id, { count: 0, digest: '' }]));
  if (groupIds.length === 0) return result;
  const { rows } = await q.query<{ group_id: string; count: string; digest: string }>(
    `SELECT gm.group_id, count(*) AS count, md5(string_agg(l.remote_id, ',' ORDER BY l.remote_id)) AS digest
       FROM group_members gm ${MEMBER_LINK}
      WHERE gm.group_id = ANY($3::uuid[])
      GROUP BY gm.group_id`,
    [JSON.stringify(scope), providerId, groupIds],
  );
  for (const row of rows) result.set(row.group_id, { count: Number(row.count), digest: row.digest });
  return result;
}

/** A group's wanted membership as a page of groups reads it: its digest, and the members a create of it sends. */
export interface MemberHead extends MemberDigest {
  /**
   * Its first `chunk` members' remote ids, in user id order (the order later chunks are read in); there for every
   * group the provider has no remote id for (those about to be created), absent for most others.
   */
  first?: string[];
}

/**
 * Each group's first `$4` wanted members, in user id order (only for a group provider `$2` has no remote id for), with
 * their count and digest (as `memberDigests` has it): those of all its members when it has fewer. The members come as
 * JSON, which pg reads with JSON.parse: read as a text[], pg's array parser in JavaScript took 0.36 s of the worker's
 * 5.4 s in the groups phase of a 100,000-user first sync (5,000 groups of 20), target 20 ms late.
 */
const MEMBER_HEADS_SQL = `SELECT g.group_id, count(*) AS count,
    md5(string_agg(m.remote_id, ',' ORDER BY m.remote_id)) AS digest,
    CASE WHEN bool_and(g.creatable) THEN json_agg(m.remote_id ORDER BY m.user_id) END AS head
  FROM (SELECT id AS group_id, NOT EXISTS (
          SELECT 1 FROM provider_links gl
           WHERE gl.provider_id = $2 AND gl.object_type = 'group' AND gl.local_id = id AND gl.remote_id IS NOT NULL
        ) AS creatable
          FROM unnest($3::uuid[]) AS id) g
  CROSS JOIN LATERAL (
    SELECT l.remote_id, gm.user_id FROM group_members gm ${MEMBER_LINK}
     WHERE gm.group_id = g.group_id
     ORDER BY gm.user_id LIMIT $4) m
  GROUP BY g.group_id`;

/**
 * For each group, what {@link memberDigests} gives and, for a group with no remote id, its first `chunk` members (what
 * a create sends), looking each member up once: a group of at most `chunk` members is read whole with its first
 * chunk, and only larger groups are read again for their digest. Read apart, the digests and the first chunks probed
 * every member of a page's new groups twice: 2.6 and 1.5 s of statement time in the groups phase of a 100,000-user
 * first sync with 20 ms from the target (pg_stat_statements), against 3.2 s read together.
 */
export async function memberHeads(
  q: Queryable,
  scope: ProviderScope,
  providerId: string,
  groupIds: readonly string[],
  chunk: number,
): Promise<Map<string, MemberHead>> {
  const result = new Map<string, MemberHead>();
  if (groupIds.length === 0) return result;
  const { rows } = await q.query<{ group_id: string; count: string; digest: string; head: string[] | null }>(
    MEMBER_HEADS_SQL,
    [JSON.stringify(scope), providerId, groupIds, chunk + 1],
  );
  const read = new Map(rows.map((row) => [row.group_id, row]));
  const larger = rows.filter((row) => Number(row.count) > chunk).map((row) => row.group_id);
  const whole = await memberDigests(q, scope, providerId, larger);
  for (const id of groupIds) {
    const row = read.get(id);
    // A group with no member linked has no row: nothing to digest, and nothing to send.
    const first = row === undefined ? [] : row.head?.slice(0, chunk);
    const digest = whole.get(id) ?? { count: Number(row?.count ?? 0), digest: row?.digest ?? '' };
    result.set(id, first === undefined ? digest : { ...digest, first });
  }
  return result;
}

/**
 * The SQL of each side of a group's member difference, wanted and not sent or sent and no longer wanted, in the order
 * of an index (group_members by user id, provider_group_members by remote id) from after the key `$5` (if any), so
 * that each chunk reads on from the last one. An ORDER BY remote id on the wanted side walked every link of the
 * provider to find a group's few members (the first full sync at 10,000 users took 153 s of PostgreSQL CPU).
 * `OFFSET 0` keeps each NOT EXISTS a probe of an index per row read: as an anti-join, planned from statistics taken
 * before the group's members were recorded (1 row), it rescanned every member recorded so far for each row, and a
 * 20,000-member group's last chunks took 5 s each (its first sync's group phase: 12.8-13.1 s, 3.1 s with the probe).
 * Exported for the test of its plan.
 */
export const MEMBER_DIFFERENCE_SQL = {
  add: `SELECT l.remote_id, gm.user_id::text AS key FROM group_members gm ${MEMBER_LINK}
         WHERE gm.group_id = $3 AND ($5::text IS NULL OR gm.user_id > $5::uuid)
           AND NOT EXISTS (SELECT 1 FROM provider_group_members p
                            WHERE p.provider_id = $2 AND p.group_id = $3 AND p.remote_id = l.remote_id OFFSET 0)
         ORDER BY gm.user_id LIMIT $4`,
  remove: `SELECT p.remote_id, p.remote_id AS key FROM provider_group_members p
            WHERE p.provider_id = $2 AND p.group_id = $3 AND ($5::text IS NULL OR p.remote_id > $5)
              AND NOT EXISTS (SELECT 1 FROM provider_links l
                               JOIN users u ON u.id = l.local_id
                               JOIN group_members gm ON gm.group_id = $3 AND gm.user_id = l.local_id
                              WHERE l.provider_id = $2 AND l.object_type = 'user' AND l.remote_id = p.remote_id
                                AND l.status = 'ok' AND ${USER_SCOPE} OFFSET 0)
            ORDER BY p.remote_id LIMIT $4`,
};

/** A chunk of one side of a group's member difference, and the key to read the next chunk after. */
export interface MemberChunk {
  remoteIds: string[];
  next: string | null;
}

/**
 * Up to `limit` remote ids of one side of the group's member difference on the provider's target, after `after` (the
 * `next` of the chunk before): members it should have and was not sent (`add`), or members sent that it should no
 * longer have (`remove`).
 */
export async function memberDifference(
  q: Queryable,
  scope: ProviderScope,
  providerId: string,
  groupId: string,
  side: 'add' | 'remove',
  limit: number,
  after: string | null = null,
): Promise<MemberChunk> {
  const { rows } = await q.query<{ remote_id: string; key: string }>(MEMBER_DIFFERENCE_SQL[side], [
    JSON.stringify(scope),
    providerId,
    groupId,
    limit,
    after,
  ]);
  return { remoteIds: rows.map((row) => row.remote_id), next: rows.at(-1)?.key ?? after };
}

/**
 * Forgets what was sent to each group (they are about to be created) and returns, by group id, the first `limit`
 * remote ids of the members each should have, in one statement: with nothing sent, every wanted member is to add.
 */
export async function firstMembersAfresh(
  q: Queryable,
  scope: ProviderScope,
  providerId: string,
  groupIds: readonly string[],
  limit: number,
): Promise<Map<string, string[]>> {
  const result = new Map<string, string[]>(groupIds.map((id) => [id, []]));
  if (groupIds.length === 0) return result;
  const { rows } = await q.query<{ group_id: string; remote_id: string }>(
    `WITH cleared AS (DELETE FROM provider_group_members WHERE provider_id = $2 AND group_id = ANY($3::uuid[]))
     SELECT g.group_id, m.remote_id FROM unnest($3::uuid[]) WITH ORDINALITY AS g(group_id, n)
      CROSS JOIN LATERAL (
        SELECT l.remote_id, gm.user_id FROM group_members gm ${MEMBER_LINK}
         WHERE gm.group_id = g.group_id
         ORDER BY gm.user_id LIMIT $4) m
      ORDER BY g.n, m.user_id`,
    [JSON.stringify(scope), providerId, groupIds, limit],
  );
  for (const row of rows) result.get(row.group_id)?.push(row.remote_id);
  return result;
}

/** Forgets what was sent to each group's remote group (they are about to be created, and hold nothing yet). */
export async function forgetPushedMembers(
  q: Queryable,
  providerId: string,
  groupIds: readonly string[],
): Promise<void> {
  if (groupIds.length === 0) return;
  await q.query('DELETE FROM provider_group_members WHERE provider_id = $1 AND group_id = ANY($2::uuid[])', [
    providerId,
    groupIds,
  ]);
}

/** The members one group was created with on a provider's target. */
export interface CreatedMembers {
  providerId: string;
  groupId: string;
  remoteIds: readonly string[];
}

/** Records that each group was sent its `remoteIds` (when it was created with them), all in one statement. */
export async function recordCreatedMembers(q: Queryable, groups: readonly CreatedMembers[]): Promise<void> {
  const rows = groups.filter((group) => group.remoteIds.length > 0);
  if (rows.length === 0) return;
  // One JSON text, a row per group: three arrays of a value per member were escaped by pg one element at a time.
  await q.query(
    `INSERT INTO provider_group_members (provider_id, group_id, remote_id)
     SELECT (r->>0)::uuid, (r->>1)::uuid, m FROM jsonb_array_elements($1::jsonb) AS r, jsonb_array_elements_text(r->2) AS m
     ON CONFLICT DO NOTHING`,
    [storableJson(JSON.stringify(rows.map((group) => [group.providerId, group.groupId, group.remoteIds])))],
  );
}

/** Records that `added` were sent to the group and `removed` taken out of it, in one statement. */
export async function recordPushedMembers(
  q: Queryable,
  providerId: string,
  groupId: string,
  added: readonly string[],
  removed: readonly string[],
): Promise<void> {
  await q.query(
    `WITH removed AS (
       DELETE FROM provider_group_members
        WHERE provider_id = $1 AND group_id = $2 AND remote_id = ANY($4::text[]))
     INSERT INTO provider_group_members (provider_id, group_id, remote_id)
     SELECT $1, $2, unnest($3::text[])
     ON CONFLICT DO NOTHING`,
    [providerId, groupId, added, removed],
  );
}

/**
 * Says the group holds exactly `remoteIds` (a group just created or adopted, or one whose link still lists what was
 * sent): its rows are replaced, in one transaction.
 */
export async function replacePushedMembers(
  q: Queryable,
  providerId: string,
  groupId: string,
  remoteIds: readonly string[],
): Promise<void> {
  const clear = (client: Queryable) =>
    client.query('DELETE FROM provider_group_members WHERE provider_id = $1 AND group_id = $2', [providerId, groupId]);
  if (remoteIds.length === 0) {
    await clear(q);
    return;
  }
  await inTransaction(q, async (client) => {
    await clear(client);
    await recordPushedMembers(client, providerId, groupId, remoteIds, []);
  });
}
