/**
 * Full-sync throughput: scimflow (Temporal workflow + activities + PostgreSQL) against a plain HTTP client that
 * replays exactly the requests scimflow sent, at the same concurrency, into the same loopback SCIM server.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import type { Client } from '@temporalio/client';
import { Pool } from 'undici';
import { createProvider, ProviderInputSchema, type Db, type ProviderView, type SecretSealer } from '../db/index.ts';
import { createTestDatabase } from '../test/support/db.ts';
import { startTestEngine } from '../test/support/engine.ts';
import { forkListening } from './fork-listening.ts';

/** One row of the printed table. */
export interface BenchRow {
  variant: string;
  value: string;
}

/** Forks the loopback SCIM target (`loopback-target.ts`); `url` is its SCIM base URL. */
export async function startLoopbackTarget(): Promise<{ url: string; origin: string; child: ChildProcess }> {
  const { port, child } = await forkListening(new URL('./loopback-target.ts', import.meta.url));
  const origin = `http://127.0.0.1:${port}`;
  return { url: `${origin}/scim/v2`, origin, child };
}

/** Calls the loopback target's SCIM or control endpoints (`/_stats`, `/_reset`, ...) and returns the JSON body. */
export async function call(origin: string, method: string, path: string): Promise<unknown> {
  const response = await fetch(`${origin}/scim/v2${path}`, { method });
  return response.status === 204 ? undefined : response.json();
}

/**
 * What the loopback target recorded, for {@link replay}: discovery happens once per provider in scimflow, so the replay
 * skips it as well as the control endpoints.
 */
export async function recordedRequests(origin: string): Promise<Array<{ method: string; path: string; body: string }>> {
  const recorded: Array<{ method: string; path: string; body: string }> = [];
  // In pages: a million users' requests as one JSON answer are more text than one string may hold.
  for (let page; page === undefined || page.length === LOG_PAGE;) {
    page = (await call(origin, 'GET', `/_log?offset=${recorded.length}&limit=${LOG_PAGE}`)) as typeof recorded;
    for (const request of page) recorded.push(request);
  }
  return recorded.filter((r) => !r.path.startsWith('/ServiceProviderConfig') && !r.path.startsWith('/ResourceTypes'));
}

const LOG_PAGE = 100_000;

/** Stops the loopback target's recording and returns what it recorded (see {@link recordedRequests}). */
export async function stopRecording(origin: string): Promise<Array<{ method: string; path: string; body: string }>> {
  const recorded = await recordedRequests(origin);
  await call(origin, 'POST', '/_record?on=0');
  return recorded;
}

/** Replays `requests` with `concurrency` in flight over a keep-alive pool; returns elapsed ms. */
export async function replay(
  origin: string,
  requests: ReadonlyArray<{ method: string; path: string; body: string }>,
  concurrency: number,
): Promise<number> {
  const pool = new Pool(origin, { connections: concurrency });
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests.length) {
        const request = requests[next++]!;
        const response = await pool.request({
          method: request.method,
          path: `/scim/v2${request.path}`,
          headers: {
            'content-type': 'application/scim+json',
            accept: 'application/scim+json',
            authorization: 'Bearer bench',
          },
          ...(request.body ? { body: request.body } : {}),
        });
        await response.body.text();
      }
    }),
  );
  const elapsed = performance.now() - started;
  await pool.close();
  return elapsed;
}

/** A Temporal event time as ms since the epoch. */
const eventMs = (t: unknown): number =>
  Number((t as { seconds: { toString(): string } }).seconds.toString()) * 1000 +
  ((t as { nanos?: number }).nanos ?? 0) / 1e6;

/**
 * The ended activity attempts of a workflow, in history order: type, when scheduled, started (the schedule when the
 * history has no start) and ended, and whether it completed; and when the workflow's first and last events were.
 */
async function activityAttempts(client: Client, workflowId: string) {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const scheduled = new Map<string, { type: string; at: number }>();
  const started = new Map<string, number>();
  const attempts: Array<{ type: string; scheduledAt: number; startedAt: number; endedAt: number; completed: boolean }> =
    [];
  for (const e of events) {
    const at = eventMs(e.eventTime);
    const attrs = e.activityTaskScheduledEventAttributes;
    if (attrs) scheduled.set(String(e.eventId), { type: attrs.activityType?.name ?? '?', at });
    if (e.activityTaskStartedEventAttributes)
      started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), at);
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
    if (done) {
      const id = String(done.scheduledEventId);
      const s = scheduled.get(id) ?? { type: '?', at };
      attempts.push({
        type: s.type,
        scheduledAt: s.at,
        startedAt: started.get(id) ?? s.at,
        endedAt: at,
        completed: e.activityTaskCompletedEventAttributes != null,
      });
    }
  }
  const first = events.length > 0 ? eventMs(events[0]!.eventTime) : 0;
  const last = events.length > 0 ? eventMs(events.at(-1)!.eventTime) : 0;
  return { attempts, first, last };
}

