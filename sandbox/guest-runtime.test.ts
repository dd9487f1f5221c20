import assert from 'node:assert/strict';
import { test } from 'node:test';
import vm from 'node:vm';
import { DEFAULT_USER_MAPPINGS } from './defaults.ts';
import { SAMPLE_PROVIDER, variedUsers } from './fixtures.ts';
import { NOT_ADOPTED, guestRuntime, type GuestApi } from './guest-runtime.ts';
import { mergeKernel } from './merge.ts';

/** The guest as the engine builds it, in a context of its own (node:vm here, so calls can be made one by one). */
function guest(): GuestApi {
  const context = vm.createContext({ expressions: DEFAULT_USER_MAPPINGS.map((m) => m.expression) });
  return vm.runInContext(
    `(${guestRuntime.toString()})(expressions, 'user', (${mergeKernel.toString()}))`,
    context,
  ) as GuestApi;
}

function input(first: number, count: number): string {
  const items = variedUsers(first + count)
    .slice(first)
    .map((object) => ({ object, link: null }));
  return JSON.stringify({ now: '2026-01-01T00:00:00.000Z', provider: SAMPLE_PROVIDER, contributions: false, items });
}

function parts(answer: string): { count: number; stopped: number; results: unknown[] } {
  const [count, stopped] = answer.split('|', 2).map(Number) as [number, number];
  return {
    count,
    stopped,
    results: JSON.parse(answer.slice(answer.indexOf('|', answer.indexOf('|') + 1) + 1)) as unknown[],
  };
}

test('a call stopped before the guest took its batch is answered with nothing, never the previous batch', () => {
  const api = guest();
  const first = parts(api.step(input(0, 3), 0, 1000, 1000, 1 << 20, 1));
  assert.equal(first.count, 3);
  // Batch 2's first call was stopped before the guest ran a line of it (isolated-vm can stop a call at its entry):
  // what the host then asks about batch 2 must not be batch 1's results.
  assert.equal(api.salvage(0, 2), `0|${NOT_ADOPTED}|[]`);
  assert.equal(api.step(null, 0, 1000, 1000, 1 << 20, 2), `0|${NOT_ADOPTED}|[]`);
  const second = parts(api.step(input(3, 2), 0, 1000, 1000, 1 << 20, 2));
  assert.equal(second.count, 2);
  assert.deepEqual(
    second.results.map((result) => (result as { v: { externalId: string } }).v.externalId),
    variedUsers(5)
      .slice(3)
      .map((user) => user.uid),
  );
  assert.equal(api.salvage(2, 1), `0|${NOT_ADOPTED}|[]`, 'a stale id is refused too');
});
