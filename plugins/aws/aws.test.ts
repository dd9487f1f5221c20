import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ScimflowError } from '../../errors/index.ts';
import { SCHEMA_GROUP, SCHEMA_USER, type ScimClient, type ScimUser } from '../../scim/index.ts';
import { describeConformance } from '../../test/conformance/kit.ts';
import { memberChanges } from '../../test/emulators/emulator.ts';
import { startScimTarget } from '../../test/servers/index.ts';
import { createPluginRegistry, resolvePluginOptions } from '../index.ts';
import { awsVendor, AwsOptionsSchema, createAwsPlugin } from './index.ts';

const options = AwsOptionsSchema.parse({});
const shapeUser = (user: ScimUser) => awsVendor.shapeUser!(user, options);

describe('aws tenant URL', () => {
  const registry = createPluginRegistry();
  const check = (url: string) => () => resolvePluginOptions(registry, 'aws', {}, url);
  const refused = (pattern: RegExp) => (error: unknown) =>
    error instanceof ScimflowError &&
    error.code === 'ERR_CONFIG' &&
    pattern.test(error.message) &&
    JSON.stringify(error.details.issues).includes('"path":"baseUrl"');

  test("the endpoint AWS shows (scim.REGION.amazonaws.com/TENANT_ID/scim/v2) is accepted, with or without a final '/'", () => {
    check('https://scim.us-east-2.amazonaws.com/11111111111-2222-3333-4444-555555555555/scim/v2')();
    check('https://scim.us-gov-west-1.amazonaws.com/t-1/scim/v2/')();
    // Another host (a proxy, the emulator) is taken as it is; only the path form is checked.
    check('http://127.0.0.1:8080/tenant-1/scim/v2')();
  });

  test('a provider on a URL that is not the SCIM endpoint is refused at save, naming what is wrong', () => {
    assert.throws(check('https://scim.us-east-1.amazonaws.com/scim/v2'), refused(/tenant id is missing/));
    assert.throws(
      check('https://scim.us-east-1.amazonaws.com/t-1'),
      refused(/path \/t-1 is not \/TENANT_ID\/scim\/v2/),
    );
    assert.throws(check('https://scim.us-east-1.amazonaws.com/t-1/scim/v2/Users'), refused(/is not \/TENANT_ID/));
    // The AWS access portal, a common mistake.
    assert.throws(
      check('https://portal.sso.us-east-1.amazonaws.com/t-1/scim/v2'),
      refused(/portal\.sso\.us-east-1\.amazonaws\.com is not an IAM Identity Center SCIM host/),
    );
    // The standard plugin takes any URL.
    resolvePluginOptions(registry, 'scim2', {}, 'https://scim.us-east-1.amazonaws.com/scim/v2');
  });

  test('a provider saved before the check fails discovery with ERR_CONFIG, before any request', async () => {
    const requests: string[] = [];
    const client: ScimClient = {
      baseUrl: 'https://scim.eu-west-1.amazonaws.com/scim/v2',
      close: () => Promise.resolve(),
      request: (method, path) => {
        requests.push(`${method} ${path}`);
        return Promise.reject(new Error('no request was expected'));
      },
    };
    await assert.rejects(
      createAwsPlugin().capabilities({ providerId: 'p', configVersion: 1, client, options }),
      (error: unknown) =>
        error instanceof ScimflowError && error.code === 'ERR_CONFIG' && /tenant id/.test(error.message),
    );
    assert.deepEqual(requests, []);
  });
});

describe('aws request shaping', () => {
  const complete: ScimUser = {
    schemas: [SCHEMA_USER],
    userName: 'ada@example.test',
    displayName: 'Ada Lovelace',
    name: { givenName: 'Ada', familyName: 'Lovelace' },
  };

  test('a user without a required name field is a mapping error naming each missing field', () => {
    const { name: _name, ...nameless } = complete;
    assert.throws(
      () => shapeUser({ ...nameless, displayName: '' }),
      (error: unknown) =>
        error instanceof ScimflowError &&
        error.code === 'ERR_MAPPING' &&
        /displayName, name.givenName, name.familyName/.test(error.message) &&
        JSON.stringify(error.details.missing) === '["displayName","name.givenName","name.familyName"]',
    );
  });

  test('keeps one email, the primary one, marked primary and without display; drops what AWS refuses', () => {
    const shaped = shapeUser({
      ...complete,
      emails: [
        { value: 'other@example.test', type: 'home' },
        { value: 'ada@example.test', type: 'work', primary: true, display: 'Ada' },
      ],
      phoneNumbers: [{ value: '+1 555' }, { value: '+1 556' }],
      password: 'secret',
      entitlements: [{ value: 'x' }],
    });
    assert.deepEqual(shaped.emails, [{ value: 'ada@example.test', type: 'work', primary: true }]);
    assert.deepEqual(shaped.phoneNumbers, [{ value: '+1 555' }]);
    assert.equal(shaped.password, undefined);
    assert.equal(shaped.entitlements, undefined);
  });

  test('groups carry only displayName, externalId and members', () => {
    const shaped = awsVendor.shapeGroup!(
      { schemas: [SCHEMA_GROUP], displayName: 'G', externalId: 'e', description: 'x', members: [{ value: 'u' }] },
      options,
    );
    assert.deepEqual(shaped, { schemas: [SCHEMA_GROUP], displayName: 'G', externalId: 'e', members: [{ value: 'u' }] });
  });
});

describeConformance({
  plugin: 'aws',
  against: 'the AWS IAM Identity Center emulator',
  start: () =>
    startScimTarget({
      emulator: { module: new URL('../../test/emulators/aws.ts', import.meta.url).href, options: { tenant: 't-42' } },
    }),
  deprovisioned: 'deleted',
  checkRequests(requests) {
    const groupWrites = requests.filter((r) => r.path.startsWith('/Groups') && r.method !== 'GET');
    assert.deepEqual(
      groupWrites.filter((r) => r.method === 'PUT'),
      [],
      'no group is ever replaced whole',
    );
    const sizes = groupWrites.map((r) => memberChanges({ body: r.body } as never));
    assert.ok(Math.max(...sizes) <= 100, `at most 100 member changes per request (largest ${Math.max(...sizes)})`);
    assert.ok(sizes.filter((size) => size === 100).length >= 3, 'the big group went in requests of 100');
    const filters = requests.flatMap((r) => (typeof r.query.filter === 'string' ? [r.query.filter] : []));
    assert.ok(filters.length > 0);
    assert.deepEqual(
      filters.filter((filter) => / or /i.test(filter)),
      [],
      'no filter uses or',
    );
  },
});
