import { randomUUID } from 'node:crypto';
import type { TestContext } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import {
  addMembers,
  createGroup,
  createProvider,
  createUser,
  createSecretBox,
  generateSecretKey,
  getProviderForSync,
  importDirectory,
  type Db,
  type DirectoryUser,
  type ProviderInput,
  type ProviderView,
} from '../../db/index.ts';
import {
  configureTemporalLogging,
  createLogger,
  createSyncControl,
  createWorker,
  startOutboxRelay,
  queueDeliver,
  temporalDeliver,
  type Deliver,
  type OutboxRelay,
  type TemporalSyncControl,
} from '../../engine/index.ts';
import { createPluginRegistry } from '../../plugins/index.ts';
import { providerSyncWorkflowId, type FlushPolicy } from '../../workflows/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { gatedProxy } from '../support/gated-proxy.ts';
import { testTemporalAddress } from '../support/temporal.ts';
import { testProviderInput } from '../support/providers.ts';
import { startScimTarget, type ScimTarget } from '../servers/index.ts';

/**
 * Polls `check` until it returns a value other than undefined; fails with `what` after `timeoutMs`, adding what
 * `explain` says (the state to look at when it times out).
 */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  explain?: () => Promise<string>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const state = explain ? `\n${await explain().catch((error: unknown) => String(error))}` : '';
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}${state}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * A workflow's status and history length, and each pending activity's attempt, state, worker, last heartbeat and last
 * failure, one per line, for a test that timed out (the error's text when it cannot be described).
 */
export function workflowState(client: Client, workflowId: string): Promise<string> {
  return client.workflow
    .getHandle(workflowId)
    .describe()
    .then(
      ({ status, raw, historyLength }) =>
        `${status.name}, ${historyLength} events, activities:` +
        (raw.pendingActivities ?? [])
          .map((a) => {
            const beat = a.lastHeartbeatTime?.seconds;
            const ago = beat ? `${Math.round(Date.now() / 1000 - Number(beat))} s ago` : 'never';
            const failure = a.lastFailure?.message ? `, last failure ${a.lastFailure.message}` : '';
            const state = ['unspecified', 'scheduled', 'started', 'cancel requested'][a.state ?? 0] ?? a.state;
            return `\n    ${a.activityType?.name} attempt ${a.attempt} ${state} on ${a.lastWorkerIdentity}, heartbeat ${ago}${failure}`;
          })
          .join(''),
      (error: unknown) => String(error),
    );
}

/** What a provider's sync is doing, for a test that timed out: its workflow, queued changes, runs and the outbox. */
export async function syncState(db: Db, client: Client, provider: Pick<ProviderView, 'id' | 'slug'>): Promise<string> {
  const workflow = await workflowState(client, providerSyncWorkflowId(provider.slug));
  const queue = await db.query(
    `SELECT object_type, taken_by IS NOT NULL AS taken, count(*)::int AS n FROM provider_changes
      WHERE provider_id = $1 GROUP BY 1, 2`,
    [provider.id],
  );
  const runs = await db.query(
    `SELECT kind, status, created, updated, deleted, unchanged, failed, retrying, error->>'code' AS code
       FROM sync_runs WHERE provider_id = $1 ORDER BY started_at`,
    [provider.id],
  );
  const failures = await db.query(
    `SELECT e.object_type, e.action, e.detail FROM sync_events e JOIN sync_runs r ON r.id = e.run_id
      WHERE r.provider_id = $1 AND e.action IN ('fail', 'retry') ORDER BY e.id LIMIT 5`,
    [provider.id],
  );
  const outbox = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE dispatched_at IS NULL');
  return [
    `provider workflow: ${workflow}`,
    `queued: ${JSON.stringify(queue.rows)}`,
    `outbox undispatched: ${outbox.rows[0]?.n}`,
    `runs: ${runs.rows.map((r) => JSON.stringify(r)).join('\n  ')}`,
    `failures: ${failures.rows.map((r) => JSON.stringify(r)).join('\n  ')}`,
  ].join('\n');
}

/** A sync run once it has ended (polled for up to 30 s): its status, deletions and error. */
export function endedRun(db: Db, runId: string) {
  return eventually(
    `run ${runId} to end`,
    async () => {
      const { rows } = await db.query<{
        status: string;
        deleted: number;
        error: { code: string; message: string } | null;
      }>('SELECT status, deleted, error FROM sync_runs WHERE id = $1 AND finished_at IS NOT NULL', [runId]);
      return rows[0];
    },
    30_000,
  );
}

/** Asks for a full sync and waits for its run to end; returns the run row. */
export async function fullSyncRun(
  db: Db,
  control: TemporalSyncControl,
  provider: ProviderView,
  allowDeletions = false,
) {
  return endedRun(db, (await control.requestFullSync(provider, { allowDeletions })).runId);
}

/** The group `app-users` with `count` new users (`person(0)`…) in it. */
export async function accessGroupWith(db: Db, count: number) {
  const access = await createGroup(db, { name: 'app-users', attributes: {} });
  const users: DirectoryUser[] = [];
  for (let i = 0; i < count; i += 1) users.push(await createUser(db, person(i)));
  await addMembers(
    db,
    access.id,
    users.map((u) => u.id),
  );
  return { access, users };
}

/**
 * A fresh database, a SCIMMY target, a worker on a task queue of its own and (unless `relay: false`) a running
 * outbox relay: the whole incremental path, one per test. `flush` is the batching policy of the provider workflows
 * the relay starts (default: the workflow's own).
 */
export async function incrementalWorld(
  t: TestContext,
  options: { relay?: boolean; flush?: Partial<FlushPolicy>; shutdownGraceTime?: string } = {},
) {
  // The SDK's warnings, as JSON lines on stderr: the test runner reads stdout.
  configureTemporalLogging(createLogger('warn', process.stderr));
  const testDb = await createTestDatabase();
  const db = testDb.db;
  const address = await testTemporalAddress();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: 'default' });
  const nativeConnection = await NativeConnection.connect({ address });
  const secrets = createSecretBox(generateSecretKey());
  const taskQueue = `test-${randomUUID()}`;
  const target = await startScimTarget();
  const plugins = createPluginRegistry();

  let worker: { stop(): Promise<void> } | null = null;
  const startWorker = async () => {
    const created = await createWorker({
      connection: nativeConnection,
      namespace: 'default',
      taskQueue,
      db,
      plugins,
      loadProvider: (id) => getProviderForSync(db, secrets, id),
      ...(options.shutdownGraceTime ? { shutdownGraceTime: options.shutdownGraceTime } : {}),
    });
    const running = created.worker.run();
    worker = {
      async stop() {
        created.worker.shutdown();
        await running;
        await created.targets.closeAll();
      },
    };
  };
  const stopWorker = async () => {
    const w = worker;
    worker = null;
    await w?.stop();
  };
  await startWorker();

  const relays: OutboxRelay[] = [];
  const startRelay = async (
    deliver: Deliver = queueDeliver(db, temporalDeliver(client, taskQueue, options.flush)),
    batchSize?: number,
  ) => {
    const relay = await startOutboxRelay({ db, deliver, pollIntervalMs: 200, ...(batchSize ? { batchSize } : {}) });
    relays.push(relay);
    return relay;
  };
  if (options.relay !== false) await startRelay();
  const control = createSyncControl({ client, taskQueue });

  t.after(async () => {
    for (const relay of relays) await relay.stop();
    await stopWorker();
    await target.close();
    await nativeConnection.close();
    await connection.close();
    await testDb.drop();
  });

  const newProvider = (overrides: Partial<ProviderInput> = {}): Promise<ProviderView> =>
    createProvider(db, secrets, providerInput(target, overrides));
  return { db, client, secrets, taskQueue, target, control, newProvider, startWorker, stopWorker, startRelay };
}

