import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  advance,
  AIMD,
  fairShares,
  newBucket,
  reserve,
  take,
  throttled,
  windowWait,
  type BucketState,
  type RateLimit,
} from './aimd.ts';

const limit: RateLimit = { requestsPerSecond: 10 };
const T0 = 1_000_000;

/** Takes one token at a time as soon as one is due, for `seconds` of fake time; returns how many were granted. */
function drain(state: BucketState, seconds: number, from = T0): { state: BucketState; granted: number } {
  let now = from;
  let granted = 0;
  while (now < from + seconds * 1000) {
    const grant = take(state, limit, now, 1);
    state = grant.state;
    granted += grant.granted;
    now += grant.granted > 0 ? 0 : grant.waitMs;
  }
  return { state, granted };
}

describe('token bucket', () => {
  test('hands out the configured rate over time, and no more', () => {
    const { granted } = drain(newBucket(limit, T0), 30);
    // 10/s for 30 s, plus the one token a fresh bucket starts with.
    assert.ok(granted >= 299 && granted <= 301, `granted ${granted}`);
  });

  test('a quiet spell banks at most a tenth of a second of tokens', () => {
    const idle = take(newBucket(limit, T0), limit, T0 + 60_000, 100);
    assert.equal(idle.granted, 10 * AIMD.burstSeconds);
  });

  test('a declared burst is what a quiet spell banks', () => {
    const slack = { requestsPerSecond: 3, burst: 5 };
    assert.equal(take(newBucket(slack, T0), slack, T0 + 60_000, 100).granted, 5);
  });

  test('with a burst above one, a client whose every ask comes 40 ms late still gets the whole rate', () => {
    // Slack's 3 writes/s, asked for through a database round trip: the ask for a due token arrives 40 ms after it.
    const count = (rateLimit: RateLimit): number => {
      let state = newBucket(rateLimit, T0);
      let now = T0;
      let granted = 0;
      while (now < T0 + 600_000) {
        const grant = take(state, rateLimit, now, 1);
        state = grant.state;
        granted += grant.granted;
        now += (grant.granted > 0 ? 0 : grant.waitMs) + 40;
      }
      return granted;
    };
    const allowed = 3 * 600;
    const withBurst = count({ requestsPerSecond: 3, burst: 5 });
    assert.ok(withBurst >= allowed * 0.99 && withBurst <= allowed + 5, `granted ${withBurst} of ${allowed}`);
    // With the default bucket of one token, each late moment is lost: about 333 / 373 of the rate.
    assert.ok(count({ requestsPerSecond: 3 }) < allowed * 0.92);
  });

  test('grants whole tokens up to what was asked, and says how long until the next one', () => {
    const fast = { requestsPerSecond: 40 };
    const start = { ...newBucket(fast, T0), tokens: 3.5 };
    const first = take(start, fast, T0, 5);
    assert.equal(first.granted, 3);
    const second = take(first.state, fast, T0, 5);
    assert.equal(second.granted, 0);
    assert.equal(second.waitMs, 13); // half a token at 40/s, rounded up to whole ms
  });
});

