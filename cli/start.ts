/**
 * `scimflow start` (everything in one process tree, for development and the demo), `scimflow worker` and
 * `scimflow api` (the production roles). All three are `startProcess` with a different choice of parts.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import cliProgress from 'cli-progress';
import { constants as osConstants } from 'node:os';
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
import {
  createGrantStore,
  createProvider,
  deleteProvider,
  getProviderForSync,
  importDirectory,
  ProviderInputSchema,
  sealerOf,
  type Db,
  type SecretBox,
} from '../db/index.ts';
import {
  configureTemporalLogging,
  createAuthorisationCompleter,
  createLogger,
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
  temporalUiLink,
  type TemporalSyncControl,
} from '../engine/index.ts';
import { ScimflowError } from '../errors/index.ts';
import { createPluginRegistry, resolvePluginOptions } from '../plugins/index.ts';
import { embeddedTemporalStatePath, findTemporalBinary, startTemporalDevServer } from '../scripts/lib/temporal-dev.mjs';
import { ensureLocalAdminToken } from './local-token.ts';

type Stopper = () => Promise<void>;

const TEMPORAL_LOG_LEVEL = {
  fatal: 'ERROR',
  error: 'ERROR',
  warn: 'WARN',
  info: 'WARN',
  debug: 'DEBUG',
  trace: 'TRACE',
  silent: 'ERROR',
} as const;

/**
 * Runs `stoppers` newest-first when the process is asked to stop, then exits; a second signal exits at once.
 * The listeners stay registered (not `once`): the embedded Temporal server's own signal hook steps aside only while
 * the host listens, and would otherwise kill the process before the stoppers ran.
 */
function stopOnSignals(stoppers: Stopper[], log: Logger): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'stopping scimflow at once');
      process.exit(128 + osConstants.signals[signal]);
    }
    stopping = true;
    log.info({ signal }, 'stopping scimflow');
    for (const fn of [...stoppers].reverse()) {
      await fn().catch((error: unknown) => log.warn({ err: error }, 'error while stopping'));
    }
    process.exit(0);
  };
  process.on('SIGINT', (s) => void stop(s));
  process.on('SIGTERM', (s) => void stop(s));
}

async function connectTemporal(env: Env, stoppers: Stopper[], log: Logger): Promise<RunningProcess['temporal']> {
  if (env.TEMPORAL_ADDRESS)
    return { address: env.TEMPORAL_ADDRESS, uiUrl: env.TEMPORAL_UI_URL ?? null, stateFile: null };
  const binary = findTemporalBinary();
  if (!binary) {
    throw new Error(
      'TEMPORAL_ADDRESS is not set and no Temporal CLI was found: run `npm run setup` or set TEMPORAL_ADDRESS',
    );
  }
  const options = { binary, headless: false, port: 7233, uiPort: 8233, fallbackToFreePorts: true };
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
interface RunningProcess {
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
  const log = createLogger(env.LOG_LEVEL);
  configureTemporalLogging(TEMPORAL_LOG_LEVEL[env.LOG_LEVEL]);
  if (!parts.development && !env.TEMPORAL_ADDRESS)
    throw new Error(`TEMPORAL_ADDRESS must be set for \`scimflow ${parts.command}\``);
  const stoppers: Stopper[] = [];
  stopOnSignals(stoppers, log);

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
      await done;
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
    options.demo ? 'Press Ctrl-C to stop (the demo provider and its target go with it).' : 'Press Ctrl-C to stop.',
  );
  await running.done;
}

/** What the demo uses of its SCIM target. */
interface DemoTarget {
  url: string;
  token: string;
  users(): Promise<unknown[]>;
  groups(): Promise<Array<{ members?: unknown[] | undefined }>>;
  close(): Promise<void>;
}
type StartDemoTarget = (options: { token: string }) => Promise<DemoTarget>;

/**
 * The demo's SCIM target: the independent SCIM server the tests use (SCIMMY, a devDependency, in test/servers).
 * The demo is for a development checkout; a production install (`npm ci --omit=dev`, the Docker image, which
 * leaves test/ out) has no such server, and `--demo` there fails at once with ERR_CONFIG saying so.
 */
async function loadDemoTarget(): Promise<StartDemoTarget> {
  try {
    return (await import('../test/servers/index.ts')).startScimTarget;
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new ScimflowError(
      'ERR_CONFIG',
      '--demo needs a development checkout: its SCIM target is the test server in test/servers (SCIMMY, a ' +
        'devDependency), which a production install leaves out. Run `npm run demo` in a clone of the repository',
      { cause: error },
    );
  }
}

