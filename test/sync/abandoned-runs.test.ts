import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { closeAbandonedRuns } from '../../activities/run-lifecycle.ts';
import {
  createProvider,
  createRun,
  createSecretBox,
  createUser,
  finishRun,
  generateSecretKey,
  queueChanges,
  queuedChanges,
  takeChanges,
  UserInputSchema,
  type Db,
} from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { storeOnlyProviderInput } from '../support/providers.ts';

let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
before(async () => {
  testDb = await createTestDatabase();
});
after(async () => {
  await testDb.drop();
});

async function run(db: Db, id: string) {
  const { rows } = await db.query<{ status: string; finished: boolean; error: { code: string } | null }>(
    'SELECT status, finished_at IS NOT NULL AS finished, error FROM sync_runs WHERE id = $1',
    [id],
  );
  return rows[0]!;
}

test('closing the runs a terminated workflow left open: they end cancelled, and what a push had taken waits again', async () => {
  const { db } = testDb;
  const provider = await createProvider(db, createSecretBox(generateSecretKey()), storeOnlyProviderInput('left'));
  const other = await createProvider(db, createSecretBox(generateSecretKey()), storeOnlyProviderInput('other'));
  const done = await createRun(db, provider.id, 'full', 'full-sync:left');
  await finishRun(db, done, 'succeeded', null);
  const running = await createRun(db, provider.id, 'full', 'full-sync:left');
  const queued = await createRun(db, provider.id, 'full', 'full-sync:left', 'queued');
  const push = await createRun(db, provider.id, 'incremental', 'provider-sync:left');
  const elsewhere = await createRun(db, other.id, 'full', 'full-sync:other');
  const user = await createUser(db, UserInputSchema.parse({ username: 'taken@example.test' }));
  await queueChanges(db, provider.id, { userIds: [user.id], groupIds: [] });
  assert.deepEqual((await takeChanges(db, provider.id, push, 10)).userIds, [user.id]);
  assert.equal(await queuedChanges(db, provider.id, 10), 0, 'taken by the push');

  // Only the run named, when one is.
  assert.equal(await closeAbandonedRuns(db, provider.id, running), 1);
  assert.equal(await closeAbandonedRuns(db, provider.id, running), 0, 'closed already');
  assert.equal((await run(db, queued)).status, 'queued');

  assert.equal(await closeAbandonedRuns(db, provider.id, null), 2);
  for (const id of [running, queued, push]) {
    const closed = await run(db, id);
    assert.deepEqual([closed.status, closed.finished, closed.error?.code], ['cancelled', true, 'ERR_RUN_ABANDONED']);
  }
  assert.deepEqual(await run(db, done), { status: 'succeeded', finished: true, error: null }, 'an ended run is left');
  assert.equal((await run(db, elsewhere)).status, 'running', "another provider's run is left");
  assert.equal(await queuedChanges(db, provider.id, 10), 1, "the push's change waits for the next push again");
});
