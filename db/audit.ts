/** The audit log: who changed what, when and from where. Details name fields, never secret values. */
import * as z from 'zod';
import type { Queryable } from './pool.ts';

/** One change to record. */
export interface AuditEntry {
  /** The token name, or `local:<user>` for commands run directly against the database. */
  actor: string;
  remoteAddress: string | null;
  /** `<target type>.<verb>`, e.g. `provider.update`, `token.revoke`, `sync.start`. */
  action: string;
  targetType: string;
  targetId: string | null;
  targetName: string | null;
  details?: Record<string, unknown>;
}

/** A recorded change. */
export interface AuditView extends Required<AuditEntry> {
  id: string;
  at: string;
}

/** `GET /audit` parameters: newest first, a page at a time. */
export const AuditQuerySchema = z.object({
  before: z.coerce.number().int().min(1).optional().describe('the `next` value of the previous page'),
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('most entries in the page'),
  actor: z.string().max(200).optional().describe('only changes by this token name'),
  targetType: z.string().max(50).optional().describe('only changes to this kind of object, e.g. `provider`'),
});
export type AuditQuery = z.infer<typeof AuditQuerySchema>;

interface AuditRow {
  id: string;
  at: Date;
  actor: string;
  remote_address: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  target_name: string | null;
  details: Record<string, unknown>;
}

/** Records one change. */
export async function recordAudit(q: Queryable, entry: AuditEntry): Promise<void> {
  await q.query(
    `INSERT INTO audit_log (actor, remote_address, action, target_type, target_id, target_name, details)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)`,
    [
      entry.actor,
      entry.remoteAddress,
      entry.action,
      entry.targetType,
      entry.targetId,
      entry.targetName,
      JSON.stringify(entry.details ?? {}),
    ],
  );
}

/** Recorded changes, newest first; `next` is the `before` of the following page, null on the last one. */
export async function listAudit(q: Queryable, query: AuditQuery): Promise<{ items: AuditView[]; next: string | null }> {
  const { rows } = await q.query<AuditRow>(
    `SELECT id::text, at, actor, remote_address, action, target_type, target_id, target_name, details
       FROM audit_log
      WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR target_type = $3)
      ORDER BY audit_log.id DESC LIMIT $4`,
    [query.before ?? null, query.actor ?? null, query.targetType ?? null, query.limit + 1],
  );
  const page = rows.slice(0, query.limit);
  return {
    items: page.map((row) => ({
      id: row.id,
      at: row.at.toISOString(),
      actor: row.actor,
      remoteAddress: row.remote_address,
      action: row.action,
      targetType: row.target_type,
      targetId: row.target_id,
      targetName: row.target_name,
      details: row.details,
    })),
    next: rows.length > query.limit ? page.at(-1)!.id : null,
  };
}
