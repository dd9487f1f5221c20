/**
 * The changes waiting for each provider (migration 0017): the relay queues them, the provider's push activity takes
 * them. One row per provider and object, latest change wins; a row taken by a push is deleted when that push ends,
 * unless the object changed again meanwhile (then it waits for the next push).
 */
import type { Queryable } from './pool.ts';

/** The channel that wakes waiting push activities; the payload is the provider's id. */
export const CHANGES_CHANNEL = 'scimflow_changes';

/** Queues changed objects for a provider and wakes its waiting activity; an object queued already is untaken again. */
export async function queueChanges(
  q: Queryable,
  providerId: string,
  changes: { userIds: readonly string[]; groupIds: readonly string[] },
): Promise<void> {
  if (changes.userIds.length + changes.groupIds.length === 0) return;
  // One statement, so the notification leaves with the rows (at its commit).
  await q.query(
    `WITH queued AS (
       INSERT INTO provider_changes (provider_id, object_type, object_id)
       SELECT DISTINCT $1::uuid, kind, id FROM (
         SELECT 'user' AS kind, id FROM unnest($2::uuid[]) AS id
         UNION ALL SELECT 'group', id FROM unnest($3::uuid[]) AS id
       ) AS changed
       ON CONFLICT (provider_id, object_type, object_id) DO UPDATE SET taken_by = NULL
       RETURNING 1
     )
     SELECT pg_notify('${CHANGES_CHANNEL}', $1::text) WHERE EXISTS (SELECT 1 FROM queued)`,
    [providerId, changes.userIds, changes.groupIds],
  );
}

/** How many changes wait for the provider, untaken (counted up to `cap`). */
export async function queuedChanges(q: Queryable, providerId: string, cap: number): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (
       SELECT 1 FROM provider_changes WHERE provider_id = $1 AND taken_by IS NULL LIMIT $2
     ) AS waiting`,
    [providerId, cap],
  );
  return rows[0]!.n;
}

/** Whether changes have waited untaken for the provider longer than `ms` (nobody takes them: wake its workflow). */
export async function hasStaleChanges(q: Queryable, providerId: string, ms: number): Promise<boolean> {
  const { rows } = await q.query(
    `SELECT 1 FROM provider_changes
      WHERE provider_id = $1 AND taken_by IS NULL AND queued_at < now() - make_interval(secs => $2) LIMIT 1`,
    [providerId, ms / 1000],
  );
  return rows.length > 0;
}

/**
 * Marks up to `limit` waiting changes as taken by run `runId` and returns them, with those it took already (a retried
 * attempt of the same push takes what its first attempt took).
 */
export async function takeChanges(
  q: Queryable,
  providerId: string,
  runId: string,
  limit: number,
): Promise<{ userIds: string[]; groupIds: string[] }> {
  const { rows } = await q.query<{ object_type: 'user' | 'group'; object_id: string }>(
    `WITH picked AS (
       SELECT object_type, object_id FROM provider_changes
        WHERE provider_id = $1 AND (taken_by IS NULL OR taken_by = $2)
        ORDER BY taken_by IS NULL, queued_at
        LIMIT $3
        FOR UPDATE SKIP LOCKED
     )
     UPDATE provider_changes AS c SET taken_by = $2
       FROM picked
      WHERE c.provider_id = $1 AND c.object_type = picked.object_type AND c.object_id = picked.object_id
     RETURNING c.object_type, c.object_id`,
    [providerId, runId, limit],
  );
  return {
    userIds: rows.filter((row) => row.object_type === 'user').map((row) => row.object_id),
    groupIds: rows.filter((row) => row.object_type === 'group').map((row) => row.object_id),
  };
}

/** Forgets the changes run `runId` took (it has ended); objects that changed since wait for the next push. */
export async function dropTakenChanges(q: Queryable, runId: string): Promise<void> {
  await q.query('DELETE FROM provider_changes WHERE taken_by = $1', [runId]);
}

/**
 * Queues again the changes run `runId` took and never finished with (its workflow ended first), and wakes the
 * provider's waiting activity: the next push takes them.
 */
export async function releaseTakenChanges(q: Queryable, providerId: string, runId: string): Promise<void> {
  await q.query(
    `WITH released AS (UPDATE provider_changes SET taken_by = NULL WHERE taken_by = $2 RETURNING 1)
     SELECT pg_notify('${CHANGES_CHANNEL}', $1::text) WHERE EXISTS (SELECT 1 FROM released)`,
    [providerId, runId],
  );
}

/** Forgets every change waiting for the provider: a full sync about to read the directory brings them all. */
export async function dropQueuedChanges(q: Queryable, providerId: string): Promise<void> {
  await q.query('DELETE FROM provider_changes WHERE provider_id = $1', [providerId]);
}
