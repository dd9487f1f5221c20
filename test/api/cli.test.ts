import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { createApi, startApiServer, type ApiServer } from '../../api/index.ts';
import {
  createRun,
  createSecretBox,
  finishRun,
  generateSecretKey,
  getProviderForSync,
  recordProgress,
  saveLinks,
  setRunTotal,
  startQueuedRun,
  zeroCounts,
  type Db,
  type ProviderView,
  type SecretBox,
  type SyncAction,
} from '../../db/index.ts';
import { startScimflow, runScimflow, type CliProcess } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import {
  createTestToken,
  recordingSyncControl,
  validatePluginOptions,
  type RecordingSyncControl,
} from './api-harness.ts';

const TOKEN = 'cli-token-5be1c0de-do-not-print';

const startCli = startScimflow;
const runCli = runScimflow;

/** Resolves once the process has printed `pattern` on stdout; rejects when it ends without having printed it. */
function printed(cli: CliProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    const stop = () => {
      cli.child.stdout?.off('data', check);
      cli.child.off('close', ended);
    };
    // The output buffer's own listener was added first, so it already holds the chunk this one is called for.
    const check = () => {
      if (!pattern.test(cli.output().stdout)) return;
      stop();
      resolve();
    };
    const ended = () => {
      stop();
      reject(new Error(`ended without printing ${String(pattern)}: ${JSON.stringify(cli.output())}`));
    };
    cli.child.stdout?.on('data', check);
    cli.child.once('close', ended);
    check();
  });
}

/**
 * Stands in for Temporal: opens a real sync_runs row, reports progress and finishes it a little later, so the CLI
 * has to poll. Providers whose slug starts with `flaky` finish with one failed object; `endless` ones never finish.
 */
function completingSyncControl(db: Db, pending: Array<Promise<unknown>>): RecordingSyncControl {
  return recordingSyncControl(async (provider: ProviderView) => {
    const workflowId = `full-sync:${provider.slug}`;
    const queued = provider.slug.startsWith('queued');
    const runId = await createRun(db, provider.id, 'full', workflowId, queued ? 'queued' : 'running');
    await setRunTotal(db, runId, 3);
    if (provider.slug.startsWith('endless')) return { runId, workflowId };
    const failed = provider.slug.startsWith('flaky') ? 1 : 0;
    pending.push(
      (async () => {
        // A run's outcome counters are recounted from its log when it ends: one event per object counted.
        const event = (action: SyncAction) => ({ objectType: 'user' as const, localId: randomUUID(), action });
        if (queued) {
          await delay(600);
          await startQueuedRun(db, runId);
        }
        await delay(300);
        await recordProgress(db, runId, { ...zeroCounts(), processed: 2, created: 2 }, [
          event('create'),
          event('create'),
        ]);
        await delay(300);
        await recordProgress(db, runId, { ...zeroCounts(), processed: 1, failed }, failed ? [event('fail')] : []);
        await finishRun(db, runId, 'succeeded', null);
      })(),
    );
    return { runId, workflowId, queued };
  });
}

