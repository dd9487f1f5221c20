import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { ScimflowError, ScimRequestError } from '../../errors/index.ts';
import {
  createScimClient,
  SCHEMA_GROUP,
  SCHEMA_USER,
  type ScimClient,
  type ScimGroup,
  type ScimUser,
} from '../../scim/index.ts';
import { startScimTarget, type ReceivedRequest, type ScimTarget } from '../../test/servers/index.ts';
import type { PluginContext } from '../sdk.ts';
import { createScim2Plugin, Scim2OptionsSchema, type Scim2Options } from './index.ts';

function user(userName: string, extra: Partial<ScimUser> = {}): ScimUser {
  return { schemas: [SCHEMA_USER], userName, active: true, ...extra };
}

function group(displayName: string, members: string[], extra: Partial<ScimGroup> = {}): ScimGroup {
  return { schemas: [SCHEMA_GROUP], displayName, members: members.map((value) => ({ value })), ...extra };
}

function writesIn(log: ReceivedRequest[]): ReceivedRequest[] {
  return log.filter((request) => request.method !== 'GET');
}

/** Member values a logged request carried: inline members, PATCH add values and PATCH removes. */
function memberValuesIn(request: ReceivedRequest): number {
  const body = request.body as {
    members?: unknown[];
    Operations?: Array<{ op: string; path?: string; value?: unknown }>;
  };
  if (body.Operations === undefined) return body.members?.length ?? 0;
  return body.Operations.reduce((count, operation) => {
    if (operation.op === 'add' && operation.path === 'members') return count + (operation.value as unknown[]).length;
    if (operation.op === 'remove' && operation.path?.startsWith('members[')) return count + 1;
    return count;
  }, 0);
}

