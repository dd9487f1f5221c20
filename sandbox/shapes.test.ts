import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultUserPayload } from './builtin.ts';
import { compileShape, shapeEncoder, type ShapeBuilder, type ShapeEncoder } from './shapes.ts';
import { variedUsers } from '../test/fixtures/directory.ts';

/** Encodes each value and rebuilds it from what crossed, as the host does: the shapes are read as they come. */
function roundTrip(values: readonly object[], encoder: ShapeEncoder = shapeEncoder(256, 16384, 4096)): unknown[] {
  const builders: Array<ShapeBuilder | null> = [];
  return values.map((value) => {
    const entry = encoder.encode(value);
    assert.ok(entry, `${JSON.stringify(value)} is encoded`);
    for (const descriptor of encoder.shapesFrom(builders.length)) builders.push(compileShape(descriptor));
    // What crosses is a copy; the builder may normalise it in place.
    return builders[entry[0] as number]?.(structuredClone(entry));
  });
}

test('every default user payload is rebuilt exactly as its JSON would be parsed, from 8 shapes', () => {
  // What the default mappings merge to (defaults.test.ts holds the two equal).
  const payloads = variedUsers(500).map((user) => defaultUserPayload(user));
  const encoder = shapeEncoder(256, 16384, 4096);
  const rebuilt = roundTrip(payloads, encoder);
  assert.deepEqual(rebuilt, JSON.parse(JSON.stringify(payloads)));
  assert.equal(
    rebuilt.map((value) => JSON.stringify(value)).join('\n'),
    payloads.map((value) => JSON.stringify(value)).join('\n'),
  );
  const shapes = encoder.shapesFrom(0).length;
  assert.ok(shapes > 1 && shapes <= 8, `${shapes} shapes`);
});

test('keys keep the order JSON gives them, nesting, empty containers, nulls in arrays and -0 cross as JSON would', () => {
  const values = [
    { b: 1, a: [1, 'two', null, true, { c: [] }], 2: 'x', 1: { d: {} }, '': -0, 'é\u2028"\\': [[], [[0.5]]] },
    { nested: { deeper: { deepest: ['\ud800', 'lone surrogate'] } } },
  ];
  const rebuilt = roundTrip(values);
  assert.deepEqual(rebuilt, JSON.parse(JSON.stringify(values)));
  assert.equal(JSON.stringify(rebuilt), JSON.stringify(values));
  assert.ok(Object.is((rebuilt[0] as Record<string, unknown>)[''], 0), '-0 becomes 0, as in JSON');
});

test('objects of one shape share its number; a different key, array length or nesting is another shape', () => {
  const encoder = shapeEncoder(256, 16384, 4096);
  const number = (value: object): unknown => encoder.encode(value)?.[0];
  assert.equal(number({ a: 'x', b: [1] }), 0);
  assert.equal(number({ a: 'y', b: [2] }), 0);
  assert.equal(number({ a: 1, b: [true] }), 0, 'leaves of another type are the same shape');
  assert.equal(number({ b: [1], a: 'x' }), 1, 'key order is part of the shape');
  assert.equal(number({ a: 'x', b: [1, 2] }), 2);
  assert.equal(number({ a: 'x', b: [[1]] }), 3);
  assert.equal(number({ a: 'x', b: [{}] }), 4);
  assert.deepEqual(encoder.encode({ a: 'y', b: [7] }), [0, 'y', 7]);
  assert.equal(encoder.shapesFrom(0).length, 5);
  assert.deepEqual(
    encoder.shapesFrom(3).map((d) => JSON.parse(d) as unknown),
    [
      {
        o: [
          ['a', 0],
          ['b', [[0]]],
        ],
      },
      {
        o: [
          ['a', 0],
          ['b', [{ o: [] }]],
        ],
      },
    ],
  );
});

test('past its shape, node or descriptor limit, and for values JSON would change, the encoder answers null: the object goes as JSON', () => {
  const few = shapeEncoder(2, 16384, 4096);
  assert.notEqual(few.encode({ a: 1 }), null);
  assert.notEqual(few.encode({ b: 1 }), null);
  assert.equal(few.encode({ c: 1 }), null, 'a third shape');
  assert.deepEqual(few.encode({ a: 2 }), [0, 2], 'known shapes still encode');
  const small = shapeEncoder(256, 6, 4096);
  assert.equal(small.encode({ a: 1, b: 2, c: 3, d: 4 }), null, 'more nodes than allowed');
  const short = shapeEncoder(256, 16384, 20);
  assert.equal(short.encode({ ['k'.repeat(20)]: 1 }), null, 'a descriptor longer than allowed');
  assert.equal(short.encode({ ['k'.repeat(20)]: 2 }), null, 'and again, for each object of that shape');
  assert.deepEqual(short.encode({ k: 1 }), [0, 1]);
  assert.deepEqual(short.shapesFrom(0), ['{"o":[["k",0]]}']);
  const encoder = shapeEncoder(256, 16384, 4096);
  for (const value of [
    { a: undefined },
    { a: NaN },
    { a: Infinity },
    { a: 1n },
    { a: () => 1 },
    [1],
    { a: [1, undefined, 3] },
  ]) {
    assert.equal(encoder.encode(value), null, String(Object.values(value)[0]));
  }
});

test('the host refuses descriptors no encoder writes, and entries that do not fit their shape', () => {
  for (const descriptor of [
    'not json',
    '0',
    '[0]',
    '{"o":[["__proto__",0]]}',
    '{"o":[["constructor",0]]}',
    '{"o":[["a",0],["a",0]]}',
    '{"o":[["a",1]]}',
    '{"o":[[1,0]]}',
    '{"x":[]}',
    `${'{"o":[["a",'.repeat(40)}0${']]}'.repeat(40)}`,
  ]) {
    assert.equal(compileShape(descriptor), null, descriptor);
  }
  const build = compileShape('{"o":[["a",0],["b",[0,0]]]}');
  assert.ok(build);
  assert.deepEqual(build([0, 'x', 1, null]), { a: 'x', b: [1, null] });
  const misfits = [
    [0, 'x', 1],
    [0, 'x', 1, null, 'extra'],
    [0, 'x', { object: true }, null],
    [0, 'x', NaN, null],
    [0, 'x', 1n, null],
    [0, undefined, 1, null],
  ];
  misfits.forEach((entry, index) => assert.equal(build(entry), undefined, `misfit ${index}`));
});
