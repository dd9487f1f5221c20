import assert from 'node:assert/strict';
import { test } from 'node:test';
import vm from 'node:vm';
import { DEFAULT_USER_MAPPINGS } from './defaults.ts';
import { SAMPLE_PROVIDER, variedUsers } from '../test/fixtures/directory.ts';
import { MARKED_RESULT, NOT_ADOPTED, guestRuntime, type GuestApi, type GuestStepAnswer } from './guest-runtime.ts';
import { mergeKernel } from './merge.ts';
import { compileShape, shapeEncoder } from './shapes.ts';

/** The expression that builds the guest from `expressions`, as the engine's. */
const BUILD_GUEST = `(${guestRuntime.toString()})(expressions, 'user', (${mergeKernel.toString()}), (${shapeEncoder.toString()}))`;

/** The guest as the engine builds it, in a context of its own (node:vm here, so calls can be made one by one). */
function guest(expressions = DEFAULT_USER_MAPPINGS.map((m) => m.expression)): GuestApi {
  return vm.runInContext(BUILD_GUEST, vm.createContext({ expressions })) as GuestApi;
}

/** An answer's results as values: the tests' calls pass 0 for the shapes they know, so every answer has them all. */
function values(answer: GuestStepAnswer): unknown[] {
  const builders = (answer.shapes ?? []).map(compileShape);
  return Array.from(answer.results, (result) => {
    if (typeof result !== 'string') return builders[result[0] as number]?.(result);
    return JSON.parse(result.startsWith(MARKED_RESULT) ? result.slice(1) : result) as unknown;
  });
}

function input(first: number, count: number): string {
  const items = variedUsers(first + count).slice(first);
  return JSON.stringify({ now: '2026-01-01T00:00:00.000Z', provider: SAMPLE_PROVIDER, contributions: false, items });
}

function parts(answer: GuestStepAnswer): { count: number; stopped: number; results: unknown[] } {
  return {
    count: answer.results.length,
    stopped: answer.stopped,
    results: values(answer),
  };
}

/** An answer about a batch the guest does not hold: nothing, and NOT_ADOPTED. */
function assertNotAdopted(answer: GuestStepAnswer, message?: string): void {
  assert.deepEqual([answer.stopped, answer.results.length], [NOT_ADOPTED, 0], message);
}

test('a call stopped before the guest took its batch is answered with nothing, never the previous batch', () => {
  const api = guest();
  const first = parts(api.step(input(0, 3), null, 0, 1000, 1000, 1 << 20, 1, 0));
  assert.equal(first.count, 3);
  // Batch 2's first call was stopped before the guest ran a line of it (isolated-vm can stop a call at its entry):
  // what the host then asks about batch 2 must not be batch 1's results.
  assertNotAdopted(api.salvage(0, 2, false, 0));
  assertNotAdopted(api.step(null, null, 0, 1000, 1000, 1 << 20, 2, 0));
  const second = parts(api.step(input(3, 2), null, 0, 1000, 1000, 1 << 20, 2, 0));
  assert.equal(second.count, 2);
  assert.deepEqual(
    second.results.map((result) => (result as { externalId: string }).externalId),
    variedUsers(5)
      .slice(3)
      .map((user) => user.uid),
  );
  assertNotAdopted(api.salvage(2, 1, false, 0), 'a stale id is refused too');
});

test('a stopped object is run again after a retry salvage, and skipped, in its place, after a plain one', () => {
  const looping = variedUsers(5)[2]?.username;
  const expressions = [
    ...DEFAULT_USER_MAPPINGS.map((m) => m.expression),
    `if (user.username === ${JSON.stringify(looping)}) while (true) {} return null;`,
  ];
  // Script-level bindings are not properties of the (frozen) global object, so the test can keep its handles there.
  const context = vm.createContext({ expressions });
  vm.runInContext(`let api = ${BUILD_GUEST}; let call;`, context);
  const run = (code: string): GuestStepAnswer => vm.runInContext(code, context, { timeout: 200 }) as GuestStepAnswer;
  const stopped = (code: string): void => assert.throws(() => run(code), /timed out/);
  stopped(`api.step(${JSON.stringify(input(0, 5))}, null, 0, 1000, 1000, 1 << 20, 7, 0)`);
  const retried = parts(run('api.salvage(0, 7, true, 0)'));
  assert.equal(retried.count, 2);
  assert.equal(retried.stopped, -1, 'nothing is reported stopped');
  stopped('api.step(null, null, 2, 1000, 1000, 1 << 20, 7, 0)');
  const skipped = parts(run('api.salvage(2, 7, false, 0)'));
  assert.deepEqual([skipped.count, skipped.stopped], [0, 2], 'the same object was running again, and is skipped now');
  const rest = parts(run('api.step(null, null, 3, 1000, 1000, 1 << 20, 7, 0)'));
  assert.deepEqual(
    rest.results.map((result) => (result as { externalId: string }).externalId),
    variedUsers(5)
      .slice(3)
      .map((user) => user.uid),
  );
});

test('a batch sent as columns, in JSON or as they are, maps each object exactly as the same objects sent one by one', () => {
  const users = variedUsers(40);
  const names = ['uid', 'username', 'displayName', 'email', 'givenName', 'familyName', 'active'];
  const head = { now: '2026-01-01T00:00:00.000Z', provider: SAMPLE_PROVIDER, contributions: false };
  const rows = users.map((user) => Object.fromEntries(names.map((name) => [name, user[name as keyof typeof user]])));
  const columns = names.map((name) => users.map((user) => user[name as keyof typeof user]));
  const byRows = guest().step(JSON.stringify({ ...head, items: rows }), null, 0, 1000, 1000, 1 << 20, 1, 0);
  const byColumns = guest().step(
    JSON.stringify({ ...head, count: users.length, fields: names, columns }),
    null,
    0,
    1000,
    1000,
    1 << 20,
    1,
    0,
  );
  // Every other column crossing as it is, the rest as JSON.
  const byPlainColumns = guest().step(
    JSON.stringify({ ...head, count: users.length, fields: names, columns: columns.map((c, k) => (k % 2 ? c : 0)) }),
    columns.filter((_, k) => k % 2 === 0),
    0,
    1000,
    1000,
    1 << 20,
    1,
    0,
  );
  assert.equal(byColumns.results.length, users.length);
  assert.deepEqual(values(byColumns), values(byRows));
  assert.deepEqual(values(byPlainColumns), values(byRows));
});

test('objects sent as columns are frozen, and a field named __proto__ is a field, never their prototype', () => {
  const api = guest([
    `return { userName: String(Object.isFrozen(user)), title: String(Object.getPrototypeOf(user) === Object.prototype), nickName: String(Object.hasOwn(user, '__proto__')) };`,
  ]);
  const head = { now: '2026-01-01T00:00:00.000Z', provider: SAMPLE_PROVIDER, contributions: false };
  const answer = api.step(
    JSON.stringify({ ...head, count: 1, fields: ['__proto__', 'uid'], columns: [[{ polluted: true }], ['u1']] }),
    null,
    0,
    1000,
    1000,
    1 << 20,
    1,
    0,
  );
  assert.deepEqual(values(answer), [{ userName: 'true', title: 'true', nickName: 'true' }]);
});
