import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { createProvider, createSecretBox, generateSecretKey } from '../../db/index.ts';
import { providerSyncWorkflowId } from '../../workflows/index.ts';
import { eventually } from '../incremental/harness.ts';
import { startScimTarget } from '../servers/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { childrenOf, processState } from '../support/processes.ts';
import { testProviderInput } from '../support/providers.ts';

// cli/main.ts itself, as the launcher of `npm start` runs it (bin.mjs, with no terminal, passes the group's signal on
// as well: a signal that arrives twice at once is one request, see cli/stoppers.test.ts).
const MAIN = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));

test('Ctrl-C of scimflow start (SIGINT to its process group) stops it in seconds, with no gRPC warning, and ends its Temporal server', async (t) => {
  const testDb = await createTestDatabase();
  const target = await startScimTarget({ token: randomBytes(16).toString('hex') });
  const configDir = mkdtempSync(join(tmpdir(), 'scimflow-interrupt-config-'));
  // The embedded server keeps its state under XDG_CACHE_HOME; a scratch one keeps the test off the user's own.
  const cache = mkdtempSync(join(tmpdir(), 'scimflow-interrupt-cache-'));
  t.after(async () => {
    await target.close();
    await testDb.drop();
    rmSync(configDir, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  });
  // A provider, so that its workflow waits for changes in an activity when Ctrl-C comes: the worker then has an
  // activity to finish and report, which it could not when the server had gone with the same Ctrl-C.
  const secretKey = generateSecretKey();
  const provider = await createProvider(testDb.db, createSecretBox(secretKey), testProviderInput(target, 'interrupt'));

  const start = spawn(process.execPath, ['--no-node-snapshot', MAIN, 'start'], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: undefined,
      SCIMFLOW_API_TOKEN: undefined,
      SCIMFLOW_CONFIG_DIR: configDir,
      XDG_CACHE_HOME: cache,
      SCIMFLOW_API_PORT: '0',
      DATABASE_URL: testDb.url,
      SCIMFLOW_SECRET_KEY: secretKey,
      SCIMFLOW_TASK_QUEUE: `interrupt-${randomBytes(4).toString('hex')}`,
      LOG_LEVEL: 'info',
    },
    // A process group of its own, led by the start process, as a terminal's foreground job is.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  start.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  start.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    start.once('close', (code, signal) => resolve({ code, signal })),
  );
  const running = () => start.exitCode === null && start.signalCode === null;
  t.after(async () => {
    if (!running()) return;
    process.kill(-start.pid!, 'SIGKILL');
    await ended;
  });

  const address = await eventually(
    'scimflow start ready',
    () => {
      if (!running()) throw new Error('it ended');
      return Promise.resolve(
        /Press Ctrl-C to stop/.test(output) ? /Temporal +(127\.0\.0\.1:\d+)/.exec(output)?.[1] : undefined,
      );
    },
    180_000,
    () => Promise.resolve(output),
  );
  const server = childrenOf(start.pid!).find((child) => child.command.includes('start-dev'));
  assert.ok(server, `no Temporal dev server among its children: ${JSON.stringify(childrenOf(start.pid!))}`);
  const connection = await Connection.connect({ address });
  t.after(() => connection.close());
  const handle = new Client({ connection }).workflow.getHandle(providerSyncWorkflowId(provider.slug));
  await eventually(
    'the provider waiting for changes in an activity',
    async () => {
      const { raw } = await handle.describe();
      return raw.pendingActivities?.some((a) => a.activityType?.name === 'awaitChanges') ? true : undefined;
    },
    120_000,
    () => Promise.resolve(output),
  );
  await connection.close();

  const before = output.length;
  const interrupted = Date.now();
  process.kill(-start.pid!, 'SIGINT');
  const { code } = await ended;
  const seconds = (Date.now() - interrupted) / 1000;
  const after = output.slice(before);

  assert.equal(code, 0, output);
  assert.ok(seconds < 10, `it took ${seconds} s to stop:\n${after}`);
  assert.doesNotMatch(after, /gRPC|tcp connect error|Unavailable|transport error/i);
  for (const line of after.split('\n').filter((text) => text !== '')) {
    let level: unknown;
    try {
      level = (JSON.parse(line) as { level?: unknown }).level;
    } catch {
      assert.fail(`a line that is not the logger's after Ctrl-C: ${line}`);
    }
    assert.ok(typeof level === 'number' && level < 40, `a warning or error after Ctrl-C: ${line}`);
  }
  // Its parent reaps it; a zombie left for init to reap has exited too.
  await eventually('the Temporal dev server gone', () => {
    const state = processState(server.pid);
    return Promise.resolve(state === null || state === 'Z' ? true : undefined);
  });
});
