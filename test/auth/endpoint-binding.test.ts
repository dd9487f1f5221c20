import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createSecretBox, generateSecretKey, type ProviderView } from '../../db/index.ts';
import { startScimTarget, type ScimTarget } from '../servers/index.ts';
import { startTestEngine, type TestEngine } from '../support/engine.ts';
import { testProviderInput } from '../support/providers.ts';
import { startTestApi, type TestApi } from '../api/api-harness.ts';

type Updated = ProviderView & { credentialCleared: boolean };

describe("a provider's token stays bound to the origin it was given for", () => {
  let api: TestApi;
  let engine: TestEngine;
  let first: ScimTarget;
  let second: ScimTarget;
  before(async () => {
    const secrets = createSecretBox(generateSecretKey());
    api = await startTestApi({ secrets });
    engine = await startTestEngine({ db: api.db, secrets });
    first = await startScimTarget({ token: 'token-of-the-first-target' });
    second = await startScimTarget({ token: 'token-of-the-second-target' });
  });
  after(async () => {
    await engine.shutdown();
    await Promise.all([first.close(), second.close()]);
    await api.close();
  });

  test('moving the base URL to another origin clears the token, so the next sync never sends it there', async () => {
    assert.equal((await api.request('POST', '/api/v1/users', { username: 'ada' })).status, 201);
    const created = await api.request<ProviderView>('POST', '/api/v1/providers', testProviderInput(first, 'moved'));
    assert.equal(created.status, 201);
    const provider = created.body;
    await engine.fullSync(provider);
    assert.deepEqual(
      (await first.users()).map((u) => u.userName),
      ['ada'],
    );
    const seenByFirst = new Set((await first.requests()).map((r) => r.authorization));
    assert.deepEqual([...seenByFirst], ['Bearer token-of-the-first-target']);

    // Another origin (the second target listens on another port), no token in the same request.
    const moved = await api.request<Updated>('PATCH', `/api/v1/providers/${provider.slug}`, { baseUrl: second.url });
    assert.equal(moved.status, 200);
    assert.equal(moved.body.credentialCleared, true);
    assert.deepEqual(moved.body.auth, { mode: 'bearer', secretSet: false });

    await assert.rejects(engine.fullSync(moved.body), /no token set|failed/);
    const seenBySecond = (await second.requests()).map((r) => r.authorization);
    assert.ok(
      seenBySecond.every((header) => header !== 'Bearer token-of-the-first-target'),
      `the second target saw ${JSON.stringify(seenBySecond)}`,
    );
    assert.deepEqual(await second.users(), []);

    // With a token of its own, the next sync talks to the new target with that token and no other.
    const rotated = await api.request<Updated>('PATCH', `/api/v1/providers/${provider.slug}`, {
      auth: { mode: 'bearer', token: second.token },
    });
    assert.equal(rotated.body.credentialCleared, false);
    await second.resetLog();
    const resumed = await engine.fullSync(rotated.body);
    assert.equal(resumed.report.status, 'succeeded');
    const headers = (await second.requests()).map((r) => r.authorization);
    assert.ok(headers.length > 0, 'the sync reached the second target');
    assert.deepEqual([...new Set(headers)], ['Bearer token-of-the-second-target']);
    // Links made at the first target say nothing about the second: the user is created there too.
    assert.deepEqual(
      (await second.users()).map((u) => u.userName),
      ['ada'],
    );
    assert.equal(resumed.report.created, 1);
  });

  test('a new origin with a token in the same request keeps that token; a path on the same origin keeps the old one', async () => {
    const created = await api.request<ProviderView>('POST', '/api/v1/providers', testProviderInput(first, 'kept'));
    const path = `/api/v1/providers/${created.body.slug}`;
    const samePlace = await api.request<Updated>('PATCH', path, { baseUrl: `${first.url}/elsewhere` });
    assert.equal(samePlace.body.credentialCleared, false);
    assert.deepEqual(samePlace.body.auth, { mode: 'bearer', secretSet: true });

    const withToken = await api.request<Updated>('PATCH', path, {
      baseUrl: second.url,
      auth: { mode: 'bearer', token: second.token },
    });
    assert.equal(withToken.body.credentialCleared, false);
    assert.deepEqual(withToken.body.auth, { mode: 'bearer', secretSet: true });
  });
});