describe('reservations', () => {
  test('a client asking a round trip ahead spends every token on time, even with a bucket of one', () => {
    // Each ask reaches the bucket 40 ms after the client sent it; the client spends each token at its due time and
    // asks again at once. With `take`, the same client loses 40 ms per token (the test above: under 0.92 of the rate).
    const rateLimit = { requestsPerSecond: 3 };
    let state = newBucket(rateLimit, T0);
    let now = T0;
    const spent: number[] = [];
    while (now < T0 + 600_000) {
      const asked = now + 40;
      const grant = reserve(state, rateLimit, asked, 1, 250);
      state = grant.state;
      if (grant.granted === 0) {
        now = asked + grant.waitMs;
        continue;
      }
      // The answer comes back 40 ms later still; the token is spent when it is due, not before.
      now = Math.max(asked + 40, asked + grant.dueMs[0]!);
      spent.push(now);
    }
    const allowed = 3 * 600;
    assert.ok(spent.length >= allowed * 0.99 && spent.length <= allowed + 1, `spent ${spent.length} of ${allowed}`);
  });

  test('reserves only tokens due within the horizon, each with its delay, and puts the bucket in debt', () => {
    const ten = { requestsPerSecond: 10 };
    const first = reserve(newBucket(ten, T0), ten, T0, 5, 250);
    // One token now, then one every 100 ms: those due at 100 and 200 ms are within 250 ms, the one at 300 is not.
    assert.deepEqual(first.dueMs, [0, 100, 200]);
    assert.ok(Math.abs(first.state.tokens - -2) < 1e-9);
    const next = reserve(first.state, ten, T0, 5, 250);
    assert.equal(next.granted, 0);
    assert.equal(next.waitMs, 50); // the token due at 300 ms is 250 ms away at 50 ms
  });

  test('a paused bucket reserves nothing before the pause ends', () => {
    const ten = { requestsPerSecond: 10 };
    const paused = throttled(newBucket(ten, T0), ten, T0, 1_000);
    assert.equal(reserve(paused, ten, T0 + 500, 1, 250).granted, 0);
    const after = reserve(paused, ten, T0 + 900, 1, 250);
    // Tokens accrue from the end of the pause at the cut rate (7/s): the first is due 143 ms after it, 243 from now.
    assert.deepEqual(after.dueMs, [243]);
  });

  test('many workers reserving in turn never get more than the rate between them', () => {
    const ten = { requestsPerSecond: 10 };
    let state = newBucket(ten, T0);
    const due: number[] = [];
    for (let now = T0; now < T0 + 60_000; now += 7) {
      const grant = reserve(state, ten, now, 2, 250);
      state = grant.state;
      due.push(...grant.dueMs.map((ms) => now + ms));
    }
    const spentBy = (t: number) => due.filter((at) => at <= t).length;
    for (const t of [T0 + 1_000, T0 + 30_000, T0 + 59_000]) {
      assert.ok(spentBy(t) <= 1 + (10 * (t - T0)) / 1000, `${spentBy(t)} spent by ${t - T0} ms`);
    }
  });
});

describe('window margin', () => {
  test('the request that would make the rate plus one within a window and its margin waits for the margin', () => {
    const sent = Array.from({ length: 10 }, (_, i) => T0 + i * 100);
    // Ten sent from T0 to T0 + 900 at 10/s: the eleventh may go at T0 + 1000 + margin, not at T0 + 1000.
    assert.equal(windowWait(sent, 10, T0 + 1000, 30), 30);
    assert.equal(windowWait(sent, 10, T0 + 1030, 30), 0);
    assert.equal(windowWait(sent.slice(1), 10, T0 + 950, 30), 0);
  });

  test('two requests due together after a late wake-up go a window apart, not together', () => {
    // At 0.5/s (one per two seconds), a request sent late at T0 + 1900 holds the next one until T0 + 3930.
    assert.equal(windowWait([T0 + 1900], 0.5, T0 + 2000, 30), 1930);
  });
});

