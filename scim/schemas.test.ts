import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  listResponseSchema,
  PatchOpSchema,
  RemoteUserSchema,
  ResourceTypeSchema,
  SCHEMA_PATCH_OP,
  SCHEMA_USER,
  ScimErrorSchema,
  ScimUserSchema,
  ServiceProviderConfigSchema,
} from './schemas.ts';

describe('PatchOpSchema', () => {
  test('reads op names case-insensitively', () => {
    const parsed = PatchOpSchema.parse({
      schemas: [SCHEMA_PATCH_OP],
      Operations: [
        { op: 'Replace', path: 'active', value: false },
        { op: 'ADD', path: 'members', value: [{ value: 'u1' }] },
        { op: 'remove', path: 'members[value eq "u2"]' },
      ],
    });
    assert.deepEqual(
      parsed.Operations.map((operation) => operation.op),
      ['replace', 'add', 'remove'],
    );
  });

  test('rejects an unknown op and an empty operation list', () => {
    assert.equal(PatchOpSchema.safeParse({ schemas: [SCHEMA_PATCH_OP], Operations: [{ op: 'move' }] }).success, false);
    assert.equal(PatchOpSchema.safeParse({ schemas: [SCHEMA_PATCH_OP], Operations: [] }).success, false);
  });
});

describe('listResponseSchema', () => {
  test('validates every resource and defaults a missing Resources to empty', () => {
    const schema = listResponseSchema(ScimUserSchema);
    assert.deepEqual(schema.parse({ totalResults: 0 }).Resources, []);
    const page = schema.parse({ totalResults: 1, Resources: [{ schemas: [SCHEMA_USER], userName: 'a' }] });
    assert.equal(page.Resources[0]?.userName, 'a');
    assert.equal(schema.safeParse({ totalResults: 1, Resources: [{ schemas: [SCHEMA_USER] }] }).success, false);
  });
});

describe('ScimErrorSchema', () => {
  test('accepts status as a string or a number', () => {
    assert.equal(ScimErrorSchema.parse({ status: '409', scimType: 'uniqueness', detail: 'x' }).status, '409');
    assert.equal(ScimErrorSchema.parse({ status: 404, detail: 'gone' }).status, 404);
  });
});

describe('ServiceProviderConfigSchema', () => {
  test('reads a full configuration', () => {
    const spc = ServiceProviderConfigSchema.parse({
      patch: { supported: true },
      bulk: { supported: true, maxOperations: 1000, maxPayloadSize: 1048576 },
      filter: { supported: true, maxResults: 200 },
      etag: { supported: false },
      changePassword: { supported: false },
      sort: { supported: true },
    });
    assert.equal(spc.patch.supported, true);
    assert.deepEqual(spc.bulk, { supported: true, maxOperations: 1000, maxPayloadSize: 1048576 });
    assert.deepEqual(spc.filter, { supported: true, maxResults: 200 });
    assert.equal(spc.sort.supported, true);
  });

  test('treats missing or malformed feature objects as unsupported', () => {
    const spc = ServiceProviderConfigSchema.parse({ patch: null, filter: { supported: 'yes' } });
    assert.equal(spc.patch.supported, false);
    assert.equal(spc.filter.supported, false);
    assert.deepEqual(spc.bulk, { supported: false, maxOperations: 0, maxPayloadSize: 0 });
    assert.equal(spc.etag.supported, false);
    assert.equal(spc.changePassword.supported, false);
  });

  test('reads booleans and counts sent as strings', () => {
    const spc = ServiceProviderConfigSchema.parse({
      patch: { supported: 'true' },
      bulk: { supported: 'True', maxOperations: '50' },
    });
    assert.equal(spc.patch.supported, true);
    assert.equal(spc.bulk.supported, true);
    assert.equal(spc.bulk.maxOperations, 50);
  });
});

describe('ResourceTypeSchema', () => {
  test('requires name, endpoint and schema', () => {
    assert.equal(ResourceTypeSchema.safeParse({ name: 'Group', endpoint: '/Groups', schema: 'urn:x' }).success, true);
    assert.equal(ResourceTypeSchema.safeParse({ name: 'Group' }).success, false);
  });
});

describe('RemoteUserSchema', () => {
  test('requires an id, reads numeric ids as strings and defaults schemas', () => {
    assert.equal(RemoteUserSchema.safeParse({ userName: 'a' }).success, false);
    const user = RemoteUserSchema.parse({ id: 42, userName: 'a' });
    assert.equal(user.id, '42');
    assert.deepEqual(user.schemas, [SCHEMA_USER]);
  });

  test('refuses an id holding U+0000 or an unpaired surrogate, which could not be stored as it is', () => {
    for (const id of ['a\u0000b', 'a\ud800', '\udc00']) {
      const parsed = RemoteUserSchema.safeParse({ id, userName: 'a' });
      assert.equal(parsed.success, false, JSON.stringify(id));
      assert.deepEqual(parsed.error?.issues[0]?.path, ['id']);
    }
    assert.equal(RemoteUserSchema.parse({ id: 'a\ud83d\ude00', userName: 'a' }).id, 'a\u{1F600}', 'a pair is fine');
  });
});
