import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { createApi, startApiServer } from '../../api/index.ts';
import {
  createGroup,
  createProvider,
  createSecretBox,
  createUser,
  generateSecretKey,
  getMapping,
  listProviderMappings,
  ProviderInputSchema,
} from '../../db/index.ts';
import { createMappingEngine } from '../../sandbox/index.ts';
import { createTestToken, recordingSyncControl, validatePluginOptions } from '../api/api-harness.ts';
import { runScimflow } from '../support/cli.ts';
import { createTestDatabase } from '../support/db.ts';

const cli = (args: string[], env: Record<string, string>) => runScimflow(args, { env });

describe('scimflow mappings CLI', () => {
  test('mappings apply declares mappings and provider sets in one command, and applying again changes nothing', async (t) => {
    const testDb = await createTestDatabase();
    const engine = createMappingEngine();
    const secrets = createSecretBox(generateSecretKey());
    const app = createApi({
      db: testDb.db,
      secrets,
      sync: recordingSyncControl(),
      validatePluginOptions,
      mappingEngine: engine,
    });
    const server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
    const dir = await mkdtemp(join(tmpdir(), 'scimflow-mappings-'));
    t.after(async () => {
      await server.close();
      await engine.disposeAll();
      await rm(dir, { recursive: true, force: true });
      await testDb.drop();
    });
    const env = { SCIMFLOW_API_URL: server.url, SCIMFLOW_API_TOKEN: await createTestToken(testDb.db, 'admin') };
    const provider = await createProvider(
      testDb.db,
      secrets,
      ProviderInputSchema.parse({
        slug: 'cli-target',
        name: 'CLI target',
        baseUrl: 'http://127.0.0.1:9/scim/v2',
        auth: { mode: 'none' },
        concurrency: 1,
      }),
    );
    await createUser(testDb.db, {
      username: 'ada@example.test',
      displayName: 'Ada',
      email: null,
      givenName: null,
      familyName: null,
      active: true,
      kind: 'internal',
      attributes: {},
    });
    await writeFile(join(dir, 'title.js'), "return { title: 'Engineer' };");
    const config = join(dir, 'mappings.json');
    await writeFile(
      config,
      JSON.stringify({
        mappings: [{ name: 'zz-title', objectType: 'user', file: 'title.js' }],
        providers: { 'cli-target': ['default-user-account', 'zz-title'] },
      }),
    );

    const first = await cli(['mappings', 'apply', config], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /^1 mapping\(s\) created or changed/);
    const second = await cli(['mappings', 'apply', config], env);
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /^0 mapping\(s\) created or changed/);
    assert.equal((await getMapping(testDb.db, 'zz-title')).version, 1);
    assert.deepEqual(
      (await listProviderMappings(testDb.db, provider.id)).map((m) => m.name),
      ['default-user-account', 'zz-title'],
    );

    const preview = await cli(['preview', 'cli-target', '--user', 'ada@example.test'], env);
    assert.equal(preview.code, 0, preview.stderr);
    const body = JSON.parse(preview.stdout) as { payload: { userName: string; title: string } };
    assert.equal(body.payload.userName, 'ada@example.test');
    assert.equal(body.payload.title, 'Engineer');

    // A mapping that fails prints what was made and fails the command; a group is named as in the other commands.
    await writeFile(join(dir, 'boom.js'), "throw new Error('no title for ' + user.username);");
    await writeFile(join(dir, 'group-title.js'), "return { displayName: group.name + ' (mapped)' };");
    await writeFile(
      config,
      JSON.stringify({
        mappings: [
          { name: 'zz-title', objectType: 'user', file: 'boom.js' },
          { name: 'zz-group', objectType: 'group', file: 'group-title.js' },
        ],
        providers: { 'cli-target': ['default-user-account', 'default-group', 'zz-title', 'zz-group'] },
      }),
    );
    assert.equal((await cli(['mappings', 'apply', config], env)).code, 0);
    const failed = await cli(['preview', 'cli-target', '--user', 'ada@example.test'], env);
    assert.equal(failed.code, 1, failed.stdout);
    assert.equal((JSON.parse(failed.stdout) as { payload: unknown }).payload, null);
    assert.match(failed.stderr, /^error: ERR_MAPPING: .*no title for ada@example\.test/m);
    await createGroup(testDb.db, { name: 'engineering', attributes: {} });
    const group = await cli(['preview', 'cli-target', '--group', 'engineering'], env);
    assert.equal(group.code, 0, group.stderr);
    assert.equal(
      (JSON.parse(group.stdout) as { payload: { displayName: string } }).payload.displayName,
      'engineering (mapped)',
    );
  });
});
