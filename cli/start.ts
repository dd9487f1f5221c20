/**
 * `scimflow start` (everything in one process tree, for development and the demo: `demo.ts`), `scimflow worker` and
 * `scimflow api` (the production roles). All three are `startProcess` with a different choice of parts.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { Logger } from 'pino';
import {
  createApi,
  createOidcVerifier,
  LOOPBACK_HOSTS,
  startApiServer,
  type ApiPolicy,
  type SourceApiOptions,
} from '../api/index.ts';
import {
  describeTemporalSecurity,
  loadEnv,
  oidcSettings,
  temporalConnectionOptions,
  type Env,
} from '../config/index.ts';
import { createCredentialService } from '../auth/credentials.ts';
import { createGrantStore, getProviderForSync, sealerOf, type Db, type SecretBox } from '../db/index.ts';
import {
  configureTemporalLogging,
  createAuthorisationCompleter,
  createLogger,
  defaultLogFormat,
  createProviderChecker,
  createSyncControl,
  createWorker,
  ensureHousekeepingSchedule,
  disposeMappingEngine,
  openStore,
  processMappingEngine,
  reconcileSchedules,
  redactUrl,
  startOutboxRelay,
  queueDeliver,
  temporalDeliver,
  type TemporalSyncControl,
} from '../engine/index.ts';
import { createPluginRegistry, resolvePluginOptions } from '../plugins/index.ts';
import { embeddedTemporalStatePath, findTemporalBinary, startTemporalDevServer } from '../scripts/lib/temporal-dev.mjs';
import { loadDemoTarget, runDemo, type StartDemoTarget } from './demo.ts';
import { ensureLocalAdminToken } from './local-token.ts';
import { runStoppers, stopOnSignals, untilWorkerEnds, type Stopper } from './stoppers.ts';

async function connectTemporal(env: Env, stoppers: Stopper[], log: Logger): Promise<RunningProcess['temporal']> {
  if (env.TEMPORAL_ADDRESS)
    return { address: env.TEMPORAL_ADDRESS, uiUrl: env.TEMPORAL_UI_URL ?? null, stateFile: null };
  const binary = findTemporalBinary();
  if (!binary) {
    throw new Error(
      'TEMPORAL_ADDRESS is not set and no Temporal CLI was found: run `npm run setup` or set TEMPORAL_ADDRESS',
    );
  }
  // In a process group of its own: a terminal's Ctrl-C would otherwise end it at once, while the worker still
  // finishes its activities and reports them to it (gRPC retries and warnings for up to 20 s). It is stopped after
  // the worker and the connections (the stoppers run newest-first), and killed with this process if that dies.
  const options = {
    binary,
    headless: false,
    port: 7233,
    uiPort: 8233,
    fallbackToFreePorts: true,
    ownProcessGroup: true,
  };
  // Its state is kept on disk, so that stopping and starting scimflow resumes the runs under way.
  let stateFile: string | null = embeddedTemporalStatePath();
  log.info({ stateFile }, 'starting an embedded Temporal dev server');
  const server = await startTemporalDevServer({ ...options, dbFilename: stateFile }).catch((error: unknown) => {
    if ((error as { code?: unknown }).code !== 'ESTATEUNAVAILABLE') throw error;
    log.warn({ err: error }, 'the embedded Temporal server runs in memory: runs under way are lost when it stops');
    stateFile = null;
    return startTemporalDevServer(options);
  });
  stoppers.push(() => server.stop());
  return { address: server.address, uiUrl: server.uiUrl, stateFile };
}

const list = (value: string): string[] =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');

/** The API's allowlists and limits from the environment; the host it listens on is always an allowed name. */
function apiPolicy(env: Env): ApiPolicy {
  const listening = env.SCIMFLOW_API_HOST.includes(':') ? `[${env.SCIMFLOW_API_HOST}]` : env.SCIMFLOW_API_HOST;
  const wildcard = listening === '0.0.0.0' || listening === '[::]';
  return {
    allowedHosts: [...LOOPBACK_HOSTS, ...(wildcard ? [] : [listening]), ...list(env.SCIMFLOW_API_ALLOWED_HOSTS)],
    allowedOrigins: list(env.SCIMFLOW_API_ALLOWED_ORIGINS),
    maxBodyBytes: env.SCIMFLOW_API_MAX_BODY_BYTES,
    importMaxBodyBytes: env.SCIMFLOW_API_IMPORT_MAX_BYTES,
    importMaxLineBytes: env.SCIMFLOW_API_IMPORT_MAX_LINE_BYTES,
    importBatchRows: env.SCIMFLOW_API_IMPORT_BATCH_ROWS,
  };
}

