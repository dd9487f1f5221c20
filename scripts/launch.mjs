#!/usr/bin/env node
// The one entry point behind `npm start`, `npm test`, `npm run bench`, `npm run scimflow` and `npm run setup`.
// Plain JavaScript with no dependencies, so it runs on the system Node (>= 18) of a fresh clone before `npm ci`;
// everything it launches runs on the project's pinned Node 24 from node_modules/.bin.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  cachedTemporalBinaryPath,
  findOnPath,
  findTemporalBinary,
  isExecutableFile,
  scimflowCacheDir,
  startTemporalDevServer,
  TEMPORAL_CLI_VERSION,
} from './lib/temporal-dev.mjs';
import { NODE_FLAGS, nodeEnvironment } from '../cli/node-flags.mjs';
import { postgresVersionProblem } from './lib/postgres-version.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE_MODULES = path.join(ROOT, 'node_modules');
const NODE24 = path.join(NODE_MODULES, '.bin', 'node');
const SETUP_STAMP = path.join(NODE_MODULES, '.scimflow-setup');
const DEFAULT_DATABASE_URL = 'postgres://scimflow@127.0.0.1:5432/scimflow';
const MANAGED_NAME = 'scimflow';
const TEST_TIMEOUT_MS = 300_000;
const TEST_CONCURRENCY = 2;
// Directories never searched for test files.
const SKIPPED_DIRS = new Set(['node_modules', 'coverage']);
// node --test options that take their value as the next argument (the `--opt=value` form needs no entry).
const OPTIONS_WITH_VALUE = new Set([
  '--test-name-pattern',
  '--test-skip-pattern',
  '--test-reporter',
  '--test-reporter-destination',
  '--test-concurrency',
  '--test-timeout',
  '--test-shard',
  '--test-isolation',
  '--import',
  '--require',
  '-r',
  '--conditions',
  '-C',
]);

/** A failure the user can act on: printed as one message, exit code 1, no stack trace. */
class SetupError extends Error {}

function say(message) {
  process.stderr.write(`scimflow: ${message}\n`);
}

