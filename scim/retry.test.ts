import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ScimflowError, ScimRequestError, type ErrorCode } from '../errors/index.ts';
import { CircuitBreaker } from './breaker.ts';
import type { ScimClient, ScimResponse } from './client.ts';
import { DEFAULT_RETRY_POLICY, RetryBudget, retryDelay, withRetries } from './retry.ts';
import { RequestSlots } from './slots.ts';

/** A failure as the client raises it for `status` (0: no answer). */
function failure(code: ErrorCode, status: number, retryAfterMs?: number): ScimRequestError {
  return new ScimRequestError(code, `failed with ${status}`, { status, method: 'POST', path: '/Users', retryAfterMs });
}

/**
 * A fake client that holds every answer until the test gives it (`answers`, in the order sent) and records each request
 * as `label` writes it (`sent`).
 */
function holding(label: (method: string, path: string) => string) {
  const sent: string[] = [];
  const answers: Array<PromiseWithResolvers<ScimResponse<unknown>>> = [];
  const target: ScimClient = {
    baseUrl: 'http://target.test/scim',
    request<T>(method: string, path: string): Promise<ScimResponse<T>> {
      sent.push(label(method, path));
      const answer = Promise.withResolvers<ScimResponse<unknown>>();
      answers.push(answer);
      return answer.promise as Promise<ScimResponse<T>>;
    },
    close: () => Promise.resolve(),
  };
  return { target, sent, answers };
}

/** A fake client answering from a script: each entry is an error to throw or a status to return. */
function scripted(script: Array<ScimRequestError | number>): ScimClient & { calls: number } {
  const fake = {
    baseUrl: 'http://target.test/scim',
    calls: 0,
    request<T>(): Promise<ScimResponse<T>> {
      const next = script[Math.min(fake.calls, script.length - 1)]!;
      fake.calls += 1;
      return typeof next === 'number'
        ? Promise.resolve({ status: next, body: undefined, headers: {} })
        : Promise.reject(next);
    },
    close: () => Promise.resolve(),
  };
  return fake;
}

/** Records the waits instead of waiting. */
function recordingSleep(): { waits: number[]; sleep: (ms: number) => Promise<void> } {
  const waits: number[] = [];
  return {
    waits,
    sleep: (ms) => {
      waits.push(ms);
      return Promise.resolve();
    },
  };
}

describe('retry delays', () => {
  const noJitter = (): number => 0;

  test('back off exponentially with jitter, never below half the step and never above the cap', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 100, maxDelayMs: 1000 };
    const error = failure('ERR_SCIM_SERVER', 503);
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => retryDelay(error, n, policy, noJitter)),
      [50, 100, 200, 400, 500, 500],
    );
    const most = (): number => 0.999999;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => retryDelay(error, n, policy, most)),
      [99, 199, 399, 799, 999, 999],
    );
  });

  test('honour Retry-After, held within 1 s and 10 min so a hostile header cannot park a provider', () => {
    const policy = DEFAULT_RETRY_POLICY;
    assert.equal(retryDelay(failure('ERR_SCIM_RATE_LIMITED', 429, 3000), 1, policy, noJitter), 3000);
    assert.equal(retryDelay(failure('ERR_SCIM_RATE_LIMITED', 429, 0), 1, policy, noJitter), 1000);
    assert.equal(retryDelay(failure('ERR_SCIM_RATE_LIMITED', 429, 86_400_000), 1, policy, noJitter), 600_000);
    // The spread added to a Retry-After is at most a tenth of it (and a second), and never passes the cap.
    const jittered = retryDelay(failure('ERR_SCIM_SERVER', 503, 5000), 1, policy, () => 0.999);
    assert.ok(jittered >= 5000 && jittered < 5500, `${jittered}`);
    assert.equal(
      retryDelay(failure('ERR_SCIM_RATE_LIMITED', 429, 86_400_000), 1, policy, () => 0.999),
      600_000,
    );
  });
});