/**
 * A world (no relay) with `users` directory users and a provider behind a gated proxy (one range, pages of 10), whose
 * first full sync is under way with its first write held at the closed proxy.
 */
export async function heldFullSyncWorld(t: TestContext, users: number) {
  const world = await incrementalWorld(t, { relay: false });
  const proxy = await gatedProxy(world.target.url);
  t.after(async () => {
    proxy.open();
    await proxy.stop();
  });
  await importDirectory(world.db, { users: Array.from({ length: users }, (_, i) => person(i)) });
  const provider = await world.newProvider({ baseUrl: proxy.url, pageSize: 10, concurrency: 1 });
  proxy.close();
  const running = await world.control.requestFullSync(provider);
  await eventually('the full sync under way', () => Promise.resolve(proxy.held() > 0 ? true : undefined));
  return { ...world, proxy, provider, running };
}

/** A provider on the target with the defaults the tests share. */
export function providerInput(target: ScimTarget, overrides: Partial<ProviderInput> = {}): ProviderInput {
  return testProviderInput(target, 'inc', overrides);
}

/** A directory user input numbered `n`. */
export function person(n: number, prefix = 'person') {
  return {
    username: `${prefix}${n}@example.test`,
    displayName: `Person ${n}`,
    email: `${prefix}${n}@example.test`,
    givenName: 'Person',
    familyName: `Number ${n}`,
    active: true,
    kind: 'internal' as const,
    attributes: {},
  };
}
