import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  FORBIDDEN_KEYS,
  MAX_MERGE_DEPTH,
  MergeError,
  deepMerge,
  isPlainObject,
  mergeAll,
  mergeKernel,
} from './merge.ts';

function refusal(fn: () => unknown): MergeError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof MergeError, `expected a MergeError, got ${String(error)}`);
    assert.equal(error.code, 'ERR_MAPPING');
    return error;
  }
  assert.fail('expected the merge to be refused');
}

test('objects merge key by key, recursively', () => {
  const merged = deepMerge(
    { name: { givenName: 'Ada' }, userName: 'ada' },
    { name: { familyName: 'Lovelace' }, active: true },
  );
  assert.deepEqual(merged, { name: { givenName: 'Ada', familyName: 'Lovelace' }, userName: 'ada', active: true });
});

test('arrays concatenate, target first', () => {
  const merged = deepMerge({ emails: [{ value: 'a@x' }] }, { emails: [{ value: 'b@x' }, { value: 'c@x' }] });
  assert.deepEqual(merged, { emails: [{ value: 'a@x' }, { value: 'b@x' }, { value: 'c@x' }] });
});

test('the last scalar wins, null included', () => {
  assert.deepEqual(deepMerge({ title: 'a', nick: 'n' }, { title: 'b', nick: null }), { title: 'b', nick: null });
});

test('the kernel tells whether a merge copied a null, at any depth, and forgets it once asked', () => {
  const kernel = mergeKernel(
    (path, message) => assert.fail(`${path}: ${message}`),
    () => true,
  );
  let merged = kernel.mergeInto(undefined, { title: 'a', tags: ['x'], name: { givenName: 'Ada' } }, '', 0);
  assert.equal(kernel.takeNulls(), false, 'no null, nothing to clean');
  merged = kernel.mergeInto(merged, { name: { givenName: null } }, '', 0);
  assert.equal(kernel.takeNulls(), true);
  assert.equal(kernel.takeNulls(), false, 'asking again starts the count again');
  kernel.copyData({ tags: [1, null] }, '', 0);
  assert.equal(kernel.takeNulls(), true, 'a null in an array counts too');
  assert.deepEqual(merged, { title: 'a', tags: ['x'], name: { givenName: null } });
});

test('a value of another kind replaces the target instead of merging', () => {
  assert.deepEqual(deepMerge({ x: [1] }, { x: { a: 1 } }), { x: { a: 1 } });
  assert.deepEqual(deepMerge({ x: { a: 1 } }, { x: [1] }), { x: [1] });
  assert.deepEqual(deepMerge({ x: 'text' }, { x: { a: 1 } }), { x: { a: 1 } });
  assert.deepEqual(deepMerge({ x: { a: 1 } }, { x: 'text' }), { x: 'text' });
  assert.deepEqual(deepMerge({ a: 1 }, 'scalar'), 'scalar');
});

test('undefined leaves the target as it is, at the top and inside objects', () => {
  assert.deepEqual(deepMerge({ a: 1 }, undefined), { a: 1 });
  assert.deepEqual(deepMerge({ a: 1, b: 2 }, { a: undefined, c: 3 }), { a: 1, b: 2, c: 3 });
  assert.deepEqual(deepMerge(undefined, { a: 1 }), { a: 1 });
});

test('neither input is modified and the result shares nothing with them', () => {
  const target = { name: { givenName: 'Ada' }, emails: [{ value: 'a@x' }] };
  const source = { name: { familyName: 'L' }, emails: [{ value: 'b@x' }], extra: { deep: [1, 2] } };
  const before = structuredClone({ target, source });
  const merged = deepMerge(target, source) as typeof target & typeof source;
  assert.deepEqual({ target, source }, before);
  assert.notEqual(merged.name, target.name);
  assert.notEqual(merged.emails, target.emails);
  assert.notEqual(merged.emails[1], source.emails[0]);
  assert.notEqual(merged.extra, source.extra);
  assert.notEqual(merged.extra.deep, source.extra.deep);
});

test('mergeAll applies values in order and skips undefined ones', () => {
  assert.deepEqual(mergeAll([{ a: 1, list: [1] }, undefined, { a: 2, list: [2] }, { b: 3 }]), {
    a: 2,
    b: 3,
    list: [1, 2],
  });
  assert.equal(mergeAll([]), undefined);
  assert.equal(mergeAll([undefined, undefined]), undefined);
});

test('prototype-reaching keys are refused at any depth, naming the path', () => {
  for (const key of FORBIDDEN_KEYS) {
    const top = refusal(() => deepMerge({}, JSON.parse(`{"${key}": {"polluted": true}}`)));
    assert.equal(top.path, key);
    assert.match(top.message, new RegExp(`"${key}" is not allowed`));
    const nested = refusal(() => deepMerge({ name: {} }, JSON.parse(`{"name": {"${key}": {"polluted": true}}}`)));
    assert.equal(nested.path, `name.${key}`);
    const inArray = refusal(() => deepMerge({}, JSON.parse(`{"emails": [{"value": "a"}, {"${key}": 1}]}`)));
    assert.equal(inArray.path, `emails.1.${key}`);
    const inTarget = refusal(() => deepMerge(JSON.parse(`{"${key}": 1}`), {}));
    assert.equal(inTarget.path, key);
  }
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
});

test('array index paths count from the start of the concatenated array', () => {
  const error = refusal(() =>
    deepMerge({ emails: [{ value: 'a' }, { value: 'b' }] }, JSON.parse('{"emails": [{"__proto__": 1}]}')),
  );
  assert.equal(error.path, 'emails.2.__proto__');
});

test('only JSON-like data is accepted', () => {
  const cases: Array<[unknown, string, RegExp]> = [
    [{ when: new Date(0) }, 'when', /is a Date \(use \.toISOString\(\)\)/],
    [{ map: new Map() }, 'map', /is a Map/],
    [{ fn: () => 1 }, 'fn', /is a function/],
    [{ sym: Symbol('s') }, 'sym', /is a Symbol/],
    [{ big: 1n }, 'big', /is a BigInt/],
    [{ n: Number.NaN }, 'n', /NaN, not a finite number/],
    [{ n: Number.POSITIVE_INFINITY }, 'n', /Infinity, not a finite number/],
    [{ list: [1, undefined] }, 'list.1', /is undefined/],
    [{ p: Promise.resolve(1) }, 'p', /Promise or thenable/],
    [{ t: { then: () => undefined } }, 't', /Promise or thenable/],
    [{ c: new (class Custom {})() }, 'c', /custom prototype/],
  ];
  for (const [source, path, message] of cases) {
    const error = refusal(() => deepMerge({}, source));
    assert.equal(error.path, path);
    assert.match(error.message, message);
  }
});

test('objects with a null prototype count as plain', () => {
  const source = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
  assert.deepEqual(deepMerge({ b: 2 }, source), { b: 2, a: 1 });
  assert.equal(isPlainObject(source), true);
  assert.equal(isPlainObject([]), false);
  assert.equal(isPlainObject(new Date()), false);
});

test(`nesting deeper than ${MAX_MERGE_DEPTH} levels is refused`, () => {
  let deep: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < MAX_MERGE_DEPTH + 1; i++) deep = { d: deep };
  const error = refusal(() => deepMerge({}, deep));
  assert.match(error.message, /nested more than 32 levels/);
  let shallowEnough: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < MAX_MERGE_DEPTH - 2; i++) shallowEnough = { d: shallowEnough };
  assert.deepEqual(deepMerge({}, shallowEnough), shallowEnough);
});
