import { fileURLToPath } from 'node:url';
import { fork } from 'node:child_process';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { Worker, type NativeConnection, type WorkflowBundle } from '@temporalio/worker';
import {
  createDeletionGuardActivities,
  createProviderCheckActivities,
  createProviderAuthorisationActivities,
  createFullSyncActivities,
  createHousekeepingActivities,
  createSandboxMapper,
  createTargetPool,
  type PayloadMapper,
  type TargetPool,
} from '../activities/index.ts';
import { createCredentialService, type CredentialService, type GrantStore } from '../auth/credentials.ts';
import { createMappingEngine, type MappingEngine } from '../sandbox/index.ts';
import { createRateBudgets } from '../budget/index.ts';
import {
  createRateBudgetStore,
  DEFAULT_RETENTION,
  type Db,
  type ProviderForSync,
  type RetentionPolicy,
} from '../db/index.ts';
import type { PluginRegistry } from '../plugins/index.ts';
import { createScheduleActivities } from './schedules.ts';

const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
const BUNDLER_PATH = fileURLToPath(new URL('./workflow-bundler.ts', import.meta.url));

let bundlePromise: Promise<WorkflowBundle> | undefined;

/**
 * Bundles the workflow code once per process (webpack takes 1–2 s), in a child process so that the bundler's memory
 * leaves with it; every worker reuses the bundle. With `SCIMFLOW_WORKFLOW_BUNDLE_CACHE` (a file path, set by
 * `npm test` for one run) the first process writes the bundle there and later processes read it instead.
 */
export function workflowBundle(): Promise<WorkflowBundle> {
  const cache = process.env['SCIMFLOW_WORKFLOW_BUNDLE_CACHE'];
  bundlePromise ??= cache ? cachedBundle(cache) : bundleInChild();
  return bundlePromise;
}

async function cachedBundle(file: string): Promise<WorkflowBundle> {
  try {
    return { code: await readFile(file, 'utf8') };
  } catch {
    const bundle = await bundleInChild();
    // Written whole, then renamed: a process reading the cache meanwhile sees no file or a complete one.
    const partial = `${file}.${process.pid}`;
    await writeFile(partial, bundle.code);
    await rename(partial, file);
    return bundle;
  }
}

function bundleInChild(): Promise<WorkflowBundle> {
  return new Promise<WorkflowBundle>((resolve, reject) => {
    const child = fork(BUNDLER_PATH, [WORKFLOWS_PATH], {
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let code: string | undefined;
    child.once('message', (message) => {
      if (typeof message === 'string') code = message;
    });
    child.once('error', reject);
    child.once('exit', (exitCode, signal) => {
      if (code !== undefined) resolve({ code });
      else reject(new Error(`bundling the workflow code failed (exit ${signal ?? exitCode})`));
    });
  });
}

let mappingEngine: MappingEngine | undefined;

/** The process's one mapping engine (isolates are per provider inside it); workers use it unless given a mapper. */
export function processMappingEngine(): MappingEngine {
  mappingEngine ??= createMappingEngine();
  return mappingEngine;
}

/** Frees every isolate of the process's mapping engine; call after the workers have shut down. */
export async function disposeMappingEngine(): Promise<void> {
  await mappingEngine?.disposeAll();
}

/** What a scimflow worker runs on. */
export interface WorkerDeps {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  db: Db;
  plugins: PluginRegistry;
  loadProvider: (providerId: string) => Promise<ProviderForSync>;
  mapper?: PayloadMapper;
  targets?: TargetPool;
  /** Authenticates the SCIM clients of the default target pool (interactive OAuth needs one with a grant store). */
  credentials?: CredentialService;
  /** Interactive OAuth grants: without it this worker cannot complete an authorisation. */
  grants?: GrantStore;
  /** How long the housekeeping keeps outbox rows and sync runs. @default DEFAULT_RETENTION */
  retention?: RetentionPolicy;
  /** Concurrent activity executions on this worker (each is one batch of SCIM requests). */
  maxConcurrentActivities?: number;
  /** How long a shutdown lets running activities finish before cancelling them. @default '20 seconds' */
  shutdownGraceTime?: string;
}

// How often the worker's state is read to tell its activities it is stopping.
const STATE_WATCH_MS = 100;

/** Creates a Temporal worker with every scimflow workflow and activity; call `run()` on it. */
export async function createWorker(deps: WorkerDeps): Promise<{ worker: Worker; targets: TargetPool }> {
  const credentials = deps.credentials ?? createCredentialService();
  const targets =
    deps.targets ??
    createTargetPool(deps.plugins, { budgets: createRateBudgets(createRateBudgetStore(deps.db)), credentials });
  // Aborted once the worker starts shutting down, which the SDK tells no activity before its grace time is up.
  const stopping = new AbortController();
  const activities = createFullSyncActivities({
    db: deps.db,
    targets,
    mapper: deps.mapper ?? createSandboxMapper({ db: deps.db, engine: processMappingEngine() }),
    loadProvider: deps.loadProvider,
    stopping: stopping.signal,
  });
  const worker = await Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: deps.taskQueue,
    workflowBundle: await workflowBundle(),
    activities: {
      ...activities,
      ...createDeletionGuardActivities(deps),
      ...createHousekeepingActivities({ db: deps.db, retention: deps.retention ?? DEFAULT_RETENTION }),
      ...createScheduleActivities({ db: deps.db }),
      ...createProviderCheckActivities({ loadProvider: deps.loadProvider, credentials }),
      ...(deps.grants
        ? createProviderAuthorisationActivities({ loadProvider: deps.loadProvider, grants: deps.grants })
        : {}),
    },
    maxConcurrentActivityTaskExecutions: deps.maxConcurrentActivities ?? 64,
    // A cancellation reaches an activity only with the answer to one of its heartbeats; by default they are sent at
    // most every 48 s (80 % of the heartbeat timeout), so a push cancelled for a full sync could keep it waiting that long.
    maxHeartbeatThrottleInterval: '2 seconds',
    shutdownGraceTime: deps.shutdownGraceTime ?? '20 seconds',
  });
  // Its state, read every 100 ms: a wait for changes then ends at once instead of holding the shutdown for up to 1 s.
  const watch = setInterval(() => {
    const state = worker.getState();
    if (state === 'INITIALIZED' || state === 'RUNNING') return;
    stopping.abort();
    clearInterval(watch);
  }, STATE_WATCH_MS);
  watch.unref();
  return { worker, targets };
}
