import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createGroup,
  createProvider,
  getMapping,
  getProvider,
  getProviderForSync,
  listMappings,
  listProviderMappings,
  listProviders,
  ProviderInputSchema,
} from '../../db/index.ts';
import { runScimflow, startAdminApi, type AdminApi } from '../support/cli.ts';

/** The file a team would keep in version control: two providers, one mapping, scope by group names. */
function setupFile(overrides: { acmePageSize?: number; acmeAccess?: string[] } = {}): string {
  return `# provisioning setup
mappings:
  - name: zz-title
    objectType: user
    file: title.js
providers:
  - slug: acme
    name: Acme
    baseUrl: https://acme.example.test/scim/v2
    auth:
      tokenEnv: ACME_TOKEN
    scope:
      accessGroups: [${(overrides.acmeAccess ?? ['engineering']).join(', ')}]
      groups: [engineering]
    pageSize: ${overrides.acmePageSize ?? 50}
    deletionLimit: 20
    mappings: [default-user-account, default-group, zz-title]
  - slug: beta
    baseUrl: https://beta.example.test/scim/v2
    auth:
      mode: none
    pluginOptions:
      groupUpdate: put
    dryRun: true
`;
}

describe('scimflow apply', () => {
  let api: AdminApi;
  let dir: string;
  let file: string;
  const groups: Record<string, string> = {};
  const apply = (args: string[], env: Record<string, string> = {}) =>
    runScimflow(['apply', ...args], { env: { ...api.env, ACME_TOKEN: 'acme-token-1', ...env } });
  const configVersions = async () =>
    Object.fromEntries((await listProviders(api.db)).map((p) => [p.slug, p.configVersion]));

  before(async () => {
    api = await startAdminApi();
    dir = await mkdtemp(join(tmpdir(), 'scimflow-apply-'));
    file = join(dir, 'scimflow.yaml');
    await writeFile(join(dir, 'title.js'), "return { title: 'Engineer' };");
    for (const name of ['engineering', 'sales'])
      groups[name] = (await createGroup(api.db, { name, attributes: {} })).id;
    // Made by hand, not in the file: apply must leave it alone.
    await createProvider(
      api.db,
      api.secrets,
      ProviderInputSchema.parse({
        slug: 'handmade',
        name: 'Handmade',
        baseUrl: 'https://h.example.test',
        auth: { mode: 'none' },
      }),
    );
  });
  after(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('--dry-run prints the plan and changes nothing', async () => {
    await writeFile(file, setupFile());
    const result = await apply([file, '--dry-run']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^mapping +zz-title +would be created/m);
    assert.match(result.stdout, /^provider +acme +would be created/m);
    assert.match(result.stdout, /^would apply: 3 created, 0 updated, 0 unchanged/m);
    assert.deepEqual(Object.keys(await configVersions()), ['handmade']);
    assert.equal(
      (await listMappings(api.db, {})).some((m) => m.name === 'zz-title'),
      false,
    );
  });

  test('a first apply creates the providers, the mapping and the mapping set as declared', async () => {
    await writeFile(file, setupFile());
    const result = await apply([file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(
      result.stdout,
      /^applied: 3 created, 0 updated, 0 unchanged; objects not in the file were left alone$/m,
    );
    assert.doesNotMatch(result.stdout + result.stderr, /acme-token-1/);

    const acme = await getProvider(api.db, 'acme');
    assert.equal(acme.name, 'Acme');
    assert.equal(acme.pageSize, 50);
    assert.equal(acme.deletionLimit, 20);
    assert.deepEqual(acme.scope, {
      includeServiceAccounts: false,
      accessGroups: [groups['engineering']],
      groups: [groups['engineering']],
    });
    assert.deepEqual((await getProviderForSync(api.db, api.secrets, acme.id)).auth, {
      mode: 'bearer',
      token: 'acme-token-1',
    });
    assert.deepEqual(
      (await listProviderMappings(api.db, acme.id)).map((m) => m.name),
      ['default-group', 'default-user-account', 'zz-title'],
    );
    const beta = await getProvider(api.db, 'beta');
    assert.equal(beta.name, 'beta', 'the name defaults to the slug');
    assert.deepEqual([beta.auth.mode, beta.dryRun, beta.pluginOptions], ['none', true, { groupUpdate: 'put' }]);
    assert.equal((await getMapping(api.db, 'zz-title')).expression, "return { title: 'Engineer' };");
  });

  test('applying the same file again changes nothing and says so', async () => {
    const before = await configVersions();
    const result = await apply([file]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^provider +acme +unchanged/m);
    assert.match(result.stdout, /^nothing to change: the 3 object\(s\) in .* are as declared$/m);
    assert.deepEqual(await configVersions(), before);
    assert.equal((await getMapping(api.db, 'zz-title')).version, 1);
  });

  test('a changed field, group list or token updates only that provider and names what changed', async () => {
    await writeFile(file, setupFile({ acmePageSize: 75, acmeAccess: ['engineering', 'sales'] }));
    const before = await configVersions();
    const result = await apply([file], { ACME_TOKEN: 'acme-token-2' });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^provider +acme +updated +scope\.accessGroups, pageSize$/m);
    assert.match(result.stdout, /^provider +beta +unchanged/m);
    assert.match(result.stdout, /^applied: 0 created, 1 updated, 2 unchanged/m);
    const acme = await getProvider(api.db, 'acme');
    assert.equal(acme.pageSize, 75);
    assert.deepEqual(acme.scope.accessGroups, [groups['engineering'], groups['sales']]);
    assert.deepEqual((await getProviderForSync(api.db, api.secrets, acme.id)).auth, {
      mode: 'bearer',
      token: 'acme-token-2',
    });
    const after = await configVersions();
    assert.equal(after['acme'], before['acme']! + 1);
    assert.equal(after['beta'], before['beta']);
    assert.equal(after['handmade'], before['handmade'], 'a provider not in the file is left alone');

    const rotated = await apply([file], { ACME_TOKEN: 'acme-token-3' });
    assert.match(rotated.stdout, /^provider +acme +updated +auth\.token$/m);
    assert.doesNotMatch(rotated.stdout + rotated.stderr, /acme-token-3/);
  });

  test('a secret written in the file is refused, naming where it is, and nothing is changed', async () => {
    const inline = join(dir, 'inline.yaml');
    await writeFile(
      inline,
      'providers:\n  - slug: gamma\n    baseUrl: https://g.example.test\n    auth:\n      token: s3cr3t-in-git\n',
    );
    const result = await apply([inline]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /^ {2}providers\.gamma\.auth\.token: secrets are never written in the file: put the token in an environment variable and name it with tokenEnv$/m,
    );
    assert.doesNotMatch(result.stderr, /s3cr3t-in-git/);
    assert.equal(
      (await listProviders(api.db)).some((p) => p.slug === 'gamma'),
      false,
    );
  });

  test('a JSON file is validated with every bad field named by its path', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(
      bad,
      JSON.stringify({
        providers: [
          { slug: 'delta', baseUrl: 'ftp://d.example.test', auth: { mode: 'none' }, pageSize: 0, colour: 'blue' },
        ],
      }),
    );
    const result = await apply([bad]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: ERR_VALIDATION: .*bad\.json is not a valid apply file$/m);
    assert.match(result.stderr, /^ {2}providers\.delta\.baseUrl: must be an http or https URL$/m);
    assert.match(result.stderr, /^ {2}providers\.delta\.pageSize: /m);
    assert.match(result.stderr, /^ {2}providers\.delta\.colour: is not a known field$/m);
  });

  test('an unset token variable, an unknown group and an unknown mapping are all reported before any write', async () => {
    const broken = join(dir, 'broken.yaml');
    await writeFile(
      broken,
      setupFile({ acmePageSize: 99, acmeAccess: ['nobody'] }).replace('default-group,', 'no-such-mapping,'),
    );
    const before = await configVersions();
    const result = await runScimflow(['apply', broken], { env: { ...api.env, ACME_TOKEN: '' } });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: ERR_VALIDATION: the file cannot be applied; nothing was changed$/m);
    assert.match(
      result.stderr,
      /^ {2}providers\.acme\.auth\.tokenEnv: environment variable ACME_TOKEN is not set or empty$/m,
    );
    assert.match(result.stderr, /^ {2}providers\.acme\.scope\.accessGroups: no group named "nobody"$/m);
    assert.match(result.stderr, /^ {2}providers\.acme\.mappings\.1: no mapping named no-such-mapping$/m);
    assert.deepEqual(await configVersions(), before);
  });
});
