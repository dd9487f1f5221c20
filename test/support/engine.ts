import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createCredentialService, type CredentialService } from '../../auth/credentials.ts';
import {
  createGrantStore,
  createSecretBox,
  generateSecretKey,
  getProviderForSync,
  type Db,
  type ProviderForSync,
  type SecretBox,
} from '../../db/index.ts';
import {
  configureTemporalLogging,
  createLogger,
  createSyncControl,
  createWorker,
  disposeMappingEngine,
  type TemporalSyncControl,
} from '../../engine/index.ts';
import { createPluginRegistry, type PluginRegistry } from '../../plugins/index.ts';
import { createTargetPool, type PayloadMapper, type TargetPoolOptions } from '../../activities/index.ts';
import type { FullSyncReport } from '../../workflows/index.ts';
import { testTemporalAddress } from './temporal.ts';

/** A real worker on a real Temporal server, on a task queue of its own, over a test database. */
export interface TestEngine {
  client: Client;
  secrets: SecretBox;
  control: TemporalSyncControl;
  taskQueue: string;
  /** Starts a full sync of the provider and waits for its workflow to finish; throws when the workflow fails. */
  fullSync(provider: {
    id: string;
    slug: string;
  }): Promise<{ runId: string; workflowId: string; report: FullSyncReport }>;
  shutdown(): Promise<void>;
}

/** Starts a worker for one test file. */
export async function startTestEngine(options: {
  db: Db;
  mapper?: PayloadMapper;
  plugins?: PluginRegistry;
  loadProvider?: (db: Db, secrets: SecretBox, id: string) => Promise<ProviderForSync>;
  /** Authenticates the worker's SCIM clients (default: the real service over this database). */
  credentials?: CredentialService;
  /** The key box provider tokens were sealed with; a fresh key when left out. */
  secrets?: SecretBox;
  /** Retry budget, breaker and timeouts of the worker's targets. */
  targets?: TargetPoolOptions;
  /** How long a shutdown lets running activities finish before cancelling them. */
  shutdownGraceTime?: string;
  /** The task queue to poll (another engine's, to share its work); a fresh one when left out. */
  taskQueue?: string;
}): Promise<TestEngine> {
  // The SDK's warnings, as JSON lines on stderr: the test runner reads stdout.
  configureTemporalLogging(createLogger('warn', process.stderr));
  const address = await testTemporalAddress();
  const secrets = options.secrets ?? createSecretBox(generateSecretKey());
  const nativeConnection = await NativeConnection.connect({ address });
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: 'default' });
  const taskQueue = options.taskQueue ?? `test-${randomUUID()}`;
  const load = options.loadProvider ?? getProviderForSync;
  const plugins = options.plugins ?? createPluginRegistry();
  const grants = createGrantStore(options.db, secrets);
  const credentials = options.credentials ?? createCredentialService({ grants });
  const { worker, targets } = await createWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    db: options.db,
    plugins,
    loadProvider: (id) => load(options.db, secrets, id),
    credentials,
    grants,
    ...(options.targets ? { targets: createTargetPool(plugins, { ...options.targets, credentials }) } : {}),
    ...(options.shutdownGraceTime ? { shutdownGraceTime: options.shutdownGraceTime } : {}),
    ...(options.mapper ? { mapper: options.mapper } : {}),
  });
  const running = worker.run();
  const control = createSyncControl({ client, taskQueue });
  let stopped: Promise<void> | undefined;
  // Ends the waits for runs still open at shutdown: closing the connection leaves a call in flight, and a run's
  // result is a long poll (about 20 s) that kept the test file's process open after its last test.
  const waits = new AbortController();
  return {
    client,
    secrets,
    control,
    taskQueue,
    async fullSync(provider) {
      const { runId, workflowId } = await control.requestFullSync(provider);
      const handle = client.workflow.getHandle(workflowId);
      const report = (await connection.withAbortSignal(waits.signal, () => handle.result())) as FullSyncReport;
      return { runId, workflowId, report };
    },
    shutdown() {
      stopped ??= (async () => {
        worker.shutdown();
        await running;
        await targets.closeAll();
        // As `scimflow start` stops: no isolate outlives its worker, and the handles left of them are collected now,
        // not while the process exits (an isolated-vm assertion then ended two test files whose tests had passed).
        await disposeMappingEngine();
        await nativeConnection.close();
        waits.abort();
        await connection.close();
      })();
      return stopped;
    },
  };
}