function elapsed(since) {
  const ms = Date.now() - since;
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function redact(url) {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Setup step 1: dependencies

function readStamp() {
  try {
    return JSON.parse(readFileSync(SETUP_STAMP, 'utf8')).lockSha256 ?? null;
  } catch {
    return null;
  }
}

// A tree installed by hand (or by an older launcher) is accepted when every locked package is present at its
// locked version; that avoids re-running `npm ci`, which deletes node_modules, under anyone already using it.
function installedTreeMatches(lock) {
  for (const [key, entry] of Object.entries(lock.packages ?? {})) {
    if (!key.startsWith('node_modules/') || entry.link) continue;
    let installed = null;
    try {
      installed = JSON.parse(readFileSync(path.join(ROOT, key, 'package.json'), 'utf8')).version;
    } catch {
      installed = null;
    }
    if (installed === null && entry.optional) continue;
    if (installed !== entry.version) return false;
  }
  return true;
}

function ensureDependencies() {
  const lockText = readFileSync(path.join(ROOT, 'package-lock.json'));
  const lockSha256 = createHash('sha256').update(lockText).digest('hex');
  const writeStamp = () => writeFileSync(SETUP_STAMP, JSON.stringify({ lockSha256 }) + '\n');
  if (readStamp() === lockSha256 && isExecutableFile(NODE24)) return;
  if (existsSync(NODE_MODULES) && isExecutableFile(NODE24) && installedTreeMatches(JSON.parse(String(lockText)))) {
    writeStamp();
    return;
  }
  const why = existsSync(NODE_MODULES) ? 'package-lock.json changed' : 'first run';
  say(`installing dependencies with \`npm ci\` (${why}; under a minute)...`);
  const started = Date.now();
  // npm's own output goes to stderr so that stdout carries only what the launched command prints.
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  if (result.error) throw new SetupError(`could not run npm: ${result.error.message}`);
  if (result.status !== 0) throw new SetupError(`\`npm ci\` failed (exit code ${result.status}); see its output above`);
  if (!isExecutableFile(NODE24)) {
    throw new SetupError('`npm ci` finished but node_modules/.bin/node (the pinned Node 24) is missing');
  }
  writeStamp();
  say(`dependencies installed in ${elapsed(started)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Setup step 2: the Temporal CLI

function isWritableDir(dir) {
  try {
    if (!statSync(dir).isDirectory()) return false;
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

// Go needs a writable GOPATH (module cache) and GOCACHE (build cache); both default to folders under HOME.
function goEnvironment(binDir) {
  const env = { ...process.env, GOBIN: binDir };
  const homeWritable = Boolean(process.env.HOME) && isWritableDir(process.env.HOME);
  const xdgWritable = Boolean(process.env.XDG_CACHE_HOME) && isWritableDir(process.env.XDG_CACHE_HOME);
  if (!process.env.GOPATH && !homeWritable) env.GOPATH = path.join(scimflowCacheDir(), 'go');
  if (!process.env.GOCACHE && !homeWritable && !xdgWritable) env.GOCACHE = path.join(scimflowCacheDir(), 'go-build');
  return env;
}

function findGo() {
  const onPath = findOnPath('go');
  if (onPath) return onPath;
  return isExecutableFile('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : null;
}

function ensureTemporalCli() {
  const configured = process.env.SCIMFLOW_TEMPORAL_BIN;
  if (configured) {
    if (!isExecutableFile(configured)) {
      throw new SetupError(`SCIMFLOW_TEMPORAL_BIN is set to ${configured}, which is not an executable file`);
    }
    return path.resolve(configured);
  }
  const found = findTemporalBinary();
  if (found) return found;

  const target = cachedTemporalBinaryPath();
  const go = findGo();
  if (!go) {
    throw new SetupError(
      'the Temporal CLI is missing and Go is not installed to build it. Install Go >= 1.25 ' +
        '(https://go.dev/dl/; /usr/local/go/bin is searched too), or put a `temporal` binary on PATH, ' +
        `or set SCIMFLOW_TEMPORAL_BIN to one; then run this again. It will be built into ${target}.`,
    );
  }
  const binDir = path.dirname(target);
  try {
    mkdirSync(binDir, { recursive: true });
  } catch (error) {
    throw new SetupError(`cannot create ${binDir} for the Temporal CLI: ${error.message}`);
  }
  say(
    `building the Temporal CLI ${TEMPORAL_CLI_VERSION} with \`go install\` into ${binDir}. ` +
      'This takes 3-6 minutes on 2 cores and is done once per machine...',
  );
  const started = Date.now();
  const result = spawnSync(go, ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`], {
    env: goEnvironment(binDir),
    stdio: ['ignore', 2, 2],
  });
  if (result.status !== 0 || !isExecutableFile(target)) {
    throw new SetupError(
      `building the Temporal CLI failed (\`${go} install\` exit code ${result.status ?? result.signal}). ` +
        'It needs Go >= 1.25 and the Go module proxy; alternatively put a `temporal` binary on PATH ' +
        'or set SCIMFLOW_TEMPORAL_BIN.',
    );
  }
  say(`Temporal CLI built in ${elapsed(started)}: ${target}`);
  return target;
}

// ---------------------------------------------------------------------------------------------------------------
// Setup step 3: the database

function describeServer(url) {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`;
  } catch {
    return 'DATABASE_URL';
  }
}

// Errors from PostgreSQL itself carry a five-character SQLSTATE; anything else means we never reached a server.
function isServerError(error) {
  return typeof error?.code === 'string' && /^[0-9A-Z]{5}$/.test(error.code) && !error.code.startsWith('E');
}

function unreachable(url, error) {
  return new SetupError(
    `PostgreSQL is not reachable at ${describeServer(url)} (${error.message || error.code}). ` +
      'scimflow needs PostgreSQL >= 14 running on 127.0.0.1:5432 (or DATABASE_URL set to another server). ' +
      'On Debian: `apt-get install postgresql`, then `pg_ctlcluster <version> main start`.',
  );
}

async function connect(pg, url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {
    // A dropped connection surfaces through the pending query instead.
  });
  await client.connect();
  return client;
}

function isManaged(url) {
  try {
    const parsed = new URL(url);
    return decodeURIComponent(parsed.username) === MANAGED_NAME && parsed.pathname === `/${MANAGED_NAME}`;
  } catch {
    return false;
  }
}

function adminUrlFor(url) {
  if (process.env.SCIMFLOW_PG_ADMIN_URL) return process.env.SCIMFLOW_PG_ADMIN_URL;
  const parsed = new URL(url);
  return `postgres://postgres@${parsed.host || '127.0.0.1:5432'}/postgres`;
}

async function createRoleAndDatabase(pg, url) {
  const adminUrl = adminUrlFor(url);
  let admin;
  try {
    admin = await connect(pg, adminUrl);
  } catch (error) {
    throw new SetupError(
      `role or database "${MANAGED_NAME}" is missing and connecting as an administrator to create them failed ` +
        `(${redact(adminUrl)}: ${error.message}). Set SCIMFLOW_PG_ADMIN_URL to a superuser connection, or create ` +
        `them yourself: CREATE ROLE ${MANAGED_NAME} LOGIN CREATEDB; CREATE DATABASE ${MANAGED_NAME} OWNER ${MANAGED_NAME};`,
    );
  }
  const created = [];
  try {
    const role = admin.escapeIdentifier(MANAGED_NAME);
    const password = decodeURIComponent(new URL(url).password);
    const roles = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [MANAGED_NAME]);
    if (roles.rowCount === 0) {
      const withPassword = password ? ` PASSWORD ${admin.escapeLiteral(password)}` : '';
      // 42710 duplicate_object: another setup created it between our check and now.
      await admin.query(`CREATE ROLE ${role} LOGIN CREATEDB${withPassword}`).catch(ignoreCode('42710'));
      created.push(`role ${MANAGED_NAME}`);
    }
    const databases = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [MANAGED_NAME]);
    if (databases.rowCount === 0) {
      // 42P04 duplicate_database: same race as above.
      await admin.query(`CREATE DATABASE ${role} OWNER ${role}`).catch(ignoreCode('42P04'));
      created.push(`database ${MANAGED_NAME}`);
    }
  } catch (error) {
    throw new SetupError(`creating the ${MANAGED_NAME} role and database failed: ${error.message}`);
  } finally {
    await admin.end().catch(() => undefined);
  }
  if (created.length > 0) say(`created PostgreSQL ${created.join(' and ')} on ${describeServer(url)}`);
}

