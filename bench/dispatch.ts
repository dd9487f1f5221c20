/**
 * Temporal's own latency per workflow step, on the dev server `npm start` and the tests run: a chain of activities
 * that do nothing (each result must reach the workflow before the next activity is scheduled), a fan of 8 at a time
 * (a full sync's ranges), and a workflow with no activity, started and awaited. Two dev servers run side by side: one
 * with scimflow's dynamic config (`DEV_SERVER_DYNAMIC_CONFIG`), one with the server's defaults, measured in alternating
 * rounds. BENCH_ROUNDS (5) and BENCH_STEPS (40) tune it.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { configureTemporalLogging, createLogger } from '../engine/index.ts';
import { DEV_SERVER_DYNAMIC_CONFIG, startTemporalDevServer } from '../scripts/lib/temporal-dev.mjs';
import { median } from './baseline.ts';
import type { BenchRow } from './full-sync.ts';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const STEPS = Number(process.env['BENCH_STEPS'] ?? 40);
const FAN_ROUNDS = 10;
const TASK_QUEUE = 'dispatch-bench';

interface Server {
  client: Client;
  worker: Worker;
  running: Promise<void>;
  stop: () => Promise<void>;
  connections: { close(): Promise<void> }[];
  chain: number[];
  fan: number[];
  empty: number[];
}

async function startServer(
  dynamicConfig: Record<string, number | boolean>,
  workflowBundle: WorkflowBundle,
): Promise<Server> {
  const server = await startTemporalDevServer({ headless: true, dynamicConfig });
  const native = await NativeConnection.connect({ address: server.address });
  const worker = await Worker.create({
    connection: native,
    namespace: 'default',
    taskQueue: TASK_QUEUE,
    workflowBundle,
    activities: { nothing: () => Promise.resolve() },
  });
  const connection = await Connection.connect({ address: server.address });
  return {
    client: new Client({ connection }),
    worker,
    running: worker.run(),
    stop: () => server.stop(),
    connections: [connection, native],
    chain: [],
    fan: [],
    empty: [],
  };
}

/** Milliseconds from starting workflow `type` to its result. */
async function timed(server: Server, type: string, args: unknown[]): Promise<number> {
  const started = performance.now();
  await server.client.workflow.execute(type, { taskQueue: TASK_QUEUE, workflowId: `${type}-${randomUUID()}`, args });
  return performance.now() - started;
}

/** Runs the dispatch bench and returns its table rows. */
export async function runDispatchBench(): Promise<BenchRow[]> {
  configureTemporalLogging(createLogger('warn', process.stderr));
  const quiet = () => undefined;
  const bundle = await bundleWorkflowCode({
    workflowsPath: fileURLToPath(new URL('./dispatch-workflows.ts', import.meta.url)),
    logger: { log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: console.error },
  });
  const servers = [await startServer({ ...DEV_SERVER_DYNAMIC_CONFIG }, bundle), await startServer({}, bundle)];
  try {
    // One of each first, so the workflow bundles and connections are warm.
    for (const server of servers) await timed(server, 'chain', [2]);
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        server.chain.push((await timed(server, 'chain', [STEPS])) / STEPS);
        server.fan.push((await timed(server, 'fan', [FAN_ROUNDS, 8])) / FAN_ROUNDS);
        server.empty.push(await timed(server, 'chain', [0]));
      }
    }
  } finally {
    for (const server of servers) {
      server.worker.shutdown();
      await server.running;
      for (const connection of server.connections) await connection.close();
      await server.stop();
    }
  }
  const [tuned, defaults] = servers as [Server, Server];
  const row = (variant: string, pick: (server: Server) => number[]): BenchRow => {
    const [ours, theirs] = [median(pick(tuned)), median(pick(defaults))];
    return {
      variant,
      value: `${ours.toFixed(1)} ms with scimflow's config, ${theirs.toFixed(1)} ms with the defaults; ratio ${(ours / theirs).toFixed(2)}`,
    };
  };
  return [
    {
      variant: 'config',
      value: Object.entries(DEV_SERVER_DYNAMIC_CONFIG)
        .map(([key, value]) => `${key}=${String(value)}`)
        .join(', '),
    },
    row(`chain of ${STEPS} activities, per step (median of ${ROUNDS})`, (s) => s.chain),
    row(`8 activities at once, per round of 8`, (s) => s.fan),
    row('workflow with no activity, start to result', (s) => s.empty),
  ];
}
