/**
 * `npm run bench`: every benchmark, each printing a table that compares scimflow with a baseline measured in the
 * same run. `npm run bench -- full-sync` (or `mapping`, `latency`, `scale`, `workers`, `faults`, `inbound`, `vendors`,
 * `import`, `client`, `link-writes`, `member-heads`, `dispatch`) runs one.
 */
import { runClientCostBench } from './client-cost.ts';
import { runDispatchBench } from './dispatch.ts';
import { runFaultsBench } from './faults.ts';
import { runImportBench } from './import.ts';
import { runInboundBench } from './inbound.ts';
import { printTable, runFullSyncBench } from './full-sync.ts';
import { runLatencyBench } from './latency.ts';
import { runLinkWritesBench } from './link-writes.ts';
import { formatMappingBench, runMappingBench } from './mapping.ts';
import { runMemberHeadsBench } from './member-heads.ts';
import { runScaleBench } from './scale.ts';
import { runVendorsBench } from './vendors.ts';
import { runWorkersBench } from './workers.ts';

const BENCHES: Record<string, () => Promise<void>> = {
  'full-sync': async () =>
    printTable('Full sync: 10,000 users in 500 groups, scimflow vs a plain HTTP client', await runFullSyncBench()),
  mapping: async () => {
    console.log('\nMappings: 100,000 users through the default mapping set, sandbox vs plain JavaScript\n');
    console.log(formatMappingBench(await runMappingBench()));
  },
  // 50 then 200 changes/s, 60 s each; BENCH_RATE (a list), BENCH_SECONDS and BENCH_USERS change that.
  latency: runLatencyBench,
  // BENCH_USERS (10,000), BENCH_GROUPS, BENCH_LATENCY_MS (20), BENCH_CONCURRENCY, BENCH_PAGE: see scale.ts.
  scale: async () =>
    printTable(
      `Scale: ${process.env['BENCH_USERS'] ?? '10000'} users, scimflow vs a plain HTTP client on one loopback target`,
      await runScaleBench(),
    ),
  // BENCH_USERS (3,000), BENCH_LATENCY_MS (20), BENCH_KILL (1): see workers.ts.
  workers: async () =>
    printTable('Many workers: one full sync on three worker processes, one SIGKILLed mid-run', await runWorkersBench()),
  faults: async () =>
    printTable(
      'Convergence under faults, latency and a rate-limited target (one loopback target)',
      await runFaultsBench(),
    ),
  // BENCH_SLACK_USERS (2,000) and BENCH_SLACK_SCALE (1): see vendors.ts.
  vendors: async () =>
    printTable(
      'Vendor plugins against their emulators: Slack at its documented limits, AWS member limits',
      await runVendorsBench(),
    ),
  // BENCH_USERS (100,000), BENCH_GROUPS (10, of 1,000 members) and BENCH_ONLY: see import.ts.
  import: async () =>
    printTable(
      'Directory import into an empty directory: one JSON body, JSON in 10,000-object requests, streamed NDJSON',
      await runImportBench(),
    ),
  // BENCH_BASELINE (main), BENCH_REQUESTS (2,000), BENCH_ROUNDS (7): see client-cost.ts.
  client: async () =>
    printTable(
      'Client cost per user create: this checkout vs a baseline commit, batches alternating',
      await runClientCostBench(),
    ),
  // BENCH_BASELINE (main), BENCH_OBJECTS (3,000), BENCH_ROUNDS (11), BENCH_LINKS (10,000): see link-writes.ts.
  'link-writes': async () =>
    printTable(
      'Link writes per user created (group commit of links and events): this checkout vs a baseline commit',
      await runLinkWritesBench(),
    ),
  // BENCH_BASELINE (main), BENCH_GROUPS (1,000), BENCH_MEMBERS (20), BENCH_ROUNDS (9): see member-heads.ts.
  'member-heads': async () =>
    printTable(
      "A created group's members (read with its page, recorded once created): this checkout vs a baseline commit",
      await runMemberHeadsBench(),
    ),
  // BENCH_ROUNDS (5), BENCH_STEPS (40): see dispatch.ts.
  dispatch: async () =>
    printTable(
      "Temporal dev server: latency per workflow step, scimflow's dynamic config vs the defaults",
      await runDispatchBench(),
    ),
  inbound: async () =>
    printTable(
      'Inbound SCIM source: users pushed into a source vs the same rows by SQL, single requests, propagation',
      await runInboundBench(),
    ),
};

const wanted = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
for (const name of wanted.length > 0 ? wanted : Object.keys(BENCHES)) {
  const bench = BENCHES[name];
  if (!bench) {
    console.error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(', ')}`);
    process.exit(2);
  }
  await bench();
}
process.exit(0);
