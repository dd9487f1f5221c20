/** Read-only views of sync runs and provider links, for the API and the CLI. */
import { NotFoundError, ValidationError } from '../errors/index.ts';
import type { Queryable } from './pool.ts';
import type { LinkStatus } from './sync-store.ts';

/** A sync run as the API returns it. */
export interface SyncRunView {
  id: string;
  providerId: string;
  kind: 'full' | 'incremental';
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  workflowId: string | null;
  /** In-scope objects the run expects to examine. */
  total: number;
  /** Objects examined so far. */
  processed: number;
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
  skipped: number;
  failed: number;
  /** Objects left retrying after transient failures; the next push or full sync sends them again. */
  retrying: number;
  /** Objects each worker process examined (keyed by its Temporal identity, pid@host): how a full sync spread. */
  workers: Record<string, number>;
  /** Why the run as a whole failed, when it did. */
  error: Record<string, unknown> | null;
  startedAt: string;
  finishedAt: string | null;
}

/** What scimflow last did with one directory object on one provider. */
export interface LinkView {
  objectType: 'user' | 'group';
  localId: string;
  /** The username or group name, while the local object still exists. */
  localName: string | null;
  remoteId: string | null;
  status: LinkStatus;
  lastError: Record<string, unknown> | null;
  syncedAt: string;
}

/** Filters and keyset paging of `listLinks`; `after` is the `localId` of the previous page's last link. */
export interface LinkQuery {
  status?: LinkView['status'] | undefined;
  objectType?: LinkView['objectType'] | undefined;
  after?: string | undefined;
  /** @default 100 */
  limit?: number | undefined;
}

interface RunRow {
  id: string;
  provider_id: string;
  kind: SyncRunView['kind'];
  status: SyncRunView['status'];
  workflow_id: string | null;
  total: number;
  processed: number;
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
  skipped: number;
  failed: number;
  retrying: number;
  workers: Record<string, number>;
  error: Record<string, unknown> | null;
  started_at: Date;
  finished_at: Date | null;
}

interface LinkRow {
  object_type: LinkView['objectType'];
  local_id: string;
  local_name: string | null;
  remote_id: string | null;
  status: LinkView['status'];
  last_error: Record<string, unknown> | null;
  synced_at: Date;
}

/** Incremental pushes in a row that may fail before a provider is `stalled`. */
export const STALLED_AFTER_FAILED_PUSHES = 3;
/** Full syncs in a row that may fail before a provider is `stalled` (each is a scheduled interval, or asked for). */
export const STALLED_AFTER_FAILED_FULL_SYNCS = 2;

/**
 * How a provider's syncing goes: `stalled` once its last {@link STALLED_AFTER_FAILED_PUSHES} or more incremental
 * pushes failed (a cancelled one, which gave way to a full sync, does not count), or its last
 * {@link STALLED_AFTER_FAILED_FULL_SYNCS} or more full syncs; `failing` after fewer; else `ok`; with how many objects
 * are left retrying or failed.
 */
export interface SyncHealthView {
  state: 'ok' | 'failing' | 'stalled';
  failedPushesInARow: number;
  failedFullSyncsInARow: number;
  /** When the first run of the longer-running of those streaks started. */
  failingSince: string | null;
  /** The error of the last run that failed, push or full sync. */
  lastError: Record<string, unknown> | null;
  retrying: number;
  failed: number;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_LIMIT = 1000;

function toRun(row: RunRow): SyncRunView {
  return {
    id: row.id,
    providerId: row.provider_id,
    kind: row.kind,
    status: row.status,
    workflowId: row.workflow_id,
    total: row.total,
    processed: row.processed,
    created: row.created,
    updated: row.updated,
    deleted: row.deleted,
    unchanged: row.unchanged,
    skipped: row.skipped,
    failed: row.failed,
    retrying: row.retrying,
    workers: row.workers,
    error: row.error,
    startedAt: row.started_at.toISOString(),
    finishedAt: row.finished_at?.toISOString() ?? null,
  };
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new ValidationError('invalid page size', [
      { path: 'limit', message: `must be an integer from 1 to ${MAX_LIMIT}` },
    ]);
  }
  return limit;
}

/** One sync run; NotFoundError when there is none. */
export async function getRun(q: Queryable, runId: string): Promise<SyncRunView> {
  if (!UUID_PATTERN.test(runId)) throw new NotFoundError('run', runId);
  const { rows } = await q.query<RunRow>('SELECT * FROM sync_runs WHERE id = $1', [runId]);
  if (!rows[0]) throw new NotFoundError('run', runId);
  return toRun(rows[0]);
}

