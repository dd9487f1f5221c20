import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ScimflowError } from '../../errors/index.ts';
import { SCHEMA_GROUP, SCHEMA_USER, type ScimUser } from '../../scim/index.ts';
import { describeConformance } from '../../test/conformance/kit.ts';
import { memberChanges } from '../../test/emulators/emulator.ts';
import { startScimTarget } from '../../test/servers/index.ts';
import { awsVendor, AwsOptionsSchema } from './index.ts';

const options = AwsOptionsSchema.parse({});
const shapeUser = (user: ScimUser) => awsVendor.shapeUser!(user, options);

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