describe('retrying client', () => {
  test('retries transient failures (5xx, 429, resets, timeouts) of a request until it succeeds', async () => {
    const client = scripted([
      failure('ERR_SCIM_SERVER', 502),
      failure('ERR_SCIM_NETWORK', 0),
      failure('ERR_SCIM_TIMEOUT', 0),
      failure('ERR_SCIM_RATE_LIMITED', 429, 2000),
      201,
    ]);
    const { waits, sleep } = recordingSleep();
    const retrying = withRetries(client, { budget: new RetryBudget(), sleep, random: () => 0 });
    assert.equal((await retrying.request('POST', '/Users')).status, 201);
    assert.equal(client.calls, 5);
    assert.deepEqual(waits, [50, 100, 200, 2000]);
  });

  test('a wait the target asked for does not lengthen the backoff of the failures after it', async () => {
    const client = scripted([
      failure('ERR_SCIM_RATE_LIMITED', 429, 1000),
      failure('ERR_SCIM_RATE_LIMITED', 429, 1000),
      failure('ERR_SCIM_NETWORK', 0),
      failure('ERR_SCIM_SERVER', 503),
      201,
    ]);
    const { waits, sleep } = recordingSleep();
    const retrying = withRetries(client, { budget: new RetryBudget(), sleep, random: () => 0 });
    assert.equal((await retrying.request('POST', '/Users')).status, 201);
    assert.deepEqual(waits, [1000, 1000, 50, 100]);
  });

  test('throws permanent and run-fatal failures at once', async () => {
    for (const error of [failure('ERR_SCIM_BAD_REQUEST', 400), failure('ERR_SCIM_UNAUTHORIZED', 401)]) {
      const client = scripted([error, 201]);
      const retrying = withRetries(client, { budget: new RetryBudget(), sleep: () => Promise.resolve() });
      await assert.rejects(retrying.request('POST', '/Users'), (thrown) => thrown === error);
      assert.equal(client.calls, 1);
    }
  });

  test("one object's requests share one budget; when it is spent the last failure is thrown", async () => {
    const budget = new RetryBudget({ ...DEFAULT_RETRY_POLICY, retries: 3 });
    const client = scripted([failure('ERR_SCIM_SERVER', 500), failure('ERR_SCIM_SERVER', 500), 200]);
    const options = { budget, sleep: () => Promise.resolve() };
    await withRetries(client, options).request('GET', '/Users');
    assert.equal(budget.retries, 2);
    const failing = scripted([failure('ERR_SCIM_SERVER', 503)]);
    await assert.rejects(withRetries(failing, options).request('PUT', '/Users/1'), { code: 'ERR_SCIM_SERVER' });
    // One retry was left for the second request.
    assert.equal(failing.calls, 2);
  });

  test('a wait longer than the time left in the budget is not started', async () => {
    const budget = new RetryBudget({ ...DEFAULT_RETRY_POLICY, budgetMs: 5000 });
    const client = scripted([failure('ERR_SCIM_RATE_LIMITED', 429, 60_000), 200]);
    const { waits, sleep } = recordingSleep();
    await assert.rejects(withRetries(client, { budget, sleep }).request('GET', '/Users'), {
      code: 'ERR_SCIM_RATE_LIMITED',
    });
    assert.deepEqual(waits, []);
  });

  test('an aborted signal stops the waiting and the sending, rejecting with its reason', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    const client = scripted([failure('ERR_SCIM_SERVER', 500), 200]);
    const retrying = withRetries(client, {
      budget: new RetryBudget({ ...DEFAULT_RETRY_POLICY, baseDelayMs: 60_000 }),
      signal: controller.signal,
      onWait: () => controller.abort(reason),
    });
    await assert.rejects(retrying.request('GET', '/Users'), (error) => error === reason);
    assert.equal(client.calls, 1);
  });
});

