/** The inbound sources' page maximum and per-token rate come from the environment, with checked bounds. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sourceSettings } from '../../cli/start.ts';
import { loadEnv } from '../../config/index.ts';

test('unset, a source pages at 200 and each token may make 100 requests a second in bursts of 200', () => {
  assert.deepEqual(sourceSettings(loadEnv({})), { maxResults: 200, rateLimit: { ratePerSecond: 100, burst: 200 } });
});

test('SCIMFLOW_SOURCE_MAX_RESULTS and SCIMFLOW_SOURCE_RATE_PER_SECOND set the page maximum and the rate', () => {
  const env = loadEnv({ SCIMFLOW_SOURCE_MAX_RESULTS: '1000', SCIMFLOW_SOURCE_RATE_PER_SECOND: '20' });
  assert.deepEqual(sourceSettings(env), { maxResults: 1000, rateLimit: { ratePerSecond: 20, burst: 40 } });
});

test('a page maximum or rate out of bounds stops the process with an error naming the variable', () => {
  for (const [name, value] of [
    ['SCIMFLOW_SOURCE_MAX_RESULTS', '0'],
    ['SCIMFLOW_SOURCE_MAX_RESULTS', '10001'],
    ['SCIMFLOW_SOURCE_RATE_PER_SECOND', 'fast'],
  ] as const) {
    assert.throws(
      () => loadEnv({ [name]: value }),
      (error: Error & { code?: string }) => error.code === 'ERR_CONFIG' && error.message.includes(name),
      `${name}=${value}`,
    );
  }
});
