import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureLocalAdminToken } from '../../cli/local-token.ts';
import { savedToken } from '../../cli/credentials.ts';
import { authenticateApiToken } from '../../db/index.ts';
import { createTestDatabase } from '../support/db.ts';

test('a start with another config folder on the same database makes its own admin token and leaves the first one working', async (t) => {
  const testDb = await createTestDatabase();
  const folders = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'scimflow-local-token-')));
  const before = process.env['SCIMFLOW_CONFIG_DIR'];
  t.after(async () => {
    process.env['SCIMFLOW_CONFIG_DIR'] = before;
    if (before === undefined) delete process.env['SCIMFLOW_CONFIG_DIR'];
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
    await testDb.drop();
  });
  const apiUrl = 'http://127.0.0.1:7400';
  const startIn = async (folder: string) => {
    process.env['SCIMFLOW_CONFIG_DIR'] = folder;
    const made = await ensureLocalAdminToken(testDb.db, apiUrl);
    return { ...made, token: savedToken(apiUrl)!.token };
  };

  const first = await startIn(folders[0]!);
  const second = await startIn(folders[1]!);

  assert.match(first.name, /^local-admin-[0-9a-f]{8}$/);
  assert.notEqual(first.name, second.name);
  for (const { token } of [first, second]) assert.equal((await authenticateApiToken(testDb.db, token)).ok, true);
  const again = await startIn(folders[0]!);
  assert.deepEqual([again.created, again.token], [false, first.token], 'the first folder keeps its token');
});
