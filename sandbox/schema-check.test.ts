import assert from 'node:assert/strict';
import { test } from 'node:test';
import type * as z from 'zod';
import { SCHEMA_ENTERPRISE_USER, SCHEMA_USER, ScimGroupSchema, ScimUserSchema } from '../scim/index.ts';
import { defaultGroupPayload, defaultUserPayload } from './builtin.ts';
import { variedGroups, variedUsers } from '../test/fixtures/directory.ts';
import { compileSchemaCheck, compileShapeCheck, type ShapeCheck } from './schema-check.ts';
import { compileShape, shapeEncoder, type ShapeBuilder } from './shapes.ts';
import { EnterpriseUserSchema } from './validate.ts';

/** Every value the compiled check accepts, zod accepts too, and zod's output equals the value. */
function assertAgrees(schema: z.ZodType, values: readonly unknown[]): { fast: number; unsure: number } {
  const check = compileSchemaCheck(schema);
  assert.ok(check, 'the schema compiles');
  let fast = 0;
  for (const value of values) {
    if (!check(value)) continue;
    fast++;
    const parsed = schema.safeParse(value);
    assert.ok(parsed.success, `zod rejects what the check accepted: ${JSON.stringify(value)}`);
    assert.deepStrictEqual(value, parsed.data);
  }
  return { fast, unsure: values.length - fast };
}

/** `base` with the value at `path` replaced (or removed when `value` is `REMOVE`), copied; `base` when no such path. */
const REMOVE = Symbol('remove');
function withValue(base: unknown, path: ReadonlyArray<string | number>, value: unknown): unknown {
  const copy = structuredClone(base) as Record<string | number, unknown>;
  let holder = copy;
  for (const segment of path.slice(0, -1)) {
    const next = holder[segment];
    if (typeof next !== 'object' || next === null) return base;
    holder = next as Record<string | number, unknown>;
  }
  const last = path.at(-1) as string | number;
  if (value === REMOVE) delete holder[last];
  else holder[last] = value;
  return copy;
}

/** Values for a string limited to `max`: at, under and over the limit, in UTF-16 units and in code points. */
function stringsAround(max: number): unknown[] {
  const pair = '😀';
  return [
    '',
    'x',
    pair,
    '\ud800',
    'x'.repeat(max),
    'x'.repeat(max + 1),
    pair.repeat(Math.floor(max / 2)),
    pair.repeat(Math.floor(max / 2) + 1),
    pair.repeat(max),
    `${pair}x`,
    7,
    null,
    undefined,
    true,
    ['x'],
    { value: 'x' },
  ];
}

const wrongTypes: unknown[] = [7, null, undefined, 'text', true, [], [1], {}, { value: 1 }, Number.NaN];

test('the compiled check accepts every default user payload of the fixtures, exactly as zod does', () => {
  const payloads = variedUsers(400).map(defaultUserPayload);
  const { fast, unsure } = assertAgrees(ScimUserSchema, payloads);
  assert.equal(fast, payloads.length);
  assert.equal(unsure, 0);
});

test('the compiled check accepts every default group payload of the fixtures, exactly as zod does', () => {
  const payloads = variedGroups(300).map(defaultGroupPayload);
  const { fast, unsure } = assertAgrees(ScimGroupSchema, payloads);
  assert.equal(fast, payloads.length);
  assert.equal(unsure, 0);
});

/** The fixtures' default user payloads, each also with one field at, under and over its limits or of a wrong type. */
function editedUserPayloads(): unknown[] {
  const bases = variedUsers(40).map(defaultUserPayload);
  const values: unknown[] = [];
  const fields: Array<[Array<string | number>, number]> = [
    [['userName'], 1024],
    [['externalId'], 1024],
    [['displayName'], 1024],
    [['locale'], 64],
    [['name', 'givenName'], 256],
    [['name', 'formatted'], 1024],
    [['emails', 0, 'value'], 2048],
    [['emails', 0, 'type'], 64],
    [['schemas', 0], Infinity],
    [['nickName'], 1024],
  ];
  for (const base of bases) {
    values.push(base);
    for (const [path, max] of fields) {
      for (const value of stringsAround(Number.isFinite(max) ? max : 8)) values.push(withValue(base, path, value));
      values.push(withValue(base, path, REMOVE));
    }
    for (const key of ['active', 'name', 'emails', 'phoneNumbers', 'schemas', 'meta', 'emails.0.primary']) {
      const path = key.split('.').map((part) => (/^\d+$/.test(part) ? Number(part) : part));
      for (const value of wrongTypes) values.push(withValue(base, path, value));
    }
    values.push(withValue(base, ['schemas'], []));
    values.push(withValue(base, ['emails'], []));
    values.push(withValue(base, ['custom'], { nested: [1, { deep: null }] }));
    values.push(withValue(base, ['name', 'extra'], 'kept'));
    values.push(withValue(base, ['emails', 0, 'extra'], ['kept']));
    values.push(withValue(base, [SCHEMA_ENTERPRISE_USER], { department: 'x' }));
    values.push(JSON.parse(`{"__proto__":{"x":1},${JSON.stringify(base).slice(1)}`));
  }
  values.push(
    ...wrongTypes,
    Object.create(null),
    new Date(0),
    Object.assign(Object.create({ inherited: 1 }), bases[0]),
  );
  return values;
}

