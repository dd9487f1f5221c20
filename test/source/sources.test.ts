import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createApi, startApiServer, type ApiServer } from '../../api/index.ts';
import { runCli } from '../../cli/index.ts';
import { authenticateSource, createSecretBox, createUser, generateSecretKey, getUser } from '../../db/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { callApi, createTestToken, recordingSyncControl, validatePluginOptions } from '../api/api-harness.ts';

interface SourceToken {
  source: { id: string; slug: string; name: string; serviceAccountId: string; tokenPrefix: string };
  token: string;
  scimPath: string;
}

describe('inbound SCIM sources: admin API and CLI', () => {
  let database: TestDatabase;
  let server: ApiServer;
  let token: string;

  const call = <T>(method: string, path: string, body?: unknown) => callApi<T>(server.url, token, method, path, body);
  const cli = async (...args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(['--api-url', server.url, ...args], {
      out: (line) => out.push(line),
      err: (line) => err.push(line),
    });
    return { code, out: out.join('\n'), err: err.join('\n') };
  };

  before(async () => {
    database = await createTestDatabase();
    token = await createTestToken(database.db, 'admin');
    // The in-process CLI reads its API token from the environment, as a user's shell would provide it.
    process.env['SCIMFLOW_API_TOKEN'] = token;
    const app = createApi({
      db: database.db,
      secrets: createSecretBox(generateSecretKey()),
      sync: recordingSyncControl(),
      validatePluginOptions,
    });
    server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await server?.close();
    await database?.drop();
  });

  test('creating a source returns its token once, stores only a hash and creates its service account', async () => {
    const created = await call<SourceToken>('POST', '/sources', { slug: 'entra', name: 'Entra ID' });
    assert.equal(created.status, 201);
    assert.equal(created.body.scimPath, '/source/scim/entra/v2');
    assert.match(created.body.token, /^scimsrc_[A-Za-z0-9_-]{43}$/);
    assert.ok(created.body.token.startsWith(created.body.source.tokenPrefix));

    const account = await getUser(database.db, created.body.source.serviceAccountId);
    assert.equal(account.kind, 'service_account');
    assert.equal(account.username, 'scim-source-entra');

    const stored = await database.db.query<{ token_hash: string }>('SELECT token_hash FROM scim_sources');
    assert.notEqual(stored.rows[0]?.token_hash, created.body.token);
    assert.ok(!JSON.stringify(stored.rows).includes(created.body.token));

    const listed = await call<{ items: unknown[] }>('GET', '/sources');
    assert.ok(!JSON.stringify(listed.body).includes(created.body.token), 'the list never shows the token');
    assert.equal(listed.body.items.length, 1);

    assert.equal((await authenticateSource(database.db, 'entra', created.body.token))?.slug, 'entra');
    assert.equal(await authenticateSource(database.db, 'entra', `${created.body.token}x`), null);
    assert.equal(await authenticateSource(database.db, 'other', created.body.token), null);

    const duplicate = await call<{ error: { code: string; message: string; details: { field: string } } }>(
      'POST',
      '/sources',
      { slug: 'entra' },
    );
    assert.equal(duplicate.status, 409);
    assert.equal(duplicate.body.error.code, 'ERR_CONFLICT');
    assert.equal(duplicate.body.error.message, 'a source "entra" already exists');
    assert.equal(duplicate.body.error.details.field, 'slug');
  });

  test('rotating the token makes the old one fail at once', async () => {
    const created = await call<SourceToken>('POST', '/sources', { slug: 'rotating' });
    const scim = (bearer: string) =>
      fetch(`${server.url}${created.body.scimPath}/Users`, { headers: { authorization: `Bearer ${bearer}` } });
    // The SCIM endpoint has seen (and cached) the token before it is rotated.
    assert.equal((await scim(created.body.token)).status, 200);
    const rotated = await call<SourceToken>('POST', '/sources/rotating/rotate-token');
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.token, created.body.token);
    assert.equal(await authenticateSource(database.db, 'rotating', created.body.token), null);
    assert.equal((await authenticateSource(database.db, 'rotating', rotated.body.token))?.slug, 'rotating');
    assert.equal((await scim(rotated.body.token)).status, 200);
    // The API's token cache hears of the rotation from PostgreSQL, milliseconds after the commit.
    const deadline = Date.now() + 20_000;
    while ((await scim(created.body.token)).status !== 401) {
      assert.ok(Date.now() < deadline, 'the old token still works on the SCIM endpoint');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  });

  test('deleting a source removes its service account and leaves the users it owned in the directory', async () => {
    const created = await call<SourceToken>('POST', '/sources', { slug: 'leaving' });
    const owned = await createUser(database.db, {
      username: 'kept@example.com',
      active: true,
      kind: 'internal',
      attributes: {},
    });
    await database.db.query('INSERT INTO scim_source_users (user_id, source_id) VALUES ($1, $2)', [
      owned.id,
      created.body.source.id,
    ]);
    assert.equal((await call('DELETE', '/sources/leaving')).status, 204);
    await assert.rejects(getUser(database.db, created.body.source.serviceAccountId), { code: 'ERR_NOT_FOUND' });
    assert.equal((await getUser(database.db, owned.id)).username, 'kept@example.com');
    const ownership = await database.db.query('SELECT 1 FROM scim_source_users WHERE user_id = $1', [owned.id]);
    assert.equal(ownership.rowCount, 0);
    assert.equal((await call('DELETE', '/sources/leaving')).status, 404);
  });

  test('`scimflow sources create` prints the SCIM base URL and a working token; list, rotate-token and delete work', async () => {
    const created = await cli('sources', 'create', '--slug', 'okta', '--name', 'Okta', '--on-delete', 'deactivate');
    assert.equal(created.code, 0, created.err);
    assert.match(created.out, new RegExp(`SCIM base URL: ${server.url}/source/scim/okta/v2`));
    const token = /Bearer token: +(\S+)/.exec(created.out)?.[1];
    assert.ok(token, created.out);
    assert.equal((await authenticateSource(database.db, 'okta', token))?.deletePolicy, 'deactivate');

    const listed = await cli('sources', 'list');
    assert.match(listed.out, /^okta +Okta +deactivate +no +scimsrc_/m);
    assert.ok(!listed.out.includes(token));

    const rotated = await cli('sources', 'rotate-token', 'okta');
    const next = /Bearer token: +(\S+)/.exec(rotated.out)?.[1];
    assert.ok(next && next !== token);
    assert.equal(await authenticateSource(database.db, 'okta', token), null);

    const deleted = await cli('sources', 'delete', 'okta');
    assert.equal(deleted.code, 0, deleted.err);
    assert.equal(await authenticateSource(database.db, 'okta', next), null);
  });
});
