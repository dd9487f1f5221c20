/** Request slots: how many attempts are in flight, who waits in which line, and what cancellation does to the line. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestSlots } from './slots.ts';

test('a freed slot goes to the first retry in line, else the first read, else the first write', async () => {
  const slots = new RequestSlots(1);
  const release = slots.tryAcquire()!;
  const granted: string[] = [];
  const wait = (lane: 'retry' | 'read' | 'write', name: string) =>
    slots.acquire(undefined, lane).then((next) => {
      granted.push(name);
      next();
    });
  const all = Promise.all([
    wait('write', 'write 1'),
    wait('read', 'read'),
    wait('retry', 'retry'),
    wait('write', 'write 2'),
  ]);
  assert.equal(slots.tryAcquire(), undefined, 'no slot is free while the one slot is held');
  release();
  await all;
  assert.deepEqual(granted, ['retry', 'read', 'write 1', 'write 2']);
});

test('an aborted signal refuses the attempts in line on it, and only those', async () => {
  const slots = new RequestSlots(1);
  const release = slots.tryAcquire()!;
  const cancelled = new AbortController();
  const other = new AbortController();
  const first = slots.acquire(cancelled.signal);
  const second = slots.acquire(other.signal);
  const third = slots.acquire(cancelled.signal, 'retry');
  cancelled.abort(new Error('the activity was cancelled'));
  await assert.rejects(first, /the activity was cancelled/);
  await assert.rejects(third, /the activity was cancelled/);
  release();
  const next = await second;
  assert.equal(slots.tryAcquire(), undefined, 'the slot went to the attempt still in line');
  next();
  assert.notEqual(slots.tryAcquire(), undefined, 'the slot is free again');
  await assert.rejects(
    slots.acquire(cancelled.signal),
    /the activity was cancelled/,
    'an aborted signal waits for nothing',
  );
});
