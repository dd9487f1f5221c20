import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { inTransaction, queryWithSettings } from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';

type TestDb = Awaited<ReturnType<typeof createTestDatabase>>;

describe('a statement run with settings of its own', () => {
  let testDb: TestDb;
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await testDb.drop();
  });

  const shown = 'SELECT current_setting($1) AS a, current_setting($2) AS b';

  test('sees them, and the connection it ran on has its own back afterwards', async () => {
    const client = await testDb.db.connect();
    try {
      const { rows: before } = await client.query<{ a: string; b: string }>(shown, ['work_mem', 'enable_sort']);
      const { rows } = await queryWithSettings<{ a: string; b: string }>(
        client,
        { work_mem: '64MB', enable_sort: 'off' },
        shown,
        ['work_mem', 'enable_sort'],
      );
      assert.deepEqual(rows, [{ a: '64MB', b: 'off' }]);
      const { rows: afterwards } = await client.query<{ a: string; b: string }>(shown, ['work_mem', 'enable_sort']);
      assert.deepEqual(afterwards, before);
      assert.notDeepEqual(afterwards, rows);
    } finally {
      client.release();
    }
  });

  test('inside a transaction, they hold until it ends', async () => {
    const client = await testDb.db.connect();
    try {
      const during = await inTransaction(client, async (tx) => {
        await queryWithSettings(tx, { work_mem: '32MB' }, 'SELECT 1', []);
        return (await tx.query<{ v: string }>(`SELECT current_setting('work_mem') AS v`)).rows[0]!.v;
      });
      assert.equal(during, '32MB');
      const { rows } = await client.query<{ v: string }>(`SELECT current_setting('work_mem') AS v`);
      assert.notEqual(rows[0]!.v, '32MB');
    } finally {
      client.release();
    }
  });
});
