import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../test/support/db.ts';
import { DEFAULT_GROUP_MAPPINGS, DEFAULT_USER_MAPPINGS } from './defaults.ts';

let database: TestDatabase;
before(async () => {
  database = await createTestDatabase();
});
after(() => database?.drop());

test('migration 0002 seeds exactly the default mappings of defaults.ts, as built-in rows', async () => {
  const { rows } = await database.db.query<{
    name: string;
    object_type: string;
    expression: string;
    builtin: boolean;
    version: number;
  }>('SELECT name, object_type, expression, builtin, version FROM mappings ORDER BY name');
  const expected = [
    ...DEFAULT_USER_MAPPINGS.map((m) => ({
      name: m.name,
      object_type: 'user',
      expression: m.expression,
      builtin: true,
      version: 1,
    })),
    ...DEFAULT_GROUP_MAPPINGS.map((m) => ({
      name: m.name,
      object_type: 'group',
      expression: m.expression,
      builtin: true,
      version: 1,
    })),
  ].sort((a, b) => (a.name < b.name ? -1 : 1));
  assert.deepEqual(rows, expected);
});

test('providers get an empty mapping_limits object and their mapping links go when the provider goes', async () => {
  const { rows: providers } = await database.db.query<{ id: string; mapping_limits: unknown }>(
    "INSERT INTO providers (slug, name, base_url) VALUES ('seed-test', 'Seed test', 'https://example.test/scim') RETURNING id, mapping_limits",
  );
  const provider = providers[0];
  assert.ok(provider);
  assert.deepEqual(provider.mapping_limits, {});
  await database.db.query(
    'INSERT INTO provider_mappings (provider_id, mapping_id) SELECT $1, id FROM mappings WHERE builtin',
    [provider.id],
  );
  const linked = await database.db.query('SELECT 1 FROM provider_mappings WHERE provider_id = $1', [provider.id]);
  assert.equal(linked.rowCount, DEFAULT_USER_MAPPINGS.length + DEFAULT_GROUP_MAPPINGS.length);
  await database.db.query('DELETE FROM providers WHERE id = $1', [provider.id]);
  const left = await database.db.query('SELECT 1 FROM provider_mappings WHERE provider_id = $1', [provider.id]);
  assert.equal(left.rowCount, 0);
});

test('mapping names are unique and the object type is user or group', async () => {
  await assert.rejects(
    database.db.query(
      "INSERT INTO mappings (name, object_type, expression) VALUES ('default-group', 'group', 'return null')",
    ),
    /duplicate key/,
  );
  await assert.rejects(
    database.db.query("INSERT INTO mappings (name, object_type, expression) VALUES ('odd', 'device', 'return null')"),
    /check constraint/,
  );
});
