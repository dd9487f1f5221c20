import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDb, migrate, type Db } from '../../db/index.ts';

/** A migrated database of its own for one test file; `drop()` closes the pool and removes the database. */
export interface TestDatabase {
  db: Db;
  url: string;
  drop(): Promise<void>;
}

const DEFAULT_URL = 'postgres://scimflow@127.0.0.1:5432/scimflow';

async function onAdminDatabase<T>(serverUrl: URL, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const adminUrl = new URL(serverUrl);
  adminUrl.pathname = '/postgres';
  const client = new pg.Client({ connectionString: adminUrl.toString() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates `scimflow_test_<random>` on the server of DATABASE_URL (default: the local `scimflow` role), applies
 * every migration and returns a pool on it. Each test file gets its own database, so files can run in parallel.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = new URL(process.env['DATABASE_URL'] ?? DEFAULT_URL);
  const name = `scimflow_test_${randomBytes(6).toString('hex')}`;
  await onAdminDatabase(serverUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const db = createDb(url.toString(), { max: 8, applicationName: 'scimflow-test' });
  try {
    await migrate(db);
  } catch (error) {
    await db.end();
    await onAdminDatabase(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    throw error;
  }
  let dropped = false;
  return {
    db,
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await db.end();
      await onAdminDatabase(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
