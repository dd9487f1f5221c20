// Finds the Temporal CLI and runs its dev server (SQLite, optional Web UI) for `npm start`, tests and benchmarks.
// Plain JavaScript with no dependencies: the launcher imports it before `npm ci` has run, on Node >= 18.
import { spawn } from 'node:child_process';
import {
  accessSync,
  constants,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The Temporal CLI release scimflow builds with `go install` (later tags carry a `replace` directive). */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';

/** The search attributes every scimflow namespace needs, as `name=Type` pairs. */
export const SEARCH_ATTRIBUTES = Object.freeze({ ScimProvider: 'Keyword' });

/**
 * Dynamic config the dev server starts with: its defaults are a cluster's, and on one node they add latency to every
 * step of a workflow. Its one history shard reads new transfer and timer tasks at most 20 times a second (each
 * activity's result reached the workflow up to 50 ms late), a task that lands in a task-queue partition no worker
 * polls is forwarded at most 10 times a second (100 ms per activity, once a burst had spent the budget), and an
 * activity scheduled by a workflow task goes through matching even when the worker that completed it has a free slot.
 * Measured with `npm run bench -- dispatch`: a chain of no-op activities, about 80-100 ms per step before, 17-35 after.
 */
export const DEV_SERVER_DYNAMIC_CONFIG = Object.freeze({
  'history.transferProcessorMaxPollRPS': 1000,
  'history.timerProcessorMaxPollRPS': 1000,
  'matching.forwarderMaxRatePerSecond': 1000,
  'system.enableActivityEagerExecution': true,
});

const READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_LINES_KEPT = 40;

/** The per-user cache folder scimflow keeps tools in: `${XDG_CACHE_HOME:-~/.cache}/scimflow`. */
export function scimflowCacheDir(env = process.env) {
  const base = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(base, 'scimflow');
}

/** The SQLite file in which the embedded Temporal server of `scimflow start` keeps its state across restarts. */
export function embeddedTemporalStatePath(env = process.env) {
  return path.join(scimflowCacheDir(env), 'temporal', 'dev-server.sqlite');
}

/** Where `setup` installs the Temporal CLI when none is found elsewhere. */
export function cachedTemporalBinaryPath(env = process.env) {
  return path.join(scimflowCacheDir(env), 'bin', 'temporal');
}

/** True when `file` is a regular file this process may execute. */
export function isExecutableFile(file) {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable called `name` on `PATH`, or null. */
export function findOnPath(name, env = process.env) {
  for (const dir of (env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

/** The Temporal CLI to use: `$SCIMFLOW_TEMPORAL_BIN`, else `temporal` on PATH, else the cached build; null if none. */
export function findTemporalBinary(env = process.env) {
  if (env.SCIMFLOW_TEMPORAL_BIN) {
    return isExecutableFile(env.SCIMFLOW_TEMPORAL_BIN) ? path.resolve(env.SCIMFLOW_TEMPORAL_BIN) : null;
  }
  const onPath = findOnPath('temporal', env);
  if (onPath) return onPath;
  const cached = cachedTemporalBinaryPath(env);
  return isExecutableFile(cached) ? cached : null;
}

/** Asks the OS for a free TCP port on 127.0.0.1 and releases it. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// The CLI reads TEMPORAL_* variables (address, namespace, TLS, API key) as client settings; the dev server and the
// readiness probe must talk to the server we started, whatever the caller's environment says.
function cleanEnv() {
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('TEMPORAL_') && value !== undefined) env[key] = value;
  }
  return env;
}

/** True when nothing listens on 127.0.0.1:`port` yet (so the dev server could bind it). */
export function isPortFree(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function runQuiet(binary, args, timeoutMs) {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(binary, args, { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('error', () => {
      clearTimeout(timer);
      resolve({ code: -1, output });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, output });
    });
  });
}

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Every dev server this process started and has not seen exit; killed when the process goes away.
const running = new Set();
let hooksInstalled = false;
// State files this process holds, each with the function that releases its lock.
const heldStateFiles = new Map();

function killAllNow() {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  running.clear();
  for (const release of [...heldStateFiles.values()]) release();
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** Thrown when a state file cannot be used: its folder cannot be created, or another live process holds it. */
function stateUnavailable(message) {
  return Object.assign(new Error(message), { code: 'ESTATEUNAVAILABLE' });
}

// Two servers on one SQLite file would both take its shards and corrupt it; `<file>.lock` names the holder's pid.
// A lock whose process is gone (killed, machine restarted) is stale and taken over.
function lockStateFile(file) {
  const lockFile = `${file}.lock`;
  try {
    mkdirSync(path.dirname(file), { recursive: true });
  } catch (error) {
    throw stateUnavailable(`cannot create ${path.dirname(file)} for the Temporal state: ${error.message}`);
  }
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx' });
      const release = () => {
        heldStateFiles.delete(file);
        try {
          unlinkSync(lockFile);
        } catch {
          // already gone
        }
      };
      heldStateFiles.set(file, release);
      return release;
    } catch (error) {
      if (error.code !== 'EEXIST') throw stateUnavailable(`cannot lock ${lockFile}: ${error.message}`);
    }
    let holder = 0;
    try {
      holder = Number.parseInt(readFileSync(lockFile, 'utf8'), 10) || 0;
    } catch {
      // removed meanwhile: try again
    }
    const heldHere = holder === process.pid && heldStateFiles.has(file);
    if (heldHere || (holder !== process.pid && holder > 0 && isAlive(holder))) {
      throw stateUnavailable(`the Temporal state ${file} is in use by process ${holder}`);
    }
    try {
      unlinkSync(lockFile);
    } catch {
      // another process took it over first; the next attempt sees its lock
    }
  }
  throw stateUnavailable(`cannot lock ${lockFile}: it keeps changing`);
}

function installExitHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    const onSignal = () => {
      // When the host handles this signal itself, it owns shutdown (and calls stop()); the 'exit' hook is the backstop.
      if (process.listenerCount(signal) > 1) return;
      killAllNow();
      process.removeListener(signal, onSignal);
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

// With util-linux's setpriv the kernel kills the server when this process dies, even by SIGKILL.
function deathSignalPrefix() {
  if (process.platform !== 'linux') return [];
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find(isExecutableFile);
  return setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : [];
}

/** Builds the `temporal server start-dev` arguments for the given ports and options. */
export function devServerArgs({
  port,
  httpPort,
  metricsPort,
  uiPort,
  headless,
  dbFilename,
  namespace,
  logLevel,
  dynamicConfig = DEV_SERVER_DYNAMIC_CONFIG,
  extraArgs,
}) {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port)];
  args.push('--http-port', String(httpPort), '--metrics-port', String(metricsPort));
  if (headless) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  args.push('--namespace', namespace, '--log-level', logLevel);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  for (const [key, value] of Object.entries(dynamicConfig)) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  if (dbFilename) args.push('--db-filename', dbFilename);
  args.push(...extraArgs);
  return args;
}

// How often startup picks new ports after losing one to another process between choosing it and the server binding it.
const PORT_ATTEMPTS = 5;

/** True when a server's startup output says one of its ports was taken. */
function lostAPort(output) {
  return /bind: address already in use/i.test(output);
}

/**
 * The inodes of the sockets listening on 127.0.0.1:`port` (or any address), from /proc/net/tcp; null where /proc
 * cannot say (not Linux, or hidden).
 */
function listeningInodes(port) {
  const inodes = new Set();
  let readable = false;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text;
    try {
      text = readFileSync(table, 'utf8');
      readable = true;
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is HEXIP:HEXPORT, st 0A is LISTEN, the inode is the tenth field.
      if (fields.length < 10 || fields[3] !== '0A') continue;
      if (Number.parseInt(fields[1].split(':')[1] ?? '', 16) === port) inodes.add(fields[9]);
    }
  }
  return readable ? inodes : null;
}

/**
 * False when /proc shows that what listens on `port` is not process `pid` (another server took the port before ours
 * bound it, and answers health checks in its place); true when it is, or when /proc cannot tell.
 */
export function isListeningProcess(pid, port) {
  const inodes = listeningInodes(port);
  if (inodes === null || inodes.size === 0) return inodes === null;
  let fds;
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return true;
  }
  return fds.some((fd) => {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      return link.startsWith('socket:[') && inodes.has(link.slice(8, -1));
    } catch {
      return false;
    }
  });
}

