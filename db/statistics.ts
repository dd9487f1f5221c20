/**
 * Planner statistics of the tables a full sync reads. A sync plans its queries from them: without any, PostgreSQL
 * took the 100,000 links of a provider for a handful and read them all for every page of groups (608 ms a page
 * instead of 56). Autovacuum keeps them current where it runs; a server without it (the test server), or a sync
 * right after a bulk write that autovacuum has not reached yet, gets them here.
 */
import type { Queryable } from './pool.ts';

/** The tables a full sync plans its reads on. */
const SYNC_TABLES = ['users', 'groups', 'group_members', 'provider_links'] as const;

/**
 * Analyses those of the sync's tables whose statistics autovacuum would renew now, by its default rule: more rows
 * inserted, updated or deleted since the last ANALYZE than 50 plus a tenth of the rows it counted then (all of
 * them, never analysed). Returns the tables analysed. Tables this role may not analyse (it is not their owner, nor a
 * member of the owner's role) are left to autovacuum: PostgreSQL would only warn and skip them, and a sync would ask
 * again every second.
 */
export async function refreshSyncStatistics(q: Queryable): Promise<string[]> {
  const { rows } = await q.query<{ relname: string }>(
    `SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
      WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[])
        AND s.n_mod_since_analyze > 50 + 0.1 * GREATEST(c.reltuples, 0)
        AND pg_has_role(c.relowner, 'USAGE')
      ORDER BY s.relname`,
    [SYNC_TABLES],
  );
  const stale = rows.map((row) => row.relname);
  // Names from the fixed list above, never from input.
  if (stale.length > 0) await q.query(`ANALYZE ${stale.join(', ')}`);
  return stale;
}