test('on edited user payloads the compiled check never accepts what zod rejects, nor outputs anything else', () => {
  const values = editedUserPayloads();
  const { fast, unsure } = assertAgrees(ScimUserSchema, values);
  assert.ok(fast > 0 && unsure > 0, `both paths were exercised (${fast} fast, ${unsure} left to zod)`);
});

test("a shape's check says of each entry what the compiled check says of the object built from it", () => {
  const encoder = shapeEncoder(256, 16384, 1 << 20);
  const known: Array<{ build: ShapeBuilder | null; check: ShapeCheck | null }> = [];
  const fast = compileSchemaCheck(ScimUserSchema);
  assert.ok(fast);
  const counts = { vouched: 0, refused: 0, unplanned: 0 };
  const values = [...editedUserPayloads(), ...variedGroups(20).map(defaultGroupPayload)];
  for (const value of values) {
    if (typeof value !== 'object' || value === null) continue;
    const entry = encoder.encode(value);
    if (entry === null) continue;
    for (const descriptor of encoder.shapesFrom(known.length)) {
      known.push({ build: compileShape(descriptor), check: compileShapeCheck(ScimUserSchema, JSON.parse(descriptor)) });
    }
    const shape = known[entry[0] as number];
    const built = shape?.build?.(entry);
    if (built === undefined || !shape?.check) {
      counts.unplanned++;
      continue;
    }
    const vouched = shape.check(entry);
    assert.equal(vouched, fast(built), JSON.stringify(built));
    counts[vouched ? 'vouched' : 'refused']++;
  }
  assert.ok(counts.vouched > 0 && counts.refused > 0 && counts.unplanned > 0, JSON.stringify(counts));
});

test('on edited group payloads and enterprise extensions the compiled check agrees with zod', () => {
  const groups: unknown[] = [];
  for (const base of variedGroups(30).map(defaultGroupPayload)) {
    for (const value of stringsAround(1024)) groups.push(withValue(base, ['displayName'], value));
    for (const value of wrongTypes) groups.push(withValue(base, ['members'], value));
    groups.push(withValue(base, ['members'], [{ value: 'id-1' }, { value: '', display: 'x' }]));
    groups.push(withValue(base, ['members'], [{ value: 'id-1', type: 'User', $ref: 'u/1', extra: 1 }]));
    groups.push(withValue(base, ['displayName'], REMOVE));
  }
  const groupCounts = assertAgrees(ScimGroupSchema, groups);
  assert.ok(groupCounts.fast > 0 && groupCounts.unsure > 0);

  const extensions: unknown[] = [];
  const base = { employeeNumber: '42', department: 'R&D', manager: { value: 'm-1', displayName: 'Boss' } };
  for (const key of ['employeeNumber', 'costCenter', 'organization', 'division', 'department']) {
    for (const value of stringsAround(key === 'employeeNumber' || key === 'costCenter' ? 256 : 1024))
      extensions.push(withValue(base, [key], value));
  }
  for (const value of [...wrongTypes, {}, { value: 'x', $ref: 'r', other: [1] }, { $ref: 'x'.repeat(2049) }])
    extensions.push(withValue(base, ['manager'], value));
  const extensionCounts = assertAgrees(EnterpriseUserSchema, extensions);
  assert.ok(extensionCounts.fast > 0 && extensionCounts.unsure > 0);
});

test('a schema with anything the compiler does not know compiles to null, so zod alone checks it', async () => {
  const z = await import('zod');
  assert.equal(compileSchemaCheck(z.string().email()), null);
  assert.equal(compileSchemaCheck(z.object({ a: z.string() })), null);
  assert.equal(compileSchemaCheck(z.looseObject({ a: z.string().default('x') })), null);
  assert.equal(compileSchemaCheck(z.looseObject({ a: z.number() })), null);
  assert.equal(compileSchemaCheck(z.looseObject({ a: z.string() }).refine(() => true)), null);
  assert.equal(compileSchemaCheck(z.coerce.string()), null);
  assert.notEqual(compileSchemaCheck(z.looseObject({ schemas: z.array(z.string()).min(1) })), null);
  assert.equal(compileSchemaCheck(ScimUserSchema)?.({ schemas: [SCHEMA_USER], userName: '\ud800' }), false);
});