describe('AIMD', () => {
  test('a 429 cuts the rate by the decrease factor and empties the bucket', () => {
    const state = throttled({ ...newBucket(limit, T0), tokens: 2 }, limit, T0, undefined);
    assert.equal(state.rate, 10 * AIMD.decrease);
    assert.equal(state.tokens, 0);
  });

  test('429s answering one burst cut once; a later one cuts again', () => {
    let state = newBucket(limit, T0);
    for (let i = 0; i < 5; i += 1) state = throttled(state, limit, T0 + i * 10, undefined);
    // One cut, plus what 40 ms of recovery added back.
    assert.ok(Math.abs(state.rate - 10 * AIMD.decrease) < 0.01, `rate ${state.rate}`);
    state = throttled(state, limit, T0 + AIMD.cutWindowMs + 50, undefined);
    assert.ok(Math.abs(state.rate - 10 * AIMD.decrease ** 2) < 0.1, `rate ${state.rate}`);
  });

  test('recovers additively, a fiftieth of the configured rate per second, up to the configured rate', () => {
    const cut = throttled(newBucket(limit, T0), limit, T0, undefined);
    assert.ok(Math.abs(advance(cut, limit, T0 + 5_000).rate - (7 + 1)) < 1e-9);
    assert.equal(advance(cut, limit, T0 + 3_600_000).rate, 10);
  });

  test('never cuts below the floor', () => {
    let state = newBucket(limit, T0);
    for (let i = 0; i < 100; i += 1) state = throttled(state, limit, T0 + i * AIMD.cutWindowMs, undefined);
    assert.equal(state.rate, 10 * AIMD.floorShare);
  });

  test('a Retry-After pauses the bucket (capped), then tokens flow again', () => {
    const paused = throttled(newBucket(limit, T0), limit, T0, 2_000);
    const during = take(paused, limit, T0 + 1_500, 1);
    assert.equal(during.granted, 0);
    assert.equal(during.waitMs, 500);
    assert.equal(take(during.state, limit, T0 + 2_200, 1).granted, 1);
    const hostile = throttled(newBucket(limit, T0), limit, T0, 86_400_000);
    assert.equal(hostile.pausedUntil, T0 + AIMD.maxPauseMs);
  });

  test('a lowered configured rate applies at once', () => {
    const lower = { requestsPerSecond: 2 };
    assert.equal(advance(newBucket(limit, T0), lower, T0 + 1000).rate, 2);
  });

  test('against a target that takes 10/s and refuses the rest, settles near 10/s with few refusals', () => {
    // The configured rate is four times what the target takes; the target is a token bucket of its own.
    const high: RateLimit = { requestsPerSecond: 40 };
    let ours = newBucket(high, T0);
    let theirs = { tokens: 10, at: T0 };
    let now = T0;
    let accepted = 0;
    let refused = 0;
    while (now < T0 + 120_000) {
      const grant = take(ours, high, now, 1);
      ours = grant.state;
      if (grant.granted === 0) {
        now += grant.waitMs;
        continue;
      }
      theirs = { tokens: Math.min(10, theirs.tokens + ((now - theirs.at) / 1000) * 10), at: now };
      if (theirs.tokens >= 1) {
        theirs.tokens -= 1;
        accepted += 1;
      } else {
        refused += 1;
        ours = throttled(ours, high, now, undefined);
      }
    }
    const rate = accepted / 120;
    assert.ok(rate >= 8 && rate <= 10.2, `accepted ${rate.toFixed(2)}/s`);
    assert.ok(refused / (accepted + refused) <= 0.05, `refused ${refused} of ${accepted + refused}`);
  });
});

describe('fairShares', () => {
  test('gives each what it wants when there is enough', () => {
    assert.deepEqual(fairShares(10, [3, 2, 0]), [3, 2, 0]);
  });

  test('splits evenly when everyone wants more than an even share', () => {
    assert.deepEqual(fairShares(9, [10, 10, 10]), [3, 3, 3]);
  });

  test('what a small want leaves goes to the others', () => {
    assert.deepEqual(fairShares(10, [1, 20, 20]), [1, 5, 4]);
  });

  test('never hands out more than the capacity', () => {
    for (const wants of [[5], [1, 1, 1, 1, 1, 1], [7, 3, 9], [0, 0]]) {
      const shares = fairShares(4, wants);
      assert.ok(shares.reduce((a, b) => a + b, 0) <= 4, `${JSON.stringify(wants)} -> ${JSON.stringify(shares)}`);
      shares.forEach((share, i) => assert.ok(share <= wants[i]!));
    }
  });
});
