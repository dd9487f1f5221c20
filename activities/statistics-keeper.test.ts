/** The statistics keeper: one check at a time, one a second, whatever the ranges ask. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Db } from '../db/index.ts';
import { createStatisticsKeeper } from './statistics-keeper.ts';

/** A database that counts the staleness checks it is asked and holds each until `answer` is called. */
function countingDb() {
  const held: Array<() => void> = [];
  let checks = 0;
  const db = {
    query: () => {
      checks += 1;
      return new Promise((resolve) => held.push(() => resolve({ rows: [] })));
    },
  } as unknown as Db;
  return {
    db,
    checks: () => checks,
    answer: async () => {
      held.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

test('ranges asking together share one check, and none is made again within a second', async () => {
  const pg = countingDb();
  let now = 0;
  const keeper = createStatisticsKeeper(pg.db, () => now);
  const together = [keeper.refresh(), keeper.refresh(), keeper.refresh()];
  assert.equal(pg.checks(), 1);
  await pg.answer();
  await Promise.all(together);
  now = 999;
  await keeper.refresh();
  assert.equal(pg.checks(), 1, 'a second had not passed');
  now = 1000;
  const again = keeper.refresh();
  assert.equal(pg.checks(), 2);
  await pg.answer();
  await again;
});
