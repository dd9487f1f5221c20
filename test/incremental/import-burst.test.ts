import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createApi, startApiServer } from '../../api/index.ts';
import { createSecretBox, generateSecretKey, type StreamImportCounts } from '../../db/index.ts';
import { createTestToken, recordingSyncControl, validatePluginOptions } from '../api/api-harness.ts';
import { eventually, incrementalWorld, person } from './harness.ts';

const USERS = 300;
const BATCH_ROWS = 50;

/**
 * An incremental world whose provider switches to a full sync past 100 queued objects (standing for the default
 * 10,000: the same switch, at a size a test syncs in seconds), an API server on its database writing streamed imports
 * 50 rows per transaction, and a provider; `importUsers` streams 300 new users to it.
 */
async function importWorld(t: TestContext, relay: boolean) {
  const world = await incrementalWorld(t, { relay, flush: { maxPending: 100 } });
  const api = await startApiServer(
    createApi({
      db: world.db,
      secrets: createSecretBox(generateSecretKey()),
      sync: recordingSyncControl(),
      validatePluginOptions,
      policy: { importBatchRows: BATCH_ROWS },
    }),
    { host: '127.0.0.1', port: 0 },
  );
  t.after(() => api.close());
  const provider = await world.newProvider();
  const token = await createTestToken(world.db, 'admin');
  const importUsers = async () => {
    const lines = Array.from({ length: USERS }, (_, i) => JSON.stringify({ user: person(i) })).join('\n');
    const response = await fetch(`${api.url}/api/v1/import/stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
      body: lines,
    });
    const counts = (await response.json()) as StreamImportCounts;
    assert.equal(response.status, 200, JSON.stringify(counts));
    assert.equal(counts.users.created, USERS);
    assert.equal(counts.batches, USERS / BATCH_ROWS);
  };
  /** Once every user is on the target and nothing is left to do: the provider's runs (kind, status, created). */
  const settledRuns = async () => {
    await eventually(
      `${USERS} users on the target`,
      async () => ((await world.target.users()).length === USERS ? true : undefined),
      60_000,
    );
    await eventually('every change handled and no run under way', async () => {
      const { rows: undelivered } = await world.db.query(`SELECT 1 FROM outbox WHERE dispatched_at IS NULL`);
      const { rows: running } = await world.db.query(`SELECT 1 FROM sync_runs WHERE status = 'running'`);
      return undelivered.length === 0 && running.length === 0 ? true : undefined;
    });
    const remote = await world.target.users();
    assert.equal(new Set(remote.map((user) => user.userName)).size, USERS, 'no user twice on the target');
    const { rows } = await world.db.query<{ kind: string; status: string; created: number }>(
      `SELECT kind, status, created FROM sync_runs WHERE provider_id = $1 ORDER BY started_at`,
      [provider.id],
    );
    return rows;
  };
  return { ...world, importUsers, settledRuns };
}

test('a streamed import past maxPending, relayed after it committed, reaches a provider as one full sync', async (t) => {
  const { importUsers, settledRuns, startRelay } = await importWorld(t, false);
  await importUsers();
  // The relay finds the 300 changes committed in 6 transactions, as it does after an import it lagged behind.
  await startRelay();
  const runs = await settledRuns();
  assert.deepEqual(
    runs.map((run) => [run.kind, run.status, run.created]),
    [['full', 'succeeded', USERS]],
    'one full sync, which created every imported user, and no incremental push',
  );
});

test('a streamed import past maxPending with the relay live: each user created once, by pushes or full syncs', async (t) => {
  const { importUsers, settledRuns } = await importWorld(t, true);
  await importUsers();
  const runs = await settledRuns();
  // Batches relayed while the queue was under the threshold go out as pushes, the rest by full syncs: how many of
  // each depends on how the relay's rounds meet the import's commits, so only what must hold is checked.
  assert.ok(
    runs.every((run) => run.status === 'succeeded'),
    JSON.stringify(runs),
  );
  assert.equal(
    runs.reduce((sum, run) => sum + run.created, 0),
    USERS,
    `each user created once: ${JSON.stringify(runs)}`,
  );
});
