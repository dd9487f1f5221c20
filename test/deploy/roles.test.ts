import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { savedToken } from '../../cli/credentials.ts';
import { endedWithin, startRole, waitForOutput } from '../support/roles.ts';
import { generateSecretKey } from '../../db/index.ts';
import { housekeepingScheduleId } from '../../engine/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// A port freed by a stopped role may be taken at once by a server of another test file running beside this one: what
// is checked after a stop is that the role's own server no longer answers, recognised by what only it would accept.

/** Whether an admin API on `port` still accepts `token` (another process's API, on the port since, refuses it). */
async function apiAccepts(port: number, token: string): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/providers`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

/** Whether a Temporal server on `port` still knows `workflowId` (another dev server, on the port since, does not). */
async function temporalKnows(port: number, workflowId: string): Promise<boolean> {
  if (!(await accepts(port))) return false;
  try {
    const connection = await Connection.connect({ address: `127.0.0.1:${port}`, connectTimeout: '10s' });
    try {
      await new Client({ connection }).workflow.getHandle(workflowId).describe();
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}

let testDb: TestDatabase;
let env: Record<string, string | undefined>;
// The config folder these processes see (saved API tokens); never the real user's.
const configDir = mkdtempSync(join(tmpdir(), 'scimflow-roles-config-'));
const TOKEN_PATTERN = /sfa_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}/;

before(async () => {
  testDb = await createTestDatabase();
  env = {
    SCIMFLOW_CONFIG_DIR: configDir,
    SCIMFLOW_API_TOKEN: undefined,
    DATABASE_URL: testDb.url,
    SCIMFLOW_SECRET_KEY: generateSecretKey(),
    SCIMFLOW_TASK_QUEUE: `roles-${randomBytes(4).toString('hex')}`,
    LOG_LEVEL: 'info',
  };
});
after(async () => {
  await testDb.drop();
  rmSync(configDir, { recursive: true, force: true });
});

test('scimflow worker runs against TEMPORAL_ADDRESS and stops cleanly on SIGINT and on SIGTERM', async () => {
  assert.ok(process.env['TEMPORAL_ADDRESS'], 'npm test provides a Temporal server');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const worker = startRole(['worker'], env);
    await waitForOutput(worker, /scimflow worker running/);
    worker.child.kill(signal);
    const ended = await worker.done;
    assert.equal(ended.code, 0, ended.output);
    assert.match(ended.output, new RegExp(`"signal":"${signal}","msg":"stopping scimflow"`));
    assert.doesNotMatch(ended.output, /error while stopping/);
  }
});

test('a scimflow worker gives its task queue a housekeeping schedule', async (t) => {
  const taskQueue = `${env['SCIMFLOW_TASK_QUEUE']}-housekeeping`;
  const connection = await Connection.connect({ address: process.env['TEMPORAL_ADDRESS']! });
  const handle = new Client({ connection }).schedule.getHandle(housekeepingScheduleId(taskQueue));
  await assert.rejects(handle.describe(), (error: Error) => error.name === 'ScheduleNotFoundError');
  const worker = startRole(['worker'], { ...env, SCIMFLOW_TASK_QUEUE: taskQueue });
  await waitForOutput(worker, /scimflow worker running/);
  t.after(async () => {
    await handle.delete().catch(() => undefined);
    await connection.close();
  });
  const described = await handle.describe();
  assert.equal(described.action.type, 'startWorkflow');
  assert.equal(described.action.type === 'startWorkflow' ? described.action.taskQueue : null, taskQueue);
  worker.child.kill('SIGTERM');
  assert.equal((await worker.done).code, 0);
});

// Port 0 everywhere: the process binds a port the OS gives it and reports it, so no other process can take it first.
test('scimflow api serves the admin API only to a token made with `scimflow tokens create`, and stops cleanly on SIGTERM', async () => {
  const api = startRole(['api'], { ...env, SCIMFLOW_API_PORT: '0' });
  const [, port] = await waitForOutput(api, /"url":"http:\/\/127\.0\.0\.1:(\d+)","msg":"scimflow API listening"/);
  const url = `http://127.0.0.1:${port}/api/v1/providers`;
  const anonymous = await fetch(url);
  assert.equal(anonymous.status, 401);
  assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'ERR_UNAUTHENTICATED');
  assert.equal(existsSync(join(configDir, 'credentials.json')), false, 'the production role saved no token');

  const created = await startRole(['tokens', 'create', '--name', 'roles-viewer', '--role', 'viewer'], env).done;
  assert.equal(created.code, 0, created.output);
  const token = TOKEN_PATTERN.exec(created.output)?.[0];
  assert.ok(token, created.output);
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  api.child.kill('SIGTERM');
  const ended = await api.done;
  assert.equal(ended.code, 0, ended.output);
  assert.doesNotMatch(ended.output, /error while stopping/);
  assert.equal(await apiAccepts(Number(port), token), false, 'the stopped API no longer answers on its port');
});

