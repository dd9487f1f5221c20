import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { ScimflowError, ScimRequestError } from '../../errors/index.ts';
import { createScimClient, SCHEMA_GROUP, SCHEMA_USER, type ScimUser } from '../../scim/index.ts';
import { describeConformance } from '../../test/conformance/kit.ts';
import { startScimTarget } from '../../test/servers/index.ts';
import { createWebexPlugin, webexVendor, WebexOptionsSchema } from './index.ts';

const options = WebexOptionsSchema.parse({});
const WEBEX_EMULATOR = new URL('../../test/emulators/webex.ts', import.meta.url).href;

describe('webex shaping and errors', () => {
  const user: ScimUser = {
    schemas: [SCHEMA_USER],
    userName: 'ada@example.test',
    emails: [{ value: 'ada@example.test', primary: true }],
  };

  test('a user gets the default userType; one whose userName is not the primary email is a mapping error', () => {
    assert.equal(webexVendor.shapeUser!(user, options).userType, 'user');
    assert.equal(webexVendor.shapeUser!({ ...user, userType: 'room' }, options).userType, 'room');
    assert.throws(
      () => webexVendor.shapeUser!({ ...user, userName: 'ada' }, options),
      (error: unknown) =>
        error instanceof ScimflowError && error.code === 'ERR_MAPPING' && /primary email/.test(error.message),
    );
  });

  test('members are typed "user"; 423 and 428 are tried again later, 410 is gone', () => {
    assert.deepEqual(webexVendor.memberReference!('u1'), { value: 'u1', type: 'user' });
    const failure = (status: number) =>
      new ScimRequestError('ERR_SCIM_BAD_REQUEST', `failed with ${status}`, {
        status,
        method: 'PUT',
        path: '/Users/1',
      });
    assert.equal(webexVendor.translateError!(failure(423))?.code, 'ERR_SCIM_SERVER');
    assert.equal(webexVendor.translateError!(failure(428))?.code, 'ERR_SCIM_SERVER');
    assert.equal(webexVendor.translateError!(failure(410))?.code, 'ERR_SCIM_NOT_FOUND');
    assert.equal(webexVendor.translateError!(failure(400)), undefined);
  });
});

describeConformance({
  plugin: 'webex',
  against: 'the Webex emulator',
  start: () =>
    startScimTarget({
      emulator: { module: WEBEX_EMULATOR, options: { orgId: 'o-9' } },
    }),
  deprovisioned: 'deleted',
});

/** A Webex emulator and the plugin with a client for it, closed when the test ends. */
async function startWebex(t: TestContext) {
  const target = await startScimTarget({ emulator: { module: WEBEX_EMULATOR } });
  const client = createScimClient({ baseUrl: target.url, token: target.token });
  t.after(async () => {
    await client.close();
    await target.close();
  });
  return { target, plugin: createWebexPlugin(), ctx: { providerId: 'p', configVersion: 1, client, options } };
}

describe('webex group reads', () => {
  test('a group with no record of what was sent is read from its paged member endpoint, so a stranger member is removed', async (t) => {
    const { target, plugin, ctx } = await startWebex(t);
    const [kept, stranger] = await Promise.all(
      ['kept@example.test', 'stranger@example.test'].map((userName) =>
        plugin.createUser(ctx, { schemas: [SCHEMA_USER], userName, emails: [{ value: userName, primary: true }] }),
      ),
    );
    const group = await plugin.createGroup(ctx, {
      schemas: [SCHEMA_GROUP],
      displayName: 'G',
      members: [{ value: kept!.id }, { value: stranger!.id }],
    });

    await plugin.updateGroup(
      ctx,
      group.id,
      { schemas: [SCHEMA_GROUP], displayName: 'G', members: [{ value: kept!.id }] },
      null,
    );

    const stored = (await target.groups()).find((candidate) => candidate.id === group.id);
    assert.deepEqual(stored?.members, [{ value: kept!.id, type: 'User' }]);
    const reads = (await target.requests()).filter(
      (r) => r.method === 'GET' && r.path.startsWith(`/Groups/${group.id}`),
    );
    assert.deepEqual(
      reads.map((r) => [r.path, r.query]),
      [
        [`/Groups/${group.id}`, {}],
        [`/Groups/${group.id}/Members`, { startIndex: '1', count: '500' }],
      ],
      'the group is read without includeMembers, its members from the member endpoint',
    );
  });

  test('a group adopted from a listing without members is read page by page (500 a page), and only strangers go', async (t) => {
    const { target, plugin, ctx } = await startWebex(t);
    const users: string[] = [];
    for (let i = 0; i < 620; i += 1) {
      const userName = `member${i}@example.test`;
      const seeded = await target.seedUser({
        userName,
        userType: 'user',
        emails: [{ value: userName, primary: true }],
      });
      users.push(seeded.id!);
    }
    // On Webex before scimflow: 620 members, the last 20 of them not wanted.
    await target.seedGroup({ displayName: 'Big', members: users.map((value) => ({ value, type: 'User' })) });
    const found = await plugin.findGroup(ctx, { name: 'Big' });
    assert.ok(found);
    assert.equal(found.resource.members, undefined, 'a Webex listing leaves members out');

    await plugin.updateGroup(
      ctx,
      found.id,
      { schemas: [SCHEMA_GROUP], displayName: 'Big', members: users.slice(0, 600).map((value) => ({ value })) },
      found.resource,
    );

    const stored = (await target.groups()).find((candidate) => candidate.id === found.id);
    assert.deepEqual(stored?.members?.map((member) => member.value).sort(), users.slice(0, 600).sort());
    const requests = await target.requests();
    assert.deepEqual(
      requests.filter((r) => r.path === `/Groups/${found.id}/Members`).map((r) => r.query),
      [
        { startIndex: '1', count: '500' },
        { startIndex: '501', count: '500' },
      ],
    );
    const writes = requests.filter((r) => r.method === 'PATCH');
    assert.equal(writes.length, 1, 'one PATCH removes the 20 strangers and adds nobody');
    assert.equal(JSON.stringify(writes[0]!.body).match(/"op":"add"/g), null);
  });
});