/** The inbound SCIM sources' page maximum and per-token rate from the environment. */
export function sourceSettings(env: Env): SourceApiOptions {
  const ratePerSecond = env.SCIMFLOW_SOURCE_RATE_PER_SECOND;
  return { maxResults: env.SCIMFLOW_SOURCE_MAX_RESULTS, rateLimit: { ratePerSecond, burst: 2 * ratePerSecond } };
}

/** Which parts of scimflow one process runs. */
interface ProcessParts {
  /** The subcommand, for messages. */
  command: 'start' | 'worker' | 'api';
  /**
   * Development defaults: a per-machine secret key when SCIMFLOW_SECRET_KEY is unset, and an embedded Temporal dev
   * server when TEMPORAL_ADDRESS is unset. Without them both must be set.
   */
  development: boolean;
  /** The Temporal worker (with the process's mapping engine), the outbox relay and the schedules reconcile. */
  worker: boolean;
  /** The HTTP admin API. */
  api: boolean;
}

/** A process whose parts are running. Its stoppers run newest-first on SIGINT or SIGTERM. */
export interface RunningProcess {
  env: Env;
  log: Logger;
  db: Db;
  secrets: SecretBox;
  control: TemporalSyncControl;
  /** The Temporal frontend; `stateFile` is where an embedded server keeps its state (null: elsewhere or in memory). */
  temporal: { address: string; uiUrl: string | null; stateFile: string | null };
  /** The API's base URL, when the process serves it. */
  apiUrl: string | null;
  stoppers: Stopper[];
  /** Settles when the worker has stopped; never, when the process runs no worker. */
  done: Promise<void>;
}

/** Wires one scimflow process: the store, Temporal, then the chosen parts, each registering how it stops. */
async function startProcess(parts: ProcessParts): Promise<RunningProcess> {
  const env = loadEnv();
  const log = createLogger(env.LOG_LEVEL, undefined, env.LOG_FORMAT ?? defaultLogFormat());
  configureTemporalLogging(log);
  if (!parts.development && !env.TEMPORAL_ADDRESS)
    throw new Error(`TEMPORAL_ADDRESS must be set for \`scimflow ${parts.command}\``);
  const stoppers: Stopper[] = [];
  stopOnSignals(stoppers, log);
  try {
    return await startParts(parts, env, log, stoppers);
  } catch (error) {
    // What started stops again (a worker left polling would keep the process, and its schedules, alive), and the
    // error ends the process: a second `scimflow start` whose API port is taken exits instead of syncing on.
    await runStoppers(stoppers, log);
    throw error;
  }
}

/** Starts `parts` after the store and Temporal, registering in `stoppers` how each stops. */
async function startParts(parts: ProcessParts, env: Env, log: Logger, stoppers: Stopper[]): Promise<RunningProcess> {
  const { db, secrets, keySource } = await openStore(env, { allowDevKey: parts.development });
  stoppers.push(() => db.end());
  if (keySource === 'dev-file')
    log.warn('SCIMFLOW_SECRET_KEY is not set: using a development key kept in ~/.cache/scimflow');
  log.info({ keyId: secrets.currentKeyId }, 'secrets are sealed with this key');

  const temporal = await connectTemporal(env, stoppers, log);
  const connectOptions = temporalConnectionOptions(env, temporal.address);
  log.info({ address: temporal.address, security: describeTemporalSecurity(connectOptions) }, 'connecting to Temporal');
  const connection = await Connection.connect(connectOptions);
  stoppers.push(() => connection.close());
  const client = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE });
  const control = createSyncControl({ client, taskQueue: env.SCIMFLOW_TASK_QUEUE });
  const plugins = createPluginRegistry();

  let done = new Promise<void>(() => undefined);
  if (parts.worker) {
    const nativeConnection = await NativeConnection.connect(connectOptions);
    const grants = createGrantStore(db, secrets);
    stoppers.push(() => nativeConnection.close());
    const { worker, targets } = await createWorker({
      connection: nativeConnection,
      namespace: env.TEMPORAL_NAMESPACE,
      taskQueue: env.SCIMFLOW_TASK_QUEUE,
      db,
      plugins,
      loadProvider: (id) => getProviderForSync(db, secrets, id),
      credentials: createCredentialService({ grants }),
      grants,
      retention: { outboxDays: env.SCIMFLOW_OUTBOX_RETENTION_DAYS, runDays: env.SCIMFLOW_RUN_RETENTION_DAYS },
    });
    done = worker.run();
    stoppers.push(async () => {
      // The Temporal runtime shuts its workers down on SIGINT / SIGTERM itself; it may have begun already.
      if (worker.getState() === 'RUNNING') worker.shutdown();
      // A run that ended on an error was reported by `untilWorkerEnds`; what follows still closes.
      await done.catch(() => undefined);
      await targets.closeAll();
      await disposeMappingEngine();
    });
    const relay = await startOutboxRelay({
      db,
      deliver: queueDeliver(db, temporalDeliver(client, env.SCIMFLOW_TASK_QUEUE)),
      onError: (error) => log.warn({ err: error }, 'outbox relay round failed; retrying at the next poll'),
    });
    stoppers.push(() => relay.stop());
    await reconcileSchedules({ client, db, taskQueue: env.SCIMFLOW_TASK_QUEUE });
    await ensureHousekeepingSchedule({ client, taskQueue: env.SCIMFLOW_TASK_QUEUE });
  }

  let apiUrl: string | null = null;
  if (parts.api) {
    const oidc = oidcSettings(env);
    if (oidc)
      log.info({ issuer: oidc.issuer, audience: oidc.audience }, 'the API also accepts OIDC tokens of this issuer');
    const app = createApi({
      ...(oidc ? { oidc: createOidcVerifier(oidc) } : {}),
      db,
      // The API seals and fingerprints tokens; only the worker decrypts them.
      secrets: sealerOf(secrets),
      sync: control,
      policy: apiPolicy(env),
      sources: sourceSettings(env),
      validatePluginOptions: (pluginId: string, pluginOptions: unknown, baseUrl?: string) =>
        resolvePluginOptions(plugins, pluginId, pluginOptions, baseUrl),
      log,
      mappingEngine: processMappingEngine(),
      providerAuth: {
        check: createProviderChecker({ client, taskQueue: env.SCIMFLOW_TASK_QUEUE }),
        completeAuthorisation: createAuthorisationCompleter({ client, taskQueue: env.SCIMFLOW_TASK_QUEUE }),
      },
      publicUrl: () => env.SCIMFLOW_PUBLIC_URL ?? apiUrl ?? '',
    });
    const api = await startApiServer(app, { host: env.SCIMFLOW_API_HOST, port: env.SCIMFLOW_API_PORT });
    stoppers.push(() => api.close());
    apiUrl = api.url;
  }
  return { env, log, db, secrets, control, temporal, apiUrl, stoppers, done };
}

