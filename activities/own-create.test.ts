import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOwnCreate } from './own-create.ts';

const payload = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  externalId: 'e1',
  userName: 'ada',
  active: true,
};
const remote = { ...payload, id: 'r1', meta: { resourceType: 'User' } };

describe('isOwnCreate', () => {
  test('a remote object holding the externalId and every attribute of a create this attempt sent is that create', () => {
    assert.equal(isOwnCreate(remote, payload, true, undefined), true);
  });

  test("an earlier attempt's create of the same payload (a link with no remote id) counts as well", () => {
    const earlier = { userName: 'ada', active: true, externalId: 'e1', schemas: payload.schemas };
    assert.equal(isOwnCreate(remote, payload, false, { remoteId: null, lastPayload: earlier }), true);
  });

  test('with no create sent, by this attempt or an earlier one, the object is an adoption', () => {
    assert.equal(isOwnCreate(remote, payload, false, undefined), false);
    assert.equal(isOwnCreate(remote, payload, false, { remoteId: 'r1', lastPayload: payload }), false);
  });

  test('an earlier create of other content may be what the target holds', () => {
    const earlier = { ...payload, userName: 'ada.old' };
    assert.equal(isOwnCreate(remote, payload, true, { remoteId: null, lastPayload: earlier }), false);
  });

  test('another externalId, an attribute reshaped, or one not returned (a password) is not taken on trust', () => {
    assert.equal(isOwnCreate({ ...remote, externalId: 'e2' }, payload, true, undefined), false);
    assert.equal(isOwnCreate({ ...remote, userName: 'ADA' }, payload, true, undefined), false);
    assert.equal(isOwnCreate(remote, { ...payload, password: 'secret' }, true, undefined), false);
    const { externalId: _, ...withoutExternalId } = payload;
    assert.equal(isOwnCreate(remote, withoutExternalId, true, undefined), false);
  });
});
