import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createApi, startApiServer, type ApiServer } from '../../api/index.ts';
import { createSecretBox, generateSecretKey, sealerOf, type AuditView, type Db } from '../../db/index.ts';
import { createMappingEngine, type MappingEngine } from '../../sandbox/index.ts';
import {
  callApi,
  createTestToken,
  recordingSyncControl,
  startTestApi,
  validatePluginOptions,
  type ErrorBody,
  type TestApi,
} from '../api/api-harness.ts';
import { runScimflow } from '../support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const FIRST_SECRET = 'first-provider-secret-4b1d';
const SECOND_SECRET = 'second-provider-secret-9f2e';

describe('audit log', () => {
  let database: TestDatabase;
  let engine: MappingEngine;
  let server: ApiServer;
  let admin: string;
  let configDir: string;

  before(async () => {
    database = await createTestDatabase();
    engine = createMappingEngine();
    const app = createApi({
      db: database.db,
      secrets: sealerOf(createSecretBox(generateSecretKey())),
      sync: recordingSyncControl(),
      validatePluginOptions,
      mappingEngine: engine,
    });
    server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
    admin = await createTestToken(database.db, 'admin', 'alice');
    configDir = await mkdtemp(join(tmpdir(), 'scimflow-audit-config-'));
  });
  after(async () => {
    await server.close();
    await engine.disposeAll();
    await database.drop();
    await rm(configDir, { recursive: true, force: true });
  });

  const call = <T>(method: string, path: string, body?: unknown, token = admin) =>
    callApi<T>(server.url, token, method, path, body);

  test('a scripted series of changes leaves one row per change: who, what, on what, from where, no secret', async () => {
    const deployer = await call<{ token: string }>('POST', '/tokens', { name: 'deployer', role: 'operator' });
    assert.equal(deployer.status, 201);
    const provider = {
      slug: 'audited',
      name: 'Audited',
      baseUrl: 'https://one.example.test/scim/v2',
      auth: { mode: 'bearer', token: FIRST_SECRET },
    };
    assert.equal((await call('POST', '/providers', provider)).status, 201);
    assert.equal((await call('POST', '/providers', provider)).status, 409, 'a refused change');
    assert.equal((await call('PATCH', '/providers/audited', { name: 'Audited v2' })).status, 200);
    assert.equal((await call('PATCH', '/providers/audited', { name: 'Audited v2' })).status, 200, 'a no-op');
    const rotate = { auth: { mode: 'bearer', token: SECOND_SECRET } };
    assert.equal((await call('PATCH', '/providers/audited', rotate)).status, 200);
    const move = { baseUrl: 'https://two.example.test/scim/v2' };
    assert.equal((await call('PATCH', '/providers/audited', move)).status, 200);
    const mapping = await call<{ id: string }>('POST', '/mappings', {
      name: 'zz-title',
      objectType: 'user',
      expression: "return { title: 'X' };",
    });
    assert.equal(mapping.status, 201);
    const edit = { expression: "return { title: 'Y' };" };
    assert.equal((await call('PATCH', `/mappings/${mapping.body.id}`, edit)).status, 200);
    assert.equal((await call('PUT', '/providers/audited/mappings', { mappingIds: [mapping.body.id] })).status, 200);
    assert.equal((await call('POST', '/providers/audited/sync', {}, deployer.body.token)).status, 202);
    assert.equal((await call('DELETE', `/mappings/${mapping.body.id}`)).status, 204);
    assert.equal((await call('DELETE', '/tokens/deployer')).status, 204);
    assert.equal((await call('DELETE', '/providers/audited')).status, 204);

    const page = await call<{ items: AuditView[] }>('GET', '/audit?limit=100');
    assert.equal(page.status, 200);
    const rows = [...page.body.items].reverse();
    assert.deepEqual(
      rows.map((row) => [row.actor, row.action, row.targetType, row.targetName]),
      [
        ['alice', 'token.create', 'token', 'deployer'],
        ['alice', 'provider.create', 'provider', 'audited'],
        ['alice', 'provider.update', 'provider', 'audited'],
        ['alice', 'provider.update', 'provider', 'audited'],
        ['alice', 'provider.update', 'provider', 'audited'],
        ['alice', 'mapping.create', 'mapping', 'zz-title'],
        ['alice', 'mapping.update', 'mapping', 'zz-title'],
        ['alice', 'provider.mappings.set', 'provider', 'audited'],
        ['deployer', 'sync.start', 'provider', 'audited'],
        ['alice', 'mapping.delete', 'mapping', 'zz-title'],
        ['alice', 'token.revoke', 'token', 'deployer'],
        ['alice', 'provider.delete', 'provider', 'audited'],
      ],
    );
    assert.deepEqual(rows[2]?.details, { changed: ['name'], credential: 'unchanged' });
    assert.deepEqual(rows[3]?.details, { changed: ['auth'], credential: 'replaced' });
    assert.deepEqual(rows[4]?.details, {
      changed: ['baseUrl', 'auth'],
      credential: 'cleared-origin-changed',
      baseUrl: 'https://two.example.test/scim/v2',
    });
    assert.deepEqual(rows[6]?.details, { changed: ['expression'], version: 2 });
    assert.equal(rows[8]?.details['allowDeletions'], false);
    for (const row of rows) {
      assert.equal(row.remoteAddress, '127.0.0.1', `${row.action} from where`);
      assert.ok(Date.now() - Date.parse(row.at) < 120_000, `${row.action} when`);
    }
    const everything = JSON.stringify(rows);
    assert.ok(!everything.includes(FIRST_SECRET) && !everything.includes(SECOND_SECRET), 'no credential value');
    assert.ok(!everything.includes(deployer.body.token.slice(12)), 'no API token');

    const first = await call<{ items: AuditView[]; next: string }>('GET', '/audit?limit=5');
    const rest = await call<{ items: AuditView[]; next: string | null }>('GET', `/audit?before=${first.body.next}`);
    assert.deepEqual(
      [...first.body.items, ...rest.body.items].map((row) => row.id),
      page.body.items.map((row) => row.id),
      'paging with next walks the same rows',
    );
    assert.equal(rest.body.next, null);

    const filtered = await call<{ items: AuditView[] }>('GET', '/audit?actor=deployer');
    assert.deepEqual(
      filtered.body.items.map((row) => row.action),
      ['sync.start'],
    );
  });

  test('scimflow tokens works against the database, --save keeps the token 0600 for the CLI, and scimflow audit reads the log', async () => {
    const env = {
      DATABASE_URL: database.url,
      SCIMFLOW_API_URL: server.url,
      SCIMFLOW_CONFIG_DIR: configDir,
      SCIMFLOW_API_TOKEN: undefined,
    };
    const refused = await runScimflow(['providers', 'list'], { env });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^error: ERR_UNAUTHENTICATED: no API token.*SCIMFLOW_API_TOKEN/m);

    const created = await runScimflow(['tokens', 'create', '--name', 'laptop', '--role', 'admin', '--save'], { env });
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /^sfa_[A-Za-z0-9_-]{8}_[A-Za-z0-9_-]{43}\n$/);
    const file = join(configDir, 'credentials.json');
    assert.match(created.stderr, new RegExp(`saved for ${server.url} in ${file}`));
    assert.equal((await stat(file)).mode & 0o777, 0o600);

    const listed = await runScimflow(['providers', 'list'], { env });
    assert.equal(listed.code, 0, listed.stderr);
    const tokens = await runScimflow(['tokens', 'list'], { env });
    assert.match(tokens.stdout, /^laptop +admin +sfa_\S{8}\.\.\. +live/m);
    assert.ok(!tokens.stdout.includes(created.stdout.trim()), 'the list never shows a token');

    const audit = await runScimflow(['audit', '--limit', '2'], { env });
    assert.equal(audit.code, 0, audit.stderr);
    const lines = audit.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^AT +WHO +FROM +ACTION +TARGET +DETAILS$/);
    assert.equal(lines.length, 3);
    assert.match(lines[1] ?? '', new RegExp(`local:${userInfo().username} +- +token\\.create +laptop`));

    const revoked = await runScimflow(['tokens', 'revoke', 'laptop'], { env });
    assert.equal(revoked.code, 0, revoked.stderr);
    const after = await runScimflow(['providers', 'list'], { env });
    assert.equal(after.code, 1);
    assert.match(after.stderr, /^error: ERR_UNAUTHENTICATED: the API token has been revoked$/m);
  });
});

