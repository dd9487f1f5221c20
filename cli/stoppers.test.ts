import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger } from '../engine/logger.ts';
import { jsonLines } from '../test/support/log-lines.ts';
import { runStoppers, SAME_REQUEST_MS, signalHandler, untilWorkerEnds, type Stopper } from './stoppers.ts';

/** A logger whose lines are kept, and stoppers that record their turn (the one named `fails` rejects). */
function world(names: string[], fails?: string) {
  let written = '';
  const log = createLogger(
    'info',
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        written += chunk.toString();
        done();
      },
    }),
  );
  const ran: string[] = [];
  const stoppers: Stopper[] = names.map((name) => () => {
    ran.push(name);
    return name === fails ? Promise.reject(new Error(`${name} would not stop`)) : Promise.resolve();
  });
  return { log, ran, stoppers, lines: () => jsonLines(written) };
}

describe('stopping a scimflow process', () => {
  test('stoppers run newest-first, a failing one is logged and the rest still run, and none runs twice', async () => {
    const { log, ran, stoppers, lines } = world(['database', 'temporal', 'worker', 'api'], 'worker');
    await runStoppers(stoppers, log);
    await runStoppers(stoppers, log);
    assert.deepEqual(ran, ['api', 'worker', 'temporal', 'database']);
    const warned = lines().filter((line) => line['msg'] === 'error while stopping');
    assert.deepEqual(
      warned.map((line) => (line['err'] as { message: string }).message),
      ['worker would not stop'],
    );
  });

  test('a worker that ends on an error stops everything else, and the error ends the process', async () => {
    const { log, ran, stoppers, lines } = world(['database', 'worker', 'relay', 'api']);
    const failure = new Error('Worker failed with fatal error: namespace not found');
    await assert.rejects(untilWorkerEnds(Promise.reject(failure), stoppers, log), failure);
    assert.deepEqual(ran, ['api', 'relay', 'worker', 'database']);
    const fatal = lines().find((line) => line['level'] === 60);
    assert.equal(fatal?.['msg'], 'the Temporal worker stopped on an error; stopping scimflow');
    assert.equal((fatal?.['err'] as { message: string }).message, failure.message);
  });

  test('a worker that ends normally (a shutdown) leaves the stoppers to whoever asked for it', async () => {
    const { log, ran, stoppers } = world(['database', 'worker']);
    await untilWorkerEnds(Promise.resolve(), stoppers, log);
    assert.deepEqual(ran, []);
    assert.equal(stoppers.length, 2);
  });

  test('a signal that reaches the process twice at once (directly and through its parent) stops it gracefully, once', async () => {
    const { log, ran, stoppers, lines } = world(['database', 'worker']);
    const exits: number[] = [];
    let clock = 1000;
    const stop = signalHandler(
      stoppers,
      log,
      (code) => exits.push(code),
      () => clock,
    );
    const first = stop('SIGTERM');
    clock += 2;
    await stop('SIGTERM');
    await first;
    assert.deepEqual(ran, ['worker', 'database']);
    assert.deepEqual(exits, [0]);
    assert.deepEqual(
      lines().map((line) => line['msg']),
      ['stopping scimflow'],
    );
  });

  test('a second request to stop, after the first has begun, exits at once with the signal in the code', async () => {
    const { log, stoppers, lines } = world(['database']);
    const exits: number[] = [];
    let clock = 1000;
    // A stopper that never finishes, as a worker draining a long activity.
    stoppers.push(() => new Promise<void>(() => undefined));
    const stop = signalHandler(
      stoppers,
      log,
      (code) => exits.push(code),
      () => clock,
    );
    void stop('SIGINT');
    clock += SAME_REQUEST_MS + 1;
    await stop('SIGINT');
    assert.deepEqual(exits, [130]);
    assert.deepEqual(
      lines().map((line) => line['msg']),
      ['stopping scimflow', 'stopping scimflow at once'],
    );
  });
});
