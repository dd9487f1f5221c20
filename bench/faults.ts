/**
 * Convergence under faults, measured on one loopback target behind the tests' fault-injecting proxy (each proxy a
 * process of its own): (1) 2,000 users with 20 % of requests failing, against the same sync without faults;
 * (2) a target answering every request 50 ms late, against the bound of requests in flight ÷ latency; (3) a target
 * taking 600 writes/min and answering 429 beyond it, with the provider's rate limit set to that.
 */
import { once } from 'node:events';
import type { ProviderView } from '../db/index.ts';
import type { FaultProxyOptions } from '../test/servers/index.ts';
import { createTestDatabase } from '../test/support/db.ts';
import { startTestEngine, type TestEngine } from '../test/support/engine.ts';
import { forkListening } from './fork-listening.ts';
import { call, createBenchProvider, startLoopbackTarget, type BenchRow } from './full-sync.ts';

const USERS = 2000;
const PACED_USERS = 600;
const CONCURRENCY = 4;
const LATENCY_MS = 50;
const WRITES_PER_SECOND = 10;

interface Proxy {
  url: string;
  counts(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

async function startProxy(options: FaultProxyOptions): Promise<Proxy> {
  const { port, child } = await forkListening(new URL('./fault-proxy-process.ts', import.meta.url), [
    JSON.stringify(options),
  ]);
  let next = 0;
  return {
    url: `http://127.0.0.1:${port}${new URL(options.target).pathname}`,
    counts: () =>
      new Promise((resolve) => {
        const id = (next += 1);
        const listener = (message: { id: number; result: Record<string, number> }) => {
          if (message.id !== id) return;
          child.off('message', listener);
          resolve(message.result);
        };
        child.on('message', listener);
        child.send({ id, call: 'counts' });
      }),
    async stop() {
      child.disconnect();
      await once(child, 'exit').catch(() => undefined);
    },
  };
}

const sum = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

/** Runs full syncs (at most three, as the schedule would) until the target holds exactly `expected`; times it. */
async function syncToExactState(
  engine: TestEngine,
  provider: ProviderView,
  origin: string,
  expected: ReadonlySet<string>,
): Promise<{ ms: number; runs: number; failedRuns: number; exact: boolean; duplicates: number; missing: number }> {
  const started = performance.now();
  let runs = 0;
  let failedRuns = 0;
  for (;;) {
    runs += 1;
    try {
      await engine.fullSync(provider);
    } catch {
      failedRuns += 1;
    }
    const { Resources } = (await call(origin, 'GET', '/Users')) as { Resources: Array<{ userName: string }> };
    const names = Resources.map((user) => user.userName);
    const distinct = new Set(names);
    const missing = [...expected].filter((name) => !distinct.has(name)).length;
    const exact = missing === 0 && names.length === expected.size && distinct.size === names.length;
    if (exact || runs === 3) {
      return {
        ms: performance.now() - started,
        runs,
        failedRuns,
        exact,
        duplicates: names.length - distinct.size,
        missing,
      };
    }
  }
}

/** Runs the three measurements and returns the table rows. */
export async function runFaultsBench(): Promise<BenchRow[]> {
  const testDb = await createTestDatabase();
  const engine = await startTestEngine({ db: testDb.db });
  const target = await startLoopbackTarget();
  const proxies: Proxy[] = [];
  try {
    await testDb.db.query(
      `INSERT INTO users (username, display_name, email)
       SELECT 'fault.user' || n, 'Fault User ' || n, 'fault.user' || n || '@example.test' FROM generate_series(1, $1) AS n`,
      [USERS],
    );
    const { rows } = await testDb.db.query<{ id: string }>(
      `WITH g AS (INSERT INTO groups (name) VALUES ('paced') RETURNING id),
            m AS (INSERT INTO group_members (group_id, user_id)
                  SELECT g.id, u.id FROM g, (SELECT id FROM users ORDER BY username LIMIT $1) u)
       SELECT id FROM g`,
      [PACED_USERS],
    );
    const pacedGroup = rows[0]!.id;
    const all = new Set(Array.from({ length: USERS }, (_, i) => `fault.user${i + 1}`));
    const paced = new Set(
      (
        await testDb.db.query<{ username: string }>(
          `SELECT username FROM users u JOIN group_members m ON m.user_id = u.id WHERE m.group_id = $1`,
          [pacedGroup],
        )
      ).rows.map((row) => row.username),
    );
    const proxied = async (options: Omit<FaultProxyOptions, 'target'>, fields: Record<string, unknown> = {}) => {
      await call(target.origin, 'POST', '/_reset');
      const proxy = await startProxy({ target: target.url, ...options });
      proxies.push(proxy);
      const provider = await createBenchProvider(testDb.db, engine.secrets, 'faults', proxy.url, {
        pageSize: 100,
        concurrency: CONCURRENCY,
        ...fields,
      });
      return { proxy, provider };
    };

    // (1) The same 2,000 users without faults, then with 20 % of requests failing.
    const clean = await proxied({});
    const calm = await syncToExactState(engine, clean.provider, target.origin, all);
    const faulty = await proxied({
      seed: 11,
      rates: { serverError: 0.1, rateLimited: 0.05, resetBefore: 0.025, resetAfter: 0.025 },
      retryAfter: { seconds: 1 },
    });
    const stormy = await syncToExactState(engine, faulty.provider, target.origin, all);
    const faultCounts = await faulty.proxy.counts();

    // (2) Every forwarded request answered 50 ms late.
    const slow = await proxied({ latencyMs: LATENCY_MS });
    const latent = await syncToExactState(engine, slow.provider, target.origin, all);
    const slowRequests = sum(await slow.proxy.counts());
    const inFlight = CONCURRENCY * CONCURRENCY; // batches in flight × requests in flight per batch
    const bound = inFlight / (LATENCY_MS / 1000);
    const usersPerSecond = USERS / (latent.ms / 1000);

    // (3) A target taking 600 writes/min, 429 beyond; the provider's rate limit is that documented limit.
    const limited = await proxied(
      { writesPerSecond: WRITES_PER_SECOND },
      // The target limits writes only: the budget paces those (lookups would otherwise spend write tokens).
      { scope: { accessGroups: [pacedGroup] }, rateLimit: { requestsPerSecond: WRITES_PER_SECOND, paced: 'writes' } },
    );
    let first: { at: number; writes: number } | undefined;
    let last: { at: number; writes: number } | undefined;
    const poll = setInterval(() => {
      void (call(target.origin, 'GET', '/_stats') as Promise<{ writes: number }>).then(({ writes }) => {
        const at = performance.now();
        if (writes > 0 && first === undefined) first = { at, writes };
        if (writes > (last?.writes ?? 0)) last = { at, writes };
      });
    }, 250);
    const pacedResult = await syncToExactState(engine, limited.provider, target.origin, paced);
    clearInterval(poll);
    const limitCounts = await limited.proxy.counts();
    const refused = (limitCounts['over-limit'] ?? 0) + (limitCounts['rate-limited'] ?? 0);
    const writeRate =
      first && last && last.at > first.at ? (last.writes - first.writes) / ((last.at - first.at) / 1000) : 0;

    const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const state = (r: typeof calm) =>
      `${r.exact ? 'exact' : `NOT exact (${r.missing} missing)`} after ${r.runs} full sync(s)${r.failedRuns > 0 ? `, ${r.failedRuns} failed` : ''}`;
    return [
      { variant: 'directory', value: `${USERS} users, concurrency ${CONCURRENCY}, batch 100, one loopback target` },
      { variant: '(1) no faults: time to exact state', value: `${seconds(calm.ms)}, ${state(calm)}` },
      {
        variant: '(1) 20 % faults: time to exact state',
        value: `${seconds(stormy.ms)}, ${state(stormy)}; faults injected: ${faultCounts['server-error']} 5xx, ${faultCounts['rate-limited']} 429, ${faultCounts['reset-before']} resets before and ${faultCounts['reset-after']} after the write, of ${sum(faultCounts)} requests`,
      },
      { variant: '(1) ratio faults / no faults (aim ≤ 2.0)', value: (stormy.ms / calm.ms).toFixed(2) },
      { variant: '(1) duplicates (must be 0)', value: String(stormy.duplicates) },
      {
        variant: `(2) ${LATENCY_MS} ms per request: users/s`,
        value: `${usersPerSecond.toFixed(0)} users/s (${seconds(latent.ms)}, ${(slowRequests / USERS).toFixed(2)} requests per user, ${state(latent)})`,
      },
      {
        variant: '(2) ÷ bound (aim ≥ 0.8)',
        value: `${(usersPerSecond / bound).toFixed(2)} (bound ${inFlight} in flight ÷ ${LATENCY_MS} ms = ${bound.toFixed(0)}/s)`,
      },
      {
        variant: `(3) ${WRITES_PER_SECOND * 60} writes/min target, ${PACED_USERS} users`,
        value: `${writeRate.toFixed(2)} writes/s achieved; ${seconds(pacedResult.ms)}, ${state(pacedResult)}`,
      },
      { variant: '(3) achieved ÷ allowed (aim ≥ 0.95)', value: (writeRate / WRITES_PER_SECOND).toFixed(3) },
      {
        variant: '(3) requests answered 429 (aim ≤ 1 %)',
        value: `${((100 * refused) / Math.max(1, sum(limitCounts))).toFixed(2)} % (${refused} of ${sum(limitCounts)})`,
      },
    ];
  } finally {
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    target.child.kill();
    await once(target.child, 'exit').catch(() => undefined);
    await engine.shutdown();
    await testDb.drop();
  }
}
