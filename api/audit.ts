/** The audit trail of the admin API: recording each change with its caller, and the route that reads them back. */
import * as z from 'zod';
import { AuditQuerySchema, listAudit, recordAudit, type AuditEntry, type Db } from '../db/index.ts';
import type { Caller } from './auth.ts';
import { defineRoute, named, type ApiRoute } from './route.ts';
import { pageOf } from './view-schemas.ts';

/** Records a change made by `caller`; `entry` says what. */
export type Auditor = (caller: Caller | null, entry: Omit<AuditEntry, 'actor' | 'remoteAddress'>) => Promise<void>;

/** An Auditor writing to the audit_log table. */
export function createAuditor(db: Db): Auditor {
  return (caller, entry) =>
    recordAudit(db, { ...entry, actor: caller?.name ?? 'anonymous', remoteAddress: caller?.remoteAddress ?? null });
}

const AuditViewSchema = z.object({
  id: z.string(),
  at: z.string(),
  actor: z.string(),
  remoteAddress: z.string().nullable(),
  action: z.string(),
  targetType: z.string(),
  targetId: z.string().nullable(),
  targetName: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});

/** `GET /audit`: the recorded changes, newest first. */
export function auditRoutes(db: Db): ApiRoute[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/audit',
      operationId: 'listAudit',
      summary: 'List recorded changes (who, what, when, from where), newest first',
      tag: 'admin',
      role: 'admin',
      status: 200,
      query: AuditQuerySchema,
      response: named('AuditPage', pageOf(AuditViewSchema)),
      handle: ({ query }) => listAudit(db, query),
    }),
  ];
}
