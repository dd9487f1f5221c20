/** Running work a few at a time, and taking promises as they settle. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { eachConcurrently, inSettlementOrder } from './concurrency.ts';

test('promises are taken in the order they settle, not the order given', async () => {
  const taken: string[] = [];
  for await (const value of inSettlementOrder([
    delay(30).then(() => 'slow'),
    Promise.resolve('now'),
    delay(10).then(() => 'soon'),
  ])) {
    taken.push(value);
  }
  assert.deepEqual(taken, ['now', 'soon', 'slow']);
});

test('a rejection is thrown at its turn, after what settled before it', async () => {
  const taken: string[] = [];
  const failing = delay(10).then(() => Promise.reject(new Error('the lookup failed')));
  await assert.rejects(async () => {
    for await (const value of inSettlementOrder([Promise.resolve('now'), failing, delay(50).then(() => 'late')])) {
      taken.push(value);
    }
  }, /the lookup failed/);
  assert.deepEqual(taken, ['now']);
});

test('items of a source run at most `limit` at a time, the next asked for as soon as a place is free', async () => {
  let running = 0;
  let most = 0;
  const done: number[] = [];
  async function* source() {
    for (let i = 0; i < 6; i += 1) yield await Promise.resolve(i);
  }
  // Item 0 is slow: it ends only once the last item has run (or, had the other place waited for it, after 2 s).
  let release = (): void => undefined;
  const slow = new Promise<void>((resolve) => (release = resolve));
  setTimeout(release, 2000).unref();
  await eachConcurrently(source(), 2, async (item) => {
    running += 1;
    most = Math.max(most, running);
    if (item === 0) await slow;
    else await delay(1);
    if (item === 5) release();
    running -= 1;
    done.push(item);
  });
  assert.equal(most, 2);
  assert.deepEqual(done, [1, 2, 3, 4, 5, 0], 'a slow item holds one place; the other keeps taking items');
});
