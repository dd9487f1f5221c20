import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Client } from '@temporalio/client';
import { temporalDeliver } from '../../engine/index.ts';

/** A client whose signal-with-start answers each call as `answer` says (call numbers start at 1). */
function fakeClient(answer: (call: number) => Promise<void>) {
  const calls: Array<{ workflowId: string; signalArgs: unknown[] }> = [];
  const client = {
    workflow: {
      signalWithStart: (_workflow: unknown, options: { workflowId: string; signalArgs: unknown[] }) => {
        calls.push(options);
        return answer(calls.length);
      },
    },
  } as unknown as Client;
  return { client, calls };
}

const provider = { id: '00000000-0000-4000-8000-000000000001', slug: 'p1' };
const changes = { userIds: ['u1'], groupIds: [], seq: 7 };

test('a signal Temporal holds up is sent again, and the first one accepted delivers the batch', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let releaseFirst!: () => void;
  const { client, calls } = fakeClient((call) =>
    call === 1 ? new Promise<void>((resolve) => (releaseFirst = resolve)) : Promise.resolve(),
  );
  const delivered = temporalDeliver(client, 'q')(provider, changes);
  assert.equal(calls.length, 1);
  t.mock.timers.tick(200);
  await delivered;
  t.mock.timers.runAll();
  assert.equal(calls.length, 2, 'sent again once, and not after it was accepted');
  assert.deepEqual(
    calls.map((c) => [c.workflowId, c.signalArgs]),
    [
      ['provider-sync:p1', [changes]],
      ['provider-sync:p1', [changes]],
    ],
  );
  releaseFirst();
});

test('a signal accepted at once is sent once', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { client, calls } = fakeClient(() => Promise.resolve());
  await temporalDeliver(client, 'q')(provider, changes);
  t.mock.timers.runAll();
  assert.equal(calls.length, 1);
});

test('a failed signal fails the delivery, so the relay keeps the rows for its next round', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const { client, calls } = fakeClient(() => Promise.reject(new Error('namespace not found')));
  await assert.rejects(temporalDeliver(client, 'q')(provider, changes), /namespace not found/);
  t.mock.timers.runAll();
  assert.equal(calls.length, 1);
});

test('idle waits for a send still in flight after another one delivered, so the connection is not closed under it', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let releaseFirst!: () => void;
  const { client } = fakeClient((call) =>
    call === 1 ? new Promise<void>((resolve) => (releaseFirst = resolve)) : Promise.resolve(),
  );
  const deliver = temporalDeliver(client, 'q');
  const delivered = deliver(provider, changes);
  t.mock.timers.tick(200);
  await delivered;
  const events: string[] = [];
  const waiting = deliver.idle!().then(() => void events.push('idle'));
  // A turn of the event loop (setImmediate is not mocked) settles everything that does not wait on the first send.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(events.length, 0, 'idle waits while the first send is in flight');
  events.push('first send accepted');
  releaseFirst();
  await waiting;
  assert.deepEqual(events, ['first send accepted', 'idle']);
});
