import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createProvider, createSecretBox, generateSecretKey, refreshSyncStatistics, type Db } from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { storeOnlyProviderInput } from '../support/providers.ts';

type TestDb = Awaited<ReturnType<typeof createTestDatabase>>;

/** Rows changed in `table` since its last ANALYZE, as PostgreSQL's statistics say. */
async function changedSinceAnalyze(db: Db, table: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    'SELECT n_mod_since_analyze AS n FROM pg_stat_user_tables WHERE relname = $1 AND schemaname = current_schema()',
    [table],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Waits until PostgreSQL's statistics count at least `count` changed rows in `table` (backends report them late). */
async function untilCounted(db: Db, table: string, count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while ((await changedSinceAnalyze(db, table)) < count) {
    if (Date.now() > deadline) throw new Error(`PostgreSQL never counted ${count} changed rows in ${table}`);
    await delay(100);
  }
}

describe("the planner statistics of the sync's tables", () => {
  let testDb: TestDb;
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await testDb.drop();
  });

  test('are renewed when autovacuum would renew them, and not again until enough rows change', async () => {
    const { db } = testDb;
    await refreshSyncStatistics(db);
    await db.query(
      `INSERT INTO users (username) SELECT 'stat.user' || n || '@example.test' FROM generate_series(1, 400) AS n`,
    );
    await untilCounted(db, 'users', 400);

    assert.deepEqual(await refreshSyncStatistics(db), ['users'], 'users changed past 50 + 10 % of none');
    assert.equal(await changedSinceAnalyze(db, 'users'), 0);
    const { rows } = await db.query<{ reltuples: number }>(`SELECT reltuples FROM pg_class WHERE relname = 'users'`);
    assert.equal(rows[0]?.reltuples, 400, 'the planner now knows how many users there are');

    // 50 + 10 % of 400 is 90: 60 changes are not enough, 100 are.
    const update = (from: number, to: number) =>
      db.query(
        `UPDATE users SET display_name = 'changed'
          WHERE username IN (SELECT 'stat.user' || n || '@example.test' FROM generate_series($1::int, $2::int) AS n)`,
        [from, to],
      );
    await update(1, 60);
    await untilCounted(db, 'users', 60);
    assert.ok((await changedSinceAnalyze(db, 'users')) <= 90);
    assert.deepEqual(await refreshSyncStatistics(db), []);
    await update(61, 101);
    await untilCounted(db, 'users', 91);
    assert.deepEqual(await refreshSyncStatistics(db), ['users']);
  });

  test('of the links leave out the columns no query filters or joins on: payloads, hashes, errors, times', async () => {
    const { db } = testDb;
    const provider = await createProvider(db, createSecretBox(generateSecretKey()), storeOnlyProviderInput('stats'));
    await db.query(
      `INSERT INTO provider_links (provider_id, object_type, local_id, remote_id, last_payload_hash, last_payload,
                                   input_hash, last_error)
       SELECT $1, 'user', gen_random_uuid(), 'remote-' || n, md5(n::text), jsonb_build_object('userName', 'u' || n),
              md5(n::text), jsonb_build_object('code', 'ERR_' || n)
         FROM generate_series(1, 200) AS n`,
      [provider.id],
    );
    await db.query('ANALYZE provider_links');
    const { rows } = await db.query<{ attname: string }>(
      `SELECT attname FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'provider_links'
        ORDER BY attname`,
    );
    assert.deepEqual(
      rows.map((row) => row.attname),
      ['local_id', 'object_type', 'provider_id', 'remote_id', 'status'],
    );
  });

  test('of the links are taken from a sample of 6,000 rows, a fifth of the default, and still count them all', async () => {
    const { db } = testDb;
    const provider = await createProvider(db, createSecretBox(generateSecretKey()), storeOnlyProviderInput('sample'));
    await db.query(
      `INSERT INTO provider_links (provider_id, object_type, local_id, remote_id)
       SELECT $1, 'user', gen_random_uuid(), 'sampled-' || n FROM generate_series(1, 8000) AS n`,
      [provider.id],
    );
    await db.query('ANALYZE provider_links');
    // A histogram has one bound more than the statistics target: 101 with the default, whose sample is 30,000 rows.
    const { rows } = await db.query<{ attname: string; bounds: number }>(
      `SELECT attname, cardinality(histogram_bounds::text::text[]) AS bounds FROM pg_stats
        WHERE schemaname = current_schema() AND tablename = 'provider_links' AND attname IN ('local_id', 'remote_id')
        ORDER BY attname`,
    );
    assert.deepEqual(rows, [
      { attname: 'local_id', bounds: 21 },
      { attname: 'remote_id', bounds: 21 },
    ]);
    const { rows: counted } = await db.query<{ reltuples: number; links: number }>(
      `SELECT reltuples, (SELECT count(*)::int FROM provider_links) AS links
         FROM pg_class WHERE relname = 'provider_links' AND relnamespace = current_schema()::regnamespace`,
    );
    const { reltuples, links } = counted[0]!;
    assert.ok(Math.abs(reltuples - links) <= links * 0.05, `the planner counts ${reltuples} of ${links} links`);
  });
});
