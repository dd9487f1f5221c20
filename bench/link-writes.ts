/**
 * The engine's own cost per object of the group commit of links and their run events (issue #16): PostgreSQL's CPU
 * (its backend's, from /proc) and this process's per user created in a first full sync, as the link writer sends
 * them: each statement holds the `creating` links of 15 users about to be POSTed and the final links of the 15 before,
 * with their `create` events. This checkout vs a baseline commit, on one connection to one database that holds
 * `BENCH_LINKS` links beforehand (10,000), rounds alternating; medians are reported. `BENCH_BASELINE` (a git ref,
 * default `main`), `BENCH_OBJECTS` (users per round, 3,000), `BENCH_ROUNDS` (11).
 */
import { createHash, randomUUID } from 'node:crypto';
import { defaultUserPayload } from '../sandbox/index.ts';
import { variedUsers } from '../test/fixtures/directory.ts';
import { benchConnection, comparedRows, dbVariants, processCpuMs } from './baseline.ts';
import type { BenchRow } from './full-sync.ts';

import type * as DbModule from '../db/index.ts';

/** Objects per statement: what the link writer's group commit gathered in the scale bench (12 to 15). */
const GROUP = 15;

/** One user's three writes: its `creating` link, its final link and its `create` event. */
interface Created {
  creating: DbModule.Link;
  created: DbModule.Link;
  event: DbModule.RunEvent;
}

function users(providerId: string, runId: string, count: number): Created[] {
  const sha = (text: string) => createHash('sha256').update(text).digest('hex');
  return variedUsers(count).map((user) => {
    const localId = randomUUID();
    const remoteId = randomUUID();
    const payload = { ...defaultUserPayload(user), externalId: localId } as Record<string, unknown>;
    const creating: DbModule.Link = {
      providerId,
      objectType: 'user',
      localId,
      remoteId: null,
      lastPayloadHash: null,
      lastPayload: payload,
      status: 'creating',
      lastError: null,
      inputHash: null,
    };
    const hash = sha(JSON.stringify(payload));
    return {
      creating,
      created: { ...creating, remoteId, lastPayloadHash: hash, status: 'ok', inputHash: sha(hash) },
      event: { runId, objectType: 'user', localId, action: 'create', detail: { remoteId } },
    };
  });
}

/** Runs the bench; rows give each variant's median PostgreSQL and worker CPU µs per user. */
export async function runLinkWritesBench(): Promise<BenchRow[]> {
  const objects = Number(process.env['BENCH_OBJECTS'] ?? 3000);
  const rounds = Number(process.env['BENCH_ROUNDS'] ?? 11);
  const seeded = Number(process.env['BENCH_LINKS'] ?? 10_000);
  const variants = await dbVariants();
  const { client, q, pid, providerId, one, close } = await benchConnection();
  try {
    const { id: runId } = await one<{ id: string }>(
      `INSERT INTO sync_runs (provider_id, kind) VALUES ($1, 'full') RETURNING id`,
      [providerId],
    );
    for (let done = 0; done < seeded; done += 1000) {
      const batch = users(providerId, runId, Math.min(1000, seeded - done));
      await variants[1]!.db.saveLinks(
        q,
        batch.map((user) => user.created),
      );
    }
    await client.query('ANALYZE provider_links, sync_events, sync_runs');

    const results = variants.map(() => ({ postgres: [] as number[], worker: [] as number[] }));
    for (let round = -1; round < rounds; round += 1) {
      // Round -1 warms both and is not counted; each variant's batch follows the other's.
      for (const index of [0, 1]) {
        const batch = users(providerId, runId, objects);
        const { db } = variants[index]!;
        const startWorker = process.cpuUsage();
        const startPostgres = processCpuMs(pid);
        for (let start = 0; start < objects + GROUP; start += GROUP) {
          const posted = batch.slice(start, start + GROUP);
          const answered = start === 0 ? [] : batch.slice(start - GROUP, start);
          await db.saveLinksWithEvents(
            q,
            [...posted.map((user) => user.creating), ...answered.map((user) => user.created)],
            answered.map((user) => user.event),
          );
        }
        const postgres = processCpuMs(pid) - startPostgres;
        const worker = process.cpuUsage(startWorker);
        if (round < 0) continue;
        results[index]!.postgres.push((postgres * 1000) / objects);
        results[index]!.worker.push((worker.user + worker.system) / objects);
      }
    }
    return comparedRows(
      variants.map((variant) => variant.name),
      results,
      { postgres: 'PostgreSQL', worker: 'worker' },
      ({ postgres, worker }) => `PostgreSQL ${postgres.toFixed(1)} µs, worker ${worker.toFixed(1)} µs CPU per user`,
    );
  } finally {
    await close();
  }
}
