import pg from 'pg';

/** A pg pool; the one way every part of scimflow reaches PostgreSQL. */
export type Db = pg.Pool;
/** A client checked out of the pool, or the pool itself: anything that can run a query. */
export type Queryable = pg.Pool | pg.PoolClient;

/** Opens a pool on `url` with an error listener, so an idle client's failure cannot crash the process. */
export function createDb(url: string, options: { max?: number; applicationName?: string } = {}): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'scimflow',
  });
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it on the next checkout.
  });
  return pool;
}

// Clients inside a transaction inTransaction opened: a nested call runs in that transaction instead of another.
const inside = new WeakSet<pg.PoolClient>();

/**
 * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. Given a client already in a
 * transaction this opened, `fn` joins it, so a caller can make one write and its audit row commit together.
 */
export async function inTransaction<T>(q: Queryable, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const given = 'release' in q ? q : null;
  if (given !== null && inside.has(given)) return fn(given);
  const client = given ?? (await (q as pg.Pool).connect());
  inside.add(client);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    inside.delete(client);
    if (given === null) client.release();
  }
}

/**
 * Runs one statement with `settings` (PostgreSQL settings such as `work_mem`) in force for it alone: set locally in a
 * transaction of its own, or, given a client in one that inTransaction opened, until that one ends.
 */
export async function queryWithSettings<R extends pg.QueryResultRow>(
  q: Queryable,
  settings: Readonly<Record<string, string>>,
  text: string,
  values: unknown[],
): Promise<pg.QueryResult<R>> {
  return inTransaction(q, async (client) => {
    const names = Object.keys(settings);
    await client.query(
      `SELECT ${names.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(', ')}`,
      names.flatMap((name) => [name, settings[name]]),
    );
    return client.query<R>(text, values);
  });
}
