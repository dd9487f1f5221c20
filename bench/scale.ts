/**
 * Scale benchmark (`npm run bench -- scale`): one run, one loopback target, a directory of `BENCH_USERS` users
 * (default 10,000) in `BENCH_GROUPS` groups (default users / 20). Measures the first full sync against a plain HTTP
 * client replaying the same requests, the same again with `BENCH_LATENCY_MS` (default 20) of latency per request at
 * the target (with how many requests the target held at once; `BENCH_LATE_ROUNDS` rounds of it, default 3 up to 30,000
 * users and 1 above, the median round reported), the no-change resync, CPU seconds per 1,000 users of
 * the worker (this process), PostgreSQL (the backends of the bench's database) and Temporal (the dev server), the
 * worker's CPU against the plain client's for the same requests, peak worker RSS, and the mapping sandbox's overhead
 * per user over plain JavaScript (measured after the syncs, in the same process: the standalone `mapping` bench is the
 * quieter measure). `BENCH_CONCURRENCY` (8) and `BENCH_PAGE`
 * (100) set the provider; `BENCH_PLAIN_IN_FLIGHT` the plain client's requests in flight (default concurrency², at
 * most 256, as a worker). `BENCH_PROFILE=<file>` profiles the no-change resync and `BENCH_PROFILE_FIRST=<file>` the first sync;
 * `BENCH_HEAP_FIRST=<file>` samples what the first sync allocates; `BENCH_TRACE=1` prints the resync's activities'
 * wait and run times, and for the sync with latency its activities' spans, the worker's event-loop delay, and the
 * requests the target held over time (and the plain client's). The worker's CPU is split into its main thread, V8's
 * threads (garbage collection, compilation) and the rest (isolates, Temporal's core).
 */
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { createTestDatabase } from '../test/support/db.ts';
import { startTestEngine } from '../test/support/engine.ts';
import { testTemporalAddress } from '../test/support/temporal.ts';
import { fork, type ChildProcess } from 'node:child_process';
import {
  allocationProfiled,
  call,
  createBenchProvider,
  profiled,
  seedBenchDirectory,
  startLoopbackTarget,
  traceActivities,
  traceTimeline,
  type BenchRow,
} from './full-sync.ts';
import { ipcCaller } from './fork-listening.ts';
import { runMappingBench } from './mapping.ts';

const GC_MAJOR = constants.NODE_PERFORMANCE_GC_MAJOR;

/**
 * CPU seconds of this process's threads by kind: V8's platform threads (`V8Worker`: concurrent and parallel garbage
 * collection, background compilation) and the rest but the main thread (isolated-vm's, Temporal core's, libuv's).
 */
function threadSeconds(): { v8: number; rest: number } {
  const seconds = { v8: 0, rest: 0 };
  for (const tid of readdirSync('/proc/self/task')) {
    if (Number(tid) === process.pid) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // The thread ended.
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    seconds[name === 'V8Worker' ? 'v8' : 'rest'] += (Number(fields[11]) + Number(fields[12])) / 100;
  }
  return seconds;
}

/** Asks the sampler process (`process-cpu-process.ts`) about the other processes' CPU time. */
class OtherProcesses {
  readonly #child: ChildProcess;
  /** Takes the baseline (`start`), or the CPU seconds each group used since it (`stop`). */
  readonly ask: <R>(call: 'start' | 'stop') => Promise<R>;

  constructor(needles: Record<string, string[]>) {
    this.#child = fork(new URL('./process-cpu-process.ts', import.meta.url), [JSON.stringify(needles)], {
      execArgv: ['--no-node-snapshot'],
    });
    this.ask = ipcCaller(this.#child);
  }

  close(): void {
    this.#child.disconnect();
  }
}