function ignoreCode(code) {
  return (error) => {
    if (error?.code !== code) throw error;
  };
}

async function checkDatabase(pg, url) {
  const client = await connect(pg, url);
  try {
    const { rows } = await client.query('SHOW server_version_num');
    const versionNum = Number(rows[0]?.server_version_num ?? 0);
    const problem = postgresVersionProblem(versionNum);
    if (problem) throw new SetupError(`PostgreSQL at ${describeServer(url)} cannot be used: ${problem}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function ensureDatabase(url) {
  // pg is imported only now: on a fresh clone it exists only after step 1 installed it.
  const { default: pg } = await import('pg');
  try {
    await checkDatabase(pg, url);
    return;
  } catch (error) {
    if (error instanceof SetupError) throw error;
    if (!isServerError(error)) throw unreachable(url, error);
    // 28000 role missing (trust auth), 28P01 password rejected (password auth hides a missing role), 3D000 no database.
    const missing = ['28000', '28P01', '3D000'].includes(error.code);
    if (!missing || !isManaged(url)) {
      const hint = missing ? ` (setup creates the role and database only when both are named ${MANAGED_NAME})` : '';
      throw new SetupError(`cannot use PostgreSQL at ${redact(url)}: ${error.message}${hint}`);
    }
  }
  await createRoleAndDatabase(pg, url);
  try {
    await checkDatabase(pg, url);
  } catch (error) {
    if (error instanceof SetupError) throw error;
    throw new SetupError(`cannot use PostgreSQL at ${redact(url)} after creating it: ${error.message}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Commands

/** Runs every setup step; returns what the launched processes need to know. */
async function setup() {
  ensureDependencies();
  const temporalBin = ensureTemporalCli();
  const databaseUrl = process.env.DATABASE_URL || DEFAULT_DATABASE_URL;
  await ensureDatabase(databaseUrl);
  return { temporalBin, databaseUrl };
}

// With a terminal, Ctrl-C (SIGINT) and hang-up (SIGHUP) already reach the child, which shares our foreground
// process group; forwarding them too would deliver each twice. Without one (CI, supervisors, `docker stop`),
// the child runs in its own process group and we forward every signal to that group exactly once.
function runForwardingSignals(args, env) {
  const interactive = Boolean(process.stdin.isTTY);
  const child = spawn(NODE24, args, { cwd: ROOT, env: nodeEnvironment(env), stdio: 'inherit', detached: !interactive });
  const forwarded = interactive ? ['SIGTERM'] : ['SIGINT', 'SIGTERM', 'SIGHUP'];
  let last = { signal: '', at: 0 };
  const onSignal = (signal) => {
    if (!forwarded.includes(signal)) return;
    // npm relays the signal it got as well; one delivery within half a second is the same request.
    const now = Date.now();
    if (last.signal === signal && now - last.at < 500) return;
    last = { signal, at: now };
    try {
      process.kill(interactive ? child.pid : -child.pid, signal);
    } catch {
      // already exited
    }
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, onSignal);
  return new Promise((resolve) => {
    child.once('error', (error) => {
      say(`could not start ${NODE24}: ${error.message}`);
      resolve(1);
    });
    child.once('exit', (code, signal) => {
      for (const name of signals) process.removeListener(name, onSignal);
      resolve(code ?? 128 + (os.constants.signals[signal] ?? 0));
    });
  });
}

function childEnv(extra) {
  const env = { ...process.env, ...extra };
  // Set by an enclosing `node --test`: it would make our runner report to that parent instead of to the terminal.
  delete env.NODE_TEST_CONTEXT;
  return env;
}

async function runCli(subcommand, args) {
  const { temporalBin, databaseUrl } = await setup();
  const main = path.join(ROOT, 'cli', 'main.ts');
  if (!existsSync(main)) throw new SetupError('cli/main.ts does not exist yet in this checkout');
  const cliArgs = subcommand ? [subcommand, ...args] : args;
  const env = childEnv({ SCIMFLOW_TEMPORAL_BIN: temporalBin, DATABASE_URL: databaseUrl });
  return runForwardingSignals([...NODE_FLAGS, main, ...cliArgs], env);
}

function findTestFiles(dir, found = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!entry.name.startsWith('.') && !SKIPPED_DIRS.has(entry.name))
        findTestFiles(path.join(dir, entry.name), found);
    } else if (entry.isFile() && entry.name.endsWith('.test.ts')) {
      found.push(path.relative(ROOT, path.join(dir, entry.name)));
    }
  }
  return found;
}