/** Starts the whole engine in one process: database, Temporal (embedded unless TEMPORAL_ADDRESS), worker, API. */
export async function runStart(options: { demo: boolean }): Promise<void> {
  // Before anything starts: a demo that cannot run says so at once, not after Temporal and the API are up.
  const startDemoTarget = options.demo ? await loadDemoTarget() : null;
  const running = await startProcess({ command: 'start', development: true, worker: true, api: true });
  try {
    await announce(running, startDemoTarget);
  } catch (error) {
    await runStoppers(running.stoppers, running.log);
    throw error;
  }
  await untilWorkerEnds(running.done, running.stoppers, running.log);
}

/** Saves the CLI's admin token, prints what runs where, and runs the demo when asked. */
async function announce(running: RunningProcess, startDemoTarget: StartDemoTarget | null): Promise<void> {
  const { env, temporal } = running;
  const local = await ensureLocalAdminToken(running.db, running.apiUrl!);
  console.log('');
  console.log(`scimflow is running`);
  console.log(`  API          ${running.apiUrl}/api/v1   (OpenAPI: ${running.apiUrl}/openapi.json)`);
  console.log(
    `  API token    admin token "${local.name}" ${local.created ? 'created and saved' : 'saved'} in ${local.path} (the CLI uses it)`,
  );
  console.log(`  Temporal     ${temporal.address}`);
  if (temporal.stateFile) console.log(`  Temporal DB  ${temporal.stateFile}`);
  if (temporal.uiUrl) console.log(`  Temporal UI  ${temporal.uiUrl}`);
  console.log(`  Database     ${redactUrl(env.DATABASE_URL)}`);
  console.log('');

  if (startDemoTarget) await runDemo(running, startDemoTarget);
  console.log(
    startDemoTarget ? 'Press Ctrl-C to stop (the demo provider and its target go with it).' : 'Press Ctrl-C to stop.',
  );
}

/** `scimflow worker`: a Temporal worker, the outbox relay and the schedules reconcile (production role). */
export async function runWorker(): Promise<void> {
  const { env, log, done, stoppers } = await startProcess({
    command: 'worker',
    development: false,
    worker: true,
    api: false,
  });
  log.info({ taskQueue: env.SCIMFLOW_TASK_QUEUE, namespace: env.TEMPORAL_NAMESPACE }, 'scimflow worker running');
  await untilWorkerEnds(done, stoppers, log);
}

/** `scimflow api`: the HTTP admin API only (production role). */
export async function runApi(): Promise<void> {
  const { log, apiUrl, done } = await startProcess({ command: 'api', development: false, worker: false, api: true });
  log.info({ url: apiUrl }, 'scimflow API listening');
  await done;
}
