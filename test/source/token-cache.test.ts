/**
 * The source token cache answers repeated requests without a query, and still honours every change of a source:
 * a rotated token, a deleted source or a changed setting is seen as soon as PostgreSQL's notification arrives. The
 * clock given to the cache never moves, so entries never expire by age here: what ends them is the notification.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, beforeEach, describe, test } from 'node:test';
import { createSourceAuthenticator, type SourceAuthenticator } from '../../api/source/token-cache.ts';
import {
  createDb,
  createSource,
  deleteSource,
  removeUser,
  rotateSourceToken,
  updateSource,
  type Db,
  type SourceView,
} from '../../db/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

const FROZEN = () => 1_000;

/** `db` with a count of the statements that read scim_sources. */
function counting(db: Db): { db: Db; lookups: () => number } {
  let lookups = 0;
  const proxy = new Proxy(db, {
    get(target, property) {
      if (property === 'query') {
        return (text: unknown, ...rest: unknown[]) => {
          if (typeof text === 'string' && text.includes('FROM scim_sources')) lookups += 1;
          return (target.query as (...args: unknown[]) => unknown)(text, ...rest);
        };
      }
      const value: unknown = Reflect.get(target, property);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db: proxy, lookups: () => lookups };
}

/** Calls `check` until it holds; fails after `ms` (far longer than a notification takes). */
async function eventually(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`never happened: ${what}`);
    await sleep(10);
  }
}

describe('source token cache', () => {
  let database: TestDatabase;
  let counted: ReturnType<typeof counting>;
  let cache: SourceAuthenticator;
  let source: SourceView;
  let token: string;
  let n = 0;

  before(async () => {
    database = await createTestDatabase();
  });
  beforeEach(async () => {
    cache?.close();
    counted = counting(database.db);
    cache = createSourceAuthenticator(counted.db, { now: FROZEN });
    n += 1;
    ({ source, token } = await createSource(database.db, { slug: `src-${n}`, deletePolicy: 'delete', claim: false }));
  });
  after(async () => {
    cache?.close();
    await database?.drop();
  });

  test('a repeated token is answered without a query; a wrong token or another slug is refused', async () => {
    assert.equal((await cache.authenticate(source.slug, token))?.id, source.id);
    assert.equal(counted.lookups(), 1);
    for (let i = 0; i < 5; i += 1) assert.equal((await cache.authenticate(source.slug, token))?.id, source.id);
    assert.equal(counted.lookups(), 1);
    assert.equal(await cache.authenticate(source.slug, `${token}x`), null);
    assert.equal(await cache.authenticate('no-such-source', token), null);
  });

  test('after a rotation the old token is refused and the new one accepted, without waiting for expiry', async () => {
    assert.ok(await cache.authenticate(source.slug, token));
    const rotated = await rotateSourceToken(database.db, source.slug);
    await eventually('the old token refused', async () => (await cache.authenticate(source.slug, token)) === null);
    assert.equal((await cache.authenticate(source.slug, rotated.token))?.id, source.id);
    await eventually('the old token refused', async () => (await cache.authenticate(source.slug, token)) === null);
  });

  test('a deleted source is refused, whether deleted as a source or through its service account', async () => {
    assert.ok(await cache.authenticate(source.slug, token));
    await deleteSource(database.db, source.slug);
    await eventually('the deleted source refused', async () => (await cache.authenticate(source.slug, token)) === null);

    const other = await createSource(database.db, { slug: `acct-${n}`, deletePolicy: 'delete', claim: false });
    assert.ok(await cache.authenticate(other.source.slug, other.token));
    const client = await database.db.connect();
    try {
      await removeUser(client, other.source.serviceAccountId);
    } finally {
      client.release();
    }
    await eventually(
      'the source of a deleted service account refused',
      async () => (await cache.authenticate(other.source.slug, other.token)) === null,
    );
  });

  test('a changed setting reaches requests made with a cached token', async () => {
    assert.equal((await cache.authenticate(source.slug, token))?.deletePolicy, 'delete');
    await updateSource(database.db, source.slug, { deletePolicy: 'deactivate', claim: true });
    await eventually(
      'the new settings served',
      async () => (await cache.authenticate(source.slug, token))?.deletePolicy === 'deactivate',
    );
    assert.equal((await cache.authenticate(source.slug, token))?.claim, true);
  });

  test('when the listening connection is lost, what was cached is forgotten, and rotations are still seen after', async () => {
    assert.ok(await cache.authenticate(source.slug, token));
    const before = counted.lookups();
    const killed = await database.db.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE datname = current_database() AND query = 'LISTEN scimflow_sources'`,
    );
    assert.equal(killed.rowCount, 1, 'one listening connection');
    // Until the cache has noticed, it may still answer from memory; after, every request queries.
    await eventually('a lookup after the loss', async () => {
      await cache.authenticate(source.slug, token);
      return counted.lookups() > before;
    });
    const rotated = await rotateSourceToken(database.db, source.slug);
    await eventually('the old token refused', async () => (await cache.authenticate(source.slug, token)) === null);
    assert.equal((await cache.authenticate(source.slug, rotated.token))?.id, source.id);
  });

  test("ending the pool is not held up by the cache's listening connection", async () => {
    const pool = createDb(database.url, { max: 2 });
    const own = createSourceAuthenticator(pool, { now: FROZEN });
    assert.ok(await own.authenticate(source.slug, token));
    // With a clock that never moves the connection is never idle: only the pool's ending gives it back.
    await pool.end();
    assert.equal(pool.totalCount, 0);
  });
});
