import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startScimTarget, type ScimTarget } from './index.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

/** The parts of SCIM bodies these tests read: resources, list responses, errors and the SPC. */
interface ScimBody {
  schemas?: string[];
  id?: string;
  userName?: string;
  externalId?: string;
  meta?: { location?: string };
  status?: string;
  scimType?: string;
  detail?: string;
  totalResults?: number;
  itemsPerPage?: number;
  Resources?: Array<{ id: string; name?: string; userName?: string }>;
  patch?: { supported: boolean };
  filter?: { supported: boolean };
  bulk?: { supported: boolean; maxOperations: number };
}

interface Answer {
  status: number;
  headers: Headers;
  body: ScimBody;
}

/** Sends one request to a target with its token (or the given one) and reads the JSON answer. */
async function scim(
  target: ScimTarget,
  method: string,
  path: string,
  body?: unknown,
  token: string | null = target.token,
): Promise<Answer> {
  const response = await fetch(`${target.url}${path}`, {
    method,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === '' ? {} : (JSON.parse(text) as ScimBody),
  };
}

function filterQuery(filter: string, extra = ''): string {
  return `?filter=${encodeURIComponent(filter)}${extra}`;
}

async function createUser(target: ScimTarget, userName: string, extra: Record<string, unknown> = {}): Promise<string> {
  const answer = await scim(target, 'POST', '/Users', { schemas: [USER], userName, ...extra });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  assert.ok(answer.body.id);
  return answer.body.id;
}

describe('SCIM test target', () => {
  let target: ScimTarget;

  before(async () => {
    target = await startScimTarget();
  });

  after(async () => {
    await target.close();
  });

  beforeEach(async () => {
    for (const group of await target.groups()) await scim(target, 'DELETE', `/Groups/${group.id}`);
    for (const user of await target.users()) await scim(target, 'DELETE', `/Users/${user.id}`);
    await target.resetLog();
  });

  test('advertises PATCH, filter and bulk, and lists User and Group resource types', async () => {
    const spc = await scim(target, 'GET', '/ServiceProviderConfig');
    assert.equal(spc.status, 200);
    assert.equal(spc.body.patch?.supported, true);
    assert.equal(spc.body.filter?.supported, true);
    assert.equal(spc.body.bulk?.supported, true);
    assert.equal(spc.body.bulk?.maxOperations, 1000);
    const types = await scim(target, 'GET', '/ResourceTypes');
    assert.deepEqual(types.body.Resources?.map((type) => type.name).sort(), ['Group', 'User']);
    assert.match(spc.headers.get('content-type') ?? '', /application\/scim\+json/);
  });

  test('refuses a missing or wrong bearer token with a SCIM 401', async () => {
    for (const token of [null, 'wrong-token']) {
      const answer = await scim(target, 'GET', '/Users', undefined, token);
      assert.equal(answer.status, 401);
      assert.deepEqual(answer.body.schemas, ['urn:ietf:params:scim:api:messages:2.0:Error']);
      assert.equal(answer.body.status, '401');
    }
  });

  test('creates, reads, replaces and deletes a user', async () => {
    const id = await createUser(target, 'alice@example.com', { externalId: 'ext-alice', active: true });
    const read = await scim(target, 'GET', `/Users/${id}`);
    assert.equal(read.body.userName, 'alice@example.com');
    assert.equal(read.body.externalId, 'ext-alice');
    assert.equal(read.body.meta?.location, `${target.url}/Users/${id}`);

    const replaced = await scim(target, 'PUT', `/Users/${id}`, {
      schemas: [USER],
      userName: 'alice2@example.com',
      active: false,
    });
    assert.equal(replaced.status, 200);
    const [stored] = await target.users();
    assert.equal(stored?.userName, 'alice2@example.com');
    assert.equal(stored?.active, false);
    assert.equal(stored?.externalId, undefined, 'PUT replaces the whole resource');

    assert.equal((await scim(target, 'DELETE', `/Users/${id}`)).status, 204);
    assert.equal((await scim(target, 'GET', `/Users/${id}`)).status, 404);
    assert.equal((await scim(target, 'DELETE', `/Users/${id}`)).status, 404);
    assert.deepEqual(await target.users(), []);
  });

  test('answers 404 for PUT on an unknown user', async () => {
    const answer = await scim(target, 'PUT', '/Users/missing', { schemas: [USER], userName: 'x' });
    assert.equal(answer.status, 404);
  });

  test('rejects a second user with the same userName in any case, or the same externalId, with 409 uniqueness', async () => {
    const id = await createUser(target, 'bob@example.com', { externalId: 'ext-bob' });
    for (const body of [
      { schemas: [USER], userName: 'BOB@example.com' },
      { schemas: [USER], userName: 'other@example.com', externalId: 'ext-bob' },
    ]) {
      const answer = await scim(target, 'POST', '/Users', body);
      assert.equal(answer.status, 409);
      assert.equal(answer.body.scimType, 'uniqueness');
    }
    const other = await createUser(target, 'carol@example.com');
    assert.equal(
      (await scim(target, 'PUT', `/Users/${other}`, { schemas: [USER], userName: 'Bob@Example.com' })).status,
      409,
    );
    assert.equal(
      (await scim(target, 'PUT', `/Users/${id}`, { schemas: [USER], userName: 'BOB@example.com' })).status,
      200,
    );
    assert.equal((await target.users()).length, 2);
  });

  test('filters users with SCIMMY on userName and externalId', async () => {
    await createUser(target, 'dave@example.com', { externalId: 'ext-dave' });
    await createUser(target, 'erin@example.com', { externalId: 'ext-erin' });
    const byName = await scim(target, 'GET', `/Users${filterQuery('userName eq "erin@example.com"')}`);
    assert.deepEqual(
      byName.body.Resources?.map((user) => user.userName),
      ['erin@example.com'],
    );
    const byExternalId = await scim(target, 'GET', `/Users${filterQuery('externalId eq "ext-dave"', '&count=2')}`);
    assert.equal(byExternalId.body.totalResults, 1);
    assert.equal(byExternalId.body.Resources?.[0]?.userName, 'dave@example.com');
    const none = await scim(target, 'GET', `/Users${filterQuery('externalId eq "nobody"')}`);
    assert.equal(none.body.totalResults, 0);
  });

  test('pages 20 users by default and up to 1000 when count asks', async () => {
    for (let i = 0; i < 1001; i += 1)
      await target.seedUser({ userName: `user${String(i).padStart(4, '0')}@example.com` });
    const first = await scim(target, 'GET', '/Users');
    assert.equal(first.body.totalResults, 1001);
    assert.equal(first.body.Resources?.length, 20);
    const big = await scim(target, 'GET', '/Users?count=1000');
    assert.equal(big.body.Resources?.length, 1000);
    assert.equal(big.body.itemsPerPage, 1000);
    const last = await scim(target, 'GET', '/Users?count=1000&startIndex=1001');
    assert.equal(last.body.Resources?.length, 1);
    assert.equal(last.body.Resources?.[0]?.userName, 'user1000@example.com');
  });

  test('keeps group displayNames unique with 409 uniqueness', async () => {
    assert.equal((await scim(target, 'POST', '/Groups', { schemas: [GROUP], displayName: 'Engineering' })).status, 201);
    const duplicate = await scim(target, 'POST', '/Groups', { schemas: [GROUP], displayName: 'engineering' });
    assert.equal(duplicate.status, 409);
    assert.equal(duplicate.body.scimType, 'uniqueness');
  });

  test('refuses group members that are not known users with 400 invalidValue', async () => {
    const created = await scim(target, 'POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'G',
      members: [{ value: 'ghost' }],
    });
    assert.equal(created.status, 400);
    assert.equal(created.body.scimType, 'invalidValue');

    const group = await scim(target, 'POST', '/Groups', { schemas: [GROUP], displayName: 'G' });
    const patched = await scim(target, 'PATCH', `/Groups/${group.body.id ?? ''}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'add', path: 'members', value: [{ value: 'ghost' }] }],
    });
    assert.equal(patched.status, 400);
    assert.equal(patched.body.scimType, 'invalidValue');
    assert.deepEqual((await target.groups())[0]?.members, []);
  });

  test('applies PATCH member adds and removes with SCIMMY', async () => {
    const a = await createUser(target, 'a@example.com');
    const b = await createUser(target, 'b@example.com');
    const c = await createUser(target, 'c@example.com');
    const group = await scim(target, 'POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'Team',
      members: [{ value: a }],
    });
    const answer = await scim(target, 'PATCH', `/Groups/${group.body.id ?? ''}`, {
      schemas: [PATCH_OP],
      Operations: [
        { op: 'add', path: 'members', value: [{ value: b }, { value: c }] },
        { op: 'remove', path: `members[value eq "${a}"]` },
      ],
    });
    assert.equal(answer.status, 200);
    const [stored] = await target.groups();
    assert.deepEqual(stored?.members?.map((member) => member.value).sort(), [b, c].sort());
  });

  test('applies a PATCH replace of active on a user', async () => {
    const id = await createUser(target, 'f@example.com', { active: true });
    const answer = await scim(target, 'PATCH', `/Users/${id}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    assert.equal(answer.status, 200);
    assert.equal((await target.users())[0]?.active, false);
  });

  test('removes a deleted user from every group', async () => {
    const a = await createUser(target, 'g@example.com');
    const b = await createUser(target, 'h@example.com');
    await scim(target, 'POST', '/Groups', {
      schemas: [GROUP],
      displayName: 'One',
      members: [{ value: a }, { value: b }],
    });
    await scim(target, 'POST', '/Groups', { schemas: [GROUP], displayName: 'Two', members: [{ value: a }] });
    await scim(target, 'DELETE', `/Users/${a}`);
    const groups = await target.groups();
    assert.deepEqual(
      groups.map((group) => [group.displayName, group.members?.map((member) => member.value)]),
      [
        ['One', [b]],
        ['Two', []],
      ],
    );
  });

  test('logs every request in order with status, and counts writes until reset', async () => {
    await scim(target, 'GET', '/ServiceProviderConfig');
    const id = await createUser(target, 'i@example.com');
    await scim(target, 'GET', `/Users${filterQuery('userName eq "i@example.com"')}`);
    await scim(target, 'DELETE', `/Users/${id}`);
    const log = await target.requests();
    assert.deepEqual(
      log.map(({ method, path, status }) => [method, path, status]),
      [
        ['GET', '/ServiceProviderConfig', 200],
        ['POST', '/Users', 201],
        ['GET', '/Users', 200],
        ['DELETE', `/Users/${id}`, 204],
      ],
    );
    assert.deepEqual(log[1]?.body, { schemas: [USER], userName: 'i@example.com' });
    assert.equal(log[0]?.body, undefined);
    assert.deepEqual(log[2]?.query, { filter: 'userName eq "i@example.com"' });
    assert.equal(await target.writes(), 2);
    await target.resetLog();
    assert.equal(await target.writes(), 0);
    assert.deepEqual(await target.requests(), []);
  });

  test('answers the next matching request with an injected 429 and Retry-After, then recovers', async () => {
    await target.failNext({ method: 'POST', pathPrefix: '/Users', status: 429, headers: { 'Retry-After': '1' } });
    const throttled = await scim(target, 'POST', '/Users', { schemas: [USER], userName: 'j@example.com' });
    assert.equal(throttled.status, 429);
    assert.equal(throttled.headers.get('retry-after'), '1');
    assert.equal(throttled.body.status, '429');
    assert.deepEqual(await target.users(), [], 'the throttled request was not processed');
    await createUser(target, 'j@example.com');
    assert.equal((await target.users()).length, 1);
  });

  test('injects a failure only for the userName it names, as many times as asked', async () => {
    await target.failNext({
      method: 'post',
      pathPrefix: '/Users',
      match: { userName: 'bad@example.com' },
      status: 400,
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
        status: '400',
        scimType: 'invalidValue',
        detail: 'nope',
      },
      times: 2,
    });
    await createUser(target, 'good@example.com');
    for (let i = 0; i < 2; i += 1) {
      const answer = await scim(target, 'POST', '/Users', { schemas: [USER], userName: 'bad@example.com' });
      assert.equal(answer.status, 400);
      assert.equal(answer.body.detail, 'nope');
    }
    await createUser(target, 'bad@example.com');
    assert.equal((await target.users()).length, 2);
  });

  test('injects a failure on any method when only a path prefix is given', async () => {
    await target.failNext({ pathPrefix: '/ServiceProviderConfig', status: 500 });
    assert.equal((await scim(target, 'GET', '/Users')).status, 200);
    assert.equal((await scim(target, 'GET', '/ServiceProviderConfig')).status, 500);
    assert.equal((await scim(target, 'GET', '/ServiceProviderConfig')).status, 200);
  });

  test('seeds users and groups straight into the store, under the same rules', async () => {
    const user = await target.seedUser({ userName: 'seeded@example.com', externalId: 'ext-seeded' });
    assert.ok(user.id);
    const found = await scim(target, 'GET', `/Users${filterQuery('externalId eq "ext-seeded"')}`);
    assert.equal(found.body.Resources?.[0]?.id, user.id);
    await assert.rejects(target.seedUser({ userName: 'SEEDED@example.com' }), /already taken/);
    const group = await target.seedGroup({ displayName: 'Seeded', members: [{ value: user.id ?? '' }] });
    assert.deepEqual(
      group.members?.map((member) => member.value),
      [user.id],
    );
    assert.equal(await target.writes(), 0, 'seeding is not a request');
  });
});