/** Prints where a workflow's time went: per activity type, total schedule-to-start and start-to-close. */
export async function traceActivities(client: Client, workflowId: string): Promise<void> {
  const totals = new Map<string, { n: number; wait: number; run: number }>();
  for (const a of (await activityAttempts(client, workflowId)).attempts) {
    if (!a.completed) continue;
    const t = totals.get(a.type) ?? { n: 0, wait: 0, run: 0 };
    t.n += 1;
    t.wait += a.startedAt - a.scheduledAt;
    t.run += a.endedAt - a.startedAt;
    totals.set(a.type, t);
  }
  for (const [type, t] of totals)
    console.log(`${type}: n=${t.n} avg wait ${(t.wait / t.n).toFixed(1)} ms, avg run ${(t.run / t.n).toFixed(1)} ms`);
}

/**
 * Prints when each activity type of a run's workflow ran, from the workflow's start: how many, the first start and the
 * last end, and the busiest moment (most attempts running at once): where the run's time went, phase by phase.
 */
export async function traceTimeline(client: Client, workflowId: string, label: string): Promise<void> {
  const { attempts, first, last } = await activityAttempts(client, workflowId);
  const spans = new Map<string, Array<{ from: number; to: number }>>();
  for (const a of attempts)
    spans.set(a.type, [...(spans.get(a.type) ?? []), { from: a.startedAt - first, to: a.endedAt - first }]);
  console.error(`${label}: workflow ${(last - first).toFixed(0)} ms`);
  for (const [type, list] of spans) {
    const from = Math.min(...list.map((s) => s.from));
    const to = Math.max(...list.map((s) => s.to));
    const busiest = Math.max(...list.map((s) => list.filter((o) => o.from <= s.from && o.to > s.from).length));
    // Each attempt's span when there are few (the phases' planning, say), else their first start and last end.
    const each = list.length <= 3 ? ` (${list.map((s) => `${s.from.toFixed(0)}–${s.to.toFixed(0)}`).join(', ')})` : '';
    console.error(
      `  ${type}: n=${list.length} ${from.toFixed(0)}–${to.toFixed(0)} ms, at most ${busiest} at once${each}`,
    );
  }
}

/** The parts of a V8 CPU profile (`Profiler.stop`) the summary reads. */
interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }>;
  samples?: number[];
  timeDeltas?: number[];
}

/**
 * Profiles the bench process's main thread (where the worker runs its activities) while `fn` runs, writes the
 * profile to `file` (open it in Chrome DevTools) and prints the functions with the most self time, and the same
 * by where they live (a project folder, a package, or V8's own buckets such as (garbage collector)).
 */
export async function profiled<T>(file: string, fn: () => Promise<T>, label = 'the first full sync'): Promise<T> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile };
    session.disconnect();
    await writeFile(file, JSON.stringify(profile));
    printProfile(profile, file, label);
  }
}

