import assert from 'node:assert/strict';
import { test } from 'node:test';
import { callCpuNs } from './call-cpu.ts';

const ms = (n: number) => BigInt(n) * 1_000_000n;
const START = { user: 1_000, system: 0 };
/** A process whose threads used `used` ms of CPU in all since the call began. */
const processUsed = (used: number) => () => ({ user: used * 1000, system: 0 });

test('a call whose isolate waited for a core is charged the CPU the process used, not the wait', () => {
  // The isolate's reading grew by 242 ms while the whole process used 5.5 ms: the isolate cannot have used more.
  assert.equal(
    callCpuNs(ms(1242), ms(1000), START, undefined, () => ({ user: 5_500, system: 0 })),
    5_500_000n,
  );
});

test("a call on a process whose other threads were busy is charged the isolate's own reading", () => {
  assert.equal(callCpuNs(ms(1012), ms(1000), START, undefined, processUsed(80)), ms(12));
});

test('a call whose isolate a memory limit disposed is charged from the last reading sampled while it ran', () => {
  assert.equal(callCpuNs(undefined, ms(1000), START, ms(1900), processUsed(2000)), ms(900));
  assert.equal(
    callCpuNs(undefined, ms(1000), START, undefined, processUsed(700)),
    ms(700),
    'never sampled: the process',
  );
});

test('a call whose isolate could not be read before it began is charged the CPU the process used', () => {
  assert.equal(callCpuNs(ms(50), undefined, START, undefined, processUsed(30)), ms(30));
});
