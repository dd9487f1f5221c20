import type { TestContext } from 'node:test';
import type { TargetPoolOptions } from '../../activities/index.ts';
import { createProvider, type ProviderInput, type ProviderView } from '../../db/index.ts';
import { startFaultProxy, startScimTarget, type FaultProxyOptions, type ScimTargetOptions } from '../servers/index.ts';
import { createTestDatabase } from './db.ts';
import { startTestEngine } from './engine.ts';
import { testProviderInput } from './providers.ts';

/** What a fault-proxy test runs against besides the proxy: the SCIMMY target and the worker's targets. */
export interface FaultWorldOptions {
  target?: ScimTargetOptions;
  targets?: TargetPoolOptions;
  shutdownGraceTime?: string;
}

/**
 * A fresh database, a worker, and a SCIMMY target behind a fault proxy, torn down after the test; `newProvider`
 * creates a provider that reaches the target through the proxy, and `stopFirst` registers what must stop before them.
 */
export async function startFaultWorld(
  t: TestContext,
  proxyOptions: Omit<FaultProxyOptions, 'target'>,
  options: FaultWorldOptions = {},
) {
  const { target: targetOptions, ...engineOptions } = options;
  const testDb = await createTestDatabase();
  const engine = await startTestEngine({ db: testDb.db, ...engineOptions });
  const target = await startScimTarget(targetOptions);
  const proxy = await startFaultProxy({ target: target.url, ...proxyOptions });
  // Stopped before the worker and the database: what a test starts on top of them (an outbox relay).
  const first: Array<() => Promise<void>> = [];
  t.after(async () => {
    for (const stop of first) await stop();
    await engine.shutdown();
    await proxy.close();
    await target.close();
    await testDb.drop();
  });
  const newProvider = (overrides: Partial<ProviderInput> = {}): Promise<ProviderView> =>
    createProvider(testDb.db, engine.secrets, testProviderInput(target, 'f', { baseUrl: proxy.url, ...overrides }));
  const stopFirst = (stop: () => Promise<void>): void => void first.push(stop);
  return { testDb, db: testDb.db, engine, target, proxy, newProvider, stopFirst };
}