describe('scimflow CLI', () => {
  let database: TestDatabase;
  let secrets: SecretBox;
  let server: ApiServer;
  let workDir: string;
  let env: Record<string, string>;
  const pending: Array<Promise<unknown>> = [];

  before(async () => {
    database = await createTestDatabase();
    secrets = createSecretBox(generateSecretKey());
    const app = createApi({
      db: database.db,
      secrets,
      sync: completingSyncControl(database.db, pending),
      validatePluginOptions,
    });
    server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
    workDir = await mkdtemp(join(tmpdir(), 'scimflow-cli-'));
    env = { SCIMFLOW_API_URL: server.url, SCIMFLOW_API_TOKEN: await createTestToken(database.db, 'admin') };
  });
  after(async () => {
    await Promise.allSettled(pending);
    await server.close();
    await database.drop();
    await rm(workDir, { recursive: true, force: true });
  });

  const createProvider = (slug: string) =>
    runCli(
      ['providers', 'create', '--slug', slug, '--url', 'https://scim.example.test/v2', '--token-env', 'SCIM_TOKEN'],
      {
        env: { ...env, SCIM_TOKEN: TOKEN },
      },
    );

  test('users import prints the counts, and a second import of the same file changes nothing', async () => {
    const file = join(workDir, 'directory.json');
    await writeFile(
      file,
      JSON.stringify({
        users: [{ username: 'ada' }, { username: 'grace', email: 'grace@example.test' }],
        groups: [{ name: 'pioneers', members: ['ada', 'grace'] }],
      }),
    );
    const first = await runCli(['users', 'import', file], { env });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /users: +2 created, 0 updated, 0 unchanged/);
    assert.match(first.stdout, /groups: +1 created, 0 updated, 0 unchanged/);
    assert.match(first.stdout, /members: 2 added, 0 removed/);
    const second = await runCli(['users', 'import', file], { env });
    assert.match(second.stdout, /users: +0 created, 0 updated, 2 unchanged/);
    assert.match(second.stdout, /members: 0 added, 0 removed/);

    const listed = await runCli(['users', 'list'], { env });
    assert.equal(listed.code, 0);
    assert.match(listed.stdout, /^ID +USERNAME/m);
    assert.match(listed.stdout, /\bada\b/);
    assert.match(listed.stdout, /grace@example\.test/);
  });

  test('an API error is printed as code, message and the fields at fault, with exit code 1 and no stack trace', async () => {
    const file = join(workDir, 'bad.json');
    await writeFile(file, JSON.stringify({ groups: [{ name: 'ghosts', members: ['nobody'] }] }));
    const result = await runCli(['users', 'import', file], { env });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: ERR_VALIDATION: group members name users that do not exist$/m);
    assert.match(result.stderr, /^ {2}groups\.0\.members\.0: no user "nobody"$/m);
    assert.doesNotMatch(result.stderr, /\n\s+at /);
  });

  test('a file that is not JSON is reported without calling the API', async () => {
    const file = join(workDir, 'broken.json');
    await writeFile(file, '{ "users": [');
    const result = await runCli(['users', 'import', file], { env });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: ERR_VALIDATION: .*broken\.json is not valid JSON/m);
  });

  test('users import streams an NDJSON file to the API and prints the counts and the batches', async () => {
    const file = join(workDir, 'directory.ndjson');
    const lines = [
      ...Array.from({ length: 2500 }, (_, i) => ({ user: { username: `stream${i}` } })),
      { group: { name: 'streamers', members: ['stream0', 'stream2499'] } },
    ];
    await writeFile(file, lines.map((line) => JSON.stringify(line)).join('\n') + '\n');
    const result = await runCli(['users', 'import', file], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /users: +2500 created, 0 updated, 0 unchanged/);
    assert.match(result.stdout, /groups: +1 created, 0 updated, 0 unchanged/);
    assert.match(result.stdout, /members: 2 added, 0 removed/);
    // The server's default batch: 1,000 users per transaction, then the group in one of its own.
    assert.match(result.stdout, /lines: +2501 in 4 batches/);
    const { rows } = await database.db.query<{ n: string }>(
      "SELECT count(*) AS n FROM users WHERE username LIKE 'stream%'",
    );
    assert.equal(rows[0]?.n, '2500');
  });

  test('users import of an NDJSON file with a bad line names the line and says what was kept', async () => {
    const file = join(workDir, 'bad.ndjson');
    await writeFile(file, `{"user": {"username": "kept"}}\n{"user": {"username": "lost", "email": "nope"}}\n`);
    const result = await runCli(['users', 'import', file], { env });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^error: ERR_VALIDATION: line 2: user\.email: .*the line before it was imported \(1 batch\), nothing from it on/m,
    );
    assert.match(result.stderr, /^ {2}user\.email: /m);
    const { rows } = await database.db.query<{ username: string }>(
      "SELECT username FROM users WHERE username IN ('kept', 'lost')",
    );
    assert.deepEqual(
      rows.map((row) => row.username),
      ['kept'],
    );
  });

  test('providers create reads the token from the named environment variable and never prints it', async () => {
    const result = await createProvider('from-env');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^created provider from-env \([0-9a-f-]{36}\)$/m);
    assert.ok(!result.stdout.includes(TOKEN) && !result.stderr.includes(TOKEN));
    const { rows } = await database.db.query<{ id: string }>("SELECT id FROM providers WHERE slug = 'from-env'");
    const provider = await getProviderForSync(database.db, secrets, rows[0]!.id);
    assert.deepEqual(provider.auth, { mode: 'bearer', token: TOKEN });
  });

  test('providers create reads the token from stdin when no variable is named', async () => {
    const result = await runCli(
      [
        'providers',
        'create',
        '--slug',
        'from-stdin',
        '--name',
        'Piped',
        '--url',
        'https://scim.example.test/v2',
        '--page-size',
        '50',
      ],
      {
        env,
        stdin: 'piped-token-value\n',
      },
    );
    assert.equal(result.code, 0, result.stderr);
    const { rows } = await database.db.query<{ id: string; page_size: number; name: string }>(
      "SELECT id, page_size, name FROM providers WHERE slug = 'from-stdin'",
    );
    const row = rows[0];
    assert.ok(row);
    assert.equal(row.page_size, 50);
    assert.equal(row.name, 'Piped');
    assert.deepEqual((await getProviderForSync(database.db, secrets, row.id)).auth, {
      mode: 'bearer',
      token: 'piped-token-value',
    });
  });

  test('providers create fails clearly when the named variable is unset', async () => {
    const result = await runCli(
      [
        'providers',
        'create',
        '--slug',
        'no-token',
        '--url',
        'https://scim.example.test/v2',
        '--token-env',
        'UNSET_SCIM_TOKEN_VAR',
      ],
      {
        env,
      },
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: ERR_CONFIG: environment variable UNSET_SCIM_TOKEN_VAR/m);
    const { rowCount } = await database.db.query("SELECT 1 FROM providers WHERE slug = 'no-token'");
    assert.equal(rowCount, 0);
  });

  test('providers list and show describe providers without their token', async () => {
    await createProvider('listed');
    const list = await runCli(['providers', 'list'], { env });
    assert.equal(list.code, 0);
    assert.match(list.stdout, /^listed +listed +scim2 +yes/m);
    const show = await runCli(['providers', 'show', 'listed'], { env });
    assert.equal(show.code, 0);
    assert.deepEqual((JSON.parse(show.stdout) as ProviderView).auth, { mode: 'bearer', secretSet: true });
    assert.ok(!list.stdout.includes(TOKEN) && !show.stdout.includes(TOKEN));
  });

  test('providers update changes only the options given and rotates the token from a variable without printing it', async () => {
    await createProvider('updated');
    const result = await runCli(
      ['providers', 'update', 'updated', '--full-sync-interval', '15', '--disable', '--token-env', 'NEW_TOKEN'],
      { env: { ...env, NEW_TOKEN: `${TOKEN}-rotated` } },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^updated provider updated \(configuration version 2\)$/m);
    assert.ok(!result.stdout.includes(TOKEN) && !result.stderr.includes(TOKEN));
    const { rows } = await database.db.query<{
      id: string;
      full_sync_interval_minutes: number;
      enabled: boolean;
      page_size: number;
    }>("SELECT id, full_sync_interval_minutes, enabled, page_size FROM providers WHERE slug = 'updated'");
    assert.deepEqual(
      { ...rows[0], id: undefined },
      { id: undefined, full_sync_interval_minutes: 15, enabled: false, page_size: 100 },
    );
    assert.deepEqual((await getProviderForSync(database.db, secrets, rows[0]!.id)).auth, {
      mode: 'bearer',
      token: `${TOKEN}-rotated`,
    });
  });

  test('providers update takes a deletion limit as a whole number or none, and refuses anything else', async () => {
    await createProvider('limited');
    const readLimit = async () =>
      (
        await database.db.query<{ deletion_limit: number | null }>(
          "SELECT deletion_limit FROM providers WHERE slug = 'limited'",
        )
      ).rows[0]?.deletion_limit;
    assert.equal(await readLimit(), 500);
    const set = await runCli(['providers', 'update', 'limited', '--deletion-limit', '25'], { env });
    assert.equal(set.code, 0, set.stderr);
    assert.equal(await readLimit(), 25);
    const off = await runCli(['providers', 'update', 'limited', '--deletion-limit', 'none'], { env });
    assert.equal(off.code, 0, off.stderr);
    assert.equal(await readLimit(), null);
    const bad = await runCli(['providers', 'update', 'limited', '--deletion-limit', 'lots'], { env });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /must be a whole number or "none"/);
    assert.equal(await readLimit(), null);
  });

  test('providers update with nothing to change, or contradicting itself, exits 1 and changes nothing', async () => {
    await createProvider('unchanged');
    const nothing = await runCli(['providers', 'update', 'unchanged'], { env });
    assert.equal(nothing.code, 1);
    assert.match(nothing.stderr, /^error: ERR_VALIDATION: nothing to change/m);
    const both = await runCli(['providers', 'update', 'unchanged', '--enable', '--disable'], { env });
    assert.equal(both.code, 1);
    assert.match(both.stderr, /--enable and --disable/);
    const tooLong = await runCli(['providers', 'update', 'unchanged', '--full-sync-interval', '20000'], { env });
    assert.equal(tooLong.code, 1);
    assert.match(tooLong.stderr, /fullSyncIntervalMinutes/);
    const { rows } = await database.db.query<{ config_version: number }>(
      "SELECT config_version FROM providers WHERE slug = 'unchanged'",
    );
    assert.equal(rows[0]?.config_version, 1);
  });

  test('sync follows the run to its end, prints its counts and exits 0 when nothing failed', async () => {
    await createProvider('healthy');
    const result = await runCli(['sync', 'healthy'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /full sync of healthy started: run [0-9a-f-]{36} \(workflow full-sync:healthy\)/);
    assert.match(
      result.stdout,
      /run [0-9a-f-]{36} succeeded: 3\/3 processed, 2 created, 0 updated, 0 deleted, 1 unchanged, 0 skipped, 0 failed/,
    );
  });

  test('sync of a run queued behind a full sync under way says so, and follows it once it starts to its end', async () => {
    await createProvider('queued-behind');
    const result = await runCli(['sync', 'queued-behind'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /full sync of queued-behind queued: run [0-9a-f-]{36} starts once the full sync under way ends/,
    );
    assert.match(
      result.stdout,
      /run [0-9a-f-]{36} succeeded: 3\/3 processed, 2 created, 0 updated, 0 deleted, 1 unchanged, 0 skipped, 0 failed/,
    );
  });

  test('sync exits 1 when the run had failures and points at the status command', async () => {
    await createProvider('flaky-one');
    const result = await runCli(['sync', 'flaky-one'], { env });
    assert.equal(result.code, 1);
    assert.match(
      result.stdout,
      /succeeded: 3\/3 processed, 2 created, 0 updated, 0 deleted, 0 unchanged, 0 skipped, 1 failed/,
    );
    assert.match(result.stderr, /1 object\(s\) failed: see `scimflow status flaky-one`/);
  });

  test('sync --no-watch returns as soon as the sync has started', async () => {
    await createProvider('no-watch');
    const result = await runCli(['sync', 'no-watch', '--no-watch'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /full sync of no-watch started/);
    assert.doesNotMatch(result.stdout, /run [0-9a-f-]{36} succeeded/);
  });

  test('sync of an unknown provider prints the API error and exits 1', async () => {
    const result = await runCli(['sync', 'missing-provider'], { env });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: ERR_NOT_FOUND: provider missing-provider not found$/m);
  });

  test('status shows the latest runs and the objects that failed', async () => {
    await createProvider('inspected');
    const { rows } = await database.db.query<{ id: string }>("SELECT id FROM providers WHERE slug = 'inspected'");
    const providerId = rows[0]!.id;
    const runId = await createRun(database.db, providerId, 'full', 'full-sync:inspected');
    await finishRun(database.db, runId, 'failed', { code: 'ERR_SCIM_UNAUTHORIZED', message: 'token refused' });
    const user = await database.db.query<{ id: string }>(
      "INSERT INTO users (username) VALUES ('broken.user') RETURNING id",
    );
    await saveLinks(database.db, [
      {
        providerId,
        objectType: 'user',
        localId: user.rows[0]!.id,
        remoteId: null,
        lastPayloadHash: null,
        lastPayload: null,
        status: 'failed',
        lastError: { code: 'ERR_SCIM_BAD_REQUEST', message: 'emails[0].value is invalid' },
      },
    ]);
    const result = await runCli(['status', 'inspected'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^provider inspected \(inspected\): plugin scim2, enabled, config v1/m);
    assert.match(result.stdout, /full +failed +0\/0/);
    assert.match(
      result.stdout,
      /user +broken\.user +[0-9a-f-]{36} +ERR_SCIM_BAD_REQUEST: emails\[0\]\.value is invalid/,
    );
  });

  test('status shows a provider whose last three pushes failed as stalled, with the last error', async () => {
    await createProvider('stalling');
    const { rows } = await database.db.query<{ id: string }>("SELECT id FROM providers WHERE slug = 'stalling'");
    const providerId = rows[0]!.id;
    const healthy = await runCli(['status', 'stalling'], { env });
    assert.match(healthy.stdout, /^sync: ok, 0 object\(s\) retrying, 0 failed$/m);
    for (const message of ['first refusal', 'second refusal', 'third refusal']) {
      const runId = await createRun(database.db, providerId, 'incremental', 'provider-sync:stalling');
      await finishRun(database.db, runId, 'failed', { code: 'ERR_SCIM_FORBIDDEN', message });
    }
    const result = await runCli(['status', 'stalling'], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^sync: stalled: 3 incremental push\(es\) failed in a row since \S+ \(last: ERR_SCIM_FORBIDDEN: third refusal\)/m,
    );
  });

  test(
    'a SIGTERM sent to the scimflow process is passed on to the Node process it started',
    { timeout: 120_000 },
    async () => {
      await createProvider('endless');
      const cli = startCli(['sync', 'endless'], { env });
      await printed(cli, /started: run/);
      assert.match(cli.output().stdout, /full sync of endless started/);
      const pid = cli.child.pid!;
      const [inner] = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).map(Number);
      assert.ok(inner, 'bin.mjs started a second Node process');
      cli.child.kill('SIGTERM');
      const result = await cli.done;
      assert.equal(result.signal, 'SIGTERM', 'bin.mjs ends the way its child ended');
      assert.throws(() => process.kill(inner, 0), { code: 'ESRCH' }, 'the inner process is gone, not orphaned');
    },
  );
});