describe('a change and its audit row commit together', () => {
  let api: TestApi;
  let cliDatabase: TestDatabase;
  before(async () => {
    api = await startTestApi();
    cliDatabase = await createTestDatabase();
  });
  after(async () => {
    await api.close();
    await cliDatabase.drop();
  });

  /** Makes every insert into audit_log fail, as a full disk or a broken constraint would. */
  const breakAuditLog = (db: Db) =>
    db.query(`
      CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit log cannot be written'; END $$;
      CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit();`);
  const count = async (db: Db, sql: string) => Number((await db.query<{ n: string }>(sql)).rows[0]?.n);

  test('when the audit row cannot be written, the API change is not made either', async () => {
    const provider = {
      slug: 'kept',
      name: 'Kept',
      baseUrl: 'https://one.example.test/scim/v2',
      auth: { mode: 'bearer', token: FIRST_SECRET },
    };
    assert.equal((await api.request('POST', '/api/v1/providers', provider)).status, 201);
    await breakAuditLog(api.db);

    const created = await api.request<ErrorBody>('POST', '/api/v1/providers', { ...provider, slug: 'unaudited' });
    assert.equal(created.status, 500);
    assert.equal(created.body.error.code, 'ERR_INTERNAL');
    const renamed = await api.request('PATCH', '/api/v1/providers/kept', { name: 'Renamed unaudited' });
    assert.equal(renamed.status, 500);
    const token = await api.request('POST', '/api/v1/tokens', { name: 'unaudited', role: 'viewer' });
    assert.equal(token.status, 500);
    const deleted = await api.request('DELETE', '/api/v1/providers/kept');
    assert.equal(deleted.status, 500);

    assert.deepEqual((await api.db.query<{ slug: string; name: string }>('SELECT slug, name FROM providers')).rows, [
      { slug: 'kept', name: 'Kept' },
    ]);
    assert.equal(await count(api.db, "SELECT count(*) AS n FROM api_tokens WHERE name = 'unaudited'"), 0);
    assert.deepEqual(
      api.sync.calls.map((call) => `${call.method} ${call.slug}`),
      ['providerChanged kept'],
      'the engine heard of no change that was rolled back',
    );
  });

  test('scimflow tokens create makes no token when its audit row cannot be written', async () => {
    await breakAuditLog(cliDatabase.db);
    const env = { DATABASE_URL: cliDatabase.url, SCIMFLOW_API_TOKEN: undefined };
    const created = await runScimflow(['tokens', 'create', '--name', 'unaudited', '--role', 'admin'], { env });
    assert.equal(created.code, 1);
    assert.doesNotMatch(created.stdout, /sfa_/, 'no token is printed');
    assert.equal(await count(cliDatabase.db, 'SELECT count(*) AS n FROM api_tokens'), 0);
  });
});
