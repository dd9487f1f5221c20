import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createProvider } from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { startTestEngine } from '../support/engine.ts';
import { testProviderInput } from '../support/providers.ts';
import { startFaultProxy, startScimTarget } from '../servers/index.ts';

test('a full sync to a target that takes 10 writes/s, with the provider limited to 8/s, is not refused', async (t) => {
  const testDb = await createTestDatabase();
  const engine = await startTestEngine({ db: testDb.db });
  const target = await startScimTarget();
  const proxy = await startFaultProxy({ target: target.url, writesPerSecond: 10 });
  t.after(async () => {
    await proxy.close();
    await target.close();
    await engine.shutdown();
    await testDb.drop();
  });
  await testDb.db.query(
    `INSERT INTO users (username, display_name) SELECT 'paced' || n, 'Paced ' || n FROM generate_series(1, 30) AS n`,
  );
  // Three batches of ten with four requests each in flight could send twelve writes at once. The limit leaves the
  // target's one-second windows some slack: the proxy runs on this process's event loop, where a stall bunches
  // requests that left on time.
  const provider = await createProvider(
    testDb.db,
    engine.secrets,
    testProviderInput({ ...target, url: proxy.url }, 'paced', {
      pageSize: 10,
      concurrency: 4,
      rateLimit: { requestsPerSecond: 8 },
    }),
  );

  const { report } = await engine.fullSync(provider);

  assert.equal(report.failed, 0);
  const remote = (await target.users()).map((user) => user.userName).sort();
  assert.deepEqual(remote, Array.from({ length: 30 }, (_, i) => `paced${i + 1}`).sort());
  // Paced by the shared budget, the writes stay under the target's limit; unpaced, most of them would be refused.
  const refused = proxy.counts()['over-limit'];
  assert.ok(refused <= 2, `${refused} writes answered 429`);
  const { rows } = await testDb.db.query<{ target: string }>('SELECT target FROM rate_budgets');
  assert.deepEqual(
    rows.map((row) => row.target),
    [new URL(proxy.url).origin],
  );
});
