/**
 * Incremental-sync latency: directory writes at a steady rate (default 50 changes/s for 60 s) go through the
 * outbox relay, the provider workflow and a batch activity to the loopback SCIM server; a timing proxy in its own
 * process stamps each request as it arrives, so latency = arrival of the first request carrying a change minus
 * the commit of that change. Run: `node --no-node-snapshot bench/latency.ts` (BENCH_RATE, BENCH_SECONDS,
 * BENCH_USERS tune it; TEMPORAL_ADDRESS as for the tests).
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Client } from '@temporalio/client';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createProvider, ProviderInputSchema, updateUser } from '../db/index.ts';
import { startOutboxRelay, temporalDeliver } from '../engine/index.ts';
import { providerSyncWorkflowId } from '../workflows/index.ts';
import { createTestDatabase } from '../test/support/db.ts';
import { startTestEngine } from '../test/support/engine.ts';

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

async function forkListening(args: string[], file: URL): Promise<{ port: number; child: ChildProcess }> {
  const child = fork(file, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'], execArgv: ['--no-node-snapshot'] });
  let buffer = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const match = /LISTENING (\d+)/.exec(buffer);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`${file.pathname} exited with ${code}`)));
  });
  return { port, child };
}

/** Prints how long the provider workflow's activities waited and ran (BENCH_TRACE=1). */
async function traceWorkflow(client: Client, workflowId: string): Promise<void> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const ms = (t: unknown) => Number((t as { seconds: { toString(): string } }).seconds.toString()) * 1000 + ((t as { nanos?: number }).nanos ?? 0) / 1e6;
  const scheduled = new Map<string, number>();
  const started = new Map<string, number>();
  const timers: number[] = [];
  let n = 0;
  let wait = 0;
  let run = 0;
  for (const e of history.events ?? []) {
    const at = ms(e.eventTime);
    if (e.activityTaskScheduledEventAttributes) scheduled.set(String(e.eventId), at);
    if (e.timerStartedEventAttributes) scheduled.set(`t${String(e.eventId)}`, at);
    if (e.timerFiredEventAttributes) timers.push(at - (scheduled.get(`t${String(e.timerFiredEventAttributes.startedEventId)}`) ?? at));
    if (e.activityTaskStartedEventAttributes) started.set(String(e.activityTaskStartedEventAttributes.scheduledEventId), at);
    if (e.activityTaskCompletedEventAttributes) {
      const id = String(e.activityTaskCompletedEventAttributes.scheduledEventId);
      const s = scheduled.get(id) ?? at;
      const st = started.get(id) ?? s;
      n += 1;
      wait += st - s;
      run += at - st;
    }
  }
  console.log(`activities: ${n}, mean wait ${(wait / n).toFixed(1)} ms, mean run ${(run / n).toFixed(1)} ms, history events ${history.events?.length}, timers fired ${timers.length} after mean ${(timers.reduce((a, b) => a + b, 0) / Math.max(timers.length, 1)).toFixed(0)} ms`);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Runs the benchmark and returns its table rows. */
export async function benchLatency(options: { rate?: number; seconds?: number; users?: number } = {}): Promise<LatencyRow[]> {
  const rate = options.rate ?? 50;
  const seconds = options.seconds ?? 60;
  const userCount = options.users ?? 500;
  const testDb = await createTestDatabase();
  const engine = await startTestEngine({ db: testDb.db });
  const target = await forkListening([], new URL('./loopback-target.ts', import.meta.url));
  const proxy = await forkListening(['proxy', String(target.port)], new URL(import.meta.url));
  const proxyOrigin = `http://127.0.0.1:${proxy.port}`;
  const relay = await startOutboxRelay({ db: testDb.db, deliver: temporalDeliver(engine.client, engine.taskQueue) });
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

    const total = rate * seconds;
    const writtenAt: number[] = [];
    const started = performance.now();
    for (let k = 0; k < total; k += 1) {
      const due = started + (k * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await updateUser(testDb.db, ids[k % ids.length]!, { displayName: `chg-${k}-` });
      writtenAt[k] = performance.timeOrigin + performance.now();
    }
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
    if (process.env['BENCH_TRACE']) await traceWorkflow(engine.client, providerSyncWorkflowId(provider.slug));
    const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
    return [
      { measure: 'load', value: `${total} changes to ${userCount} users at ${achieved.toFixed(1)} changes/s (target ${rate}/s for ${seconds} s)` },
      { measure: 'changes seen at the target', value: `${latencies.length} of ${total} (the rest were superseded before sending)` },
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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === 'proxy') {
    runProxy(Number(process.argv[3]));
  } else {
    const env = process.env;
    const rows = await benchLatency({
      ...(env['BENCH_RATE'] ? { rate: Number(env['BENCH_RATE']) } : {}),
      ...(env['BENCH_SECONDS'] ? { seconds: Number(env['BENCH_SECONDS']) } : {}),
      ...(env['BENCH_USERS'] ? { users: Number(env['BENCH_USERS']) } : {}),
    });
    printLatencyTable(rows);
    process.exit(0);
  }
}
