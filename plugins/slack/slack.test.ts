import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ScimflowError, ScimRequestError } from '../../errors/index.ts';
import { SCHEMA_USER, type ScimUser } from '../../scim/index.ts';
import { describeConformance } from '../../test/conformance/kit.ts';
import { startScimTarget } from '../../test/servers/index.ts';
import { slackVendor, SlackOptionsSchema } from './index.ts';

const options = SlackOptionsSchema.parse({ org: 'acme' });

describe('slack request shaping and errors', () => {
  const user: ScimUser = { schemas: [SCHEMA_USER], userName: 'ada@example.test', emails: [{ value: 'ada@x.test' }] };

  test('a user Slack would refuse is a mapping error saying why: no email, a username over 21 characters', () => {
    assert.throws(
      () =>
        slackVendor.shapeUser!({ ...user, userName: 'a-very-long-user-name-indeed@example.test', emails: [] }, options),
      (error: unknown) =>
        error instanceof ScimflowError &&
        error.code === 'ERR_MAPPING' &&
        /at least one email/.test(error.message) &&
        /at most 21 characters/.test(error.message),
    );
    assert.equal(slackVendor.shapeUser!(user, options), user);
  });

  test("Slack's error codes are explained, the code and status kept", () => {
    const refused = new ScimRequestError('ERR_SCIM_BAD_REQUEST', 'SCIM POST /Users failed with 400', {
      status: 400,
      method: 'POST',
      path: '/Users',
      detail: 'username_not_allowed (user=admin)',
    });
    const translated = slackVendor.translateError!(refused);
    assert.ok(translated instanceof ScimRequestError);
    assert.equal(translated.code, 'ERR_SCIM_BAD_REQUEST');
    assert.equal(translated.status, 400);
    assert.match(translated.message, /Slack reserves this userName/);
    const other = new ScimRequestError('ERR_SCIM_SERVER', 'boom', { status: 500, method: 'GET', path: '/Users' });
    assert.equal(slackVendor.translateError!(other), undefined);
  });

  test("providers naming the same org share one rate budget, seeded with the documented per-endpoint limit and a burst within Slack's", () => {
    assert.equal(slackVendor.budgetKey!(options), 'slack:acme');
    assert.notEqual(slackVendor.budgetKey!(SlackOptionsSchema.parse({ org: 'other' })), 'slack:acme');
    assert.deepEqual(slackVendor.rateLimits, { requestsPerSecond: 3, burst: 5, paced: 'writes' });
  });
});

// The emulator runs Slack's documented rates ten times faster (bursts unchanged), and the provider paces at ten
// times the plugin's documented 3/s: the same ratio as in production, in a tenth of the time.
describeConformance({
  plugin: 'slack',
  against: 'the Slack emulator',
  start: () =>
    startScimTarget({
      emulator: { module: new URL('../../test/emulators/slack.ts', import.meta.url).href, options: { rateScale: 10 } },
    }),
  provider: { pluginOptions: { org: 'acme' }, rateLimit: { requestsPerSecond: 30, paced: 'writes' } },
  deprovisioned: 'inactive',
  checkRequests(requests) {
    assert.equal(
      requests.filter((request) => request.status === 429).length,
      6,
      "paced by the org's budget, no request hit Slack's limits: the only 429s are the storm's",
    );
    assert.deepEqual(
      requests.filter((request) => request.method === 'DELETE' && request.path.startsWith('/Users')),
      [],
      'a user is deactivated, not deleted',
    );
  },
});
