import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startFaultProxy, startScimTarget, type FaultProxy, type FaultProxyOptions, type ScimTarget } from './index.ts';

const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';

/** Sends one request through `base` with the target's token; a broken connection answers status 0. */
async function send(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; headers: Headers; text: string }> {
  try {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, headers: response.headers, text: await response.text() };
  } catch {
    return { status: 0, headers: new Headers(), text: '' };
  }
}

describe('fault proxy in front of a SCIM target', () => {
  let target: ScimTarget;
  const proxies: FaultProxy[] = [];

  async function proxy(options: Omit<FaultProxyOptions, 'target'>): Promise<FaultProxy> {
    const started = await startFaultProxy({ target: target.url, ...options });
    proxies.push(started);
    return started;
  }

  before(async () => {
    target = await startScimTarget();
  });

  after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await target.close();
  });

  beforeEach(async () => {
    const users = await target.users();
    for (const user of users) await send(target.url, target.token, 'DELETE', `/Users/${user.id}`);
  });

  test('without faults it relays requests and answers unchanged, and logs each', async () => {
    const p = await proxy({});
    const created = await send(p.url, target.token, 'POST', '/Users', { schemas: [USER], userName: 'relayed' });
    assert.equal(created.status, 201);
    const id = (JSON.parse(created.text) as { id: string }).id;
    const read = await send(p.url, target.token, 'GET', `/Users/${id}`);
    assert.equal(read.status, 200);
    assert.equal((JSON.parse(read.text) as { userName: string }).userName, 'relayed');
    assert.deepEqual(
      (await target.users()).map((u) => u.userName),
      ['relayed'],
    );
    assert.deepEqual(p.requests(), [
      { method: 'POST', path: '/Users', fault: 'none', status: 201, arrived: 1 },
      { method: 'GET', path: `/Users/${id}`, fault: 'none', status: 200, arrived: 2 },
    ]);
  });

  test('a reset after the target wrote loses the answer but not the write; a reset before loses both', async () => {
    const p = await proxy({ rates: { resetAfter: 1 } });
    const lost = await send(p.url, target.token, 'POST', '/Users', { schemas: [USER], userName: 'written' });
    assert.equal(lost.status, 0);
    assert.deepEqual(
      (await target.users()).map((u) => u.userName),
      ['written'],
    );
    p.setRates({ resetBefore: 1 });
    const never = await send(p.url, target.token, 'POST', '/Users', { schemas: [USER], userName: 'never' });
    assert.equal(never.status, 0);
    assert.deepEqual(
      (await target.users()).map((u) => u.userName),
      ['written'],
    );
    assert.deepEqual(
      p.requests().map((r) => [r.fault, r.status]),
      [
        ['reset-after', 0],
        ['reset-before', 0],
      ],
    );
  });

  test('429s carry Retry-After as delay-seconds or as an HTTP-date, and 5xx answers are SCIM errors', async () => {
    const seconds = await proxy({ rates: { rateLimited: 1 }, retryAfter: { seconds: 7, format: 'seconds' } });
    const bySeconds = await send(seconds.url, target.token, 'GET', '/Users');
    assert.equal(bySeconds.status, 429);
    assert.equal(bySeconds.headers.get('retry-after'), '7');

    const dated = await proxy({ rates: { rateLimited: 1 }, retryAfter: { seconds: 7, format: 'date' } });
    const byDate = await send(dated.url, target.token, 'GET', '/Users');
    assert.equal(byDate.status, 429);
    const at = Date.parse(byDate.headers.get('retry-after') ?? '');
    assert.ok(at - Date.now() > 5000 && at - Date.now() <= 9000, `Retry-After ${byDate.headers.get('retry-after')}`);

    const failing = await proxy({ rates: { serverError: 1 } });
    const failed = await send(failing.url, target.token, 'POST', '/Users', { schemas: [USER], userName: 'refused' });
    assert.ok([500, 502, 503].includes(failed.status));
    assert.match(failed.text, /urn:ietf:params:scim:api:messages:2.0:Error/);
    assert.deepEqual(await target.users(), []);
  });

  test('a slow answer arrives late but whole', async () => {
    const p = await proxy({ rates: { slow: 1 }, slowMs: 50 });
    const created = await send(p.url, target.token, 'POST', '/Users', { schemas: [USER], userName: 'slowly' });
    assert.equal(created.status, 201);
    assert.equal((JSON.parse(created.text) as { userName: string }).userName, 'slowly');
    assert.deepEqual(
      p.requests().map((r) => r.fault),
      ['slow'],
    );
  });

  test('the faults a request gets follow from the seed and the request, not from the order requests arrive in', async () => {
    const rates = { serverError: 0.1, rateLimited: 0.05, resetBefore: 0.05 };
    const paths = Array.from({ length: 50 }, (_, i) => `/Users?filter=${encodeURIComponent(`userName eq "u${i}"`)}`);
    const faultsOf = async (seed: number, order: string[]): Promise<Map<string, string>> => {
      const p = await proxy({ seed, rates });
      // Twice each: the second time a request comes it draws again.
      for (const path of [...order, ...order]) await send(p.url, target.token, 'GET', path);
      const seen = new Map<string, string>();
      for (const r of p.requests()) seen.set(seen.has(`${r.path} #1`) ? `${r.path} #2` : `${r.path} #1`, r.fault);
      return seen;
    };
    const forward = await faultsOf(42, paths);
    const backward = await faultsOf(42, [...paths].reverse());
    assert.deepEqual(new Map([...backward].sort()), new Map([...forward].sort()));
    const faulted = [...forward.values()].filter((f) => f !== 'none').length;
    // 100 requests at 20 %: the seeded draw gives about 20.
    assert.ok(faulted >= 10 && faulted <= 30, `${faulted} faults of 100`);
    const otherSeed = await faultsOf(43, paths);
    assert.notDeepEqual(new Map([...otherSeed].sort()), new Map([...forward].sort()));
  });

  test('writes over the per-second limit are answered 429 until the next second; reads are not limited', async () => {
    let now = 0;
    const p = await proxy({ writesPerSecond: 2, clock: () => now });
    const post = async (userName: string): Promise<number> =>
      (await send(p.url, target.token, 'POST', '/Users', { schemas: [USER], userName })).status;
    const statuses = [
      await post('a'),
      await post('b'),
      await post('c'),
      await send(p.url, target.token, 'GET', '/Users').then((r) => r.status),
    ];
    now = 1000;
    statuses.push(await post('d'));
    assert.deepEqual(statuses, [201, 201, 429, 200, 201]);
    assert.equal(p.counts()['over-limit'], 1);
    assert.equal((await target.users()).length, 3);
  });
});
