import { startTemporalDevServer, findTemporalBinary } from '../../scripts/lib/temporal-dev.mjs';

let shared: Promise<{ address: string; stop: () => Promise<void> }> | undefined;

/**
 * The Temporal frontend tests run against: TEMPORAL_ADDRESS when the test launcher started a dev server for the
 * whole run, else a dev server started for this test process (stopped when the process exits).
 */
export function testTemporalAddress(): Promise<string> {
  const fromEnv = process.env['TEMPORAL_ADDRESS'];
  if (fromEnv) return Promise.resolve(fromEnv);
  shared ??= (async () => {
    const binary = findTemporalBinary();
    if (!binary) throw new Error('no temporal binary: run `npm run setup` (it installs the Temporal CLI)');
    const server = await startTemporalDevServer({ binary, headless: true, detached: true });
    return server;
  })();
  return shared.then((server) => server.address);
}
