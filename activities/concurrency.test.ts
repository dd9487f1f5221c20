/** Running work a few at a time, and taking promises as they settle. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { eachAsAnswered, eachConcurrently } from './concurrency.ts';

test('items start in the order their answers settle, those with nothing to wait for first', async () => {
  const started: string[] = [];
  const answers = new Map([
    ['slow', delay(30).then(() => 1)],
    ['soon', delay(10).then(() => 2)],
  ]);
  await eachAsAnswered(
    ['slow', 'none', 'soon'],
    (item) => answers.get(item),
    3,
    (item, answer) => {
      started.push(`${item} ${answer}`);
      return Promise.resolve();
    },
  );
  assert.deepEqual(started, ['none undefined', 'soon 2', 'slow 1']);
});

test('a rejected answer fails at its turn: the items answered before it run, none after it starts', async () => {
  const started: string[] = [];
  const answers = new Map<string, Promise<string>>([
    ['failing', delay(10).then(() => Promise.reject(new Error('the lookup failed')))],
    ['late', delay(50).then(() => 'late')],
  ]);
  await assert.rejects(
    eachAsAnswered(
      ['failing', 'now', 'late'],
      (item) => answers.get(item),
      3,
      (item) => {
        started.push(item);
        return Promise.resolve();
      },
    ),
    /the lookup failed/,
  );
  await delay(60);
  assert.deepEqual(started, ['now']);
});

/**
 * Work over items 0 to 5 where item 0 ends only once item 5 has run (or after 2 s, had its place not been taken by
 * the others meanwhile), and `check`, which asserts that two ran at a time and the others went on past the slow one.
 */
function slowFirst() {
  let running = 0;
  let most = 0;
  const done: number[] = [];
  let release = (): void => undefined;
  const slow = new Promise<void>((resolve) => (release = resolve));
  setTimeout(release, 2000).unref();
  return {
    run: async (item: number): Promise<void> => {
      running += 1;
      most = Math.max(most, running);
      if (item === 0) await slow;
      else await delay(1);
      if (item === 5) release();
      running -= 1;
      done.push(item);
    },
    check: (): void => {
      assert.equal(most, 2);
      assert.deepEqual(done, [1, 2, 3, 4, 5, 0], 'a slow item holds one place; the other keeps taking items');
    },
  };
}

test('answered items run at most `limit` at a time, the next taken as soon as a place is free', async () => {
  const { run, check } = slowFirst();
  await eachAsAnswered([0, 1, 2, 3, 4, 5], (item) => Promise.resolve(item), 2, run);
  check();
});

test('after a failing item no further one starts; the running ones end before the failure is thrown', async () => {
  const started: number[] = [];
  const ended: number[] = [];
  await assert.rejects(
    eachAsAnswered(
      [0, 1, 2, 3],
      () => undefined,
      2,
      async (item) => {
        started.push(item);
        if (item === 0) throw new Error('item 0 failed');
        await delay(20);
        ended.push(item);
      },
    ),
    (error: Error) => {
      assert.deepEqual(ended, [1], 'item 1, running when item 0 failed, ended before the failure was thrown');
      return /item 0 failed/.test(error.message);
    },
  );
  assert.deepEqual(started, [0, 1]);
});

test('items of a source run at most `limit` at a time, the next asked for as soon as a place is free', async () => {
  async function* source() {
    for (let i = 0; i < 6; i += 1) yield await Promise.resolve(i);
  }
  const { run, check } = slowFirst();
  await eachConcurrently(source(), 2, run);
  check();
});
