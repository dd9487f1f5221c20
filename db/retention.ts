/**
 * Retention: the outbox and the run history grow with every change and every sync, so old rows are deleted in
 * bounded batches (short transactions, no long locks on tables the relay and the syncs write).
 */
import type { Queryable } from './pool.ts';

/** How long history is kept, in days. */
export interface RetentionPolicy {
  /** Outbox rows already handed to Temporal; rows not yet dispatched are never deleted. @default 7 */
  outboxDays: number;
  /** Finished sync runs with their events; each provider's latest run is always kept. @default 90 */
  runDays: number;
}

/** The retention scimflow applies unless configured otherwise. */
export const DEFAULT_RETENTION: RetentionPolicy = { outboxDays: 7, runDays: 90 };

/** What one prune deleted. */
export interface PruneResult {
  outboxRows: number;
  runs: number;
}

async function deleteInBatches(q: Queryable, sql: string, params: unknown[], batchSize: number): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await q.query(sql, [...params, batchSize]);
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < batchSize) return total;
  }
}

/** Deletes dispatched outbox rows and finished runs (their events go with them) older than the policy allows. */
export async function pruneHistory(q: Queryable, policy: RetentionPolicy, batchSize = 5_000): Promise<PruneResult> {
  const outboxRows = await deleteInBatches(
    q,
    `DELETE FROM outbox WHERE seq IN (
       SELECT seq FROM outbox WHERE dispatched_at < now() - make_interval(days => $1) ORDER BY seq LIMIT $2)`,
    [policy.outboxDays],
    batchSize,
  );
  // A run carries up to one event per object (a first full sync of a million users: a million events), so runs go
  // ten at a time.
  const runs = await deleteInBatches(
    q,
    `DELETE FROM sync_runs WHERE id IN (
       SELECT r.id FROM sync_runs r
        WHERE r.status <> 'running' AND r.finished_at < now() - make_interval(days => $1)
          AND r.id <> (SELECT latest.id FROM sync_runs latest WHERE latest.provider_id = r.provider_id
                        ORDER BY latest.started_at DESC LIMIT 1)
        LIMIT $2)`,
    [policy.runDays],
    Math.max(1, Math.floor(batchSize / 500)),
  );
  return { outboxRows, runs };
}
