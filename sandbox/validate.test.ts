import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SCHEMA_GROUP, SCHEMA_USER } from '../scim/index.ts';
import { blameMapping, checkMappedPayload } from './validate.ts';

test('the mapping blamed for an array element is the one whose array held it after concatenation', () => {
  const contributions = [
    { mapping: 'a', value: { emails: [{ value: 'a1' }, { value: 'a2' }] } },
    { mapping: 'b', value: null },
    { mapping: 'c', value: { emails: [{ value: 7 }] } },
  ];
  assert.equal(blameMapping(['emails', 0, 'value'], contributions), 'a');
  assert.equal(blameMapping(['emails', 1, 'value'], contributions), 'a');
  assert.equal(blameMapping(['emails', 2, 'value'], contributions), 'c');
});

test('a later value of another kind replaces earlier ones, so only it is blamed', () => {
  const contributions = [
    { mapping: 'a', value: { name: { givenName: 1 } } },
    { mapping: 'b', value: { name: 'flat' } },
  ];
  assert.equal(blameMapping(['name'], contributions), 'b');
  assert.equal(blameMapping(['name', 'givenName'], contributions), 'b');
});

test('the last mapping to set a scalar is blamed, and nobody for an attribute nobody sent', () => {
  const contributions = [
    { mapping: 'a', value: { active: true, name: { givenName: 'x' } } },
    { mapping: 'b', value: { active: 'yes' } },
  ];
  assert.equal(blameMapping(['active'], contributions), 'b');
  assert.equal(blameMapping(['name', 'familyName'], contributions), 'a');
  assert.equal(blameMapping(['userName'], contributions), null);
});

test('a group needs no members, and a user needs userName and the core schema', () => {
  assert.deepEqual(checkMappedPayload('group', { schemas: [SCHEMA_GROUP], displayName: 'Admins' }), {
    ok: true,
    payload: { schemas: [SCHEMA_GROUP], displayName: 'Admins' },
  });
  const missing = checkMappedPayload('user', { schemas: [SCHEMA_USER] });
  assert.ok(!missing.ok);
  assert.deepEqual(missing.path, ['userName']);
  const wrongCore = checkMappedPayload('group', { schemas: [SCHEMA_USER], displayName: 'x' });
  assert.ok(!wrongCore.ok);
  assert.deepEqual(wrongCore.path, ['schemas']);
  const nothing = checkMappedPayload('user', null);
  assert.ok(!nothing.ok);
  assert.deepEqual(nothing.path, []);
});
