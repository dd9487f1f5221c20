import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serialize } from 'node:v8';
import { DEFAULT_GROUP_MAPPINGS, DEFAULT_USER_MAPPINGS } from './defaults.ts';
import { canReadLink, objectFieldsRead, pickColumns, pickFields, plainColumnSize } from './reads.ts';

const fieldsOf = (...expressions: string[]): string[] | null => {
  const fields = objectFieldsRead(expressions, 'user');
  return fields && [...fields];
};

/** Each expression, beside one that reads a single field, makes the set read the whole object. */
function assertWhole(expressions: string[]): void {
  for (const expression of expressions) {
    assert.equal(fieldsOf('return { a: user.uid };', expression), null, expression);
  }
}

test('the default mappings read seven fields of a user and two of a group', () => {
  const user = objectFieldsRead(
    DEFAULT_USER_MAPPINGS.map((m) => m.expression),
    'user',
  );
  assert.deepEqual(user && [...user].sort(), [
    'active',
    'displayName',
    'email',
    'familyName',
    'givenName',
    'uid',
    'username',
  ]);
  const group = objectFieldsRead(
    DEFAULT_GROUP_MAPPINGS.map((m) => m.expression),
    'group',
  );
  assert.deepEqual(group && [...group].sort(), ['name', 'uid']);
});

test('a field is read by `.name` or `?.name`, spaces and line breaks allowed; a nested read needs its top field', () => {
  assert.deepEqual(fieldsOf('return { a: user.email, b: user?.kind, c: user\n  .  id };'), ['email', 'kind', 'id']);
  assert.deepEqual(fieldsOf('return { title: user.attributes.title };'), ['attributes']);
  assert.deepEqual(fieldsOf('return null;', 'return { title: "x" };'), []);
});

test('longer names that contain the parameter name are other names', () => {
  assert.deepEqual(fieldsOf('const username = 1, superuser = 2, $user = 3, user_ = 4; return { a: user.uid };'), [
    'uid',
  ]);
});

test('any other use of the object means all of it: passed on, spread, listed, computed, destructured, in a string', () => {
  assertWhole([
    'return { title: JSON.stringify(user) };',
    'return { ...user };',
    'return { title: Object.keys(user).join() };',
    'return { title: user["email"] };',
    'const { email } = user; return { email };',
    'return { title: `${user}` };',
    'return { title: "user" };',
    'return { title: user /* c */ .email };',
    'return { title: typeof user };',
  ]);
});

test('an inherited name reaches the object whole: valueOf returns it, hasOwnProperty tests its keys', () => {
  assertWhole([
    'return { title: Object.keys(user.valueOf()).join() };',
    'return { title: String(user.hasOwnProperty("id")) };',
    'return { title: String(user.propertyIsEnumerable("id")) };',
    'return { title: user.__proto__ };',
  ]);
});

test('arguments, any backslash (an escaped name) and a name running on into non-ASCII mean all of it', () => {
  assertWhole([
    'return { title: arguments[0].email };',
    'return { title: \\u0075ser.email };',
    'return { title: user.\\u0065mail };',
    'return { title: user.emailé };',
    'return { title: user\u00a0.email };',
  ]);
});

test('a mapping can read its link by name, through arguments or by an escaped name', () => {
  assert.equal(canReadLink('return link ? { title: link.title } : null;'), true);
  assert.equal(canReadLink('return { title: arguments[2] };'), true);
  assert.equal(canReadLink('return { title: l\\u0069nk };'), true);
  assert.equal(canReadLink('return { title: user.email };'), false);
});

test('picking keeps own enumerable fields of the names read, and passes whole what JSON would change or all', () => {
  const user = Object.defineProperty({ email: 'a@x', uid: 'u', kind: 'internal' }, 'hidden', {
    value: 1,
    enumerable: false,
  });
  assert.deepEqual(pickFields(user, new Set(['email', 'hidden', 'missing', 'toString'])), { email: 'a@x' });
  assert.equal(pickFields(user, null), user);
  const custom = { email: 'a@x', toJSON: () => ({ other: 1 }) };
  assert.equal(pickFields(custom, new Set(['email'])), custom);
  assert.equal(pickFields(null, new Set(['email'])), null);
});

test('columns carry what picking would, object by object, and only when JSON would write each value alike', () => {
  const fields = new Set(['email', 'uid', 'missing', 'toString']);
  const users = [
    { uid: 'u1', email: 'a@x', kind: 'internal', attributes: { a: [1] } },
    { email: null, uid: 'u2' },
  ];
  const picked = pickColumns(users, fields);
  assert.ok(picked);
  const rebuilt = users.map((_, i) =>
    Object.fromEntries(picked.names.map((name, k) => [name, picked.columns[k]?.[i]] as const)),
  );
  assert.deepEqual(
    rebuilt,
    users.map((user) => pickFields(user, fields)),
  );
  // A structured copy (isolated-vm's, node:v8's) writes a packed array densely (tag A), a holey one key by key (a).
  for (const column of picked.columns) assert.equal(String.fromCharCode(serialize(column)[2] ?? 0), 'A');
  assert.equal(pickColumns([users[0], { uid: 'u3' }], fields), null, 'a field one object has and another lacks');
  assert.equal(pickColumns([users[0], { uid: 'u3', email: undefined }], fields), null, 'undefined: left out by JSON');
  assert.equal(pickColumns([users[0], { uid: () => 'u', email: 'b@x' }], fields), null, 'a function');
  const when = new Date(0);
  assert.equal(pickColumns([users[0], { uid: 'u3', email: when }], fields), null, 'a value with toJSON');
  assert.equal(pickColumns([users[0], { uid: 'u3', email: 'b@x', toJSON: () => 1 }], fields), null, 'toJSON');
  assert.equal(pickColumns([users[0], null], fields), null);
  assert.equal(pickColumns([users[0], ['u3']], fields), null);
  const hidden = Object.defineProperty({ uid: 'u3' }, 'email', { value: 'c@x', enumerable: false });
  assert.equal(pickColumns([users[0], hidden], fields), null, 'a field that JSON does not see');
  assert.deepEqual(pickColumns([{ kind: 'x' }, { kind: 'y' }], fields), { names: [], columns: [] });
  // Keys in another order, or others besides, still give each object's own values.
  assert.deepEqual(pickColumns([users[0], { kind: 'k', email: 'b@x', uid: 'u3', attributes: {} }], fields), {
    names: ['email', 'uid'],
    columns: [
      ['a@x', 'b@x'],
      ['u1', 'u3'],
    ],
  });
  const extra = Object.defineProperty({ uid: 'u3', email: 'b@x', kind: 'k', attributes: {} }, 'toString', {
    value: 'not enumerable',
    enumerable: false,
  });
  assert.deepEqual(pickColumns([users[0], extra], fields)?.columns, [
    ['a@x', 'b@x'],
    ['u1', 'u3'],
  ]);
});

test('a column crosses as it is only when each value copies as JSON would carry it, and its size counts characters', () => {
  assert.equal(plainColumnSize(['ab', '', true, null, 1.5, 0]), 5 + 3 + 8 + 8 + 8 + 8);
  assert.equal(plainColumnSize([]), 0);
  const odd = [-0, NaN, Infinity, undefined, 1n, { a: 1 }, ['a'], new Date(0), Symbol('s'), () => 1];
  odd.forEach((value, index) => assert.equal(plainColumnSize(['a', value]), null, `odd value ${index}`));
});
