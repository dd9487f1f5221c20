import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as z from 'zod';
import {
  listResponseSchema,
  PatchOpSchema,
  RemoteGroupSchema,
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

/** Keys at every depth, in order: what JSON.stringify and deepEqual do not both check. */
function keyOrder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(keyOrder);
  if (value === null || typeof value !== 'object') return typeof value;
  return Object.entries(value).map(([key, inner]) => [key, keyOrder(inner)]);
}

/**
 * Parses `input` as a target's answer reaches the schema (JSON text, parsed) with the compiled parser and with the
 * runtime one (an async parse never takes the compiled path), and asserts the two results are the same.
 */
async function assertCompiledAsRuntime(schema: z.ZodType, input: unknown): Promise<void> {
  const json: unknown = JSON.parse(JSON.stringify(input));
  const compiled = schema.safeParse(json);
  const runtime = await schema.safeParseAsync(JSON.parse(JSON.stringify(input)));
  const shown = JSON.stringify(input);
  assert.equal(compiled.success, runtime.success, shown);
  if (compiled.success && runtime.success) {
    assert.deepStrictEqual(compiled.data, runtime.data, shown);
    assert.deepStrictEqual(keyOrder(compiled.data), keyOrder(runtime.data), shown);
  } else {
    assert.deepStrictEqual(compiled.error?.issues, runtime.error?.issues, shown);
  }
}

const fullUser = {
  schemas: [SCHEMA_USER, 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
  id: '2819c223-7f76-453a-919d-413861904646',
  externalId: 'e1',
  userName: 'bjensen@example.com',
  name: { formatted: 'Ms. Barbara J Jensen III', familyName: 'Jensen', givenName: 'Barbara', nickname: 'Babs' },
  displayName: 'Babs Jensen',
  active: true,
  emails: [{ value: 'bjensen@example.com', type: 'work', primary: true, extra: 1 }],
  phoneNumbers: [{ value: '555-555-8377', type: 'work' }],
  meta: { resourceType: 'User', created: '2010-01-23T04:56:22Z', location: 'https://x/Users/1', version: 'W/"a"' },
  'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { employeeNumber: '701984' },
};

describe('the compiled Remote schemas', () => {
  test('are compiled: zod accepts every part of them', () => {
    for (const schema of [RemoteUserSchema, RemoteGroupSchema]) z.compile(schema, { strict: true });
  });

  test('read a user as the runtime parser does: any key order, odd spellings, lenient values, and failures', async () => {
    const entries = Object.entries(fullUser);
    const inputs: unknown[] = [
      fullUser,
      Object.fromEntries([...entries].reverse()),
      Object.fromEntries([...entries.slice(5), ...entries.slice(0, 5)]),
      { id: 'u1', userName: 'ada' },
      { ID: 'u1', USERNAME: 'ada', Emails: [{ Value: 'a@x', primary: 'True' }], Active: 'FALSE' },
      { id: 'u1', userName: 'ada', username: 'other', Name: { givenName: 'A' } },
      { id: 42, userName: 'ada', active: 'true', emails: [{ value: 'a@x', primary: 'false' }] },
      { id: 0, userName: 'ada' },
      { id: 'u1', userName: 'ada', schemas: [] },
      { id: 'u1', userName: 'ada', schemas: [''] },
      { id: '', userName: 'ada' },
      { id: 'a\u0000b', userName: 'ada' },
      { id: '\ud800', userName: 'ada' },
      { userName: 'ada' },
      { id: 'u1' },
      { id: 'u1', userName: 'x'.repeat(1024) },
      { id: 'u1', userName: 'x'.repeat(1025) },
      { id: 'u1', userName: 'ada', active: 'yes' },
      { id: 'u1', userName: 'ada', active: null },
      { id: 'u1', userName: 'ada', name: 'Ada' },
      { id: 'u1', userName: 'ada', name: { givenName: 7 } },
      { id: 'u1', userName: 'ada', emails: [{ type: 'work' }] },
      { id: 'u1', userName: 'ada', emails: [{ value: 'v'.repeat(2049) }] },
      { id: 'u1', userName: 'ada', emails: { value: 'a@x' } },
      { id: 'u1', userName: 'ada', meta: { created: 5 } },
      { 7: 'seven', id: 'u1', userName: 'ada', zeta: { b: 1, a: [1, 'two', null] } },
      JSON.parse('{"__proto__": {"x": 1}, "id": "u1", "userName": "ada"}'),
      [],
      null,
      'user',
    ];
    for (const input of inputs) await assertCompiledAsRuntime(RemoteUserSchema, input);
  });

  test("read a group as the runtime parser does, its members' keys in any case", async () => {
    const inputs: unknown[] = [
      { id: 'g1', displayName: 'Admins', members: [{ value: 'u1', display: 'Ada', $ref: 'https://x/Users/u1' }] },
      {
        ID: 7,
        DisplayName: 'Admins',
        Members: [
          { Value: 'u1', TYPE: 'User' },
          { value: 'u2', extra: true },
        ],
      },
      { members: [{ display: 'Ada' }], displayName: 'Admins', id: 'g1', meta: { version: 'W/"1"' }, other: 1 },
      { id: 'g1', displayName: '' },
      { id: 'g1', displayName: 'Admins', members: [{ value: '' }] },
      { id: 'g1', displayName: 'Admins', members: null },
      { id: 'g1', displayName: 'Admins', schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'] },
    ];
    for (const input of inputs) await assertCompiledAsRuntime(RemoteGroupSchema, input);
  });
});