/**
 * Starts `temporal server start-dev` on 127.0.0.1 and resolves once its frontend answers gRPC health checks. Free
 * ports are found by binding port 0 and releasing it, so another process can take one before the server binds it:
 * when the server then stops with "address already in use", or its frontend port turns out to be another process's,
 * it is started again on newly chosen ports (only the ports it was free to choose).
 */
export async function startTemporalDevServer(options = {}) {
  const binary = options.binary ?? findTemporalBinary();
  if (!binary) {
    throw new Error(
      'no Temporal CLI found: set SCIMFLOW_TEMPORAL_BIN, put `temporal` on PATH, or run `npm run setup` to build it',
    );
  }
  const pickFree = options.choosePort ?? freePort;
  const movable = (wanted) => wanted === undefined || options.fallbackToFreePorts === true;
  const canMove = [options.port, options.httpPort, options.metricsPort, options.uiPort].every(movable);
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startOnce(binary, options, pickFree, attempt > 1);
    } catch (error) {
      if (!(error instanceof PortLost) || !canMove || attempt >= PORT_ATTEMPTS) {
        throw error instanceof PortLost ? error.failure : error;
      }
    }
  }
}

/** A startup that failed because a chosen port was taken meanwhile; `failure` is the error to report if it stays so. */
class PortLost extends Error {
  constructor(failure) {
    super(failure.message);
    this.failure = failure;
  }
}

