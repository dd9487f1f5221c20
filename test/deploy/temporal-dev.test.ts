import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import {
  DEV_SERVER_DYNAMIC_CONFIG,
  devServerArgs,
  findTemporalBinary,
  freePort,
  startTemporalDevServer,
} from '../../scripts/lib/temporal-dev.mjs';

const run = promisify(execFile);
const binary = findTemporalBinary();
const scratch = mkdtempSync(path.join(tmpdir(), 'scimflow-temporal-dev-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

function requireBinary(): string {
  assert.ok(binary, 'no Temporal CLI: run `npm run setup`');
  return binary;
}

function accepts(address: string): Promise<boolean> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const socket = connect(Number(port), host, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function fakeExecutable(dir: string, name = 'temporal'): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  writeFileSync(file, '#!/bin/sh\nexit 0\n');
  chmodSync(file, 0o755);
  return file;
}

test('a started dev server answers on 127.0.0.1 with ScimProvider registered, and stop() ends it', async () => {
  const server = await startTemporalDevServer({ binary: requireBinary(), headless: true });
  try {
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(server.uiUrl, null);
    const { stdout } = await run(requireBinary(), [
      'operator',
      'search-attribute',
      'list',
      '--namespace',
      'default',
      '--address',
      server.address,
    ]);
    assert.match(stdout, /ScimProvider\s+Keyword/);
  } finally {
    await server.stop();
  }
  assert.equal(server.exited(), true);
  assert.equal(await accepts(server.address), false);
});

/** The `KEY=VALUE` pairs a dev server's command line sets with `--dynamic-config-value`. */
function dynamicConfigOf(args: readonly string[]): string[] {
  return args.flatMap((arg, i) => (args[i - 1] === '--dynamic-config-value' ? [arg] : []));
}

test("a dev server runs with scimflow's dynamic config: one node's poll rates, forwarding and eager activities", async () => {
  const server = await startTemporalDevServer({ binary: requireBinary(), headless: true });
  try {
    const running = readFileSync(`/proc/${server.pid}/cmdline`, 'utf8').split('\0');
    assert.deepEqual(dynamicConfigOf(running).sort(), [
      'history.timerProcessorMaxPollRPS=1000',
      'history.transferProcessorMaxPollRPS=1000',
      'matching.forwarderMaxRatePerSecond=1000',
      'system.enableActivityEagerExecution=true',
    ]);
  } finally {
    await server.stop();
  }
});

test('a dev server given its own dynamic config gets that instead of the defaults', () => {
  const ports = {
    port: 1,
    httpPort: 2,
    metricsPort: 3,
    uiPort: null,
    headless: true,
    namespace: 'n',
    logLevel: 'warn',
  };
  assert.deepEqual(dynamicConfigOf(devServerArgs({ ...ports, dynamicConfig: {}, extraArgs: [] })), []);
  assert.deepEqual(
    dynamicConfigOf(devServerArgs({ ...ports, dynamicConfig: { 'limit.maxIDLength': 255 }, extraArgs: [] })),
    ['limit.maxIDLength=255'],
  );
  assert.equal(
    dynamicConfigOf(devServerArgs({ ...ports, extraArgs: [] })).length,
    Object.keys(DEV_SERVER_DYNAMIC_CONFIG).length,
  );
});

test('with ownProcessGroup the server leads a process group of its own, and stop() still ends it', async () => {
  // Field 5 of /proc/<pid>/stat is the process group (the command name before it, in parentheses, has no spaces here).
  const group = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[2]);
  const server = await startTemporalDevServer({ binary: requireBinary(), headless: true, ownProcessGroup: true });
  try {
    assert.equal(group(server.pid), server.pid);
    assert.notEqual(group(server.pid), group(process.pid));
  } finally {
    await server.stop();
  }
  assert.equal(server.exited(), true);
  assert.equal(await accepts(server.address), false);
});

test('the Web UI is served on its own port unless headless', async () => {
  const server = await startTemporalDevServer({ binary: requireBinary() });
  try {
    assert.ok(server.uiUrl);
    const response = await fetch(server.uiUrl);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  } finally {
    await server.stop();
  }
});

test('a requested port that is taken is replaced by a free one when fallbackToFreePorts is set', async () => {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const address = blocker.address();
  assert.ok(address && typeof address === 'object');
  const server = await startTemporalDevServer({
    binary: requireBinary(),
    headless: true,
    port: address.port,
    fallbackToFreePorts: true,
  });
  try {
    assert.notEqual(server.address, `127.0.0.1:${address.port}`);
    assert.equal(await accepts(server.address), true);
  } finally {
    await server.stop();
    blocker.close();
  }
});

test('a chosen port that another process takes before the server binds it is replaced, and the server starts', async () => {
  // The race freePort() leaves open, made certain: the first port chosen is already held (and answers) elsewhere.
  const blocker: Server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const taken = blocker.address();
  assert.ok(taken && typeof taken === 'object');
  const chosen: number[] = [];
  const server = await startTemporalDevServer({
    binary: requireBinary(),
    headless: true,
    choosePort: async () => {
      const port = chosen.length === 0 ? taken.port : await freePort();
      chosen.push(port);
      return port;
    },
  });
  try {
    assert.equal(chosen[0], taken.port);
    assert.ok(chosen.length >= 6, `every port was chosen again after the lost one: ${chosen.join(', ')}`);
    assert.notEqual(server.address, `127.0.0.1:${taken.port}`);
    const connection = await Connection.connect({ address: server.address });
    await new Client({ connection }).workflow.count();
    await connection.close();
  } finally {
    await server.stop();
    blocker.close();
  }
});

test('a port asked for without fallbackToFreePorts is not replaced: a taken one fails the start', async () => {
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const taken = blocker.address();
  assert.ok(taken && typeof taken === 'object');
  try {
    await assert.rejects(startTemporalDevServer({ binary: requireBinary(), headless: true, port: taken.port }), {
      message: new RegExp(`${taken.port}.*address already in use|another process took 127\\.0\\.0\\.1:${taken.port}`),
    });
  } finally {
    blocker.close();
  }
});

test('a server that cannot start rejects with its own error output', async () => {
  await assert.rejects(
    startTemporalDevServer({ binary: requireBinary(), headless: true, extraArgs: ['--no-such-flag'] }),
    (error: Error) => {
      assert.match(error.message, /stopped during startup/);
      assert.match(error.message, /unknown flag: --no-such-flag/);
      return true;
    },
  );
});

test('a server given a state file keeps an open workflow across a restart, and no second server opens the file meanwhile', async () => {
  const dbFilename = path.join(scratch, 'state', 'nested', 'temporal.sqlite');
  const workflowId = 'left-open';
  const first = await startTemporalDevServer({ binary: requireBinary(), headless: true, dbFilename });
  try {
    await assert.rejects(startTemporalDevServer({ binary: requireBinary(), headless: true, dbFilename }), {
      code: 'ESTATEUNAVAILABLE',
      message: `the Temporal state ${dbFilename} is in use by process ${process.pid}`,
    });
    const connection = await Connection.connect({ address: first.address });
    await new Client({ connection }).workflow.start('leftOpen', { taskQueue: 'no-worker-polls-this', workflowId });
    await connection.close();
  } finally {
    await first.stop();
  }

  const second = await startTemporalDevServer({ binary: requireBinary(), headless: true, dbFilename });
  try {
    const connection = await Connection.connect({ address: second.address });
    const described = await new Client({ connection }).workflow.getHandle(workflowId).describe();
    await connection.close();
    assert.equal(described.status.name, 'RUNNING');
  } finally {
    await second.stop();
  }
});

test('a state-file lock left by a process that is gone is taken over', async () => {
  const dbFilename = path.join(scratch, 'stale', 'temporal.sqlite');
  mkdirSync(path.dirname(dbFilename), { recursive: true });
  const gone = spawnSync(process.execPath, ['-e', '']).pid;
  assert.ok(gone);
  writeFileSync(`${dbFilename}.lock`, `${gone}\n`);
  const server = await startTemporalDevServer({ binary: requireBinary(), headless: true, dbFilename });
  try {
    assert.equal(readFileSync(`${dbFilename}.lock`, 'utf8'), `${process.pid}\n`);
  } finally {
    await server.stop();
  }
  assert.equal(existsSync(`${dbFilename}.lock`), false, 'stop() releases the lock');
});

test('findTemporalBinary prefers SCIMFLOW_TEMPORAL_BIN, then PATH, then the scimflow cache', () => {
  const explicit = fakeExecutable(path.join(scratch, 'explicit'), 'my-temporal');
  const onPath = fakeExecutable(path.join(scratch, 'path-dir'));
  const cached = fakeExecutable(path.join(scratch, 'xdg', 'scimflow', 'bin'));
  const base = { HOME: path.join(scratch, 'home'), XDG_CACHE_HOME: path.join(scratch, 'xdg') };
  const pathDir = path.dirname(onPath);
  assert.equal(findTemporalBinary({ ...base, PATH: pathDir, SCIMFLOW_TEMPORAL_BIN: explicit }), explicit);
  assert.equal(findTemporalBinary({ ...base, PATH: pathDir }), onPath);
  assert.equal(findTemporalBinary({ ...base, PATH: path.join(scratch, 'empty') }), cached);
  assert.equal(findTemporalBinary({ HOME: path.join(scratch, 'home'), PATH: path.join(scratch, 'empty') }), null);
});

test('findTemporalBinary returns null when SCIMFLOW_TEMPORAL_BIN is not executable, without falling back', () => {
  const plain = path.join(scratch, 'plain-file');
  writeFileSync(plain, 'data');
  const onPath = fakeExecutable(path.join(scratch, 'path-dir-2'));
  assert.equal(findTemporalBinary({ PATH: path.dirname(onPath), SCIMFLOW_TEMPORAL_BIN: plain }), null);
});