function printProfile(profile: CpuProfile, file: string, label: string): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // A sample's time is the gap to the next one.
  for (let i = 0; i < samples.length; i += 1)
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + (deltas[i + 1] ?? 0));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  const idle = [...selfUs]
    .filter(([id]) => byId.get(id)?.callFrame.functionName === '(idle)')
    .reduce((a, [, us]) => a + us, 0);
  const root = new URL('..', import.meta.url).href;
  const local = (url: string): string => (url.startsWith(root) ? url.slice(root.length) : url);
  // A project folder, a package, a Node built-in module, or V8's own buckets such as (garbage collector).
  const where = (functionName: string, url: string): string => {
    if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
    const path = local(url);
    const pkg = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    if (pkg) return pkg[1]!;
    if (path.startsWith('node:')) return path.split('/').slice(0, 2).join('/');
    return path.includes('/') && !path.includes(':') ? `${path.split('/')[0]}/` : path;
  };
  const fns = new Map<string, number>();
  const places = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    const name =
      `${functionName || '(anonymous)'} ${url ? `${local(url).replace(/^node_modules\//, '')}:${lineNumber + 1}` : ''}`.trim();
    fns.set(name, (fns.get(name) ?? 0) + us);
    const place = where(functionName, url);
    places.set(place, (places.get(place) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  console.log(
    `\nCPU profile of ${label} (${file}): ${(total / 1e6).toFixed(2)} s, busy ${(busy / 1e6).toFixed(2)} s; shares of busy time`,
  );
  console.log('top self time by function:');
  for (const [name, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${pct(us)}  ${name}`);
  console.log('self time by place:');
  for (const [name, us] of [...places].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${pct(us)}  ${name}`);
}

/** The parts of a V8 sampling heap profile (`HeapProfiler.stopSampling`) the summary reads. */
interface HeapProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: HeapProfileNode[];
}

/**
 * Samples what the bench process allocates while `fn` runs, garbage included (every 4 KiB on average), writes the
 * profile to `file` (Chrome DevTools reads it as .heapprofile) and prints the bytes per object and the project
 * functions nearest to where they were allocated (code outside the project counts for its nearest project caller).
 */
export async function allocationProfiled<T>(
  file: string,
  fn: () => Promise<T>,
  objects: number,
  label: string,
): Promise<T> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  } as Parameters<Session['post']>[1]);
  try {
    return await fn();
  } finally {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
      profile: { head: HeapProfileNode; samples: Array<{ nodeId: number; size: number }> };
    };
    session.disconnect();
    await writeFile(file, JSON.stringify(profile));
    const bytesAt = new Map<number, number>();
    for (const sample of profile.samples) bytesAt.set(sample.nodeId, (bytesAt.get(sample.nodeId) ?? 0) + sample.size);
    const root = new URL('..', import.meta.url).href;
    const byPlace = new Map<string, number>();
    let total = 0;
    const walk = (node: HeapProfileNode, nearest: string): void => {
      const { functionName, url, lineNumber } = node.callFrame;
      const here =
        url.startsWith(root) && !url.includes('/node_modules/')
          ? `${functionName || '(anonymous)'} ${url.slice(root.length)}:${lineNumber + 1}`
          : nearest;
      const bytes = bytesAt.get(node.id) ?? 0;
      total += bytes;
      byPlace.set(here, (byPlace.get(here) ?? 0) + bytes);
      for (const child of node.children ?? []) walk(child, here);
    };
    walk(profile.head, '(outside the project: Node, packages, V8)');
    const perObject = (bytes: number) => `${(bytes / objects / 1024).toFixed(1).padStart(5)} KiB`;
    console.log(
      `\nAllocations in ${label} (${file}): ${(total / 2 ** 20).toFixed(0)} MiB, ${perObject(total)} per object`,
    );
    for (const [place, bytes] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, 20))
      console.log(`  ${perObject(bytes)}  ${place}`);
  }
}

/** Creates a provider named `prefix` (its slug made unique) sending to `baseUrl` with a bearer token; `fields` over it. */
export function createBenchProvider(
  db: Db,
  secrets: SecretSealer,
  prefix: string,
  baseUrl: string,
  fields: Record<string, unknown>,
): Promise<ProviderView> {
  return createProvider(
    db,
    secrets,
    ProviderInputSchema.parse({
      slug: `${prefix}-${randomUUID().slice(0, 8)}`,
      name: prefix,
      baseUrl,
      auth: { mode: 'bearer', token: 'bench' },
      ...fields,
    }),
  );
}

/** Fills an empty directory with `users` users spread over `groups` groups (each user in one group), in SQL. */
export async function seedBenchDirectory(db: Db, users: number, groups: number): Promise<void> {
  await db.query(
    `INSERT INTO users (username, display_name, email, given_name, family_name)
     SELECT 'bench.user' || n, 'Bench User ' || n, 'bench.user' || n || '@example.test', 'Bench', 'User ' || n
       FROM generate_series(1, $1) AS n`,
    [users],
  );
  await db.query(`INSERT INTO groups (name) SELECT 'bench-group-' || g FROM generate_series(1, $1) AS g`, [groups]);
  await db.query(
    `INSERT INTO group_members (group_id, user_id)
     SELECT g.id, u.id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users) u
       JOIN (SELECT id, row_number() OVER (ORDER BY id) AS n FROM groups) g ON g.n = (u.n % $1) + 1`,
    [groups],
  );
  // As autovacuum would after such a load: without statistics the planner scans whole tables per page.
  await db.query('ANALYZE users, groups, group_members');
}

