import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { AIMD, createSharedBudget, type BudgetStore, type SharedBudget, type RateLimit } from '../../budget/index.ts';
import { createDb, createRateBudgetStore, type Db } from '../../db/index.ts';
import { ScimRequestError } from '../../errors/index.ts';
import { createScimClient, type ScimClient } from '../../scim/index.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

/** A target that logs when each request arrived and how it was answered; `answer` decides the status. */
let server: Server;
let baseUrl: string;
let log: Array<{ at: number; status: number }>;
let inFlight: number;
let mostInFlight: number;
let holdMs: number;
let answer: () => number;

function respond(res: ServerResponse, status: number): void {
  log.push({ at: performance.now(), status });
  inFlight -= 1;
  res.writeHead(status, { 'content-type': 'application/scim+json' });
  res.end(JSON.stringify(status === 429 ? { status: '429', detail: 'slow down' } : { id: 'x' }));
}

before(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      const status = answer();
      if (holdMs > 0) setTimeout(() => respond(res, status), holdMs);
      else respond(res, status);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/scim/v2`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  log = [];
  inFlight = 0;
  mostInFlight = 0;
  holdMs = 0;
  answer = () => 201;
});

/** One simulated worker process: a pool of its own on the shared database, its own budget and client. */
interface Worker {
  db: Db;
  budget: SharedBudget;
  client: ScimClient;
}

function startWorker(testDb: TestDatabase, name: string, limit: RateLimit, store?: (db: Db) => BudgetStore): Worker {
  const db = createDb(testDb.url, { max: 2 });
  const target = new URL(baseUrl).origin;
  const budget = createSharedBudget((store ?? createRateBudgetStore)(db), target, name, limit, {
    leaseTtlMs: 1500,
    renewMs: 300,
    retryMs: 100,
  });
  return { db, budget, client: createScimClient({ baseUrl, limiter: budget, connections: 8 }) };
}

async function stopWorker(worker: Worker): Promise<void> {
  await worker.budget.close();
  await worker.client.close();
  await worker.db.end();
}

/** Sends `count` POSTs as fast as the worker's budget allows, `parallel` at a time, retrying each 429. */
async function send(worker: Worker, count: number, parallel: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next += 1;
        for (;;) {
          try {
            await worker.client.request('POST', '/Users', { body: {} });
            break;
          } catch (error) {
            if (!(error instanceof ScimRequestError) || error.code !== 'ERR_SCIM_RATE_LIMITED') throw error;
          }
        }
      }
    }),
  );
}

describe('the shared rate budget of a target', () => {
  let testDb: TestDatabase;
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(async () => {
    await testDb.drop();
  });

  test('three workers together stay within the target rate', async () => {
    const limit = { requestsPerSecond: 20 };
    const workers = ['a', 'b', 'c'].map((name) => startWorker(testDb, `rate-${name}`, limit));
    try {
      const started = performance.now();
      await Promise.all(workers.map((worker) => send(worker, 30, 4)));
      assert.equal(log.length, 90);
      assert.ok(
        log.every((entry) => entry.status === 201),
        'every request went through',
      );
      // The shared bucket issues at most its burst plus the rate over the time elapsed; each worker may hold one
      // unspent grant (a tenth of a second's worth) on top. Without sharing, three buckets would send 3x the rate.
      const seconds = (log.at(-1)!.at - started) / 1000;
      const allowed = 1 + limit.requestsPerSecond * AIMD.burstSeconds + limit.requestsPerSecond * seconds + 3 * 2;
      assert.ok(log.length <= allowed, `${log.length} requests in ${seconds.toFixed(2)} s, allowed ${allowed}`);
    } finally {
      await Promise.all(workers.map(stopWorker));
    }
  });

  test('three workers together keep no more requests in flight than the target concurrency', async () => {
    const limit = { requestsPerSecond: 10_000, concurrency: 4 };
    holdMs = 20;
    const workers = ['a', 'b', 'c'].map((name) => startWorker(testDb, `slots-${name}`, limit));
    try {
      await Promise.all(workers.map((worker) => send(worker, 20, 8)));
      assert.equal(log.length, 60);
      assert.ok(mostInFlight <= 4, `${mostInFlight} in flight at once`);
    } finally {
      await Promise.all(workers.map(stopWorker));
    }
  });

  test('the slots of a worker that died come back when its lease expires', async () => {
    const limit = { requestsPerSecond: 10_000, concurrency: 3 };
    // The dying worker's database calls fail from the moment it dies, as a killed process's would stop.
    let dead = false;
    const dying = startWorker(testDb, 'dying', limit, (db) => {
      const store = createRateBudgetStore(db);
      const unlessDead =
        <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
        (...args: A): Promise<R> =>
          dead ? Promise.reject(new Error('worker died')) : fn(...args);
      return {
        take: unlessDead(store.take),
        throttled: unlessDead(store.throttled),
        lease: unlessDead(store.lease),
        release: unlessDead(store.release),
      };
    });
    const survivor = startWorker(testDb, 'survivor', limit);
    try {
      const held = await Promise.all([0, 1, 2].map(() => dying.budget.acquire()));
      assert.equal(held.length, 3);
      dead = true;
      // The survivor gets all three slots, which only an expired lease can free: the dying worker never released.
      const permits = await Promise.all([0, 1, 2].map(() => survivor.budget.acquire()));
      assert.equal(permits.length, 3);
      const { rows } = await testDb.db.query<{ holder: string; slots: number }>(
        'SELECT holder, slots FROM rate_budget_leases ORDER BY holder',
      );
      assert.deepEqual(rows, [{ holder: 'survivor', slots: 3 }]);
      for (const permit of permits) permit.release({ status: 201 });
    } finally {
      await stopWorker(survivor);
      await dying.budget.close();
      await dying.client.close();
      await dying.db.end();
    }
  });

  test('a target that answers 429 beyond 10 writes/s, configured at 40/s, is driven near 10/s with few 429s', async () => {
    const allowed = 10;
    let bucket = { tokens: allowed, at: performance.now() };
    answer = () => {
      const now = performance.now();
      bucket = { tokens: Math.min(allowed, bucket.tokens + ((now - bucket.at) / 1000) * allowed), at: now };
      if (bucket.tokens < 1) return 429;
      bucket.tokens -= 1;
      return 201;
    };
    const workers = ['a', 'b'].map((name) => startWorker(testDb, `aimd-${name}`, { requestsPerSecond: 40 }));
    try {
      await Promise.all(workers.map((worker) => send(worker, 50, 4)));
      const accepted = log.filter((entry) => entry.status === 201).length;
      const refused = log.length - accepted;
      assert.equal(accepted, 100);
      // Sent at the configured 40/s, three of every four requests would be refused.
      assert.ok(refused <= 0.2 * log.length, `${refused} of ${log.length} requests answered 429`);
      const { rows } = await testDb.db.query<{ rate: number }>('SELECT rate FROM rate_budgets');
      assert.ok(rows[0]!.rate < 1.5 * allowed, `learned ${rows[0]!.rate.toFixed(1)}/s`);
    } finally {
      await Promise.all(workers.map(stopWorker));
    }
  });
});
