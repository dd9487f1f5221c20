import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  createProvider,
  createSecretBox,
  createUser,
  generateSecretKey,
  ProviderInputSchema,
  UserInputSchema,
} from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { endedWithin, startRole, waitForOutput } from '../support/roles.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A copy of the checkout as the production image holds it (.dockerignore leaves out test/, bench/ and every
 * *.test.ts), sharing this checkout's node_modules.
 */
async function productionTree(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'scimflow-production-'));
  const left = new Set(['.git', 'node_modules', 'test', 'bench', '.scimflow', 'coverage']);
  await cp(ROOT, dir, {
    recursive: true,
    filter: (source) => {
      const relative = path.relative(ROOT, source);
      return !left.has(relative.split(path.sep)[0] ?? '') && !relative.endsWith('.test.ts');
    },
  });
  await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

test('`start --demo` in a production install fails at once with ERR_CONFIG saying the demo needs a development checkout', async (t) => {
  const dir = await productionTree();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--no-node-snapshot', 'cli/main.ts', 'start', '--demo'], {
    cwd: dir,
    // Nothing listens on port 1: had the command started anything before checking, it would fail on PostgreSQL.
    env: { ...process.env, DATABASE_URL: 'postgres://scimflow@127.0.0.1:1/scimflow', TEMPORAL_ADDRESS: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));

  assert.equal(code, 1, output);
  assert.equal(
    output.trim(),
    'error: ERR_CONFIG: --demo needs a development checkout: its SCIM target is the test server in test/servers ' +
      '(SCIMMY, a devDependency), which a production install leaves out. Run `npm run demo` in a clone of the repository',
  );
});

describe('`start --demo` in a development checkout', () => {
  const configDir = mkdtempSync(path.join(tmpdir(), 'scimflow-demo-config-'));
  after(() => rmSync(configDir, { recursive: true, force: true }));
  /** A database of its own for each test, and the environment a demo on it runs with. */
  async function demoDatabase(t: TestContext) {
    const testDb = await createTestDatabase();
    t.after(() => testDb.drop());
    const env = {
      DATABASE_URL: testDb.url,
      SCIMFLOW_CONFIG_DIR: configDir,
      SCIMFLOW_API_TOKEN: undefined,
      SCIMFLOW_API_PORT: '0',
      SCIMFLOW_SECRET_KEY: generateSecretKey(),
      SCIMFLOW_TASK_QUEUE: `demo-${randomBytes(4).toString('hex')}`,
      LOG_LEVEL: 'warn',
    };
    const counts = async () =>
      (
        await testDb.db.query<{ users: number; groups: number; providers: number }>(
          `SELECT (SELECT count(*) FROM users)::int AS users, (SELECT count(*) FROM groups)::int AS groups,
                  (SELECT count(*) FROM providers)::int AS providers`,
        )
      ).rows[0]!;
    return { testDb, env, counts };
  }

  /** `start --demo`, stopped (SIGINT, as Ctrl-C) when the test ends if it is still running. */
  function startDemo(t: TestContext, env: Record<string, string | undefined>) {
    const demo = startRole(['start', '--demo'], env);
    t.after(async () => {
      if (demo.child.exitCode === null && demo.child.signalCode === null) demo.child.kill('SIGINT');
      await demo.done;
    });
    return demo;
  }

  test('provisions its own users and groups only, and removes them and its provider when stopped', async (t) => {
    const { testDb, env, counts } = await demoDatabase(t);
    await createUser(testDb.db, UserInputSchema.parse({ username: 'real.person@example.test' }));
    const demo = startDemo(t, env);
    const [, users, groups] = await waitForOutput(demo, /The target now holds (\d+) users, (\d+) groups/, 180_000);
    assert.deepEqual([Number(users), Number(groups)], [1000, 50], 'the directory’s own user stays off the demo target');
    demo.child.kill('SIGINT');
    const ended = await demo.done;
    assert.equal(ended.code, 0, ended.output);
    assert.deepEqual(await counts(), { users: 1, groups: 0, providers: 0 });
  });

  test('refuses a database whose providers could receive its users, and seeds nothing', async (t) => {
    const { testDb, env, counts } = await demoDatabase(t);
    await createProvider(
      testDb.db,
      createSecretBox(generateSecretKey()),
      ProviderInputSchema.parse({
        slug: 'real-saas',
        name: 'A real SaaS',
        baseUrl: 'https://saas.example.test/scim/v2',
        auth: { mode: 'bearer', token: 't' },
      }),
    );
    const demo = startDemo(t, env);
    const ended = await endedWithin(demo, 120_000);
    assert.ok(ended, `still running two minutes later, not refused:\n${demo.output()}`);
    assert.equal(ended.code, 1, ended.output);
    assert.match(
      ended.output,
      /^error: ERR_CONFIG: the demo seeds 1000 users and 51 groups into the directory, and this database has providers that could receive them \(real-saas\): run the demo on a database of its own \(DATABASE_URL\)$/m,
    );
    assert.deepEqual(await counts(), { users: 0, groups: 0, providers: 1 });
  });
});
