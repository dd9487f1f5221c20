import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SCHEMA_USER, type ScimUser } from '../../scim/index.ts';
import { describeConformance } from '../../test/conformance/kit.ts';
import { startScimTarget } from '../../test/servers/index.ts';
import { salesforceVendor, SalesforceOptionsSchema } from './index.ts';

const PROFILE = '00e000000000001AAA';

describe('salesforce options and shaping', () => {
  test('a provider must name a profile id, in Salesforce id form', () => {
    assert.equal(SalesforceOptionsSchema.safeParse({}).success, false);
    assert.equal(SalesforceOptionsSchema.safeParse({ profileId: 'admin' }).success, false);
    assert.equal(SalesforceOptionsSchema.safeParse({ profileId: PROFILE }).success, true);
  });

  test('every user carries the profile entitlement, unless the mappings chose entitlements themselves', () => {
    const options = SalesforceOptionsSchema.parse({ profileId: PROFILE });
    const user: ScimUser = { schemas: [SCHEMA_USER], userName: 'ada@example.test' };
    assert.deepEqual(salesforceVendor.shapeUser!(user, options).entitlements, [{ value: PROFILE }]);
    const chosen = { ...user, entitlements: [{ value: '00e000000000002AAA' }] };
    assert.deepEqual(salesforceVendor.shapeUser!(chosen, options).entitlements, [{ value: '00e000000000002AAA' }]);
  });
});

describeConformance({
  plugin: 'salesforce',
  against: 'the Salesforce emulator',
  start: () =>
    startScimTarget({
      emulator: { module: new URL('../../test/emulators/salesforce.ts', import.meta.url).href },
    }),
  provider: { pluginOptions: { profileId: PROFILE } },
  groupsExist: true,
  deprovisioned: 'inactive',
  checkRequests(requests) {
    const paths = requests.map((request) => `${request.method} ${request.path}`);
    assert.ok(paths.includes('GET /ServiceProviderConfigs'), 'discovered at the plural path');
    assert.deepEqual(
      paths.filter((path) => path.startsWith('DELETE') || path === 'POST /Groups'),
      [],
      'nothing deleted, no group created',
    );
  },
});
