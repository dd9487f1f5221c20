/**
 * Inbound SCIM source benchmark: users pushed into a source over HTTP against the same rows written straight into
 * the directory with SQL (one transaction per user, same concurrency, a database of its own each), in one run.
 * Prints (1) users/s of the load and its ratio, (2) p50 / p99 of single requests on the loaded directory (create,
 * PATCH, filter lookup) against their SQL equivalents, and the lookup's requests/s, (3) a PATCH adding one member
 * to a 5,000-member group: latency and requests/s against SQL, and against a 10-member group, (4) how long a write takes to reach a downstream SCIMMY target
 * through an outbound provider, made through the source and made directly in the directory, measured quietly: one
 * write at a time, the next only after the last one arrived, the arrival stamped by the target itself.
 * Run: `npm run bench -- inbound` (BENCH_USERS, BENCH_CONCURRENCY, BENCH_SAMPLES, BENCH_GROUP_MEMBERS,
 * BENCH_PROPAGATION tune it; BENCH_PARTS=load skips the propagation part, which needs Temporal).
 */
import { randomUUID } from 'node:crypto';
import {
  addMembers,
  changeUser,
  createGroup,
  createProvider,
  createUser,
  inTransaction,
  insertMembers,
  lockGroup,
  type Db,
  type UserInput,
} from '../db/index.ts';
import { queueDeliver, startOutboxRelay, temporalDeliver } from '../engine/index.ts';
import { startTestEngine } from '../test/support/engine.ts';
import { createTestDatabase } from '../test/support/db.ts';
import { testProviderInput } from '../test/support/providers.ts';
import { startSourceHarness, type TestSource } from '../test/source/harness.ts';
import { startScimTarget } from '../test/servers/index.ts';
import type { BenchRow } from './full-sync.ts';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const UNLIMITED = { ratePerSecond: 1_000_000, burst: 1_000_000 };

function env(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** The n-th user of a load, as a directory row and as a SCIM body carrying the same values. */
function person(prefix: string, n: number): { row: UserInput; body: Record<string, unknown> } {
  const username = `${prefix}${n}@bench.example`;
  const row: UserInput = {
    username,
    displayName: `Person ${n}`,
    email: username,
    givenName: 'Person',
    familyName: `Number ${n}`,
    active: true,
    kind: 'internal',
    attributes: {},
  };
  const body = {
    schemas: [USER_SCHEMA],
    userName: username,
    displayName: row.displayName,
    name: { givenName: row.givenName, familyName: row.familyName },
    emails: [{ value: username, primary: true }],
    active: true,
  };
  return { row, body };
}

/** Runs `work(i)` for i in [0, count) with `concurrency` at a time; returns the seconds it took. */
async function timed(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) await work(i);
    }),
  );
  return (performance.now() - started) / 1000;
}

/** Milliseconds of each of `count` calls made one after another. */
async function latencies(count: number, call: (i: number) => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i += 1) {
    const started = performance.now();
    await call(i);
    out.push(performance.now() - started);
  }
  return out;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

const ms = (value: number) => `${value.toFixed(2)} ms`;

async function expectStatus(
  response: Promise<Response>,
  status: number,
  what: string,
): Promise<Record<string, unknown>> {
  const answer = await response;
  const text = await answer.text();
  if (answer.status !== status) throw new Error(`${what}: HTTP ${answer.status} ${text.slice(0, 300)}`);
  return (text ? JSON.parse(text) : {}) as Record<string, unknown>;
}