/**
 * Runs the benchmark and returns its table rows. `BENCH_PROFILE=<file>` profiles the first full sync (see
 * {@link profiled}); `BENCH_TRACE=1` prints each activity type's average wait and run time.
 */
export async function runFullSyncBench(
  options: { users?: number; groups?: number; concurrency?: number; pageSize?: number } = {},
): Promise<BenchRow[]> {
  const users = options.users ?? 10_000;
  const groups = options.groups ?? 500;
  const concurrency = options.concurrency ?? 8;
  const pageSize = options.pageSize ?? 100;
  const testDb = await createTestDatabase();
  const engine = await startTestEngine({ db: testDb.db });
  const target = await startLoopbackTarget();
  try {
    await seedBenchDirectory(testDb.db, users, groups);
    const provider = await createBenchProvider(testDb.db, engine.secrets, 'bench', target.url, {
      pageSize,
      concurrency,
    });

    await call(target.origin, 'POST', '/_record?on=1');
    let started = performance.now();
    const profile = process.env['BENCH_PROFILE'];
    const first = profile ? await profiled(profile, () => engine.fullSync(provider)) : await engine.fullSync(provider);
    const engineMs = performance.now() - started;
    if (process.env['BENCH_TRACE']) await traceActivities(engine.client, first.workflowId);
    if (first.report.failed > 0) {
      const { rows } = await testDb.db.query(
        `SELECT object_type, detail FROM sync_events WHERE run_id = $1 AND action = 'fail' LIMIT 3`,
        [first.runId],
      );
      console.error('failures of the first sync:', JSON.stringify(rows, null, 1));
    }
    const replayed = await stopRecording(target.origin);
    const firstStats = (await call(target.origin, 'GET', '/_stats')) as {
      writes: number;
      users: number;
      groups: number;
    };

    started = performance.now();
    const second = await engine.fullSync(provider);
    const secondMs = performance.now() - started;
    const secondStats = (await call(target.origin, 'GET', '/_stats')) as { writes: number };

    await call(target.origin, 'POST', '/_reset');
    const plainMs = await replay(target.origin, replayed, concurrency);
    const plainStats = (await call(target.origin, 'GET', '/_stats')) as { users: number; groups: number };

    const engineRate = users / (engineMs / 1000);
    const plainRate = users / (plainMs / 1000);
    const byMethod = new Map<string, number>();
    for (const r of replayed) byMethod.set(r.method, (byMethod.get(r.method) ?? 0) + 1);
    return [
      {
        variant: 'directory',
        value: `${users} users in ${groups} groups, concurrency ${concurrency}, batch ${pageSize}`,
      },
      { variant: 'requests per run', value: [...byMethod].map(([m, n]) => `${m} ${n}`).join(', ') },
      {
        variant: 'scimflow first full sync',
        value: `${(engineMs / 1000).toFixed(2)} s, ${engineRate.toFixed(0)} users/s (created ${first.report.created}, failed ${first.report.failed}; target holds ${firstStats.users} users, ${firstStats.groups} groups)`,
      },
      {
        variant: 'plain HTTP client, same requests',
        value: `${(plainMs / 1000).toFixed(2)} s, ${plainRate.toFixed(0)} users/s (target holds ${plainStats.users} users, ${plainStats.groups} groups)`,
      },
      { variant: 'ratio scimflow / plain', value: (engineRate / plainRate).toFixed(2) },
      {
        variant: 'second full sync, no changes',
        value: `${(secondMs / 1000).toFixed(2)} s, ${secondStats.writes - firstStats.writes} writes, unchanged ${second.report.unchanged}`,
      },
    ];
  } finally {
    target.child.kill();
    await once(target.child, 'exit').catch(() => undefined);
    await engine.shutdown();
    await testDb.drop();
  }
}

/** Prints rows as a two-column table. */
export function printTable(title: string, rows: readonly BenchRow[]): void {
  const width = Math.max(...rows.map((r) => r.variant.length));
  console.log(`\n${title}\n`);
  console.log(`| ${'measure'.padEnd(width)} | value |`);
  console.log(`| ${'-'.repeat(width)} | ----- |`);
  for (const row of rows) console.log(`| ${row.variant.padEnd(width)} | ${row.value} |`);
}

if (import.meta.main) {
  printTable('Full sync throughput', await runFullSyncBench());
}
