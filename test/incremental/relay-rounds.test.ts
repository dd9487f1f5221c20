import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  createProvider,
  createSecretBox,
  createUser,
  generateSecretKey,
  ProviderInputSchema,
  UserInputSchema,
  type Db,
} from '../../db/index.ts';
import { startOutboxRelay, type Deliver, type RelayTarget } from '../../engine/index.ts';
import type { DirectoryChanges } from '../../workflows/index.ts';
import { createTestDatabase } from '../support/db.ts';
import { eventually } from './harness.ts';

function newUser(db: Db, name: string) {
  return createUser(db, UserInputSchema.parse({ username: `${name}@example.test` }));
}

test('a delivery Temporal holds up does not hold up the changes behind it, and none is lost', async (t) => {
  const testDb = await createTestDatabase();
  const { db } = testDb;
  const secrets = createSecretBox(generateSecretKey());
  for (const slug of ['a-held', 'b-free']) {
    await createProvider(
      db,
      secrets,
      ProviderInputSchema.parse({
        slug,
        name: slug,
        baseUrl: 'http://127.0.0.1:9/scim/v2',
        auth: { mode: 'bearer', token: 'unused' },
      }),
    );
  }
  // Provider a-held's first delivery waits until the test releases it (a signal meeting a continue-as-new).
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const received: { 'a-held': string[]; 'b-free': string[] } = { 'a-held': [], 'b-free': [] };
  let first = true;
  const deliver: Deliver = async (provider: RelayTarget, changes: DirectoryChanges) => {
    if (provider.slug === 'a-held' && first) {
      first = false;
      await held;
    }
    received[provider.slug as keyof typeof received].push(...changes.userIds);
  };
  const relay = await startOutboxRelay({ db, deliver, pollIntervalMs: 100 });
  t.after(async () => {
    release();
    await relay.stop();
    await testDb.drop();
  });

  const one = await newUser(db, 'one');
  await eventually('the first change at b-free', () => {
    assert.deepEqual(received['b-free'], [one.id]);
    return Promise.resolve(true);
  });
  const two = await newUser(db, 'two');
  // Both providers get the second change while the first delivery to a-held is still waiting.
  await eventually('the second change at both providers', () => {
    assert.deepEqual(received['b-free'], [one.id, two.id]);
    assert.deepEqual(received['a-held'], [two.id]);
    return Promise.resolve(true);
  });
  release();
  await eventually('the held change at a-held', () => {
    assert.deepEqual(received['a-held'].toSorted(), [one.id, two.id].toSorted());
    return Promise.resolve(true);
  });
  await eventually('every outbox row marked dispatched', async () => {
    const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM outbox WHERE dispatched_at IS NULL');
    assert.equal(Number(rows[0]?.n), 0);
    return Promise.resolve(true);
  });
});
