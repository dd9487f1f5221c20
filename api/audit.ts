/** The audit trail of the admin API: recording each change with its caller, and the route that reads them back. */
import * as z from 'zod';
import {
  AuditQuerySchema,
  inTransaction,
  listAudit,
  recordAudit,
  type AuditEntry,
  type Db,
  type Queryable,
} from '../db/index.ts';
import type { Caller } from './auth.ts';
import { defineRoute, named, type ApiRoute } from './route.ts';
import { pageOf } from './view-schemas.ts';

/** What a change was; the auditor adds who made it and from where. */
export type AuditChange = Omit<AuditEntry, 'actor' | 'remoteAddress'>;

/** Records what callers change. */
export interface Auditor {
  /**
   * Runs `write` in one transaction with the audit row `describe` makes of its result (none when it returns null),
   * so no change is committed without its row, and no row without its change.
   */
  change<T>(
    caller: Caller | null,
    write: (q: Queryable) => Promise<T>,
    describe: (result: T) => AuditChange | null,
  ): Promise<T>;
  /** Records an action that is not a write of this database (a sync asked of Temporal), once it has happened. */
  record(caller: Caller | null, entry: AuditChange): Promise<void>;
}

/** An Auditor writing to the audit_log table. */
export function createAuditor(db: Db): Auditor {
  const entryOf = (caller: Caller | null, change: AuditChange): AuditEntry => ({
    ...change,
    actor: caller?.name ?? 'anonymous',
    remoteAddress: caller?.remoteAddress ?? null,
  });
  return {
    change: (caller, write, describe) =>
      inTransaction(db, async (client) => {
        const result = await write(client);
        const change = describe(result);
        if (change !== null) await recordAudit(client, entryOf(caller, change));
        return result;
      }),
    record: (caller, entry) => recordAudit(db, entryOf(caller, entry)),
  };
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