function client(source: TestSource) {
  const headers = { authorization: `Bearer ${source.token}`, 'content-type': 'application/scim+json' };
  return {
    create: (body: unknown) =>
      expectStatus(
        fetch(`${source.base}/Users`, { method: 'POST', headers, body: JSON.stringify(body) }),
        201,
        'POST /Users',
      ),
    patch: (id: string, displayName: string) =>
      expectStatus(
        fetch(`${source.base}/Users/${id}`, {
          method: 'PATCH',
          headers,
          body: JSON.stringify({
            schemas: [PATCH_OP],
            Operations: [{ op: 'replace', path: 'displayName', value: displayName }],
          }),
        }),
        200,
        'PATCH /Users',
      ),
    createGroup: (displayName: string, memberIds: readonly string[]) =>
      expectStatus(
        fetch(`${source.base}/Groups`, {
          method: 'POST',
          headers,
          body: JSON.stringify({
            schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
            displayName,
            members: memberIds.map((value) => ({ value })),
          }),
        }),
        201,
        'POST /Groups',
      ),
    // As Entra and Okta add one member: a PATCH with no attributes asked back (answered 204).
    addMember: (groupId: string, userId: string) =>
      expectStatus(
        fetch(`${source.base}/Groups/${groupId}`, {
          method: 'PATCH',
          headers,
          body: JSON.stringify({
            schemas: [PATCH_OP],
            Operations: [{ op: 'add', path: 'members', value: [{ value: userId }] }],
          }),
        }),
        204,
        'PATCH /Groups add member',
      ),
    find: async (userName: string) => {
      const filter = encodeURIComponent(`userName eq "${userName}"`);
      const found = await expectStatus(fetch(`${source.base}/Users?filter=${filter}`, { headers }), 200, 'filter');
      if (found['totalResults'] !== 1) throw new Error(`filter found ${String(found['totalResults'])} for ${userName}`);
    },
  };
}

