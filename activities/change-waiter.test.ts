/** The change waiter's one LISTEN connection: handed back to the pool once, however it ends. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type pg from 'pg';
import type { Db } from '../db/index.ts';
import { createChangeWaiter } from './change-waiter.ts';

/** A pool whose clients count their releases and throw on a second one, as pg does. */
function fakePool(options: { failListen?: boolean } = {}) {
  const clients: Array<EventEmitter & { releases: number }> = [];
  const db = {
    connect() {
      const client = Object.assign(new EventEmitter(), {
        releases: 0,
        query: () => {
          if (!options.failListen) return Promise.resolve({ rows: [] });
          // The connection fails: pg emits its error, then rejects the query.
          client.emit('error', new Error('Connection terminated unexpectedly'));
          return Promise.reject(new Error('Connection terminated unexpectedly'));
        },
        release: () => {
          client.releases += 1;
          if (client.releases > 1)
            throw new Error('Release called on client which has already been released to the pool.');
        },
      });
      clients.push(client);
      return Promise.resolve(client as unknown as pg.PoolClient);
    },
  };
  return { db: db as unknown as Db, clients };
}

test('a listening connection that fails after it was handed back is not handed back again', async () => {
  const { db, clients } = fakePool();
  const waiter = createChangeWaiter(db);
  const { woken } = await waiter.subscribe('provider-1', 5);
  await woken;
  // The last wait ended: the connection went back to the pool, which then drops it (its database went away).
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(clients[0]?.releases, 1);
  clients[0]?.emit('error', new Error('terminating connection due to administrator command'));
  assert.equal(clients[0]?.releases, 1);
});

test('a LISTEN that fails after the connection reported its error hands the connection back once, and the next wait reconnects', async () => {
  const { db, clients } = fakePool({ failListen: true });
  const waiter = createChangeWaiter(db);
  const { woken } = await waiter.subscribe('provider-1', 5);
  await woken;
  assert.equal(clients[0]?.releases, 1);
  await (
    await waiter.subscribe('provider-1', 5)
  ).woken;
  assert.equal(clients.length, 2, 'a new connection was asked for');
});

test('a wait stopped before its time is up hands the listening connection back at once', async () => {
  const { db, clients } = fakePool();
  const waiter = createChangeWaiter(db);
  const wait = await waiter.subscribe('provider-1', 60_000);
  wait.stop();
  await wait.woken;
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(clients[0]?.releases, 1, 'back in the pool, not a minute later');
  wait.stop();
  assert.equal(clients[0]?.releases, 1, 'a second stop does nothing');
});
