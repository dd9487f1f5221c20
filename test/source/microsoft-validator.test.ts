/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-argument -- SCIM bodies are untyped JSON: the assertions are what check their shape */
/**
 * The test list of Microsoft's SCIM validator (learn.microsoft.com/entra/identity/app-provisioning/scim-validator-tutorial),
 * one test each, against a running source. Request bodies are shaped as Entra sends them, from "SCIM protocol
 * requests and responses" in learn.microsoft.com/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
 * (capitalised ops, `emails[type eq "work"].value` paths, groups created without members, members added and removed
 * with value lists, PATCH of groups answered 204).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startSourceHarness, type SourceHarness, type TestSource } from './harness.ts';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

const patch = (...Operations: Array<Record<string, unknown>>) => ({ schemas: [PATCH_OP], Operations });
const q = (filter: string) => encodeURIComponent(filter);

function entraUser(userName = `Test_User_${randomUUID()}`) {
  return {
    schemas: [USER_SCHEMA, ENTERPRISE],
    externalId: randomUUID(),
    userName,
    active: true,
    emails: [{ primary: true, type: 'work', value: `${userName}@testuser.com` }],
    meta: { resourceType: 'User' },
    name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
    roles: [],
  };
}

describe("Microsoft's SCIM validator test list, run against a source", () => {
  let harness: SourceHarness;
  let entra: TestSource;
  let user: Record<string, any>;

  before(async () => {
    harness = await startSourceHarness();
    entra = await harness.addSource({ slug: 'entra' });
  });
  after(() => harness?.close());
  beforeEach(async () => {
    const created = await entra.scim('POST', '/Users', entraUser());
    assert.equal(created.status, 201);
    user = created.body;
  });

  const createGroup = async (displayName = `Group_${randomUUID()}`) => {
    const created = await entra.scim('POST', '/Groups', {
      schemas: [GROUP_SCHEMA, 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group'],
      externalId: randomUUID(),
      displayName,
      meta: { resourceType: 'Group' },
    });
    assert.equal(created.status, 201);
    return created.body;
  };

  describe('users', () => {
    test('Create a new user: 201 with an id assigned by scimflow and the externalId kept', async () => {
      const body = entraUser();
      const created = await entra.scim('POST', '/Users', body);
      assert.equal(created.status, 201);
      assert.match(created.body['id'], /^[0-9a-f-]{36}$/);
      assert.equal(created.body['externalId'], body.externalId);
      assert.equal(created.body['userName'], body.userName);
      assert.deepEqual(created.body['emails'], body.emails);
      assert.equal(created.body['meta'].resourceType, 'User');
      assert.equal(created.headers.get('etag'), created.body['meta'].version);
    });

    test('Create a duplicate user: 409 uniqueness', async () => {
      const duplicate = await entra.scim('POST', '/Users', entraUser(user['userName']));
      assert.equal(duplicate.status, 409);
      assert.equal(duplicate.body['scimType'], 'uniqueness');
    });

    test('Filter for an existing user: exactly that user', async () => {
      const found = await entra.scim('GET', `/Users?filter=${q(`userName eq "${user['userName']}"`)}`);
      assert.equal(found.body['totalResults'], 1);
      assert.equal(found.body['Resources'][0].id, user['id']);
    });

    test('Filter for a non-existing user: 200 with no resources', async () => {
      const found = await entra.scim('GET', `/Users?filter=${q(`userName eq "${randomUUID()}"`)}`);
      assert.equal(found.status, 200);
      assert.equal(found.body['totalResults'], 0);
      assert.deepEqual(found.body['Resources'], []);
    });

    test('Filter for an existing user with a different case: still that user', async () => {
      const found = await entra.scim('GET', `/Users?filter=${q(`userName eq "${user['userName'].toLowerCase()}"`)}`);
      assert.equal(found.body['totalResults'], 1);
      assert.equal(found.body['Resources'][0].id, user['id']);
    });

    test('Patch user - replace attributes: the work email and family name change, the rest stays', async () => {
      const patched = await entra.scim(
        'PATCH',
        `/Users/${user['id']}`,
        patch(
          { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@microsoft.com' },
          { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
        ),
      );
      assert.equal(patched.status, 200);
      const read = await entra.scim('GET', `/Users/${user['id']}`);
      assert.deepEqual(read.body['emails'], [{ primary: true, type: 'work', value: 'updatedEmail@microsoft.com' }]);
      assert.equal(read.body['name'].familyName, 'updatedFamilyName');
      assert.equal(read.body['name'].givenName, 'givenName');
      assert.equal(read.body['userName'], user['userName']);
    });

    test('Patch user - replace userName', async () => {
      const next = `${randomUUID()}@testuser.com`;
      const patched = await entra.scim(
        'PATCH',
        `/Users/${user['id']}`,
        patch({ op: 'Replace', path: 'userName', value: next }),
      );
      assert.equal(patched.status, 200);
      assert.equal(patched.body['userName'], next);
      const found = await entra.scim('GET', `/Users?filter=${q(`userName eq "${next}"`)}`);
      assert.equal(found.body['Resources'][0].id, user['id']);
    });

    test('Patch user - disable (active false), also as the string "False" of older Entra tenants', async () => {
      const disabled = await entra.scim(
        'PATCH',
        `/Users/${user['id']}`,
        patch({ op: 'Replace', path: 'active', value: false }),
      );
      assert.equal(disabled.body['active'], false);
      await entra.scim('PATCH', `/Users/${user['id']}`, patch({ op: 'Replace', path: 'active', value: 'True' }));
      const again = await entra.scim(
        'PATCH',
        `/Users/${user['id']}`,
        patch({ op: 'Replace', value: { active: 'False' } }),
      );
      assert.equal(again.status, 200);
      assert.equal((await entra.scim('GET', `/Users/${user['id']}`)).body['active'], false);
    });

    test('Patch user - add, replace and remove the manager', async () => {
      const manager = (await entra.scim('POST', '/Users', entraUser())).body;
      const other = (await entra.scim('POST', '/Users', entraUser())).body;
      const path = `${ENTERPRISE}:manager`;
      await entra.scim('PATCH', `/Users/${user['id']}`, patch({ op: 'Add', path, value: manager['id'] }));
      assert.deepEqual((await entra.scim('GET', `/Users/${user['id']}`)).body[ENTERPRISE], {
        manager: { value: manager['id'] },
      });
      await entra.scim('PATCH', `/Users/${user['id']}`, patch({ op: 'Replace', path, value: { value: other['id'] } }));
      assert.equal((await entra.scim('GET', `/Users/${user['id']}`)).body[ENTERPRISE].manager.value, other['id']);
      const removed = await entra.scim('PATCH', `/Users/${user['id']}`, patch({ op: 'Remove', path }));
      assert.equal(removed.status, 200);
      assert.equal((await entra.scim('GET', `/Users/${user['id']}`)).body[ENTERPRISE], undefined);
    });

    test('Patch user - several operations in one request all apply', async () => {
      const patched = await entra.scim(
        'PATCH',
        `/Users/${user['id']}`,
        patch(
          { op: 'Replace', path: 'displayName', value: 'New Display' },
          { op: 'Add', path: `${ENTERPRISE}:department`, value: 'Research' },
          { op: 'Add', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555 0100' },
          { op: 'Replace', path: 'name.givenName', value: 'NewGiven' },
        ),
      );
      assert.equal(patched.status, 200);
      const read = (await entra.scim('GET', `/Users/${user['id']}`)).body;
      assert.equal(read['displayName'], 'New Display');
      assert.equal(read[ENTERPRISE].department, 'Research');
      assert.deepEqual(read['phoneNumbers'], [{ type: 'mobile', value: '+1 555 0100' }]);
      assert.equal(read['name'].givenName, 'NewGiven');
    });

    test('Delete a user: 204, then 404 for it', async () => {
      assert.equal((await entra.scim('DELETE', `/Users/${user['id']}`)).status, 204);
      assert.equal((await entra.scim('GET', `/Users/${user['id']}`)).status, 404);
    });

    test('Delete a non-existing user: 404 with a SCIM error body', async () => {
      const missing = await entra.scim('DELETE', `/Users/${randomUUID()}`);
      assert.equal(missing.status, 404);
      assert.equal(missing.body['status'], '404');
    });

    test('Delete the same user twice: 204 then 404', async () => {
      assert.equal((await entra.scim('DELETE', `/Users/${user['id']}`)).status, 204);
      assert.equal((await entra.scim('DELETE', `/Users/${user['id']}`)).status, 404);
    });
  });

  describe('groups', () => {
    test('Create a new group: 201 with no members', async () => {
      const group = await createGroup('Validator Group');
      assert.equal(group['displayName'], 'Validator Group');
      assert.deepEqual(group['members'], []);
    });

    test('Create a duplicate group: 409 uniqueness (displayName compared case-insensitively)', async () => {
      const group = await createGroup();
      const duplicate = await entra.scim('POST', '/Groups', {
        schemas: [GROUP_SCHEMA],
        displayName: group['displayName'].toUpperCase(),
      });
      assert.equal(duplicate.status, 409);
      assert.equal(duplicate.body['scimType'], 'uniqueness');
    });

    test('Get a group by id excluding members, and filter groups by displayName excluding members', async () => {
      const group = await createGroup();
      await entra.scim(
        'PATCH',
        `/Groups/${group['id']}`,
        patch({ op: 'Add', path: 'members', value: [{ value: user['id'] }] }),
      );
      const read = await entra.scim('GET', `/Groups/${group['id']}?excludedAttributes=members`);
      assert.equal(read.status, 200);
      assert.equal(read.body['displayName'], group['displayName']);
      assert.equal(read.body['members'], undefined);
      const found = await entra.scim(
        'GET',
        `/Groups?excludedAttributes=members&filter=${q(`displayName eq "${group['displayName']}"`)}`,
      );
      assert.equal(found.body['totalResults'], 1);
      assert.equal(found.body['Resources'][0].id, group['id']);
      assert.equal(found.body['Resources'][0].members, undefined);
    });

    test('Patch group - replace displayName: 204, and the new name is read back', async () => {
      const group = await createGroup();
      const renamed = await entra.scim(
        'PATCH',
        `/Groups/${group['id']}`,
        patch({ op: 'Replace', path: 'displayName', value: `${group['displayName']}updatedDisplayName` }),
      );
      assert.equal(renamed.status, 204);
      assert.equal(
        (await entra.scim('GET', `/Groups/${group['id']}`)).body['displayName'],
        `${group['displayName']}updatedDisplayName`,
      );
    });

    test('Patch group - add a member and remove it again (value lists, as Entra sends them)', async () => {
      const group = await createGroup();
      const added = await entra.scim(
        'PATCH',
        `/Groups/${group['id']}`,
        patch({ op: 'Add', path: 'members', value: [{ $ref: null, value: user['id'] }] }),
      );
      assert.equal(added.status, 204);
      const read = await entra.scim('GET', `/Groups/${group['id']}`);
      const withMember = read.body;
      assert.deepEqual(
        withMember['members'].map((m: { value: string }) => m.value),
        [user['id']],
      );
      // The 204 carries the ETag of the group as the change left it.
      assert.equal(added.headers.get('etag'), read.headers.get('etag'));
      assert.equal(added.headers.get('etag'), withMember['meta']['version']);
      const membersFilter = q(`members[value eq "${user['id']}"]`);
      assert.equal((await entra.scim('GET', `/Groups?filter=${membersFilter}`)).body['totalResults'], 1);
      const removed = await entra.scim(
        'PATCH',
        `/Groups/${group['id']}`,
        patch({ op: 'Remove', path: 'members', value: [{ $ref: null, value: user['id'] }] }),
      );
      assert.equal(removed.status, 204);
      assert.notEqual(removed.headers.get('etag'), added.headers.get('etag'));
      const after = await entra.scim('GET', `/Groups/${group['id']}`);
      assert.deepEqual(after.body['members'], []);
      assert.equal(removed.headers.get('etag'), after.headers.get('etag'));
    });

    test('Patch group - several operations in one request all apply', async () => {
      const group = await createGroup();
      const second = (await entra.scim('POST', '/Users', entraUser())).body;
      const patched = await entra.scim(
        'PATCH',
        `/Groups/${group['id']}`,
        patch(
          { op: 'Add', path: 'members', value: [{ value: user['id'] }, { value: second['id'] }] },
          { op: 'Remove', path: `members[value eq "${user['id']}"]` },
          { op: 'Replace', path: 'displayName', value: `${group['displayName']}-2` },
        ),
      );
      assert.equal(patched.status, 204);
      const read = (await entra.scim('GET', `/Groups/${group['id']}`)).body;
      assert.equal(read['displayName'], `${group['displayName']}-2`);
      assert.deepEqual(
        read['members'].map((m: { value: string }) => m.value),
        [second['id']],
      );
    });

    test('Delete a group: 204, then 404; deleting it again is 404', async () => {
      const group = await createGroup();
      assert.equal((await entra.scim('DELETE', `/Groups/${group['id']}`)).status, 204);
      assert.equal((await entra.scim('GET', `/Groups/${group['id']}`)).status, 404);
      assert.equal((await entra.scim('DELETE', `/Groups/${group['id']}`)).status, 404);
    });
  });
});
