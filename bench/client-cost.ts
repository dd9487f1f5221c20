/**
 * The engine's own cost per SCIM request (issue #16): CPU µs and heap bytes allocated per user create (its payload
 * hashed, then POSTed through the retrying client with a slot, the answer parsed as a RemoteUser) against the
 * loopback target, this checkout vs a baseline commit, batches alternating in one process; medians are reported.
 * `BENCH_BASELINE` (a git ref, default `main`), `BENCH_REQUESTS` (per batch, 2,000), `BENCH_ROUNDS` (7).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { GCProfiler, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { defaultUserPayload } from '../sandbox/index.ts';
import { variedUsers } from '../test/fixtures/directory.ts';
import { baselineTree, comparedRows, ROOT } from './baseline.ts';
import type { BenchRow } from './full-sync.ts';
import { forkListening } from './fork-listening.ts';

import type * as ScimModule from '../scim/index.ts';
import type * as HashingModule from '../activities/payload-hash.ts';

type Scim = typeof ScimModule;
type Hashing = typeof HashingModule;

const IN_FLIGHT = 16;

/** One variant's modules: the client, retries, slots, schema and payload hash of a checkout. */
interface Variant {
  name: string;
  scim: Scim;
  hashing: Hashing;
}

async function load(name: string, root: string): Promise<Variant> {
  const url = (file: string) => pathToFileURL(path.join(root, file)).href;
  return {
    name,
    scim: (await import(url('scim/index.ts'))) as Scim,
    hashing: (await import(url('activities/payload-hash.ts'))) as Hashing,
  };
}

/** Heap bytes allocated while `run` ran: what each collection found in use, less what the one before left. */
async function measured(run: () => Promise<void>): Promise<{ cpuUs: number; bytes: number }> {
  const profiler = new GCProfiler();
  const startCpu = process.cpuUsage();
  profiler.start();
  const startHeap = process.memoryUsage().heapUsed;
  await run();
  const endHeap = process.memoryUsage().heapUsed;
  const { statistics } = profiler.stop();
  const cpu = process.cpuUsage(startCpu);
  let bytes = 0;
  let left = startHeap;
  for (const gc of statistics) {
    bytes += gc.beforeGC.heapStatistics.usedHeapSize - left;
    left = gc.afterGC.heapStatistics.usedHeapSize;
  }
  bytes += endHeap - left;
  return { cpuUs: cpu.user + cpu.system, bytes };
}

/** Runs the bench; rows give each variant's median CPU µs and KiB allocated per request. */
export async function runClientCostBench(): Promise<BenchRow[]> {
  const requests = Number(process.env['BENCH_REQUESTS'] ?? 2000);
  const rounds = Number(process.env['BENCH_ROUNDS'] ?? 7);
  const baselineRef = process.env['BENCH_BASELINE'] ?? 'main';
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const variants = [
    await load(`baseline (${baselineRef})`, baselineTree(baselineRef)),
    await load('this checkout', ROOT),
  ];
  const payloads = variedUsers(requests).map((user) => defaultUserPayload(user));
  const { port, child } = await forkListening(new URL('./loopback-target.ts', import.meta.url));
  const baseUrl = `http://127.0.0.1:${port}/scim/v2`;
  const reset = () => fetch(`${baseUrl}/_reset`, { method: 'POST' });

  async function batch(variant: Variant, client: ReturnType<Scim['createScimClient']>): Promise<void> {
    const { withRetries, RetryBudget, RequestSlots, RemoteUserSchema } = variant.scim;
    const slots = new RequestSlots(IN_FLIGHT);
    let next = 0;
    async function lane(): Promise<void> {
      while (next < payloads.length) {
        const payload = payloads[next++]!;
        variant.hashing.payloadHash(payload);
        const retrying = withRetries(client, { budget: new RetryBudget(), slots });
        await retrying.request('POST', '/Users', { body: payload, schema: RemoteUserSchema });
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  }

  const clients = variants.map((variant) =>
    variant.scim.createScimClient({ baseUrl, token: 'bench-token', connections: IN_FLIGHT }),
  );
  const results = variants.map(() => ({ cpuUs: [] as number[], bytes: [] as number[] }));
  try {
    for (let round = -1; round < rounds; round += 1) {
      // Always the other's batch just before: a variant that ran twice in a row found its code and data hot, which
      // was worth 10 % (an A/A run put the one that did 4 of 7 times ahead). Round -1 warms both and is not counted.
      for (const index of [0, 1]) {
        await reset();
        gc();
        const result = await measured(() => batch(variants[index]!, clients[index]!));
        if (round < 0) continue;
        results[index]!.cpuUs.push(result.cpuUs / requests);
        results[index]!.bytes.push(result.bytes / requests);
      }
    }
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    child.kill();
  }
  return comparedRows(
    variants.map((variant) => variant.name),
    results,
    { cpuUs: 'CPU', bytes: 'allocated' },
    ({ cpuUs, bytes }) => `${cpuUs.toFixed(0)} µs CPU, ${(bytes / 1024).toFixed(1)} KiB allocated per request`,
  );
}

if (import.meta.main) {
  const { printTable } = await import('./full-sync.ts');
  printTable(
    'Client cost per user create: this checkout vs a baseline commit, batches alternating',
    await runClientCostBench(),
  );
  process.exit(0);
}