async function rejection(promise: Promise<unknown>): Promise<ScimflowError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ScimflowError, `expected a ScimflowError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

describe('scim2 plugin against a SCIMMY target', () => {
  let target: ScimTarget;
  let client: ScimClient;
  let plugin: ReturnType<typeof createScim2Plugin>;

  function ctx(
    options: Partial<Scim2Options> = {},
    overrides: Partial<PluginContext<Scim2Options>> = {},
  ): PluginContext<Scim2Options> {
    return { providerId: 'p1', configVersion: 1, client, options: Scim2OptionsSchema.parse(options), ...overrides };
  }

  /** Creates users directly on the target and returns their ids. */
  async function seedUsers(count: number, prefix: string): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1)
      ids.push((await target.seedUser({ userName: `${prefix}${i}@example.com` })).id ?? '');
    return ids;
  }

  async function membersOf(remoteId: string): Promise<string[]> {
    const stored = (await target.groups()).find((candidate) => candidate.id === remoteId);
    assert.ok(stored, `group ${remoteId} on the target`);
    return (stored.members ?? []).map((member) => member.value).sort();
  }

  before(async () => {
    target = await startScimTarget();
    client = createScimClient({ baseUrl: target.url, token: target.token });
  });

  after(async () => {
    await client.close();
    await target.close();
  });

  beforeEach(async () => {
    for (const stored of await target.groups()) await client.request('DELETE', `/Groups/${stored.id}`);
    for (const stored of await target.users()) await client.request('DELETE', `/Users/${stored.id}`);
    plugin = createScim2Plugin();
    await target.resetLog();
  });

  describe('capabilities', () => {
    test('are discovered from ServiceProviderConfig and ResourceTypes', async () => {
      const capabilities = await plugin.capabilities(ctx());
      assert.deepEqual(capabilities, {
        patch: true,
        groups: true,
        filter: true,
        bulk: { supported: true, maxOperations: 1000 },
        maxMembersPerRequest: 1000,
        userDelete: 'delete',
        groupPut: true,
        memberReadBack: true,
        filterOr: true,
        maxPageSize: 1000,
      });
      assert.deepEqual((await target.requests()).map(({ method, path }) => `${method} ${path}`).toSorted(), [
        'GET /ResourceTypes',
        'GET /ServiceProviderConfig',
      ]);
    });

    test('are cached per provider until the TTL passes or the configuration changes', async () => {
      let clock = 1_000;
      plugin = createScim2Plugin({ discoveryTtlMs: 60_000, now: () => clock });
      await plugin.capabilities(ctx());
      await plugin.capabilities(ctx());
      clock += 59_000;
      await plugin.capabilities(ctx());
      assert.equal((await target.requests()).length, 2, 'one discovery within the TTL');

      clock += 2_000;
      await plugin.capabilities(ctx());
      assert.equal((await target.requests()).length, 4, 'rediscovered after the TTL');

      await plugin.capabilities(ctx({}, { configVersion: 2 }));
      assert.equal((await target.requests()).length, 6, 'rediscovered for a new configVersion');

      await plugin.capabilities(ctx({}, { providerId: 'p2', configVersion: 2 }));
      assert.equal((await target.requests()).length, 8, 'each provider has its own entry');
    });

    test('share one discovery between concurrent callers', async () => {
      const results = await Promise.all([
        plugin.capabilities(ctx()),
        plugin.capabilities(ctx()),
        plugin.capabilities(ctx()),
      ]);
      assert.equal((await target.requests()).length, 2);
      assert.deepEqual(results[0], results[2]);
    });

    test('a failed discovery is not cached: the next call asks again', async () => {
      await target.failNext({ pathPrefix: '/ServiceProviderConfig', status: 500 });
      assert.equal((await rejection(plugin.capabilities(ctx()))).code, 'ERR_SCIM_SERVER');
      assert.equal((await plugin.capabilities(ctx())).patch, true);
      // Both documents are asked for at once, so the order within each discovery is not fixed.
      assert.deepEqual((await target.requests()).map(({ path, status }) => `${path} ${status}`).toSorted(), [
        '/ResourceTypes 200',
        '/ResourceTypes 200',
        '/ServiceProviderConfig 200',
        '/ServiceProviderConfig 500',
      ]);
    });

    test('fall back to patch off and filter on when the ServiceProviderConfig is missing', async () => {
      const capabilities = await plugin.capabilities(ctx({ discoveryPath: '/ServiceProviderConfigs' }));
      assert.equal(capabilities.patch, false);
      assert.equal(capabilities.filter, true);
      assert.deepEqual(capabilities.bulk, { supported: false, maxOperations: 0 });
      assert.equal(capabilities.maxMembersPerRequest, 100);
      assert.equal((await target.requests())[0]?.path, '/ServiceProviderConfigs');
    });

    test('assume groups when /ResourceTypes does not exist', async () => {
      await target.failNext({ pathPrefix: '/ResourceTypes', status: 404 });
      assert.equal((await plugin.capabilities(ctx())).groups, true);
    });

    test("a provider's capability override wins over what the target advertises", async () => {
      const capabilities = await plugin.capabilities(ctx({ capabilities: { patch: false, maxPageSize: 50 } }));
      assert.equal(capabilities.patch, false);
      assert.equal(capabilities.maxPageSize, 50);
      assert.equal(capabilities.filter, true, 'what the override leaves out stays as discovered');
    });

    test('take maxMembersPerRequest from the options over the advertised bulk limit', async () => {
      assert.equal((await plugin.capabilities(ctx({ maxMembersPerRequest: 25 }))).maxMembersPerRequest, 25);
    });

    test('report no groups for a Users-only target', async () => {
      const usersOnly = await startScimTarget({ groups: false });
      const usersOnlyClient = createScimClient({ baseUrl: usersOnly.url, token: usersOnly.token });
      try {
        const capabilities = await plugin.capabilities(ctx({}, { providerId: 'users-only', client: usersOnlyClient }));
        assert.equal(capabilities.groups, false);
        assert.equal(capabilities.patch, true);
      } finally {
        await usersOnlyClient.close();
        await usersOnly.close();
      }
    });

    test('fail with ERR_SCIM_UNAUTHORIZED on a wrong token, naming no secret', async () => {
      const badClient = createScimClient({ baseUrl: target.url, token: 'wrong-secret' });
      try {
        const error = await rejection(plugin.capabilities(ctx({}, { client: badClient })));
        assert.equal(error.code, 'ERR_SCIM_UNAUTHORIZED');
        assert.ok(error instanceof ScimRequestError && error.status === 401);
        assert.doesNotMatch(error.message, /wrong-secret/);
      } finally {
        await badClient.close();
      }
    });
  });

  describe('users', () => {
    test('createUser posts the user and returns its remote id', async () => {
      const created = await plugin.createUser(
        ctx(),
        user('alice@example.com', { externalId: 'ext-alice', id: 'local-id' }),
      );
      const [stored] = await target.users();
      assert.equal(created.id, stored?.id);
      assert.equal(created.resource.userName, 'alice@example.com');
      assert.equal(stored?.externalId, 'ext-alice');
      const post = writesIn(await target.requests())[0];
      assert.equal((post?.body as { id?: string }).id, undefined, 'no local id is sent');
    });

    test('findUser matches by externalId first, then by userName, and returns null when neither matches', async () => {
      const alice = await target.seedUser({ userName: 'alice@example.com', externalId: 'ext-alice' });
      const bob = await target.seedUser({ userName: 'bob@example.com' });
      const byExternalId = await plugin.findUser(ctx(), { externalId: 'ext-alice', name: 'bob@example.com' });
      assert.equal(byExternalId?.id, alice.id);
      const byName = await plugin.findUser(ctx(), { externalId: 'ext-unknown', name: 'bob@example.com' });
      assert.equal(byName?.id, bob.id);
      assert.equal(byName?.resource.userName, 'bob@example.com');
      assert.equal(await plugin.findUser(ctx(), { externalId: 'nobody', name: 'nobody@example.com' }), null);
      const lookups = (await target.requests()).filter((request) => request.path === '/Users');
      assert.deepEqual(lookups.at(-1)?.query, { filter: 'userName eq "nobody@example.com"', count: '2' });
    });

    test('findUser refuses to choose when more than one user matches', async () => {
      const resource = (id: string) => ({ schemas: [SCHEMA_USER], id, userName: 'twin@example.com' });
      await target.failNext({
        method: 'GET',
        pathPrefix: '/Users',
        status: 200,
        body: {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
          totalResults: 2,
          Resources: [resource('u1'), resource('u2')],
        },
      });
      const error = await rejection(plugin.findUser(ctx(), { name: 'twin@example.com' }));
      assert.equal(error.code, 'ERR_SCIM_CONFLICT');
      assert.deepEqual(error.details.matches, ['u1', 'u2']);
    });

    test('findUser returns null without asking when the target cannot filter', async () => {
      await target.seedUser({ userName: 'carol@example.com' });
      await target.failNext({
        pathPrefix: '/ServiceProviderConfig',
        status: 200,
        body: { patch: { supported: true }, filter: { supported: false } },
      });
      assert.equal(await plugin.findUser(ctx(), { name: 'carol@example.com' }), null);
      assert.equal((await target.requests()).filter((request) => request.path === '/Users').length, 0);
    });

    test('updateUser replaces the user with PUT, id included', async () => {
      const created = await plugin.createUser(ctx(), user('dave@example.com', { externalId: 'ext-dave' }));
      await target.resetLog();
      await plugin.updateUser(
        ctx(),
        created.id,
        user('dave@example.com', { externalId: 'ext-dave', displayName: 'Dave' }),
        null,
      );
      const [put] = await target.requests();
      assert.equal(put?.method, 'PUT');
      assert.equal(put?.path, `/Users/${created.id}`);
      assert.equal((put?.body as { id: string }).id, created.id);
      assert.equal((await target.users())[0]?.displayName, 'Dave');
    });

    test('deactivateUser sends one PATCH replacing active when the target supports PATCH', async () => {
      const created = await plugin.createUser(ctx(), user('erin@example.com'));
      await plugin.capabilities(ctx());
      await target.resetLog();
      await plugin.deactivateUser(ctx(), created.id, user('erin@example.com'));
      const log = await target.requests();
      assert.deepEqual(
        log.map(({ method }) => method),
        ['PATCH'],
      );
      assert.deepEqual((log[0]?.body as { Operations: unknown }).Operations, [
        { op: 'replace', path: 'active', value: false },
      ]);
      assert.equal((await target.users())[0]?.active, false);
    });

    test('deleteUser deletes, and deleting a user that is already gone succeeds', async () => {
      const created = await plugin.createUser(ctx(), user('frank@example.com'));
      await plugin.deleteUser(ctx(), created.id);
      assert.deepEqual(await target.users(), []);
      await plugin.deleteUser(ctx(), created.id);
      const deletes = (await target.requests()).filter((request) => request.method === 'DELETE');
      assert.deepEqual(
        deletes.map(({ status }) => status),
        [204, 404],
      );
    });

    test('a duplicate userName fails as ERR_SCIM_CONFLICT with the target scimType', async () => {
      await plugin.createUser(ctx(), user('gina@example.com'));
      const error = await rejection(plugin.createUser(ctx(), user('GINA@example.com')));
      assert.equal(error.code, 'ERR_SCIM_CONFLICT');
      assert.ok(error instanceof ScimRequestError);
      assert.equal(error.scimType, 'uniqueness');
      assert.match(error.message, /POST \/Users failed with 409/);
    });

    test('a 429 fails as ERR_SCIM_RATE_LIMITED carrying Retry-After, and the retry goes through', async () => {
      await target.failNext({ method: 'POST', pathPrefix: '/Users', status: 429, headers: { 'Retry-After': '1' } });
      const error = await rejection(plugin.createUser(ctx(), user('hank@example.com')));
      assert.equal(error.code, 'ERR_SCIM_RATE_LIMITED');
      assert.ok(error instanceof ScimRequestError);
      assert.equal(error.retryAfterMs, 1000);
      assert.equal(error.retryable, true);
      await plugin.createUser(ctx(), user('hank@example.com'));
      assert.equal((await target.users()).length, 1);
    });

    test('a 400 for one userName fails that user only', async () => {
      await target.failNext({
        method: 'POST',
        pathPrefix: '/Users',
        match: { userName: 'bad@example.com' },
        status: 400,
      });
      const results = await Promise.allSettled([
        plugin.createUser(ctx(), user('good@example.com')),
        plugin.createUser(ctx(), user('bad@example.com')),
      ]);
      assert.equal(results[0].status, 'fulfilled');
      const failed = results[1];
      assert.ok(failed.status === 'rejected' && failed.reason instanceof ScimRequestError);
      assert.equal(failed.reason.code, 'ERR_SCIM_BAD_REQUEST');
    });

    test('remote ids are URL-encoded in paths', async () => {
      await plugin.deleteUser(ctx(), 'odd/id with space');
      const [request] = await target.requests();
      assert.equal(request?.path, '/Users/odd%2Fid%20with%20space');
    });
  });

  describe('groups', () => {
    test('createGroup sends at most maxMembersPerRequest members inline and PATCHes in the rest', async () => {
      const ids = await seedUsers(7, 'member');
      await plugin.capabilities(ctx({ maxMembersPerRequest: 3 }));
      await target.resetLog();
      const created = await plugin.createGroup(
        ctx({ maxMembersPerRequest: 3 }),
        group('Engineering', ids, { externalId: 'ext-eng' }),
      );
      const writes = writesIn(await target.requests());
      assert.deepEqual(
        writes.map(({ method }) => method),
        ['POST', 'PATCH', 'PATCH'],
      );
      assert.deepEqual(writes.map(memberValuesIn), [3, 3, 1]);
      assert.deepEqual(await membersOf(created.id), [...ids].sort());
      assert.equal(created.resource.members?.length, 7);
    });

    test('createGroup without PATCH posts the first members and PUTs the whole group', async () => {
      const ids = await seedUsers(5, 'putmember');
      const options = { maxMembersPerRequest: 2, groupUpdate: 'put' as const };
      const created = await plugin.createGroup(ctx(options), group('Sales', ids));
      const writes = writesIn(await target.requests());
      assert.deepEqual(
        writes.map(({ method }) => method),
        ['POST', 'PUT'],
      );
      assert.deepEqual(writes.map(memberValuesIn), [2, 5]);
      assert.deepEqual(await membersOf(created.id), [...ids].sort());
    });

    test('findGroup matches by externalId, then displayName', async () => {
      const seeded = await target.seedGroup({ displayName: 'Support', externalId: 'ext-support' });
      assert.equal((await plugin.findGroup(ctx(), { externalId: 'ext-support' }))?.id, seeded.id);
      assert.equal((await plugin.findGroup(ctx(), { externalId: 'other', name: 'Support' }))?.id, seeded.id);
      assert.equal(await plugin.findGroup(ctx(), { externalId: 'other', name: 'Nobody' }), null);
    });

    test('updateGroup PATCHes only the difference, chunked to maxMembersPerRequest', async () => {
      const [a, b, c, d, e] = await seedUsers(5, 'diff');
      const options = { maxMembersPerRequest: 2 };
      const before = group('Team', [a!, b!, c!], { externalId: 'ext-team' });
      const created = await plugin.createGroup(ctx(options), before);
      await target.resetLog();

      await plugin.updateGroup(
        ctx(options),
        created.id,
        group('Team Renamed', [b!, c!, d!, e!], { externalId: 'ext-team' }),
        before,
      );
      const writes = writesIn(await target.requests());
      assert.deepEqual(
        writes.map(({ method }) => method),
        ['PATCH', 'PATCH'],
      );
      assert.ok(writes.every((request) => memberValuesIn(request) <= 2));
      assert.deepEqual((writes[0]?.body as { Operations: unknown[] }).Operations[0], {
        op: 'replace',
        path: 'displayName',
        value: 'Team Renamed',
      });
      assert.ok(
        !JSON.stringify(writes.map((request) => request.body)).includes('"path":"externalId"'),
        'an unchanged externalId is not sent',
      );
      assert.deepEqual(await membersOf(created.id), [b!, c!, d!, e!].sort());
      assert.equal((await target.groups())[0]?.displayName, 'Team Renamed');
    });

    test('updateGroup sends nothing when nothing changed', async () => {
      const ids = await seedUsers(3, 'same');
      const wanted = group('Stable', ids);
      const created = await plugin.createGroup(ctx(), wanted);
      await target.resetLog();
      await plugin.updateGroup(ctx(), created.id, group('Stable', [...ids].reverse()), wanted);
      assert.equal(await target.writes(), 0);
      assert.deepEqual(await target.requests(), []);
    });

    test('updateGroup without a previous state reads the group and diffs against it', async () => {
      const [a, b, c] = await seedUsers(3, 'read');
      const created = await plugin.createGroup(ctx(), group('Readers', [a!, b!]));
      await target.resetLog();

      await plugin.updateGroup(ctx(), created.id, group('Readers', [a!, b!]), null);
      assert.deepEqual(
        (await target.requests()).map(({ method }) => method),
        ['GET'],
      );

      await plugin.updateGroup(ctx(), created.id, group('Readers', [b!, c!]), null);
      const log = await target.requests();
      assert.deepEqual(
        log.map(({ method }) => method),
        ['GET', 'GET', 'PATCH'],
      );
      assert.deepEqual((log[2]?.body as { Operations: unknown[] }).Operations, [
        { op: 'add', path: 'members', value: [{ value: c }] },
        { op: 'remove', path: `members[value eq "${a}"]` },
      ]);
      assert.deepEqual(await membersOf(created.id), [b!, c!].sort());
    });

    test('updateGroup PUTs the whole group when PATCH is not used, and only when something differs', async () => {
      const [a, b, c] = await seedUsers(3, 'whole');
      const options = { groupUpdate: 'put' as const };
      const before = group('Whole', [a!, b!]);
      const created = await plugin.createGroup(ctx(options), before);
      await target.resetLog();

      await plugin.updateGroup(ctx(options), created.id, group('Whole', [b!, a!]), before);
      assert.equal(await target.writes(), 0);

      await plugin.updateGroup(ctx(options), created.id, group('Whole', [b!, c!]), before);
      const writes = writesIn(await target.requests());
      assert.deepEqual(
        writes.map(({ method }) => method),
        ['PUT'],
      );
      assert.equal(memberValuesIn(writes[0]!), 2);
      assert.deepEqual(await membersOf(created.id), [b!, c!].sort());
    });

    test('deleteGroup deletes, and a missing group counts as deleted', async () => {
      const created = await plugin.createGroup(ctx(), group('Temporary', []));
      await plugin.deleteGroup(ctx(), created.id);
      await plugin.deleteGroup(ctx(), created.id);
      assert.deepEqual(await target.groups(), []);
    });
  });
});

describe('scim2 plugin against a target without PATCH', () => {
  let target: ScimTarget;
  let client: ScimClient;

  before(async () => {
    target = await startScimTarget({ patch: false });
    client = createScimClient({ baseUrl: target.url, token: target.token });
  });

  after(async () => {
    await client.close();
    await target.close();
  });

  function ctx(options: Partial<Scim2Options> = {}): PluginContext<Scim2Options> {
    return { providerId: 'no-patch', configVersion: 1, client, options: Scim2OptionsSchema.parse(options) };
  }

  test('deactivateUser PUTs the given user with active false', async () => {
    const plugin = createScim2Plugin();
    const created = await plugin.createUser(ctx(), user('ivy@example.com', { displayName: 'Ivy' }));
    await target.resetLog();
    await plugin.deactivateUser(ctx(), created.id, user('ivy@example.com', { displayName: 'Ivy' }));
    const writes = writesIn(await target.requests());
    assert.deepEqual(
      writes.map(({ method }) => method),
      ['PUT'],
    );
    const stored = (await target.users()).find((candidate) => candidate.id === created.id);
    assert.equal(stored?.active, false);
    assert.equal(stored?.displayName, 'Ivy');
  });

  test('deactivateUser without the user reads it first, then PUTs it with active false', async () => {
    const plugin = createScim2Plugin();
    const created = await plugin.createUser(ctx(), user('jack@example.com', { displayName: 'Jack' }));
    await plugin.capabilities(ctx());
    await target.resetLog();
    await plugin.deactivateUser(ctx(), created.id, null);
    assert.deepEqual(
      (await target.requests()).map(({ method }) => method),
      ['GET', 'PUT'],
    );
    const stored = (await target.users()).find((candidate) => candidate.id === created.id);
    assert.equal(stored?.active, false);
    assert.equal(stored?.displayName, 'Jack');
  });

  test('group updates go through PUT in auto mode', async () => {
    const plugin = createScim2Plugin();
    const a = await target.seedUser({ userName: 'kim@example.com' });
    const before = group('NoPatch', []);
    const created = await plugin.createGroup(ctx(), before);
    await target.resetLog();
    await plugin.updateGroup(ctx(), created.id, group('NoPatch', [a.id!]), before);
    assert.deepEqual(
      writesIn(await target.requests()).map(({ method }) => method),
      ['PUT'],
    );
    assert.deepEqual(
      (await target.groups())[0]?.members?.map((member) => member.value),
      [a.id],
    );
  });
});
