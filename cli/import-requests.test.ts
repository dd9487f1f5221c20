import assert from 'node:assert/strict';
import { test } from 'node:test';
import { importRequests } from './import-requests.ts';

const users = (n: number) => Array.from({ length: n }, (_, i) => ({ username: `u${i}` }));

test('a small file is one request', () => {
  const document = { users: users(3), groups: [{ name: 'g', members: ['u0'] }] };
  assert.deepEqual(importRequests(document, 10), [{ users: users(3) }, { groups: [{ name: 'g', members: ['u0'] }] }]);
});

test('users go first, in requests of at most max, then groups packed by their members', () => {
  const groups = [
    { name: 'a', members: ['u0', 'u1'] },
    { name: 'b', members: ['u2'] },
    { name: 'c' },
    { name: 'd', members: ['u3', 'u4', 'u5', 'u6'] },
  ];
  const requests = importRequests({ users: users(7), groups }, 3) as Array<{ users?: unknown[]; groups?: unknown[] }>;
  assert.deepEqual(
    requests.map((r) => r.users?.length ?? 0),
    [3, 3, 1, 0, 0, 0],
  );
  assert.deepEqual(
    requests.filter((r) => r.groups).map((r) => r.groups!.map((g) => (g as { name: string }).name)),
    [['a'], ['b', 'c'], ['d']],
  );
  assert.deepEqual(
    requests.flatMap((r) => r.users ?? []),
    users(7),
  );
});

test('a group with more members than max goes whole, in a request of its own', () => {
  const big = { name: 'big', members: users(5).map((u) => u.username) };
  assert.deepEqual(importRequests({ groups: [{ name: 'small' }, big, { name: 'after' }] }, 3), [
    { groups: [{ name: 'small' }] },
    { groups: [big] },
    { groups: [{ name: 'after' }] },
  ]);
});

test('a file the API would refuse as a whole is sent as it is', () => {
  for (const document of [[], 'text', { users: 'nope' }, { users: [], extra: 1 }, {}]) {
    assert.deepEqual(importRequests(document, 3), [document]);
  }
});
