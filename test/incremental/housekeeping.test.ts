import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createProvider,
  createSecretBox,
  createUser,
  generateSecretKey,
  ProviderInputSchema,
  pruneHistory,
  type Db,
} from '../../db/index.ts';
import { ensureHousekeepingSchedule, housekeepingScheduleId } from '../../engine/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { eventually, incrementalWorld, person } from './harness.ts';

/** A provider with runs: `ages` are the days since each run finished (null: still running), oldest first. */
async function providerWithRuns(db: Db, slug: string, ages: Array<number | null>): Promise<string[]> {
  const provider = await createProvider(
    db,
    createSecretBox(generateSecretKey()),
    ProviderInputSchema.parse({ slug, name: slug, baseUrl: 'https://scim.example.test/v2', auth: { mode: 'none' } }),
  );
  const ids: string[] = [];
  for (const [i, age] of ages.entries()) {
    const started = (age ?? 0) + 1;
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO sync_runs (provider_id, kind, status, started_at, finished_at)
       VALUES ($1, 'full', $2, now() - make_interval(days => $3) + make_interval(secs => $4),
               CASE WHEN $5::int IS NULL THEN NULL ELSE now() - make_interval(days => $5::int) END)
       RETURNING id`,
      [provider.id, age === null ? 'running' : 'succeeded', started, i, age],
    );
    ids.push(rows[0]!.id);
    await db.query(
      `INSERT INTO sync_events (run_id, object_type, local_id, action) VALUES ($1, 'user', gen_random_uuid(), 'create')`,
      [ids[i]],
    );
  }
  return ids;
}

describe('housekeeping', () => {
  test('pruning deletes dispatched outbox rows and finished runs past retention, and keeps everything else', async (t) => {
    const testDb = await createTestDatabase();
    const { db } = testDb;
    t.after(() => testDb.drop());
    for (let i = 0; i < 4; i += 1) await createUser(db, person(i));
    const seqs = (await db.query<{ seq: string }>('SELECT seq FROM outbox ORDER BY seq')).rows.map((r) => r.seq);
    // Old and dispatched, old but never dispatched, recent and dispatched, recent and pending.
    await db.query(
      `UPDATE outbox SET created_at = now() - interval '30 days', dispatched_at = now() - interval '30 days' WHERE seq = $1`,
      [seqs[0]],
    );
    await db.query(`UPDATE outbox SET created_at = now() - interval '30 days' WHERE seq = $1`, [seqs[1]]);
    await db.query(`UPDATE outbox SET dispatched_at = now() - interval '1 day' WHERE seq = $1`, [seqs[2]]);
    const busy = await providerWithRuns(db, 'busy', [200, 120, 100, 5, null]);
    const quiet = await providerWithRuns(db, 'quiet', [300, 200]);

    const result = await pruneHistory(db, { outboxDays: 7, runDays: 90 }, 1);
    assert.deepEqual(result, { outboxRows: 1, runs: 4 });
    const outbox = (await db.query<{ seq: string }>('SELECT seq FROM outbox ORDER BY seq')).rows.map((r) => r.seq);
    assert.deepEqual(outbox, seqs.slice(1));
    const runs = (await db.query<{ id: string }>('SELECT id FROM sync_runs ORDER BY started_at')).rows
      .map((r) => r.id)
      .sort();
    assert.deepEqual(
      runs,
      [busy[3], busy[4], quiet[1]].sort(),
      "recent, running, and each provider's latest run are kept",
    );
    const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM sync_events');
    assert.equal(Number(rows[0]!.n), 3, 'events went with their runs');
    assert.deepEqual(await pruneHistory(db, { outboxDays: 7, runDays: 90 }), { outboxRows: 0, runs: 0 });
  });

  test('the housekeeping schedule is created once and its runs prune the history', async (t) => {
    const { db, client, taskQueue } = await incrementalWorld(t, { relay: false });
    await ensureHousekeepingSchedule({ client, taskQueue });
    const handle = client.schedule.getHandle(housekeepingScheduleId(taskQueue));
    t.after(() => handle.delete().catch(() => undefined));
    const created = (await handle.describe()).info.createdAt;
    // Later starts, two of them at once, find the schedule there and leave it as it is.
    await Promise.all([
      ensureHousekeepingSchedule({ client, taskQueue }),
      ensureHousekeepingSchedule({ client, taskQueue }),
    ]);
    const described = await handle.describe();
    assert.deepEqual(described.info.createdAt, created, 'the schedule was not created again');
    assert.equal(described.info.lastUpdatedAt, undefined, 'nor updated');
    assert.equal(described.spec.intervals?.[0]?.every, 6 * 60 * 60 * 1000);

    await createUser(db, person(1));
    await db.query(`UPDATE outbox SET dispatched_at = now() - interval '30 days'`);
    await handle.trigger();
    await eventually('the old outbox row pruned', async () => {
      const { rows } = await db.query('SELECT 1 FROM outbox');
      return rows.length === 0 ? true : undefined;
    });
  });
});