test('a scimflow start whose API port is taken stops what it started and exits with the error', async (t) => {
  const taken = createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.after(() => taken.close());
  const port = (taken.address() as { port: number }).port;
  const start = startRole(['start'], {
    ...env,
    SCIMFLOW_API_PORT: String(port),
    SCIMFLOW_TASK_QUEUE: `${env['SCIMFLOW_TASK_QUEUE']}-taken`,
  });
  // Its worker, relay and schedules started before the API: left running, they kept the process (and its syncs) alive.
  const ended = await endedWithin(start, 60_000);
  if (ended === null) {
    start.child.kill('SIGTERM');
    await start.done;
  }
  assert.ok(ended, `it was still running a minute later:\n${start.output()}`);
  assert.equal(ended.code, 1, ended.output);
  assert.match(
    ended.output,
    new RegExp(`^error: listen EADDRINUSE: address already in use 127\\.0\\.0\\.1:${port}$`, 'm'),
  );
});

test('scimflow worker and api refuse to start without TEMPORAL_ADDRESS', async () => {
  for (const role of ['worker', 'api']) {
    const ended = await startRole([role], { ...env, TEMPORAL_ADDRESS: undefined }).done;
    assert.equal(ended.code, 1);
    assert.equal(ended.output.trim(), `error: TEMPORAL_ADDRESS must be set for \`scimflow ${role}\``);
  }
});

test('scimflow start on an embedded Temporal saves an admin token the CLI uses unconfigured, stops everything on SIGINT, and the next start resumes the runs it kept on disk', async (t) => {
  const startDir = mkdtempSync(join(tmpdir(), 'scimflow-start-config-'));
  // The embedded server keeps its state under XDG_CACHE_HOME; a scratch one keeps the test off the user's own.
  const cache = mkdtempSync(join(tmpdir(), 'scimflow-start-cache-'));
  t.after(() => {
    rmSync(startDir, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  });
  const startEnv = { ...env, SCIMFLOW_CONFIG_DIR: startDir, SCIMFLOW_API_PORT: '0', XDG_CACHE_HOME: cache };
  const start = startRole(['start'], { ...startEnv, TEMPORAL_ADDRESS: undefined });
  const [, apiPort] = await waitForOutput(start, /API +http:\/\/127\.0\.0\.1:(\d+)\/api\/v1/);
  const [, temporalPort] = await waitForOutput(start, /Temporal +127\.0\.0\.1:(\d+)/);
  const [, saved] = await waitForOutput(
    start,
    /API token +admin token "local-admin-[0-9a-f]{8}" created and saved in (\S+)/,
  );
  await waitForOutput(start, /Press Ctrl-C to stop/);
  assert.equal(saved, join(startDir, 'credentials.json'));
  assert.equal(statSync(saved).mode & 0o777, 0o600, 'the saved token is readable by its owner only');
  assert.doesNotMatch(start.output(), TOKEN_PATTERN, 'the token itself is never printed');

  // The CLI, with no token in its environment and no options but where the API is, reads the saved token.
  const listed = await startRole(['providers', 'list'], {
    ...startEnv,
    SCIMFLOW_API_URL: `http://127.0.0.1:${apiPort}`,
  }).done;
  assert.equal(listed.code, 0, listed.output);
  assert.match(listed.output, /^SLUG +NAME/m);
  assert.equal(await accepts(Number(temporalPort)), true);
  assert.match(
    start.output(),
    new RegExp(`Temporal DB +${join(cache, 'scimflow', 'temporal', 'dev-server')}\\.sqlite`),
  );
  // A run under way when scimflow stops: a workflow on a task queue no worker polls stays open.
  const workflowId = `left-open-${randomBytes(4).toString('hex')}`;
  const first = await Connection.connect({ address: `127.0.0.1:${temporalPort}` });
  await new Client({ connection: first }).workflow.start('leftOpen', { taskQueue: `${workflowId}-queue`, workflowId });
  await first.close();
  // What the checks after the stop look for, seen before it.
  const token = savedToken(`http://127.0.0.1:${apiPort}`, startEnv)?.token ?? '';
  assert.equal(await apiAccepts(Number(apiPort), token), true);
  assert.equal(await temporalKnows(Number(temporalPort), workflowId), true);

  start.child.kill('SIGINT');
  const ended = await start.done;
  assert.equal(ended.code, 0, ended.output);
  assert.match(ended.output, /"signal":"SIGINT","msg":"stopping scimflow"/);
  assert.doesNotMatch(ended.output, /error while stopping/);
  assert.equal(
    await temporalKnows(Number(temporalPort), workflowId),
    false,
    'the embedded Temporal server has stopped',
  );
  assert.equal(await apiAccepts(Number(apiPort), token), false, 'the stopped API no longer answers on its port');

  const again = startRole(['start'], { ...startEnv, TEMPORAL_ADDRESS: undefined });
  t.after(async () => {
    again.child.kill('SIGINT');
    await again.done;
  });
  const [, secondPort] = await waitForOutput(again, /Temporal +127\.0\.0\.1:(\d+)/);
  await waitForOutput(again, /Press Ctrl-C to stop/);
  const second = await Connection.connect({ address: `127.0.0.1:${secondPort}` });
  t.after(() => second.close());
  const described = await new Client({ connection: second }).workflow.getHandle(workflowId).describe();
  assert.equal(described.status.name, 'RUNNING');
});
