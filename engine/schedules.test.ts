import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { scheduleOffsetMs } from './schedules.ts';

const HOUR = 60 * 60_000;

describe('scheduleOffsetMs', () => {
  test('is a fixed, whole-second offset per slug and interval, so a restart keeps every schedule where it was', () => {
    assert.equal(scheduleOffsetMs('acme', HOUR), 1_830_000);
    assert.equal(scheduleOffsetMs('acme', 15 * 60_000), 457_000);
    assert.equal(scheduleOffsetMs('globex', HOUR), 1_290_000);
    assert.equal(scheduleOffsetMs('offset-check', 360 * 60_000), 18_274_000);
  });

  test('spreads providers whose slugs differ only in a number across the whole interval', () => {
    const offsets = Array.from({ length: 100 }, (_, i) => scheduleOffsetMs(`tenant-${i}`, HOUR));
    assert.ok(
      offsets.every((offset) => offset >= 0 && offset < HOUR),
      'every offset lies inside the interval',
    );
    assert.ok(new Set(offsets).size >= 95, `${new Set(offsets).size} distinct offsets for 100 providers`);
    const perTenMinutes = Array.from(
      { length: 6 },
      (_, sixth) => offsets.filter((offset) => Math.floor(offset / (10 * 60_000)) === sixth).length,
    );
    assert.ok(
      perTenMinutes.every((count) => count >= 5),
      `providers per ten minutes of the hour: ${perTenMinutes.join(', ')}`,
    );
  });
});
