import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SCHEMA_GROUP, type ScimGroup } from '../../scim/index.ts';
import { chunk, diffGroup, isUnchanged, memberIds, patchRequests } from './group-changes.ts';

function group(displayName: string, members?: string[], extra: Partial<ScimGroup> = {}): ScimGroup {
  return {
    schemas: [SCHEMA_GROUP],
    displayName,
    ...(members === undefined ? {} : { members: members.map((value) => ({ value })) }),
    ...extra,
  };
}

/** How many member values one PATCH request carries. */
function memberValues(operations: ReturnType<typeof patchRequests>[number]): number {
  return operations.reduce((count, operation) => {
    if (operation.op === 'add' && operation.path === 'members') return count + (operation.value as unknown[]).length;
    if (operation.op === 'remove' && operation.path?.startsWith('members[')) return count + 1;
    return count;
  }, 0);
}

describe('diffGroup', () => {
  test('finds members to add and to remove', () => {
    const changes = diffGroup(group('G', ['a', 'b', 'c']), group('G', ['b', 'c', 'd']));
    assert.deepEqual(changes, { attributes: [], add: ['d'], remove: ['a'] });
  });

  test('finds nothing when only member order or duplicates differ', () => {
    const changes = diffGroup(group('G', ['a', 'b']), group('G', ['b', 'a', 'a']));
    assert.equal(isUnchanged(changes), true);
  });

  test('replaces displayName and externalId only when they changed', () => {
    const current = group('Old', ['a'], { externalId: 'x', id: 'g1', meta: { created: 'then' } });
    assert.deepEqual(diffGroup(current, group('New', ['a'], { externalId: 'x' })).attributes, [
      { op: 'replace', path: 'displayName', value: 'New' },
    ]);
    assert.deepEqual(diffGroup(current, group('Old', ['a'], { externalId: 'y' })).attributes, [
      { op: 'replace', path: 'externalId', value: 'y' },
    ]);
    assert.equal(isUnchanged(diffGroup(current, group('Old', ['a'], { externalId: 'x' }))), true);
  });

  test('leaves membership alone when the wanted group has no members attribute', () => {
    assert.deepEqual(diffGroup(group('G', ['a', 'b']), group('G')), { attributes: [], add: [], remove: [] });
  });

  test('treats a current group without members as empty', () => {
    assert.deepEqual(diffGroup(group('G'), group('G', ['a'])).add, ['a']);
  });
});

describe('patchRequests', () => {
  test('puts attribute replaces first and member changes after, in one request when they fit', () => {
    const requests = patchRequests(
      { attributes: [{ op: 'replace', path: 'displayName', value: 'N' }], add: ['d'], remove: ['a'] },
      10,
    );
    assert.deepEqual(requests, [
      [
        { op: 'replace', path: 'displayName', value: 'N' },
        { op: 'add', path: 'members', value: [{ value: 'd' }] },
        { op: 'remove', path: 'members[value eq "a"]' },
      ],
    ]);
  });

  test('never carries more member values per request than the limit', () => {
    const add = Array.from({ length: 7 }, (_, i) => `add-${i}`);
    const remove = Array.from({ length: 5 }, (_, i) => `rm-${i}`);
    for (const limit of [1, 2, 3, 5, 12, 100]) {
      const requests = patchRequests({ attributes: [], add, remove }, limit);
      assert.equal(requests.length, Math.ceil(12 / limit), `limit ${limit}`);
      for (const operations of requests) assert.ok(memberValues(operations) <= limit, `limit ${limit}`);
      assert.equal(
        requests.reduce((sum, operations) => sum + memberValues(operations), 0),
        12,
      );
    }
  });

  test('sends attribute-only changes as one request and nothing for no change', () => {
    assert.equal(
      patchRequests({ attributes: [{ op: 'replace', path: 'externalId', value: 'e' }], add: [], remove: [] }, 5).length,
      1,
    );
    assert.deepEqual(patchRequests({ attributes: [], add: [], remove: [] }, 5), []);
  });

  test('escapes member ids inside the remove filter', () => {
    const [operations] = patchRequests({ attributes: [], add: [], remove: ['we"ird\\id'] }, 5);
    assert.deepEqual(operations, [{ op: 'remove', path: 'members[value eq "we\\"ird\\\\id"]' }]);
  });

  test('writes members in the vendor style: its references, and removals as one value list', () => {
    const style = { reference: (value: string) => ({ value, type: 'user' }), removal: 'value-list' as const };
    assert.deepEqual(patchRequests({ attributes: [], add: ['a'], remove: ['b', 'c'] }, 5, style), [
      [
        { op: 'add', path: 'members', value: [{ value: 'a', type: 'user' }] },
        {
          op: 'remove',
          path: 'members',
          value: [
            { value: 'b', type: 'user' },
            { value: 'c', type: 'user' },
          ],
        },
      ],
    ]);
  });

  test('refuses a limit below one', () => {
    assert.throws(() => patchRequests({ attributes: [], add: ['a'], remove: [] }, 0), TypeError);
  });
});

describe('helpers', () => {
  test('memberIds keeps first-seen order without duplicates', () => {
    assert.deepEqual(memberIds(group('G', ['b', 'a', 'b'])), ['b', 'a']);
  });

  test('chunk splits into slices of at most the size', () => {
    assert.deepEqual(chunk([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
    assert.deepEqual(chunk([], 3), []);
    assert.throws(() => chunk([1], 0), TypeError);
  });
});