/** The load and single-request parts: a source and a plain database, each with `users` users. */
async function loadAndSingles(rows: BenchRow[]): Promise<void> {
  const users = env('BENCH_USERS', 100_000);
  const concurrency = env('BENCH_CONCURRENCY', 8);
  const samples = env('BENCH_SAMPLES', 1000);
  const harness = await startSourceHarness({ rateLimit: UNLIMITED });
  const plain = await createTestDatabase();
  try {
    const source = await harness.addSource({ slug: 'bench' });
    const scim = client(source);
    const sourceIds: string[] = new Array<string>(users);
    const sqlIds: string[] = new Array<string>(users);
    // Warm both paths (connections, JIT, plans) on rows that are not measured.
    await timed(500, concurrency, async (i) => void (await scim.create(person('warm', i).body)));
    await timed(500, concurrency, async (i) => void (await createUser(plain.db, person('warm', i).row)));

    const viaSource = await timed(users, concurrency, async (i) => {
      sourceIds[i] = (await scim.create(person('u', i).body))['id'] as string;
    });
    const viaSql = await timed(users, concurrency, async (i) => {
      sqlIds[i] = (await createUser(plain.db, person('u', i).row)).id;
    });
    // Planner statistics as autovacuum keeps them (the test server runs without it): before an ANALYZE, the lookup
    // by userName of a source owning 100,000 users started from the source's ownership rows (estimated at a few
    // hundred) and took about 2 s each.
    await harness.db.query('ANALYZE users, scim_source_users');
    await plain.db.query('ANALYZE users');
    const count = await harness.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM users`);
    if (count.rows[0]!.n < users) throw new Error(`the source holds ${count.rows[0]!.n} users, not ${users}`);
    rows.push(
      {
        variant: `POST /Users into a source: ${users.toLocaleString('en')} users, ${concurrency} at a time`,
        value: `${Math.round(users / viaSource)} users/s (${viaSource.toFixed(1)} s)`,
      },
      {
        variant: 'baseline: the same rows by SQL (createUser: user + outbox row, one transaction each)',
        value: `${Math.round(users / viaSql)} users/s (${viaSql.toFixed(1)} s)`,
      },
      { variant: 'source time / SQL time', value: `${(viaSource / viaSql).toFixed(2)}x` },
    );

    const pick = (i: number) => Math.floor(((i * 7919) % samples) * (users / samples));
    const singles: Array<[string, () => Promise<number[]>, () => Promise<number[]>]> = [
      [
        'create one user',
        () => latencies(samples, async (i) => void (await scim.create(person('one', i).body))),
        () => latencies(samples, async (i) => void (await createUser(plain.db, person('one', i).row))),
      ],
      [
        'PATCH displayName of one user',
        () => latencies(samples, async (i) => void (await scim.patch(sourceIds[pick(i)]!, `Renamed ${i}`))),
        () =>
          latencies(samples, async (i) => {
            await inTransaction(plain.db, (q) => changeUser(q, sqlIds[pick(i)]!, { displayName: `Renamed ${i}` }));
          }),
      ],
      [
        'find one user by userName eq',
        () => latencies(samples, (i) => scim.find(person('u', pick(i)).row.username)),
        () =>
          latencies(samples, async (i) => {
            const { rows: found } = await plain.db.query(`SELECT * FROM users WHERE lower(username) = lower($1)`, [
              person('u', pick(i)).row.username,
            ]);
            if (found.length !== 1) throw new Error('SQL lookup missed');
          }),
      ],
    ];
    for (const [what, overSource, overSql] of singles) {
      const a = await overSource();
      const b = await overSql();
      rows.push({
        variant: `${what} (${samples} in a row): source p50 / p99`,
        value: `${ms(percentile(a, 50))} / ${ms(percentile(a, 99))}`,
      });
      rows.push({
        variant: `${what}: SQL p50 / p99 (p99 ratio)`,
        value: `${ms(percentile(b, 50))} / ${ms(percentile(b, 99))} (${(percentile(a, 99) / percentile(b, 99)).toFixed(1)}x)`,
      });
    }

    // The same lookup from `concurrency` clients at once.
    const lookups = samples * 4;
    const findSource = await timed(lookups, concurrency, (i) => scim.find(person('u', pick(i % samples)).row.username));
    const findSql = await timed(lookups, concurrency, async (i) => {
      const { rows: found } = await plain.db.query(`SELECT * FROM users WHERE lower(username) = lower($1)`, [
        person('u', pick(i % samples)).row.username,
      ]);
      if (found.length !== 1) throw new Error('SQL lookup missed');
    });
    rows.push(
      {
        variant: `find one user by userName eq, ${concurrency} at a time: source / SQL`,
        value: `${Math.round(lookups / findSource)} / ${Math.round(lookups / findSql)} requests/s (${(findSource / findSql).toFixed(1)}x)`,
      },
      ...(await memberAdds(harness.db, scim, plain.db, sourceIds, sqlIds, samples, concurrency)),
    );
  } finally {
    await harness.close();
    await plain.drop();
  }
}

/**
 * PATCH adding one member to a 5,000-member group (BENCH_GROUP_MEMBERS), as Entra and Okta send it, against the
 * same work by SQL (lock the group, insert the member with its outbox row, move the group's version on): one at a
 * time for latency, then `concurrency` at once on the same group for requests/s; and the same PATCH on a 10-member
 * group, whose ratio shows whether the cost grows with the members. Users come from `sourceIds` / `sqlIds`.
 */
async function memberAdds(
  sourceDb: Db,
  scim: ReturnType<typeof client>,
  plainDb: Db,
  sourceIds: readonly string[],
  sqlIds: readonly string[],
  samples: number,
  concurrency: number,
): Promise<BenchRow[]> {
  const size = env('BENCH_GROUP_MEMBERS', 5000);
  const atOnce = samples * 2;
  const small = 10;
  if (sourceIds.length < size + samples + atOnce + small + samples) {
    throw new Error(`BENCH_USERS must be at least ${size + 2 * samples + atOnce + small} for the group part`);
  }
  const sqlAdd = (groupId: string, userId: string) =>
    inTransaction(plainDb, async (q) => {
      await lockGroup(q, groupId);
      await insertMembers(q, groupId, [userId]);
      await q.query('UPDATE groups SET updated_at = now() WHERE id = $1', [groupId]);
    });
  const big = (await scim.createGroup('bench-big', sourceIds.slice(0, size)))['id'] as string;
  const bigSql = (await createGroup(plainDb, { name: 'bench-big', attributes: {} })).id;
  await addMembers(plainDb, bigSql, sqlIds.slice(0, size));
  const tail = sourceIds.length - small - samples;
  const little = (await scim.createGroup('bench-small', sourceIds.slice(tail, tail + small)))['id'] as string;
  await sourceDb.query('ANALYZE group_members, groups, scim_source_groups');
  await plainDb.query('ANALYZE group_members, groups');

  const one = (i: number) => size + i;
  const bigSource = await latencies(samples, (i) => scim.addMember(big, sourceIds[one(i)]!).then(() => undefined));
  const bigBySql = await latencies(samples, (i) => sqlAdd(bigSql, sqlIds[one(i)]!));
  const littleSource = await latencies(samples, (i) =>
    scim.addMember(little, sourceIds[tail + small + i]!).then(() => undefined),
  );
  const many = (i: number) => size + samples + i;
  const rateSource = await timed(
    atOnce,
    concurrency,
    async (i) => void (await scim.addMember(big, sourceIds[many(i)]!)),
  );
  const rateSql = await timed(atOnce, concurrency, (i) => sqlAdd(bigSql, sqlIds[many(i)]!));

  const expected = size + samples + atOnce;
  for (const [db, id] of [
    [sourceDb, big],
    [plainDb, bigSql],
  ] as const) {
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM group_members WHERE group_id = $1', [
      id,
    ]);
    if (rows[0]!.n !== expected) throw new Error(`the big group has ${rows[0]!.n} members, not ${expected}`);
  }
  const sizeText = size.toLocaleString('en');
  return [
    {
      variant: `PATCH add one member to a ${sizeText}-member group (${samples} in a row): source p50 / p99`,
      value: `${ms(percentile(bigSource, 50))} / ${ms(percentile(bigSource, 99))}`,
    },
    {
      variant: 'add one member: SQL p50 / p99 (p99 ratio)',
      value: `${ms(percentile(bigBySql, 50))} / ${ms(percentile(bigBySql, 99))} (${(percentile(bigSource, 99) / percentile(bigBySql, 99)).toFixed(1)}x)`,
    },
    {
      variant: `same PATCH on a ${small}-member group: source p50 / p99 (${sizeText} ÷ ${small} p50)`,
      value: `${ms(percentile(littleSource, 50))} / ${ms(percentile(littleSource, 99))} (${(percentile(bigSource, 50) / percentile(littleSource, 50)).toFixed(2)}x)`,
    },
    {
      variant: `PATCH add member to the ${sizeText}-member group, ${concurrency} at a time: source / SQL`,
      value: `${Math.round(atOnce / rateSource)} / ${Math.round(atOnce / rateSql)} requests/s (${(rateSource / rateSql).toFixed(1)}x)`,
    },
  ];
}

/** A write through the source, and one straight into the directory, each until it reaches a SCIMMY target. */
async function propagation(rows: BenchRow[]): Promise<void> {
  const writes = env('BENCH_PROPAGATION', 30);
  const harness = await startSourceHarness({ rateLimit: UNLIMITED });
  const db: Db = harness.db;
  const engine = await startTestEngine({ db });
  const target = await startScimTarget();
  const relay = await startOutboxRelay({
    db,
    deliver: queueDeliver(db, temporalDeliver(engine.client, engine.taskQueue)),
  });
  try {
    await createProvider(db, engine.secrets, testProviderInput(target, `inb-${randomUUID().slice(0, 4)}`));
    const scim = client(await harness.addSource({ slug: 'entra' }));
    const arrived = async (userName: string): Promise<number> => {
      for (;;) {
        const request = (await target.requests()).find(
          (r) => r.method === 'POST' && (r.body as { userName?: string } | null)?.userName === userName,
        );
        if (request) return request.at;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const measure = async (write: (n: number) => Promise<unknown>, prefix: string): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < writes + 3; i += 1) {
        const started = Date.now();
        await write(i);
        const at = await arrived(person(prefix, i).row.username);
        // The first three warm the provider workflow, the worker and the target's connections.
        if (i >= 3) out.push(at - started);
        await target.resetLog();
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      return out;
    };
    const viaSource = await measure((i) => scim.create(person('src', i).body), 'src');
    const direct = await measure((i) => createUser(db, person('dir', i).row), 'dir');
    const within = viaSource.filter((value) => value <= 1000).length;
    rows.push(
      {
        variant: `source write -> downstream SCIMMY target (${writes}, one at a time): p50 / p95 / max`,
        value: `${ms(percentile(viaSource, 50))} / ${ms(percentile(viaSource, 95))} / ${ms(Math.max(...viaSource))}`,
      },
      { variant: 'of those within a second', value: `${within} of ${viaSource.length}` },
      {
        variant: 'baseline: directory write by SQL -> target: p50 / p95 / max',
        value: `${ms(percentile(direct, 50))} / ${ms(percentile(direct, 95))} / ${ms(Math.max(...direct))}`,
      },
      {
        variant: 'source p50 / baseline p50',
        value: `${(percentile(viaSource, 50) / percentile(direct, 50)).toFixed(2)}x`,
      },
    );
  } finally {
    await relay.stop();
    await engine.shutdown();
    await target.close();
    await harness.close();
  }
}

/** Runs every part; never part of `npm test`. */
export async function runInboundBench(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const parts = (process.env['BENCH_PARTS'] ?? 'load,propagation').split(',');
  if (parts.includes('load')) await loadAndSingles(rows);
  if (parts.includes('propagation')) await propagation(rows);
  return rows;
}