// npm runs scripts from the package root; a path typed in a subfolder is found through INIT_CWD.
function resolveUserPath(arg) {
  if (path.isAbsolute(arg)) return arg;
  for (const base of [process.env.INIT_CWD, process.cwd(), ROOT]) {
    if (base && existsSync(path.join(base, arg))) return path.relative(ROOT, path.join(base, arg)) || '.';
  }
  return arg; // node --test treats it as a glob pattern
}

/** Splits `npm test -- ...` arguments into node options and the file list that replaces the default one. */
function splitTestArgs(args) {
  const options = [];
  const files = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg.startsWith('-')) {
      options.push(arg);
      if (OPTIONS_WITH_VALUE.has(arg) && i + 1 < args.length) options.push(args[(i += 1)]);
    } else {
      files.push(resolveUserPath(arg));
    }
  }
  return { options, files };
}

async function withDevServer(temporalBin, run) {
  if (process.env.TEMPORAL_ADDRESS) return run(process.env.TEMPORAL_ADDRESS);
  const started = Date.now();
  let server;
  try {
    // A process group of its own: a terminal's Ctrl-C reaches the run, which ends first; the server is stopped after it.
    server = await startTemporalDevServer({ binary: temporalBin, headless: true, ownProcessGroup: true });
  } catch (error) {
    throw new SetupError(error.message);
  }
  say(`Temporal dev server on ${server.address} (ready in ${elapsed(started)})`);
  let code = 1;
  try {
    code = await run(server.address);
  } finally {
    if (server.exited() && code !== 0)
      say(`the Temporal dev server had stopped early; its last output:\n${server.recentOutput()}`);
    await server.stop();
  }
  return code;
}

