/** Heartbeats: what they carry across attempts, and how long an attempt keeps sending them without progress. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { asyncLocalStorage, Context, type Info } from '@temporalio/activity';
import { noopMetricMeter, type Logger } from '@temporalio/common';
import { beat, keptAlive, markResumePoint } from './heartbeat.ts';

const quiet: Logger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Runs `fn` as an activity attempt whose last attempt heartbeated `lastDetails`; returns the heartbeats it sent. */
async function inAttempt(lastDetails: unknown, fn: () => void | Promise<void>) {
  const sent: Array<{ at: number; details: unknown }> = [];
  const started = performance.now();
  const context = new Context(
    { heartbeatDetails: lastDetails } as Info,
    new Promise<never>(() => {}),
    new AbortController().signal,
    (details?: unknown) => sent.push({ at: performance.now() - started, details }),
    undefined,
    quiet,
    noopMetricMeter,
    {},
  );
  await asyncLocalStorage.run(context, async () => fn());
  return sent;
}

test("a retry's heartbeats carry its last attempt's resume point until it marks one of its own", async () => {
  const sent = await inAttempt({ after: 'r' }, () => {
    beat();
    markResumePoint({ after: 's' });
    beat();
  });

  assert.deepEqual(
    sent.map((s) => s.details),
    [{ after: 'r' }, { after: 's' }, { after: 's' }],
  );
});

test('an attempt is kept alive between its own heartbeats, and no longer once it has sent none for too long', async () => {
  const stalledAfterMs = 150;
  const sent = await inAttempt(undefined, async () => {
    await keptAlive(
      async () => {
        markResumePoint({ after: 'p' });
        await delay(3 * stalledAfterMs);
      },
      10,
      stalledAfterMs,
    );
  });
  // The first is the resume point marked; the rest, the ones it was kept alive with.
  const kept = sent.slice(1);

  assert.ok(kept.length > 0, 'heartbeats were sent with no progress of its own, for a while');
  assert.ok(
    kept.every((s) => s.at <= stalledAfterMs + 20),
    `none after it stalled: ${kept.map((s) => s.at.toFixed(0)).join(', ')}`,
  );
  assert.ok(
    kept.every((s) => (s.details as { after: string }).after === 'p'),
    'each with the resume point',
  );
});

test('outside an activity, keptAlive only runs its function', async () => {
  assert.equal(await keptAlive(() => Promise.resolve('done'), 1, 1), 'done');
});