async function startOnce(binary, options, pickFree, again) {
  const headless = options.headless ?? false;
  // After a lost port, even a port the caller asked for is replaced (only reached with fallbackToFreePorts).
  const choose = async (wanted) => {
    if (wanted === undefined || again) return pickFree();
    if (options.fallbackToFreePorts && !(await isPortFree(wanted))) return pickFree();
    return wanted;
  };
  const port = await choose(options.port);
  const httpPort = await choose(options.httpPort);
  const metricsPort = await choose(options.metricsPort);
  const uiPort = headless ? null : await choose(options.uiPort);
  const args = devServerArgs({
    port,
    httpPort,
    metricsPort,
    uiPort,
    headless,
    dbFilename: options.dbFilename,
    namespace: options.namespace ?? 'default',
    logLevel: options.logLevel ?? 'warn',
    dynamicConfig: options.dynamicConfig,
    extraArgs: options.extraArgs ?? [],
  });

  const releaseState = options.dbFilename ? lockStateFile(options.dbFilename) : () => undefined;
  const [command, ...prefix] = [...deathSignalPrefix(), binary];
  const child = spawn(command, [...prefix, ...args], {
    env: cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    // A session and process group of its own: signals sent to the caller's group (a terminal's Ctrl-C) pass it by.
    detached: options.ownProcessGroup === true,
  });
  installExitHooks();
  running.add(child);

  const lines = [];
  const keep = (chunk) => {
    for (const line of String(chunk).split('\n')) {
      if (!line.trim()) continue;
      lines.push(line);
      if (lines.length > OUTPUT_LINES_KEPT) lines.shift();
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);

  let exit = null;
  const exited = new Promise((resolve) => {
    child.once('error', (error) => {
      keep(`spawn failed: ${error.message}`);
      exit = { code: null, signal: null };
      running.delete(child);
      releaseState();
      resolve();
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      running.delete(child);
      releaseState();
      resolve();
    });
  });

  if (options.detached) {
    // Let the caller's process exit while the server runs; the death-signal and exit hooks still stop it.
    child.unref();
    child.stdout.unref?.();
    child.stderr.unref?.();
  }

  const address = `127.0.0.1:${port}`;
  const stop = async () => {
    if (exit) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!exit) child.kill('SIGKILL');
    }, STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  };
  const recentOutput = () => lines.join('\n');

  const timeoutMs = options.timeoutMs ?? READY_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let lastProbe = '';
  for (;;) {
    if (exit) {
      const how = exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
      const failure = new Error(`Temporal dev server (${binary}) stopped during startup (${how}):\n${recentOutput()}`);
      throw lostAPort(recentOutput()) ? new PortLost(failure) : failure;
    }
    if (await canConnect(port)) {
      if (!isListeningProcess(child.pid ?? 0, port)) {
        await stop();
        throw new PortLost(new Error(`another process took ${address} before the Temporal dev server bound it`));
      }
      const probe = await runQuiet(binary, ['operator', 'cluster', 'health', '--address', address], 5_000);
      if (probe.code === 0 && probe.output.includes('SERVING')) break;
      lastProbe = probe.output.trim();
    }
    if (Date.now() >= deadline) {
      await stop();
      const probeNote = lastProbe ? `\nlast health check: ${lastProbe}` : '';
      throw new Error(
        `Temporal dev server did not answer on ${address} within ${timeoutMs / 1000} s${probeNote}\n` +
          `server output:\n${recentOutput() || '(none)'}`,
      );
    }
    await delay(100);
  }

  return {
    address,
    uiUrl: uiPort === null ? null : `http://127.0.0.1:${uiPort}`,
    pid: child.pid ?? 0,
    recentOutput,
    exited: () => exit !== null,
    stop,
  };
}