describe('circuit breaker', () => {
  test('opens after failures alone for the configured time, fails fast, probes after the cooldown, and closes', async () => {
    let now = 0;
    const breaker = new CircuitBreaker({ openAfterMs: 1000, cooldownMs: 5000, clock: () => now });
    const down = scripted([failure('ERR_SCIM_NETWORK', 0)]);
    const send = (client: ScimClient) =>
      withRetries(client, {
        budget: new RetryBudget({ ...DEFAULT_RETRY_POLICY, retries: 0 }),
        breaker,
        sleep: () => Promise.resolve(),
      }).request('GET', '/Users');

    await assert.rejects(send(down), { code: 'ERR_SCIM_NETWORK' });
    now = 999;
    await assert.rejects(send(down), { code: 'ERR_SCIM_NETWORK' });
    assert.equal(breaker.state, 'closed');
    now = 1000;
    await assert.rejects(send(down), { code: 'ERR_SCIM_NETWORK' });
    assert.equal(breaker.state, 'open');
    const callsWhenOpened = down.calls;
    await assert.rejects(
      send(down),
      (error) => error instanceof ScimflowError && error.code === 'ERR_SCIM_UNAVAILABLE',
    );
    assert.equal(down.calls, callsWhenOpened, 'an open breaker does not ask the target');

    now = 6000;
    assert.equal(breaker.state, 'half-open');
    await assert.rejects(send(down), { code: 'ERR_SCIM_NETWORK' });
    assert.equal(breaker.state, 'open', 'a failed probe opens it again');

    now = 11_000;
    await send(scripted([200]));
    assert.equal(breaker.state, 'closed', 'a successful probe closes it');
  });

  test('a target answering 429 or 4xx is alive: those never open the breaker', async () => {
    let now = 0;
    const breaker = new CircuitBreaker({ openAfterMs: 10, clock: () => now });
    for (const error of [failure('ERR_SCIM_RATE_LIMITED', 429), failure('ERR_SCIM_BAD_REQUEST', 400)]) {
      for (let i = 0; i < 5; i += 1) {
        now += 100;
        await assert.rejects(
          withRetries(scripted([error]), {
            budget: new RetryBudget({ ...DEFAULT_RETRY_POLICY, retries: 0 }),
            breaker,
          }).request('GET', '/Users'),
        );
      }
    }
    assert.equal(breaker.state, 'closed');
  });

  test('an object waiting to retry holds no request slot: the other objects send meanwhile', async () => {
    const slots = new RequestSlots(1);
    const sent: string[] = [];
    const target: ScimClient = {
      baseUrl: 'http://target.test/scim',
      request<T>(_method: string, path: string): Promise<ScimResponse<T>> {
        sent.push(path);
        // The first request of the first object fails; everything else succeeds.
        return sent.length === 1
          ? Promise.reject(failure('ERR_SCIM_RATE_LIMITED', 429, 1000))
          : Promise.resolve({ status: 200, body: undefined, headers: {} });
      },
      close: () => Promise.resolve(),
    };
    const backoff = Promise.withResolvers<void>();
    const waiting = withRetries(target, {
      budget: new RetryBudget(),
      slots,
      sleep: () => backoff.promise,
    }).request('GET', '/Users/waiting');
    const other = withRetries(target, { budget: new RetryBudget(), slots }).request('GET', '/Users/other');
    // The other object finishes while the first one still waits out its Retry-After.
    await other;
    assert.deepEqual(sent, ['/Users/waiting', '/Users/other']);
    backoff.resolve();
    await waiting;
    assert.deepEqual(sent, ['/Users/waiting', '/Users/other', '/Users/waiting']);
  });

  test('a retry whose wait is over takes the next free slot, before objects that have sent nothing yet', async () => {
    const slots = new RequestSlots(1);
    const sent: string[] = [];
    const answers: Array<PromiseWithResolvers<ScimResponse<unknown>>> = [];
    const target: ScimClient = {
      baseUrl: 'http://target.test/scim',
      request<T>(_method: string, path: string): Promise<ScimResponse<T>> {
        sent.push(path);
        // The first attempt of /Users/throttled is refused with a Retry-After; the rest wait for their answer.
        if (sent.length === 1) return Promise.reject(failure('ERR_SCIM_RATE_LIMITED', 429, 1000));
        const answer = Promise.withResolvers<ScimResponse<unknown>>();
        answers.push(answer);
        return answer.promise as Promise<ScimResponse<T>>;
      },
      close: () => Promise.resolve(),
    };
    const backoff = Promise.withResolvers<void>();
    const throttled = withRetries(target, { budget: new RetryBudget(), slots, sleep: () => backoff.promise }).request(
      'GET',
      '/Users/throttled',
    );
    const others = ['/Users/a', '/Users/b', '/Users/c'].map((path) =>
      withRetries(target, { budget: new RetryBudget(), slots }).request('GET', path),
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sent, ['/Users/throttled', '/Users/a'], 'one slot: /Users/a holds it, b and c wait in line');
    // The Retry-After is over while /Users/a is still in flight: the retry joins the line, ahead of b and c.
    backoff.resolve();
    await new Promise((resolve) => setImmediate(resolve));
    answers[0]!.resolve({ status: 200, body: undefined, headers: {} });
    await others[0];
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sent, ['/Users/throttled', '/Users/a', '/Users/throttled']);
    for (let i = 1; i <= 3; i += 1) {
      answers[i]!.resolve({ status: 200, body: undefined, headers: {} });
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all([throttled, ...others]);
    assert.deepEqual(sent, ['/Users/throttled', '/Users/a', '/Users/throttled', '/Users/b', '/Users/c']);
  });

  test("a lookup takes the next free slot before writes already in line: its page's writes are not held behind them", async () => {
    const slots = new RequestSlots(1);
    const { target, sent, answers } = holding((method, path) => `${method} ${path}`);
    const send = (method: 'GET' | 'POST', path: string) =>
      withRetries(target, { budget: new RetryBudget(), slots }).request(method, path);
    const writes = ['/Users/a', '/Users/b', '/Users/c'].map((path) => send('POST', path));
    await new Promise((resolve) => setImmediate(resolve));
    const lookup = send('GET', '/Users?filter=next-page');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sent, ['POST /Users/a'], 'one slot: the first write holds it, the rest wait in line');
    for (let i = 0; i < 4; i += 1) {
      answers[i]!.resolve({ status: 200, body: undefined, headers: {} });
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all([lookup, ...writes]);
    assert.deepEqual(sent, ['POST /Users/a', 'GET /Users?filter=next-page', 'POST /Users/b', 'POST /Users/c']);
  });

  test('request slots bound the attempts in flight and pass in arrival order', async () => {
    const slots = new RequestSlots(2);
    const { target, sent, answers } = holding((_method, path) => path);
    const requests = ['/a', '/b', '/c', '/d'].map((path) =>
      withRetries(target, { budget: new RetryBudget(), slots }).request('GET', path),
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sent, ['/a', '/b'], 'two in flight, the others wait');
    answers[1]!.resolve({ status: 200, body: undefined, headers: {} });
    await requests[1];
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sent, ['/a', '/b', '/c'], 'a slot freed goes to the first in line');
    for (const answer of answers) answer.resolve({ status: 200, body: undefined, headers: {} });
    await new Promise((resolve) => setImmediate(resolve));
    for (const answer of answers) answer.resolve({ status: 200, body: undefined, headers: {} });
    await Promise.all(requests);
    assert.deepEqual(sent, ['/a', '/b', '/c', '/d']);
  });
});