/** A provider's most recent runs, newest first. */
export async function listRuns(
  q: Queryable,
  providerId: string,
  options: { limit?: number | undefined } = {},
): Promise<SyncRunView[]> {
  const { rows } = await q.query<RunRow>(
    'SELECT * FROM sync_runs WHERE provider_id = $1 ORDER BY started_at DESC, id LIMIT $2',
    [providerId, checkLimit(options.limit ?? 20)],
  );
  return rows.map(toRun);
}

/** A provider's links in local id order, optionally only those of one status or object type. */
export async function listLinks(
  q: Queryable,
  providerId: string,
  query: LinkQuery = {},
): Promise<{ items: LinkView[]; next: string | null }> {
  const limit = checkLimit(query.limit ?? 100);
  if (query.after !== undefined && !UUID_PATTERN.test(query.after)) {
    throw new ValidationError('invalid page cursor', [
      { path: 'after', message: 'must be a localId from a previous page' },
    ]);
  }
  const { rows } = await q.query<LinkRow>(
    `SELECT l.object_type, l.local_id, COALESCE(u.username, g.name) AS local_name, l.remote_id, l.status, l.last_error, l.synced_at
       FROM provider_links l
       LEFT JOIN users u ON l.object_type = 'user' AND u.id = l.local_id
       LEFT JOIN groups g ON l.object_type = 'group' AND g.id = l.local_id
      WHERE l.provider_id = $1 AND ($2::text IS NULL OR l.status = $2) AND ($3::text IS NULL OR l.object_type = $3)
        AND ($4::uuid IS NULL OR l.local_id > $4)
      ORDER BY l.local_id, l.object_type LIMIT $5`,
    [providerId, query.status ?? null, query.objectType ?? null, query.after ?? null, limit + 1],
  );
  const items = rows.slice(0, limit).map((row) => ({
    objectType: row.object_type,
    localId: row.local_id,
    localName: row.local_name,
    remoteId: row.remote_id,
    status: row.status,
    lastError: row.last_error,
    syncedAt: row.synced_at.toISOString(),
  }));
  return { items, next: rows.length > limit ? (items.at(-1)?.localId ?? null) : null };
}

/** How a provider's syncing goes (see {@link SyncHealthView}). */
export async function syncHealth(q: Queryable, providerId: string): Promise<SyncHealthView> {
  const [pushes, fullSyncs, links] = await Promise.all([
    failedInARow(q, providerId, 'incremental'),
    failedInARow(q, providerId, 'full'),
    q.query<{ retrying: string; failed: string }>(
      `SELECT count(*) FILTER (WHERE status = 'retrying') AS retrying, count(*) FILTER (WHERE status = 'failed') AS failed
         FROM provider_links WHERE provider_id = $1 AND status IN ('retrying', 'failed')`,
      [providerId],
    ),
  ]);
  const stalled = pushes.length >= STALLED_AFTER_FAILED_PUSHES || fullSyncs.length >= STALLED_AFTER_FAILED_FULL_SYNCS;
  const failures = [...pushes, ...fullSyncs].sort((a, b) => b.started_at.getTime() - a.started_at.getTime());
  return {
    state: stalled ? 'stalled' : failures.length > 0 ? 'failing' : 'ok',
    failedPushesInARow: pushes.length,
    failedFullSyncsInARow: fullSyncs.length,
    failingSince: failures.at(-1)?.started_at.toISOString() ?? null,
    lastError: failures[0]?.error ?? null,
    retrying: Number(links.rows[0]?.retrying ?? 0),
    failed: Number(links.rows[0]?.failed ?? 0),
  };
}

/** The provider's latest finished runs of `kind` that failed, newest first, up to the last one that succeeded. */
async function failedInARow(
  q: Queryable,
  providerId: string,
  kind: SyncRunView['kind'],
): Promise<Array<{ error: Record<string, unknown> | null; started_at: Date }>> {
  const { rows } = await q.query<{
    status: SyncRunView['status'];
    error: Record<string, unknown> | null;
    started_at: Date;
  }>(
    `SELECT status, error, started_at FROM sync_runs
      WHERE provider_id = $1 AND kind = $2 AND status IN ('succeeded', 'failed')
      ORDER BY started_at DESC, id LIMIT 100`,
    [providerId, kind],
  );
  const streak = rows.findIndex((run) => run.status !== 'failed');
  return rows.slice(0, streak === -1 ? rows.length : streak);
}
