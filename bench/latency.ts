/**
 * Incremental-sync latency: directory writes at a steady rate (default 50, then 200 changes/s, 60 s each) go through the
 * outbox relay, the provider workflow and a batch activity to the loopback SCIM server; a timing proxy in its own
 * process stamps each request as it arrives, so latency = arrival of the first request carrying a change minus
 * the commit of that change. Run: `node --no-node-snapshot bench/latency.ts` (BENCH_RATE — default 50,200, one run per
 * rate —, BENCH_SECONDS, BENCH_USERS tune it; TEMPORAL_ADDRESS as for the tests). BENCH_TRACE=1 adds where the time goes, per stage and
 * inside pushChanges; BENCH_TRACE=2 also what the provider workflow's history shows around stalls.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createProvider, ProviderInputSchema, updateUser } from '../db/index.ts';
import { queueDeliver, startOutboxRelay, temporalDeliver } from '../engine/index.ts';
import { providerSyncWorkflowId } from '../workflows/index.ts';
import { createTestDatabase } from '../test/support/db.ts';
import { startTestEngine } from '../test/support/engine.ts';
import { forkListening } from './fork-listening.ts';

/** One row of the printed table. */
export interface LatencyRow {
  measure: string;
  value: string;
}

const CHANGE_MARK = /chg-(\d+)-/g;

