/** A group's member chunks: where the first chunk of a group about to be created comes from. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Db, ProviderForSync } from '../db/index.ts';
import { memberChunks, type CreatedMembersWriter } from './group-members.ts';

test("a first chunk read with the group's page is taken by its first create; a second create reads afresh", async () => {
  const reads: string[] = [];
  // The pool, answering the read of a group's first chunk with one member, `afresh`.
  const db = {
    query: (_text: string, values: [string, string, string[], number]) => {
      const [, providerId, [groupId], limit] = values;
      reads.push(`${providerId} ${groupId} ${limit}`);
      return Promise.resolve({ rows: [{ group_id: groupId, remote_id: 'afresh' }] });
    },
  } as unknown as Db;
  // Only reads are reached: no member is recorded or sent here.
  const createdMembers = {} as CreatedMembersWriter;
  const provider = { id: 'p', scope: {} } as unknown as ProviderForSync;
  let prefetches = 0;
  const chunks = memberChunks({ db, createdMembers }, provider, 'g', 100, { count: 2, digest: 'd' }, () => {
    prefetches += 1;
    return Promise.resolve(['r1', 'r2']);
  });

  assert.deepEqual(await chunks.first(), ['r1', 'r2']);
  assert.deepEqual(reads, [], 'the page read it: nothing is read now');
  assert.deepEqual(await chunks.first(), ['afresh'], 'a create sent again forgets what was sent, and reads again');
  assert.deepEqual(reads, ['p g 100']);
  assert.equal(prefetches, 1);

  const alone = memberChunks({ db, createdMembers }, provider, 'h', 50, { count: 0, digest: '' });
  assert.deepEqual(await alone.first(), ['afresh'], 'with nothing read ahead, the first create reads');
  assert.deepEqual(reads, ['p g 100', 'p h 50']);
});
