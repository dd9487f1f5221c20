/** The group commit: one statement at a time, what arrives meanwhile together in the next. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupCommit } from './group-commit.ts';

/** A writer whose statements stay open until `finish` is called, recording what each one held. */
function heldWriter() {
  const statements: string[][] = [];
  const open: Array<PromiseWithResolvers<void>> = [];
  const write = (items: string[]): Promise<number> => {
    statements.push(items);
    const done = Promise.withResolvers<void>();
    open.push(done);
    return done.promise.then(() => statements.length);
  };
  /** Lets the oldest open statement commit (or fail with `error`) and waits until the next one is sent. */
  const finish = async (error?: Error): Promise<void> => {
    const done = open.shift()!;
    if (error) done.reject(error);
    else done.resolve();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { statements, write, finish };
}

test('items added while a statement is written go together in the next one, the later item per key winning', async () => {
  const writer = heldWriter();
  const commit = new GroupCommit<string, number>(writer.write);
  const first = commit.add('a', 'a1');
  const second = [commit.add('b', 'b1'), commit.add('c', 'c1'), commit.add('b', 'b2')];
  assert.deepEqual(writer.statements, [['a1']]);
  await writer.finish();
  assert.equal(await first, 1);
  assert.deepEqual(writer.statements, [['a1'], ['b2', 'c1']]);
  await writer.finish();
  assert.deepEqual(await Promise.all(second), [2, 2, 2]);
});

test('a failed statement fails only the items it held; the next one is still written', async () => {
  const writer = heldWriter();
  const commit = new GroupCommit<string, number>(writer.write);
  const failed = commit.add('a', 'a');
  const later = commit.add('b', 'b');
  await writer.finish(new Error('statement failed'));
  await assert.rejects(failed, /statement failed/);
  await writer.finish();
  assert.equal(await later, 2);
});