/** The forwarding proxy (child process mode): stamps every request with the wall clock when it arrives. */
function runProxy(upstreamPort: number): void {
  let stamps: Array<{ at: number; method: string; body: string }> = [];
  const server = createServer((req, res) => {
    const at = performance.timeOrigin + performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/_times') {
        const text = JSON.stringify(stamps);
        if (req.method === 'POST') stamps = [];
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(text);
        return;
      }
      if (req.method !== 'GET') stamps.push({ at, method: req.method ?? '?', body: body.toString('utf8') });
      const upstream = httpRequest(
        { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      upstream.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    console.log(`LISTENING ${typeof address === 'object' && address ? address.port : 0}`);
  });
}

/** One relay delivery as the bench saw it: when the relay handed it over and when Temporal accepted it. */
interface Delivery {
  seq: number;
  calledAt: number;
  acceptedAt: number;
}

/** Per-change stage times (ms since the commit), for the BENCH_TRACE breakdown. */
interface StageTimes {
  k: number;
  claimed: number;
  accepted: number;
  seen: number;
  scheduled: number;
  started: number;
  request: number;
  cause: string;
}

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const eventMs = (t: unknown) =>
  Number((t as { seconds: { toString(): string } }).seconds.toString()) * 1000 +
  ((t as { nanos?: number }).nanos ?? 0) / 1e6;

/** Every run of the provider workflow, oldest first, with its events (walks continued-as-new links back). */
async function workflowRuns(client: Client, workflowId: string): Promise<HistoryEvent[][]> {
  const runs: HistoryEvent[][] = [];
  let runId: string | undefined = (await client.workflow.getHandle(workflowId).describe()).runId;
  while (runId) {
    const history: temporal.api.history.v1.IHistory = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events: HistoryEvent[] = history.events ?? [];
    runs.unshift(events);
    runId = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId ?? undefined;
  }
  return runs;
}

/**
 * Splits each change's latency into stages (BENCH_TRACE=1): commit -> relay claim -> signal accepted -> first
 * workflow task after the signal -> pushChanges scheduled -> started -> first request at the target, and prints
 * percentiles per stage, the slowest changes and what the provider workflow did meanwhile.
 */
async function traceStages(options: {
  client: Client;
  workflowId: string;
  seqs: readonly number[];
  users: readonly string[];
  writtenAt: readonly number[];
  deliveries: readonly Delivery[];
  firstSeen: ReadonlyMap<number, number>;
  requestTimes: readonly number[];
}): Promise<void> {
  const runs = await workflowRuns(options.client, options.workflowId);
  const signals: Array<{ seq: number; at: number; seenAt: number }> = [];
  const pushes: Array<{ at: number; startedAt: number; completedAt: number; users: Set<string> }> = [];
  const cans: number[] = [];
  let wftFailures = 0;
  for (const events of runs) {
    const byId = new Map<string, (typeof pushes)[number]>();
    let waiting: Array<{ seq: number; at: number; seenAt: number }> = [];
    for (const e of events) {
      const at = eventMs(e.eventTime);
      if (e.workflowExecutionSignaledEventAttributes?.signalName === 'directoryChanges') {
        const payload = e.workflowExecutionSignaledEventAttributes.input?.payloads?.[0];
        const changes = payload ? defaultPayloadConverter.fromPayload<{ seq: number }>(payload) : { seq: 0 };
        const signal = { seq: changes.seq, at, seenAt: Number.NaN };
        signals.push(signal);
        waiting.push(signal);
      }
      if (e.workflowTaskStartedEventAttributes) {
        for (const s of waiting) s.seenAt = at;
        waiting = [];
      }
      if (e.workflowTaskFailedEventAttributes || e.workflowTaskTimedOutEventAttributes) wftFailures += 1;
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled?.activityType?.name === 'pushChanges') {
        const payload = scheduled.input?.payloads?.[0];
        const input = payload ? defaultPayloadConverter.fromPayload<{ userIds: string[] }>(payload) : { userIds: [] };
        const push = { at, startedAt: Number.NaN, completedAt: Number.NaN, users: new Set(input.userIds) };
        pushes.push(push);
        byId.set(String(e.eventId), push);
      }
      const started = e.activityTaskStartedEventAttributes;
      if (started) {
        const push = byId.get(String(started.scheduledEventId));
        if (push) push.startedAt = at;
      }
      const completed = e.activityTaskCompletedEventAttributes;
      if (completed) {
        const push = byId.get(String(completed.scheduledEventId));
        if (push) push.completedAt = at;
      }
      if (e.workflowExecutionContinuedAsNewEventAttributes) cans.push(at);
    }
  }
  if (process.env['BENCH_TRACE'] === '2') {
    // The events around every failed workflow task and every continue-as-new, times relative to that event.
    for (const events of runs) {
      for (const [i, e] of events.entries()) {
        if (
          !e.workflowTaskFailedEventAttributes &&
          !e.workflowTaskTimedOutEventAttributes &&
          !e.workflowExecutionContinuedAsNewEventAttributes
        )
          continue;
        const at = eventMs(e.eventTime);
        console.log(`around event ${String(e.eventId)} at ${((at - options.writtenAt[0]!) / 1000).toFixed(1)} s:`);
        for (const near of events.slice(Math.max(0, i - 12), i + 6)) {
          const kind = Object.keys(near).find((key) => key.endsWith('EventAttributes')) ?? '?';
          const failed = near.workflowTaskFailedEventAttributes;
          const detail = failed ? ` cause ${String(failed.cause)}: ${failed.failure?.message ?? ''}` : '';
          console.log(`  ${(eventMs(near.eventTime) - at).toFixed(0).padStart(6)} ms ${kind}${detail}`);
        }
      }
    }
  }
  if (process.env['BENCH_TRACE'] === '2') {
    const t0 = options.writtenAt[0]!;
    for (const events of runs) {
      for (let i = 1; i < events.length; i += 1) {
        const gap = eventMs(events[i]!.eventTime) - eventMs(events[i - 1]!.eventTime);
        if (gap > 300)
          console.log(
            `history gap of ${gap.toFixed(0)} ms before event ${String(events[i]!.eventId)} at ${((eventMs(events[i]!.eventTime) - t0) / 1000).toFixed(2)} s`,
          );
      }
    }
    for (const events of runs.slice(1)) {
      const first = eventMs(events[0]!.eventTime);
      console.log(`start of a run at ${((first - t0) / 1000).toFixed(2)} s:`);
      for (const e of events.slice(0, 16)) {
        const kind = Object.keys(e).find((key) => key.endsWith('EventAttributes')) ?? '?';
        console.log(`  ${(eventMs(e.eventTime) - first).toFixed(0).padStart(6)} ms ${String(e.eventId)} ${kind}`);
      }
    }
    for (const d of options.deliveries) {
      if (d.acceptedAt - d.calledAt > 300)
        console.log(
          `signal took ${(d.acceptedAt - d.calledAt).toFixed(0)} ms from ${((d.calledAt - t0) / 1000).toFixed(2)} s`,
        );
    }
  }
  // The first signal of each batch (the relay may send a batch again when Temporal is slow to accept it).
  const signalBySeq = new Map<number, (typeof signals)[number]>();
  for (const s of signals) if (!signalBySeq.has(s.seq)) signalBySeq.set(s.seq, s);
  const deliveries = [...options.deliveries].sort((a, b) => a.seq - b.seq);
  const stages: StageTimes[] = [];
  let d = 0;
  let p = 0;
  for (let k = 0; k < options.seqs.length; k += 1) {
    const seq = options.seqs[k]!;
    while (d < deliveries.length && deliveries[d]!.seq < seq) d += 1;
    const delivery = deliveries[d];
    const signal = delivery ? signalBySeq.get(delivery.seq) : undefined;
    const request = options.firstSeen.get(k);
    if (!delivery || request === undefined) continue;
    const w = options.writtenAt[k]!;
    const canBetween = cans.some((at) => at >= w && at <= request);
    let push: (typeof pushes)[number] | undefined;
    if (signal) {
      while (p < pushes.length && pushes[p]!.at < signal.at) p += 1;
      push = pushes.slice(p).find((candidate) => candidate.users.has(options.users[k]!));
    } else {
      // Taken from the provider's queue (no signal): the push under way when its request arrived.
      push = pushes.find((candidate) => candidate.startedAt <= request && request <= candidate.completedAt);
    }
    if (!push) continue;
    const seen = signal ? signal.seenAt : delivery.acceptedAt;
    const scheduled = Math.max(push.at, seen);
    const started = Math.max(push.startedAt, scheduled);
    stages.push({
      k,
      claimed: delivery.calledAt - w,
      accepted: delivery.acceptedAt - w,
      seen: seen - w,
      scheduled: scheduled - w,
      started: started - w,
      request: request - w,
      cause: canBetween ? 'continue-as-new in between' : '',
    });
  }
  const names = ['claimed', 'accepted', 'seen', 'scheduled', 'started', 'request'] as const;
  const step = (s: StageTimes, i: number) => s[names[i]!] - (i === 0 ? 0 : s[names[i - 1]!]);
  console.log(`\nStage breakdown of ${stages.length} changes (ms spent in each step; p50 / p95 / p99 / max)`);
  const labels = [
    'commit -> relay claim',
    'claim -> signal accepted/queued',
    'accepted -> workflow task',
    'task/queued -> push scheduled',
    'scheduled -> started',
    'started -> first request',
  ];
  for (const [i, label] of labels.entries()) {
    const values = stages.map((s) => step(s, i)).sort((a, b) => a - b);
    console.log(
      `  ${label.padEnd(30)} ${[50, 95, 99].map((q) => percentile(values, q).toFixed(0)).join(' / ')} / ${values.at(-1)?.toFixed(0)}`,
    );
  }
  const slowest = [...stages]
    .sort((a, b) => b.request - a.request)
    .slice(0, Math.max(5, Math.ceil(stages.length / 100)));
  console.log(`Slowest changes (cumulative ms at each step):`);
  for (const s of slowest.slice(0, 12)) {
    console.log(
      `  #${s.k}: ${names.map((n) => `${n} ${s[n].toFixed(0)}`).join(', ')}${s.cause ? ` (${s.cause})` : ''}`,
    );
  }
  // Inside pushChanges (the requests of one push arrive between its start and its completion).
  const setup: number[] = [];
  const gaps: number[] = [];
  const after: number[] = [];
  const turnaround: number[] = [];
  const duration: number[] = [];
  const times = [...options.requestTimes].sort((a, b) => a - b);
  for (const [i, push] of pushes.entries()) {
    const inside = times.filter((at) => at >= push.startedAt && at <= push.completedAt);
    duration.push(push.completedAt - push.startedAt);
    const next = pushes[i + 1];
    if (next) turnaround.push(next.at - push.completedAt);
    if (inside.length === 0) continue;
    setup.push(inside[0]! - push.startedAt);
    after.push(push.completedAt - inside.at(-1)!);
    if (inside.length > 1) gaps.push((inside.at(-1)! - inside[0]!) / (inside.length - 1));
  }
  const mean = (values: readonly number[]) =>
    (values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1)).toFixed(1);
  const objects = pushes.reduce((n, push) => n + push.users.size, 0) / Math.max(pushes.length, 1);
  console.log(
    `pushChanges: ${objects.toFixed(1)} users per push, mean duration ${mean(duration)} ms = start to first request ${mean(setup)} ms ` +
      `+ ${mean(gaps)} ms between requests + last request to completion ${mean(after)} ms; completion to next push scheduled ${mean(turnaround)} ms`,
  );
  const startedAt = options.writtenAt[0]!;
  console.log(
    `runs ${runs.length} (continued as new at ${cans.map((at) => `${((at - startedAt) / 1000).toFixed(1)} s`).join(', ') || 'never'}), ` +
      `pushChanges ${pushes.length}, signals ${signals.length}, relay deliveries ${deliveries.length}, failed workflow tasks ${wftFailures}`,
  );
  const events = runs.reduce((n, run) => n + run.length, 0);
  console.log(`history events ${events}: ${(events / Math.max(pushes.length, 1)).toFixed(1)} per push`);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Runs the benchmark and returns its table rows. */
