/**
 * The engine's own cost per group created in a first full sync, for its members (issue #16): a page of 100 groups
 * reads their member digests and first chunks (`memberHeads`), and the members each group was created with are
 * recorded (`recordCreatedMembers`, as the created-members writer gathers them). PostgreSQL's CPU (its backend's,
 * from /proc) and this process's, per group, this checkout vs a baseline commit, on one connection to one database
 * that holds `BENCH_GROUPS` groups (1,000) of `BENCH_MEMBERS` members (20) each linked user, rounds alternating;
 * medians are reported. `BENCH_BASELINE` (a git ref, default `main`), `BENCH_ROUNDS` (9).
 */
import { ProviderScopeSchema } from '../db/index.ts';
import { benchConnection, comparedRows, dbVariants, processCpuMs } from './baseline.ts';
import { seedBenchDirectory, type BenchRow } from './full-sync.ts';

import type * as DbModule from '../db/index.ts';

/** Groups a page reads together, and groups whose created members one statement records (a page's creates). */
const PAGE = 100;

/** The chunk of members a create sends (the SCIM 2.0 plugin's). */
const CHUNK = 1000;

/** Runs the bench; rows give each variant's median PostgreSQL and worker CPU µs per group. */
export async function runMemberHeadsBench(): Promise<BenchRow[]> {
  const groups = Number(process.env['BENCH_GROUPS'] ?? 1000);
  const members = Number(process.env['BENCH_MEMBERS'] ?? 20);
  const rounds = Number(process.env['BENCH_ROUNDS'] ?? 9);
  const variants = await dbVariants();
  const { client, q, pid, providerId, one, close } = await benchConnection();
  try {
    // Every user in one group and linked, as after a first sync's users phase.
    await seedBenchDirectory(client as unknown as DbModule.Db, groups * members, groups);
    await client.query(
      `INSERT INTO provider_links (provider_id, object_type, local_id, remote_id, status, synced_at)
       SELECT $1, 'user', id, 'remote-' || id, 'ok', now() FROM users`,
      [providerId],
    );
    await client.query('ANALYZE provider_links');
    const groupIds = (await client.query<{ id: string }>('SELECT id FROM groups ORDER BY id')).rows.map(
      (row) => row.id,
    );
    const scope = ProviderScopeSchema.parse({});

    const results = variants.map(() => ({ postgres: [] as number[], worker: [] as number[] }));
    for (let round = -1; round < rounds; round += 1) {
      // Round -1 warms both and is not counted; each variant's pass follows the other's.
      for (const index of [0, 1]) {
        const { db } = variants[index]!;
        await client.query('DELETE FROM provider_group_members WHERE provider_id = $1', [providerId]);
        const startWorker = process.cpuUsage();
        const startPostgres = processCpuMs(pid);
        for (let start = 0; start < groups; start += PAGE) {
          const page = groupIds.slice(start, start + PAGE);
          const heads = await db.memberHeads(q, scope, providerId, page, CHUNK);
          await db.recordCreatedMembers(
            q,
            page.map((groupId) => ({ providerId, groupId, remoteIds: heads.get(groupId)?.first ?? [] })),
          );
        }
        const postgres = processCpuMs(pid) - startPostgres;
        const worker = process.cpuUsage(startWorker);
        if (round < 0) continue;
        results[index]!.postgres.push((postgres * 1000) / groups);
        results[index]!.worker.push((worker.user + worker.system) / groups);
      }
    }
    const { n: recorded } = await one<{ n: string }>(
      'SELECT count(*) AS n FROM provider_group_members WHERE provider_id = $1',
      [providerId],
    );
    if (Number(recorded) !== groups * members) {
      throw new Error(`recorded ${recorded} members of ${groups * members}: the variants do not do the same work`);
    }
    return comparedRows(
      variants.map((variant) => variant.name),
      results,
      { postgres: 'PostgreSQL', worker: 'worker' },
      ({ postgres, worker }) =>
        `PostgreSQL ${postgres.toFixed(1)} µs, worker ${worker.toFixed(1)} µs CPU per group of ${members}`,
    );
  } finally {
    await close();
  }
}