/** CPU seconds of this process, and of the other processes' groups, over one measured phase; this process's memory. */
class CpuMeter {
  readonly #others: OtherProcesses;
  readonly #timer: NodeJS.Timeout;
  readonly #process = process.cpuUsage();
  readonly #mainThread = process.threadCpuUsage();
  readonly #threads = threadSeconds();
  #peakRss = process.memoryUsage.rss();
  // What the RSS is made of at its peak: V8's heap, memory outside it (Buffers, isolates' own heaps are not in it).
  #atPeak = process.memoryUsage();
  // The heap in use just after each full (mark-compact) collection: about what is alive, garbage set aside.
  #liveAfterGc = 0;
  readonly #gcs = new PerformanceObserver((list) => {
    if (list.getEntries().some((entry) => (entry as { detail?: { kind?: number } }).detail?.kind === GC_MAJOR))
      this.#liveAfterGc = Math.max(this.#liveAfterGc, process.memoryUsage().heapUsed);
  });

  private constructor(others: OtherProcesses) {
    this.#others = others;
    this.#timer = setInterval(() => this.#sample(), 200);
    this.#gcs.observe({ entryTypes: ['gc'] });
  }

  /** Starts a phase once the sampler has its baseline. */
  static async start(others: OtherProcesses): Promise<CpuMeter> {
    await others.ask('start');
    return new CpuMeter(others);
  }

  #sample(): void {
    const usage = process.memoryUsage();
    if (usage.rss > this.#peakRss) {
      this.#peakRss = usage.rss;
      this.#atPeak = usage;
    }
  }

  /** Ends the phase: CPU seconds per group (and `worker` for this process), and this process's peak RSS in MB. */
  async stop(): Promise<{ cpu: Record<string, number>; peakRssMb: number; atPeak: string }> {
    const used = process.cpuUsage(this.#process);
    clearInterval(this.#timer);
    this.#gcs.disconnect();
    this.#sample();
    const cpu = await this.#others.ask<Record<string, number>>('stop');
    cpu['worker'] = (used.user + used.system) / 1e6;
    const main = process.threadCpuUsage(this.#mainThread);
    const threads = threadSeconds();
    cpu['main thread'] = (main.user + main.system) / 1e6;
    cpu['V8 threads'] = threads.v8 - this.#threads.v8;
    cpu['other threads'] = threads.rest - this.#threads.rest;
    const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
    const { heapUsed, heapTotal, external, arrayBuffers } = this.#atPeak;
    const atPeak =
      `heap ${mb(heapUsed)} of ${mb(heapTotal)}, external ${mb(external)} (buffers ${mb(arrayBuffers)}); ` +
      `most heap after a full GC ${mb(this.#liveAfterGc)}`;
    return { cpu, peakRssMb: this.#peakRss / 1024 / 1024, atPeak };
  }
}

/** What the plain client's replay took: elapsed seconds, and the CPU seconds of its process. */
interface Replayed {
  seconds: number;
  cpuSeconds: number;
}

/**
 * Replays what the target recorded from a process of its own (`replay-process.ts`), so that the recorded requests
 * (a hundred thousand bodies at 100,000 users) are not counted in the worker's RSS.
 */
async function replayInChild(origin: string, inFlight: number): Promise<Replayed> {
  const child = fork(new URL('./replay-process.ts', import.meta.url), [origin, String(inFlight)], {
    execArgv: ['--no-node-snapshot'],
  });
  return new Promise<Replayed>((resolve, reject) => {
    let replayed: Replayed | undefined;
    child.once('message', (message) => {
      const { elapsedMs, cpuMs } = message as { elapsedMs: number; cpuMs: number };
      replayed = { seconds: elapsedMs / 1000, cpuSeconds: cpuMs / 1000 };
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      replayed === undefined ? reject(new Error(`the replay process exited with ${code}`)) : resolve(replayed),
    );
  });
}

/** Requests the loopback target held at once since its last reset: the mean from first arrival to last answer, and most. */
async function inFlightAt(origin: string): Promise<string> {
  const stats = (await call(origin, 'GET', '/_stats')) as { requestsInFlight: { mean: number; max: number } };
  return `${stats.requestsInFlight.mean.toFixed(1)} (${stats.requestsInFlight.max})`;
}

/**
 * Prints how many requests the loopback target held over time since its last reset, about 60 lines: per line, the
 * mean in flight and the requests that arrived, by method and resource type.
 */
async function printTimeline(origin: string, label: string): Promise<void> {
  const { bucketMs, buckets } = (await call(origin, 'GET', '/_timeline')) as {
    bucketMs: number;
    buckets: Array<{ inFlight: number; arrived: Record<string, number> }>;
  };
  const per = Math.max(1, Math.ceil(buckets.length / 60));
  console.error(`${label}: requests at the target, per ${per * bucketMs} ms`);
  for (let i = 0; i < buckets.length; i += per) {
    const slice = buckets.slice(i, i + per);
    const arrived: Record<string, number> = {};
    for (const b of slice) for (const [k, n] of Object.entries(b.arrived)) arrived[k] = (arrived[k] ?? 0) + n;
    const mean = slice.reduce((sum, b) => sum + b.inFlight, 0) / slice.length;
    const kinds = Object.entries(arrived)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    console.error(`  ${((i * bucketMs) / 1000).toFixed(1).padStart(6)} s  ${mean.toFixed(1).padStart(5)}  ${kinds}`);
  }
}

/** The number in environment variable `name`, or `fallback` when it is unset or empty. */
export function envNumber(name: string, fallback: number): number {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : Number(value);
}

/** Runs the scale benchmark and returns its table rows. */
export async function runScaleBench(): Promise<BenchRow[]> {
  const users = envNumber('BENCH_USERS', 10_000);
  const groups = envNumber('BENCH_GROUPS', Math.max(1, Math.round(users / 20)));
  const concurrency = envNumber('BENCH_CONCURRENCY', 8);
  const pageSize = envNumber('BENCH_PAGE', 100);
  const latencyMs = envNumber('BENCH_LATENCY_MS', 20);
  // As many requests in flight as a worker sends to one target (concurrency ranges × concurrency objects, at most
  // 256 sockets), so the plain client is held to the same bound.
  const inFlight = envNumber('BENCH_PLAIN_IN_FLIGHT', Math.min(concurrency * concurrency, 256));
  const sandboxUsers = envNumber('BENCH_SANDBOX_USERS', 20_000);
  // At 10,000 users a single round's ratio with latency moved between 0.81 and 0.88 from run to run (a 4.5 s sync,
  // its fixed steps weighing most): the median of 3 rounds is reported there, with every round's ratio.
  const lateRoundCount = envNumber('BENCH_LATE_ROUNDS', users <= 30_000 ? 3 : 1);
  const testDb = await createTestDatabase();
  const engine = await startTestEngine({ db: testDb.db });
  const target = await startLoopbackTarget();
  const dbName = new URL(testDb.url).pathname.slice(1);
  const temporalPort = (await testTemporalAddress()).split(':').at(-1)!;
  const others = new OtherProcesses({
    postgres: ['postgres:', ` ${dbName} `],
    temporal: ['temporal', `--port ${temporalPort} `],
  });
  const newProvider = () =>
    createBenchProvider(testDb.db, engine.secrets, 'scale', target.url, { pageSize, concurrency });
  const timed = async <T>(fn: () => Promise<T>) => {
    const m = await CpuMeter.start(others);
    const started = performance.now();
    const result = await fn();
    const seconds = (performance.now() - started) / 1000;
    return { result, seconds, ...(await m.stop()) };
  };
  // One round of the comparison with latency: a first sync to a new provider, then the plain client's replay.
  const lateRound = async (trace: boolean) => {
    await call(target.origin, 'POST', '/_reset');
    const distant = await newProvider();
    const loopDelay = monitorEventLoopDelay({ resolution: 5 });
    loopDelay.enable();
    const slow = await timed(() => engine.fullSync(distant));
    loopDelay.disable();
    if (trace)
      console.error(
        `${latencyMs} ms late: worker event loop, gaps between a 5 ms timer's ticks (5: no delay): ` +
          `mean ${(loopDelay.mean / 1e6).toFixed(1)} ms, ` +
          `p50 ${(loopDelay.percentile(50) / 1e6).toFixed(1)}, p90 ${(loopDelay.percentile(90) / 1e6).toFixed(1)}, ` +
          `p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)}, max ${(loopDelay.max / 1e6).toFixed(1)}`,
      );
    const slowFlight = await inFlightAt(target.origin);
    if (trace) {
      await traceTimeline(engine.client, slow.result.workflowId, `${latencyMs} ms late`);
      await printTimeline(target.origin, `first sync, ${latencyMs} ms late`);
    }
    await call(target.origin, 'POST', '/_reset');
    const slowPlain = await replayInChild(target.origin, inFlight);
    const slowPlainFlight = await inFlightAt(target.origin);
    if (trace) await printTimeline(target.origin, `plain client, ${latencyMs} ms late`);
    return { slow, slowFlight, slowPlain, slowPlainFlight, ratio: slowPlain.seconds / slow.seconds };
  };
  type LateRound = Awaited<ReturnType<typeof lateRound>>;
  try {
    await seedBenchDirectory(testDb.db, users, groups);
    const provider = await newProvider();
    await call(target.origin, 'POST', '/_record?on=1');
    const firstProfile = process.env['BENCH_PROFILE_FIRST'];
    const heapProfile = process.env['BENCH_HEAP_FIRST'];
    const sync = () => engine.fullSync(provider);
    const first = await timed(() =>
      firstProfile
        ? profiled(firstProfile, sync)
        : heapProfile
          ? allocationProfiled(heapProfile, sync, users + groups, 'the first full sync')
          : sync(),
    );
    await call(target.origin, 'POST', '/_record?on=0');
    const profile = process.env['BENCH_PROFILE'];
    const resync = await timed(() =>
      profile ? profiled(profile, () => engine.fullSync(provider), 'the no-change resync') : engine.fullSync(provider),
    );
    if (process.env['BENCH_TRACE']) await traceActivities(engine.client, resync.result.workflowId);
    await call(target.origin, 'POST', '/_reset');
    const plain = await replayInChild(target.origin, inFlight);
    const plainSeconds = plain.seconds;

    // The same directory again, to a new provider each round, through a target answering `latencyMs` late; each
    // round's sync is followed by the plain client's replay, and the median round (by ratio) fills the rows.
    await call(target.origin, 'POST', `/_latency?ms=${latencyMs}`);
    const lateRounds: LateRound[] = [];
    for (let round = 0; round < lateRoundCount; round += 1) {
      lateRounds.push(await lateRound(round === 0 && process.env['BENCH_TRACE'] !== undefined));
    }
    await call(target.origin, 'POST', '/_latency?ms=0');
    const lateRatios = lateRounds.map((r) => r.ratio);
    const { slow, slowFlight, slowPlain, slowPlainFlight } = [...lateRounds].sort((a, b) => a.ratio - b.ratio)[
      Math.floor((lateRounds.length - 1) / 2)
    ]!;
    const slowPlainSeconds = slowPlain.seconds;
    // Memory is the highest of every round's, not the median round's.
    const latePeak = lateRounds.reduce((most, r) => (r.slow.peakRssMb > most.peakRssMb ? r.slow : most), slow);

    // A failure here (a user timed out in the sandbox on a starved machine) is reported in its row, not thrown.
    const sandbox = await runMappingBench({ users: sandboxUsers, warmupUsers: sandboxUsers / 4, rounds: 4 }).catch(
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );

    const rate = (seconds: number) => users / seconds;
    const perThousand = (cpu: Record<string, number>) => {
      const of = (name: string) => `${name} ${((cpu[name]! * 1000) / users).toFixed(2)}`;
      const threads = ['main thread', 'V8 threads', 'other threads'].map(of).join(', ');
      return `worker ${((cpu['worker']! * 1000) / users).toFixed(2)} (${threads}), ${of('postgres')}, ${of('temporal')}`;
    };
    // The engine's own cost against a client that only sends: on a host whose cores are all busy (the target,
    // PostgreSQL and Temporal share them), this bounds the ratios above, and it does not move with the host's speed.
    const cpuRatio = (cpu: Record<string, number>, replayed: Replayed) =>
      `${(cpu['worker']! / replayed.cpuSeconds).toFixed(2)} (worker ${((cpu['worker']! * 1000) / users).toFixed(2)}, plain client ${((replayed.cpuSeconds * 1000) / users).toFixed(2)} CPU s per 1,000 users)`;
    const failed = first.result.report.failed + lateRounds.reduce((n, r) => n + r.slow.result.report.failed, 0);
    // What failed, by error code and message: a failure is a finding, not a footnote.
    const failures = failed
      ? (
          await testDb.db.query<{ code: string; message: string; n: string }>(
            `SELECT last_error->>'code' AS code, left(last_error->>'message', 200) AS message, count(*) AS n
               FROM provider_links WHERE status IN ('failed', 'retrying') GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5`,
          )
        ).rows
      : [];
    return [
      {
        variant: 'directory',
        value: `${users} users in ${groups} groups, concurrency ${concurrency}, page ${pageSize}, plain client ${inFlight} in flight${failed ? `, ${failed} FAILED (${failures.map((f) => `${f.n}× ${f.code}: ${f.message}`).join('; ')})` : ''}`,
      },
      {
        variant: 'first full sync',
        value: `${first.seconds.toFixed(2)} s, ${rate(first.seconds).toFixed(0)} users/s; plain client ${rate(plainSeconds).toFixed(0)} users/s; ratio ${(plainSeconds / first.seconds).toFixed(2)}`,
      },
      {
        variant: `first full sync, target ${latencyMs} ms late`,
        value: `${slow.seconds.toFixed(2)} s, ${rate(slow.seconds).toFixed(0)} users/s; plain client ${rate(slowPlainSeconds).toFixed(0)} users/s; ratio ${(slowPlainSeconds / slow.seconds).toFixed(2)}${lateRatios.length > 1 ? ` (median of ${lateRatios.length} rounds: ${lateRatios.map((r) => r.toFixed(2)).join(', ')})` : ''}`,
      },
      {
        variant: `requests at the target ${latencyMs} ms late`,
        value: `first sync ${slowFlight}, plain client ${slowPlainFlight} in flight: mean from first request to last answer (most); the bound is ${inFlight}`,
      },
      {
        variant: 'no-change resync',
        value: `${resync.seconds.toFixed(2)} s (unchanged ${resync.result.report.unchanged} of ${resync.result.report.processed})`,
      },
      { variant: 'CPU s per 1,000 users, first sync', value: perThousand(first.cpu) },
      {
        variant: 'worker CPU ÷ plain client CPU, same requests',
        value: `first sync ${cpuRatio(first.cpu, plain)}; ${latencyMs} ms late ${cpuRatio(slow.cpu, slowPlain)}`,
      },
      { variant: 'CPU s per 1,000 users, resync', value: perThousand(resync.cpu) },
      {
        variant: 'peak worker RSS',
        value: `${Math.max(first.peakRssMb, resync.peakRssMb, latePeak.peakRssMb).toFixed(0)} MB (first sync ${first.peakRssMb.toFixed(0)}, resync ${resync.peakRssMb.toFixed(0)}, ${latencyMs} ms late ${latePeak.peakRssMb.toFixed(0)})`,
      },
      {
        variant: 'worker memory at the RSS peaks',
        value: `first sync: ${first.atPeak}; resync: ${resync.atPeak}; late: ${latePeak.atPeak}`,
      },
      {
        variant: 'sandbox over plain JS',
        value:
          sandbox instanceof Error
            ? `not measured: ${sandbox.message}`
            : `${sandbox.overheadUsPerUser.toFixed(2)} µs/user (${sandbox.ratio.toFixed(1)}×; ${sandboxUsers} users)`,
      },
    ];
  } finally {
    others.close();
    target.child.kill();
    await once(target.child, 'exit').catch(() => undefined);
    await engine.shutdown();
    await testDb.drop();
  }
}