describe('SCIM test target variants', () => {
  test('a Users-only target lists no Group resource type and has no /Groups endpoint', async () => {
    const target = await startScimTarget({ groups: false });
    try {
      const types = await scim(target, 'GET', '/ResourceTypes');
      assert.deepEqual(
        types.body.Resources?.map((type) => type.name),
        ['User'],
      );
      assert.equal((await scim(target, 'GET', '/Groups')).status, 404);
      assert.equal((await scim(target, 'POST', '/Users', { schemas: [USER], userName: 'k@example.com' })).status, 201);
    } finally {
      await target.close();
    }
  });

  test('a target without PATCH advertises it as unsupported and refuses PATCH with 501', async () => {
    const target = await startScimTarget({ patch: false });
    try {
      assert.equal((await scim(target, 'GET', '/ServiceProviderConfig')).body.patch?.supported, false);
      const id = await createUser(target, 'l@example.com');
      const answer = await scim(target, 'PATCH', `/Users/${id}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'replace', path: 'active', value: false }],
      });
      assert.equal(answer.status, 501);
    } finally {
      await target.close();
    }
  });

  test('two targets run at once with separate stores, tokens and resource types', async () => {
    const [first, second] = await Promise.all([
      startScimTarget({ token: 'token-one' }),
      startScimTarget({ token: 'token-two', groups: false }),
    ]);
    try {
      assert.notEqual(first.url, second.url);
      await createUser(first, 'only-first@example.com');
      assert.equal((await first.users()).length, 1);
      assert.deepEqual(await second.users(), []);
      assert.equal((await scim(second, 'GET', '/Users', undefined, 'token-one')).status, 401);
      assert.equal((await scim(first, 'GET', '/Groups')).status, 200);
      assert.equal((await scim(second, 'GET', '/Groups')).status, 404);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });
});
