import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  ProviderInputSchema,
  ProviderUpdateSchema,
  createGroup,
  getProvider,
  getProviderForSync,
} from '../../db/index.ts';
import { runScimflow, startAdminApi, type AdminApi } from '../support/cli.ts';

/** The body fields each command can set, by the name the API gives them. */
const CREATE_FIELDS = Object.keys(ProviderInputSchema.shape).sort();
const UPDATE_FIELDS = Object.keys(ProviderUpdateSchema.shape).sort();

describe('providers create and update reach every field the API takes', () => {
  let api: AdminApi;
  const ids: Record<string, string> = {};
  const cli = (args: string[], options: { env?: Record<string, string>; stdin?: string } = {}) =>
    runScimflow(args, { ...options, env: { ...api.env, ...options.env } });

  before(async () => {
    api = await startAdminApi();
    for (const name of ['engineering', 'sales', 'contractors']) {
      ids[name] = (await createGroup(api.db, { name, attributes: {} })).id;
    }
  });
  after(() => api.close());

  test('the API schemas still have the fields this test covers (a new field needs a flag and a case here)', () => {
    assert.deepEqual(CREATE_FIELDS, [
      'adoptBy',
      'allowInsecureHttp',
      'auth',
      'baseUrl',
      'concurrency',
      'deletionLimit',
      'deprovision',
      'dryRun',
      'enabled',
      'fullSyncIntervalMinutes',
      'name',
      'pageSize',
      'plugin',
      'pluginOptions',
      'rateLimit',
      'scope',
      'slug',
    ]);
    assert.deepEqual(
      UPDATE_FIELDS,
      CREATE_FIELDS.filter((field) => field !== 'slug'),
    );
    assert.deepEqual(Object.keys(ProviderInputSchema.shape.scope.unwrap().shape).sort(), [
      'accessGroups',
      'groups',
      'includeServiceAccounts',
      'removeGroupsLeavingFilter',
    ]);
  });

  test('create sets the scope by group names, service accounts and plugin options in one command', async () => {
    const created = await cli([
      'providers',
      'create',
      '--slug',
      'scoped',
      '--url',
      'https://scim.example.test/v2',
      '--no-token',
      '--access-group',
      'engineering',
      '--access-group',
      'sales',
      '--group',
      'engineering',
      '--service-accounts',
      '--remove-groups-leaving-filter',
      '--plugin-options',
      '{"groupUpdate":"put","maxMembersPerRequest":50}',
      '--deprovision',
      'deactivate',
      '--page-size',
      '25',
      '--concurrency',
      '2',
      '--full-sync-interval',
      '30',
      '--deletion-limit',
      '10',
      '--rate-limit',
      '2.5:3',
      '--adopt-by',
      'externalId',
      '--dry-run',
      '--disabled',
      '--allow-insecure-http',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const provider = await getProvider(api.db, 'scoped');
    assert.deepEqual(provider.scope, {
      includeServiceAccounts: true,
      accessGroups: [ids['engineering'], ids['sales']],
      groups: [ids['engineering']],
      removeGroupsLeavingFilter: true,
    });
    assert.deepEqual(provider.pluginOptions, { groupUpdate: 'put', maxMembersPerRequest: 50 });
    assert.equal(provider.auth.mode, 'none');
    assert.deepEqual(
      [
        provider.deprovision,
        provider.pageSize,
        provider.concurrency,
        provider.fullSyncIntervalMinutes,
        provider.deletionLimit,
        provider.rateLimit,
        provider.adoptBy,
        provider.dryRun,
        provider.enabled,
        provider.allowInsecureHttp,
      ],
      ['deactivate', 25, 2, 30, 10, { requestsPerSecond: 2.5, concurrency: 3 }, 'externalId', true, false, true],
    );
  });

  test('update sets a rate limit without concurrency, refuses a malformed one, and removes it with none', async () => {
    const set = await cli(['providers', 'update', 'scoped', '--rate-limit', '10']);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual((await getProvider(api.db, 'scoped')).rateLimit, { requestsPerSecond: 10 });
    const { configVersion } = await getProvider(api.db, 'scoped');
    const malformed = await cli(['providers', 'update', 'scoped', '--rate-limit', '0:4']);
    assert.equal(malformed.code, 1);
    assert.match(malformed.stderr, /--rate-limit <rps\[:concurrency\]\[:writes\]>' argument '0:4' is invalid/);
    assert.equal((await getProvider(api.db, 'scoped')).configVersion, configVersion);
    const writes = await cli(['providers', 'update', 'scoped', '--rate-limit', '10:writes']);
    assert.equal(writes.code, 0, writes.stderr);
    assert.deepEqual((await getProvider(api.db, 'scoped')).rateLimit, { requestsPerSecond: 10, paced: 'writes' });
    const removed = await cli(['providers', 'update', 'scoped', '--rate-limit', 'none']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal((await getProvider(api.db, 'scoped')).rateLimit, null);
    const { rows } = await api.db.query<{ unset: boolean }>(
      "SELECT rate_limit IS NULL AS unset FROM providers WHERE slug = 'scoped'",
    );
    assert.equal(rows[0]!.unset, true, 'stored as SQL NULL, not a JSON null');
  });

  test('update sets which match adopts, and refuses a match it does not know', async () => {
    const set = await cli(['providers', 'update', 'scoped', '--adopt-by', 'externalIdOrName']);
    assert.equal(set.code, 0, set.stderr);
    assert.equal((await getProvider(api.db, 'scoped')).adoptBy, 'externalIdOrName');
    const unknown = await cli(['providers', 'update', 'scoped', '--adopt-by', 'userName']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /--adopt-by <match>' argument 'userName' is invalid/);
    assert.equal((await getProvider(api.db, 'scoped')).adoptBy, 'externalIdOrName');
  });

  test('update changes one part of the scope and keeps the rest', async () => {
    const updated = await cli(['providers', 'update', 'scoped', '--access-group', 'contractors']);
    assert.equal(updated.code, 0, updated.stderr);
    assert.deepEqual((await getProvider(api.db, 'scoped')).scope, {
      includeServiceAccounts: true,
      accessGroups: [ids['contractors']],
      groups: [ids['engineering']],
      removeGroupsLeavingFilter: true,
    });

    const widened = await cli([
      'providers',
      'update',
      'scoped',
      '--clear-access-groups',
      '--all-groups',
      '--no-service-accounts',
      '--keep-groups-leaving-filter',
    ]);
    assert.equal(widened.code, 0, widened.stderr);
    assert.deepEqual((await getProvider(api.db, 'scoped')).scope, {
      includeServiceAccounts: false,
      accessGroups: [],
      removeGroupsLeavingFilter: false,
    });
  });

  test('update sets the plugin and its options, and moves between a token read from stdin and no token', async () => {
    const withToken = await cli(
      ['providers', 'update', 'scoped', '--token', '--plugin', 'scim2', '--plugin-options', '{"groupUpdate":"patch"}'],
      { stdin: 'stdin-token-0f3a\n' },
    );
    assert.equal(withToken.code, 0, withToken.stderr);
    assert.doesNotMatch(withToken.stdout + withToken.stderr, /stdin-token-0f3a/);
    const provider = await getProvider(api.db, 'scoped');
    assert.deepEqual(provider.pluginOptions, { groupUpdate: 'patch' });
    const forSync = await getProviderForSync(api.db, api.secrets, provider.id);
    assert.deepEqual(forSync.auth, { mode: 'bearer', token: 'stdin-token-0f3a' });

    const withoutToken = await cli(['providers', 'update', 'scoped', '--no-token']);
    assert.equal(withoutToken.code, 0, withoutToken.stderr);
    assert.deepEqual((await getProvider(api.db, 'scoped')).auth, { mode: 'none', secretSet: false });
  });

  test('an unknown group name is refused with every unknown name, and nothing changes', async () => {
    const before = await getProvider(api.db, 'scoped');
    const result = await cli([
      'providers',
      'update',
      'scoped',
      '--group',
      'engineering',
      '--group',
      'nope',
      '--group',
      'gone',
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: ERR_VALIDATION: no directory group named "nope", "gone"$/m);
    assert.match(result.stderr, /^ {2}--group: no group named "nope", "gone"$/m);
    assert.equal((await getProvider(api.db, 'scoped')).configVersion, before.configVersion);
  });

  test('plugin options that are not a JSON object, or that the plugin refuses, are reported and nothing is saved', async () => {
    const { configVersion } = await getProvider(api.db, 'scoped');
    const notJson = await cli(['providers', 'update', 'scoped', '--plugin-options', '[1]']);
    assert.equal(notJson.code, 1);
    assert.match(notJson.stderr, /--plugin-options <json>' argument '\[1\]' is invalid\. must be a JSON object/);
    const refused = await cli(['providers', 'update', 'scoped', '--plugin-options', '{"groupUpdate":"sometimes"}']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /groupUpdate/);
    assert.equal((await getProvider(api.db, 'scoped')).configVersion, configVersion);
  });

  test('contradicting scope flags exit 1 and change nothing', async () => {
    const { configVersion } = await getProvider(api.db, 'scoped');
    const result = await cli(['providers', 'update', 'scoped', '--group', 'sales', '--all-groups']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /--group and --all-groups contradict each other/);
    assert.equal((await getProvider(api.db, 'scoped')).configVersion, configVersion);
  });

  test('--auth-env sets an auth mode the token flags cannot (HTTP Basic) from JSON in a variable, never printing it', async () => {
    const result = await cli(['providers', 'update', 'scoped', '--auth-env', 'SCOPED_AUTH'], {
      env: { SCOPED_AUTH: JSON.stringify({ mode: 'basic', username: 'svc-scim', password: 'basic-pw-77d1' }) },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout + result.stderr, /basic-pw-77d1/);
    const provider = await getProvider(api.db, 'scoped');
    assert.equal(provider.auth.mode, 'basic');
    const forSync = await getProviderForSync(api.db, api.secrets, provider.id);
    assert.deepEqual(forSync.auth, { mode: 'basic', username: 'svc-scim', password: 'basic-pw-77d1' });
  });
});
