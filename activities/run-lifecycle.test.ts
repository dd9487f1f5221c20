import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mostPerRange } from './run-lifecycle.ts';

describe('mostPerRange', () => {
  test('a target whose rate is not limited takes ranges of up to 25,000 objects: 100,000 users at concurrency 8 are one round', () => {
    assert.equal(mostPerRange(null, 8, 100), 25_000);
    assert.equal(mostPerRange(undefined, 8, 100), 25_000);
    assert.ok(100_000 / (8 * mostPerRange(null, 8, 100)) <= 1);
  });

  test("a rate-limited target's range holds about an hour of its share of the rate, so it ends well inside its 2-hour timeout", () => {
    // 10 requests/s shared by 8 ranges: 1.25/s, 4,500 in an hour.
    assert.equal(mostPerRange({ requestsPerSecond: 10 }, 8, 100), 4500);
    // Slack's documented 3 requests/s.
    assert.equal(mostPerRange({ requestsPerSecond: 3 }, 8, 100), 1350);
    // A fast limit is still capped like no limit.
    assert.equal(mostPerRange({ requestsPerSecond: 1000 }, 8, 100), 25_000);
  });

  test('a range holds at least a page, however slow the limit', () => {
    assert.equal(mostPerRange({ requestsPerSecond: 0.01 }, 8, 100), 100);
  });
});