/** Seeds a demo directory, provisions it into a loopback SCIM server, and shows the run. */
async function runDemo(ctx: RunningProcess, startScimTarget: StartDemoTarget): Promise<void> {
  const target = await startScimTarget({ token: `demo-${Date.now()}` });
  ctx.stoppers.push(() => target.close());
  console.log(`Demo SCIM target on ${target.url}`);

  const groupCount = 50;
  const users = Array.from({ length: 1000 }, (_, i) => {
    const n = String(i + 1).padStart(4, '0');
    return {
      username: `demo.user${n}`,
      displayName: `Demo User ${n}`,
      email: `demo.user${n}@example.test`,
      givenName: 'Demo',
      familyName: `User ${n}`,
    };
  });
  const groups = Array.from({ length: groupCount }, (_, g) => ({
    name: `demo-group-${String(g + 1).padStart(2, '0')}`,
    members: users
      .filter((_, i) => i % groupCount === g || (i % 10 === 0 && (i + 1) % groupCount === g))
      .map((u) => u.username),
  }));
  const imported = await importDirectory(ctx.db, { users, groups });
  console.log(`Seeded the directory: ${JSON.stringify(imported)}`);

  const slug = `demo-${Date.now().toString(36)}`;
  const provider = await createProvider(
    ctx.db,
    ctx.secrets,
    ProviderInputSchema.parse({
      slug,
      name: 'Demo loopback SCIM target',
      baseUrl: target.url,
      auth: { mode: 'bearer', token: target.token },
    }),
  );
  // Its target lives only as long as this process, so the provider goes with it, else every later start would
  // keep syncing to an endpoint that no longer exists. Only from the database: the embedded Temporal server gets
  // the same Ctrl-C and may be gone already; the next start's reconcile removes its schedule and workflow.
  ctx.stoppers.push(async () => {
    await deleteProvider(ctx.db, provider.id);
  });
  const { runId, workflowId } = await ctx.control.requestFullSync(provider);
  if (ctx.temporal.uiUrl)
    console.log(`Full sync started: ${temporalUiLink(ctx.temporal.uiUrl, ctx.env.TEMPORAL_NAMESPACE, workflowId)}`);

  const bar = new cliProgress.SingleBar(
    { format: 'Full sync [{bar}] {value}/{total} objects | {status}', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(1, 0, { status: 'starting' });
  for (;;) {
    const { rows } = await ctx.db.query<{ status: string; total: number; processed: number }>(
      'SELECT status, total, processed FROM sync_runs WHERE id = $1',
      [runId],
    );
    const run = rows[0];
    if (run) {
      bar.setTotal(Math.max(run.total, 1));
      bar.update(run.processed, { status: run.status });
      if (run.status !== 'running') break;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  bar.stop();
  const { rows } = await ctx.db.query(
    'SELECT status, total, created, updated, deleted, unchanged, skipped, failed FROM sync_runs WHERE id = $1',
    [runId],
  );
  const remoteUsers = (await target.users()).length;
  const remoteGroups = await target.groups();
  const remoteMemberships = remoteGroups.reduce((sum, g) => sum + (g.members?.length ?? 0), 0);
  console.log(`Run ${runId}: ${JSON.stringify(rows[0])}`);
  console.log(
    `The target now holds ${remoteUsers} users, ${remoteGroups.length} groups, ${remoteMemberships} memberships.`,
  );
  if (ctx.temporal.uiUrl)
    console.log(
      `Inspect the run in the Temporal UI: ${temporalUiLink(ctx.temporal.uiUrl, ctx.env.TEMPORAL_NAMESPACE, workflowId)}`,
    );
}

/** `scimflow worker`: a Temporal worker, the outbox relay and the schedules reconcile (production role). */
export async function runWorker(): Promise<void> {
  const { env, log, done } = await startProcess({ command: 'worker', development: false, worker: true, api: false });
  log.info({ taskQueue: env.SCIMFLOW_TASK_QUEUE, namespace: env.TEMPORAL_NAMESPACE }, 'scimflow worker running');
  await done;
}

/** `scimflow api`: the HTTP admin API only (production role). */
export async function runApi(): Promise<void> {
  const { log, apiUrl, done } = await startProcess({ command: 'api', development: false, worker: false, api: true });
  log.info({ url: apiUrl }, 'scimflow API listening');
  await done;
}
