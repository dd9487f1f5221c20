import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createCpuSampler, type SamplerTimers } from './cpu-sampler.ts';

/** Timers that tick only when the test says so, and count what was started and cleared. */
function manualTimers() {
  const live = new Set<() => void>();
  const state = { started: 0, cleared: 0 };
  const timers: SamplerTimers = {
    setInterval: (tick) => {
      state.started += 1;
      live.add(tick);
      return { unref: () => undefined, tick };
    },
    clearInterval: (timer) => {
      state.cleared += 1;
      live.delete((timer as unknown as { tick: () => void }).tick);
    },
  };
  const tick = (): void => {
    for (const run of [...live]) run();
  };
  return { timers, state, tick, live };
}

test('one timer reads every running call, and a stopped call is read no more', () => {
  const { timers, state, tick } = manualTimers();
  const sampler = createCpuSampler(50, timers);
  const reads = { a: 0, b: 0 };
  const a = sampler.start(() => BigInt(++reads.a));
  const b = sampler.start(() => BigInt(++reads.b * 10));
  assert.equal(a.last, undefined, 'nothing is read before the first tick');
  tick();
  tick();
  assert.deepEqual([a.last, b.last], [2n, 20n], 'each sample keeps its own last reading');
  assert.equal(state.started, 1, 'two running calls share one timer');
  a.stop();
  tick();
  assert.deepEqual([reads.a, b.last], [2, 30n], 'a stopped call is not read again; the other still is');
  b.stop();
});

test('a failed reading keeps the one before, and the timer stops once no call runs, until the next starts', () => {
  const { timers, state, tick, live } = manualTimers();
  const sampler = createCpuSampler(50, timers);
  let value: bigint | undefined = 5n;
  const sample = sampler.start(() => value);
  tick();
  value = undefined;
  tick();
  assert.equal(sample.last, 5n, 'an unreadable isolate (disposed) leaves the last reading');
  sample.stop();
  tick();
  assert.deepEqual([state.cleared, live.size], [1, 0], 'the first tick with nothing to read ends the timer');
  const next = sampler.start(() => 7n);
  tick();
  assert.deepEqual([next.last, state.started], [7n, 2], 'the next call starts it again');
  next.stop();
});