export async function benchLatency(
  options: { rate?: number; seconds?: number; users?: number } = {},
): Promise<LatencyRow[]> {
  const rate = options.rate ?? 50;
  const seconds = options.seconds ?? 60;
  const userCount = options.users ?? 500;
  const testDb = await createTestDatabase();
  const engine = await startTestEngine({ db: testDb.db });
  const target = await forkListening(new URL('./loopback-target.ts', import.meta.url));
  const proxy = await forkListening(new URL(import.meta.url), ['proxy', String(target.port)]);
  const proxyOrigin = `http://127.0.0.1:${proxy.port}`;
  // The relay's own deliver, timed: when each batch was handed over and when it was queued (or Temporal accepted it).
  const deliveries: Delivery[] = [];
  const signal = queueDeliver(testDb.db, temporalDeliver(engine.client, engine.taskQueue));
  const relay = await startOutboxRelay({
    db: testDb.db,
    deliver: async (provider, changes) => {
      const calledAt = Date.now();
      await signal(provider, changes);
      deliveries.push({ seq: changes.seq, calledAt, acceptedAt: Date.now() });
    },
  });
  try {
    await testDb.db.query(
      `INSERT INTO users (username, display_name, email) SELECT 'lat.user' || n, 'Latency User ' || n, 'lat.user' || n || '@example.test'
         FROM generate_series(1, $1) AS n`,
      [userCount],
    );
    const ids = (await testDb.db.query<{ id: string }>('SELECT id FROM users ORDER BY username')).rows.map((r) => r.id);
    const provider = await createProvider(
      testDb.db,
      engine.secrets,
      ProviderInputSchema.parse({
        slug: `lat-${randomUUID().slice(0, 8)}`,
        name: 'latency bench',
        baseUrl: `${proxyOrigin}/scim/v2`,
        auth: { mode: 'bearer', token: 'bench' },
      }),
    );
    await engine.fullSync(provider);
    await fetch(`${proxyOrigin}/_times`, { method: 'POST' });
    const { rows: before } = await testDb.db.query<{ seq: string | null }>('SELECT max(seq) AS seq FROM outbox');

    const total = rate * seconds;
    const writtenAt: number[] = [];
    const started = performance.now();
    // Each write starts on time, without waiting for the one before (one at a time, a loaded machine cannot make
    // 200 commits a second); its latency counts from its own commit.
    const writes: Array<Promise<void>> = [];
    for (let k = 0; k < total; k += 1) {
      const due = started + (k * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      writes.push(
        updateUser(testDb.db, ids[k % ids.length]!, { displayName: `chg-${k}-` }).then(() => {
          writtenAt[k] = performance.timeOrigin + performance.now();
        }),
      );
    }
    await Promise.all(writes);
    const achieved = total / ((performance.now() - started) / 1000);

    // Wait (bounded) until the last change has arrived.
    let stamps: Array<{ at: number; method: string; body: string }> = [];
    const deadline = Date.now() + 30_000;
    for (;;) {
      stamps = (await (await fetch(`${proxyOrigin}/_times`)).json()) as typeof stamps;
      if (stamps.some((s) => s.body.includes(`chg-${total - 1}-`)) || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const firstSeen = new Map<number, number>();
    for (const s of stamps) {
      for (const match of s.body.matchAll(CHANGE_MARK)) {
        const k = Number(match[1]);
        if (!firstSeen.has(k)) firstSeen.set(k, s.at);
      }
    }
    const latencies: number[] = [];
    for (let k = 0; k < total; k += 1) {
      const seen = firstSeen.get(k);
      if (seen !== undefined) latencies.push(seen - writtenAt[k]!);
    }
    latencies.sort((a, b) => a - b);
    if (process.env['BENCH_TRACE']) {
      const { rows } = await testDb.db.query<{ seq: string }>('SELECT seq FROM outbox WHERE seq > $1 ORDER BY seq', [
        before[0]?.seq ?? 0,
      ]);
      await traceStages({
        client: engine.client,
        workflowId: providerSyncWorkflowId(provider.slug),
        seqs: rows.map((row) => Number(row.seq)),
        users: Array.from({ length: total }, (_, k) => ids[k % ids.length]!),
        writtenAt,
        deliveries,
        firstSeen,
        requestTimes: stamps.map((stamp) => stamp.at),
      });
    }
    const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
    return [
      {
        measure: 'load',
        value: `${total} changes to ${userCount} users at ${achieved.toFixed(1)} changes/s (target ${rate}/s for ${seconds} s)`,
      },
      {
        measure: 'changes seen at the target',
        value: `${latencies.length} of ${total} (the rest were superseded before sending)`,
      },
      { measure: 'latency p50', value: fmt(percentile(latencies, 50)) },
      { measure: 'latency p95', value: fmt(percentile(latencies, 95)) },
      { measure: 'latency p99', value: fmt(percentile(latencies, 99)) },
      { measure: 'latency max', value: fmt(latencies.at(-1) ?? Number.NaN) },
      { measure: 'write requests per change', value: (stamps.length / total).toFixed(3) },
    ];
  } finally {
    await relay.stop();
    for (const child of [proxy.child, target.child]) {
      child.kill();
      await once(child, 'exit').catch(() => undefined);
    }
    await engine.shutdown();
    await testDb.drop();
  }
}

/** Prints rows as a two-column table. */
export function printLatencyTable(rows: readonly LatencyRow[]): void {
  const width = Math.max(...rows.map((r) => r.measure.length));
  console.log('\nIncremental sync latency (directory write → request at a loopback SCIM target)\n');
  console.log(`| ${'measure'.padEnd(width)} | value |`);
  console.log(`| ${'-'.repeat(width)} | ----- |`);
  for (const row of rows) console.log(`| ${row.measure.padEnd(width)} | ${row.value} |`);
}

/**
 * Runs the benchmark as configured by BENCH_RATE (a rate or a comma-separated list, default 50,200: one run each, on a
 * fresh database and worker), BENCH_SECONDS and BENCH_USERS, and prints one table per rate.
 */
export async function runLatencyBench(env: Record<string, string | undefined> = process.env): Promise<void> {
  const rates = (env['BENCH_RATE'] || '50,200').split(',').map(Number);
  for (const rate of rates) {
    const rows = await benchLatency({
      rate,
      ...(env['BENCH_SECONDS'] ? { seconds: Number(env['BENCH_SECONDS']) } : {}),
      ...(env['BENCH_USERS'] ? { users: Number(env['BENCH_USERS']) } : {}),
    });
    printLatencyTable(rows);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === 'proxy') {
    runProxy(Number(process.argv[3]));
  } else {
    await runLatencyBench();
    process.exit(0);
  }
}