async function runTests(args) {
  const { temporalBin, databaseUrl } = await setup();
  const { options, files } = splitTestArgs(args);
  const testFiles = files.length > 0 ? files : findTestFiles(ROOT).sort();
  if (testFiles.length === 0) throw new SetupError('no *.test.ts files found');
  // Tests never read or write the user's own scimflow config (saved API tokens): they get an empty folder.
  const configDir = mkdtempSync(path.join(os.tmpdir(), 'scimflow-test-config-'));
  try {
    return await withDevServer(temporalBin, (address) => {
      const env = childEnv({
        TEMPORAL_ADDRESS: address,
        SCIMFLOW_TEMPORAL_BIN: temporalBin,
        DATABASE_URL: databaseUrl,
        SCIMFLOW_CONFIG_DIR: configDir,
        // The workflow code is bundled by the first test file's worker and read by the others (1-2 s of CPU each).
        SCIMFLOW_WORKFLOW_BUNDLE_CACHE: path.join(configDir, 'workflow-bundle.js'),
      });
      delete env.SCIMFLOW_API_TOKEN;
      // Two files at a time: most of a file's time is spent waiting on Temporal, PostgreSQL and its targets, and
      // node's default (cores - 1) runs them one by one on 2 cores. `--test-concurrency` overrides it.
      const concurrency = options.some((o) => o.startsWith('--test-concurrency'))
        ? []
        : [`--test-concurrency=${TEST_CONCURRENCY}`];
      const nodeArgs = [
        '--no-node-snapshot',
        '--test',
        `--test-timeout=${TEST_TIMEOUT_MS}`,
        ...concurrency,
        ...options,
        ...testFiles,
      ];
      return runForwardingSignals(nodeArgs, env);
    });
  } finally {
    rmSync(configDir, { recursive: true, force: true });
  }
}

async function runBench(args) {
  const { temporalBin, databaseUrl } = await setup();
  const main = path.join(ROOT, 'bench', 'index.ts');
  if (!existsSync(main)) throw new SetupError('bench/index.ts does not exist yet in this checkout');
  return withDevServer(temporalBin, (address) => {
    const env = childEnv({ TEMPORAL_ADDRESS: address, SCIMFLOW_TEMPORAL_BIN: temporalBin, DATABASE_URL: databaseUrl });
    return runForwardingSignals([...NODE_FLAGS, main, ...args], env);
  });
}

const USAGE = `usage: node scripts/launch.mjs <command> [args]

  setup          install dependencies, the Temporal CLI and the database (idempotent)
  start [args]   setup, then \`scimflow start [args]\`
  cli [args]     setup, then \`scimflow [args]\`
  test [args]    setup, a Temporal dev server, then node --test (args: node options and/or test files)
  bench [args]   setup, a Temporal dev server, then bench/index.ts [args]`;

async function main(argv) {
  const [command, ...args] = argv;
  switch (command) {
    case 'setup': {
      const started = Date.now();
      const { temporalBin, databaseUrl } = await setup();
      say(`ready in ${elapsed(started)} (Temporal CLI ${temporalBin}, database ${redact(databaseUrl)})`);
      return 0;
    }
    case 'start':
      return runCli('start', args);
    case 'cli':
      return runCli(null, args);
    case 'test':
      return runTests(args);
    case 'bench':
      return runBench(args);
    default:
      process.stderr.write(`${USAGE}\n`);
      return command === undefined || command === '--help' || command === '-h' ? 0 : 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    if (error instanceof SetupError) say(error.message);
    else process.stderr.write(`scimflow launcher failed: ${error?.stack ?? error}\n`);
    process.exitCode = 1;
  },
);
