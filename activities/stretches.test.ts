/** A range's stretches: pages run across stretch ends, and a resume point never passes a page still running. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { zeroCounts, type RunCounts } from '../db/index.ts';
import { inStretches, type Page, type RangeProgress, type ResumePoints, type Stretch } from './stretches.ts';

const RANGE = { after: null, last: 'z' };

/** One page per name, each a row of its own. */
function stretch(names: string[], more: boolean): Stretch<string> {
  const pages: Array<Page<string>> = names.map((name) => ({ firstId: name, lastId: name, processed: 1, sync: [name] }));
  return { pages, lastId: names.at(-1) ?? null, more };
}

/** Reads the stretch after each id from `script` (the first under `start`), recording what was asked. */
function reader(script: Record<string, Stretch<string> | Error>) {
  const asked: Array<string | null> = [];
  const read = (after: string | null): Promise<Stretch<string>> => {
    asked.push(after);
    const answer = script[after ?? 'start'] ?? { pages: [], lastId: null, more: false };
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  };
  return { asked, read };
}

/** Resume points in memory: `earlier` as an earlier attempt's, each new one with the pages finished by then. */
function points(earlier?: RangeProgress) {
  const finished: string[] = [];
  const marked: Array<{ after: string | null; processed: number; finished: string[] }> = [];
  const progress: ResumePoints = {
    last: () => earlier,
    mark: (point) => {
      const { after, counts } = point as RangeProgress;
      marked.push({ after, processed: counts.processed, finished: [...finished] });
    },
  };
  return { progress, finished, marked };
}

/** Counts the page and notes it finished. */
function finish(page: Page<string>, counts: RunCounts, finished: string[]): void {
  counts.processed += page.processed;
  finished.push(page.firstId);
}

test("a stretch's pages start while the last page of the stretch before it is still running", async () => {
  const { read } = reader({ start: stretch(['a', 'b'], true), b: stretch(['c', 'd'], false) });
  const { progress, finished } = points();
  const cStarted = Promise.withResolvers<void>();
  const events: string[] = [];
  await inStretches(
    RANGE,
    read,
    2,
    async (page, counts) => {
      events.push(`${page.firstId} starts`);
      if (page.firstId === 'c') cStarted.resolve();
      // b holds its place until c starts (or a second passes): read stretch by stretch, c would wait for b.
      if (page.firstId === 'b') await Promise.race([cStarted.promise, delay(1000)]);
      events.push(`${page.firstId} ends`);
      finish(page, counts, finished);
    },
    progress,
  );
  assert.deepEqual(events.slice(0, 5), ['a starts', 'a ends', 'b starts', 'c starts', 'c ends']);
  assert.deepEqual(finished.toSorted(), ['a', 'b', 'c', 'd']);
});

test('a resume point is marked only once every page of its stretch and of those before it has finished', async () => {
  const { read } = reader({ start: stretch(['a', 'b'], true), b: stretch(['c'], false) });
  const { progress, finished, marked } = points();
  const cFinished = Promise.withResolvers<void>();
  const counts = await inStretches(
    RANGE,
    read,
    3,
    async (page, counts) => {
      if (page.firstId === 'b') await cFinished.promise;
      finish(page, counts, finished);
      if (page.firstId === 'c') cFinished.resolve();
    },
    progress,
  );
  assert.deepEqual(finished, ['a', 'c', 'b'], 'c, of the second stretch, finished before b');
  assert.deepEqual(marked, [
    // Not when c finished: b, before it, was still running. The counts include c's: a retry skips it, counted.
    { after: 'b', processed: 3, finished: ['a', 'c', 'b'] },
    { after: 'c', processed: 3, finished: ['a', 'c', 'b'] },
  ]);
  assert.equal(counts.processed, 3);
});

test('a retry starts after the resume point of the attempt before, with its counts', async () => {
  const { read, asked } = reader({ b: stretch(['c'], false) });
  const { progress, finished } = points({ after: 'b', counts: { ...zeroCounts(), processed: 2 } });
  const handle = (page: Page<string>, counts: RunCounts): Promise<void> => {
    finish(page, counts, finished);
    return Promise.resolve();
  };
  const counts = await inStretches(RANGE, read, 2, handle, progress);
  assert.deepEqual(asked, ['b']);
  assert.deepEqual(finished, ['c']);
  assert.equal(counts.processed, 3);
});

test('a failed read ends the range once the pages running have finished, with no later resume point', async () => {
  const { read } = reader({ start: stretch(['a'], true), a: new Error('the database went away') });
  const { progress, finished, marked } = points();
  await assert.rejects(
    inStretches(
      RANGE,
      read,
      2,
      async (page, counts) => {
        await delay(20);
        finish(page, counts, finished);
      },
      progress,
    ),
    /the database went away/,
  );
  assert.deepEqual(finished, ['a'], 'the page under way when the read failed finished');
  assert.deepEqual(
    marked.map((m) => m.after),
    ['a'],
  );
});

test('a failed page starts no further page and marks no resume point past it', async () => {
  const { read } = reader({ start: stretch(['a', 'b', 'c'], false) });
  const { progress, finished, marked } = points();
  await assert.rejects(
    inStretches(
      RANGE,
      read,
      1,
      (page, counts) => {
        if (page.firstId === 'b') return Promise.reject(new Error('the target refused b'));
        finish(page, counts, finished);
        return Promise.resolve();
      },
      progress,
    ),
    /the target refused b/,
  );
  assert.deepEqual(finished, ['a']);
  assert.deepEqual(marked, []);
});

test('a page that fails while the next stretch is read keeps that stretch from starting', async () => {
  const { read: readNow } = reader({ start: stretch(['a'], true), a: stretch(['b'], false) });
  // The second stretch comes late: the place waiting for it is still waiting when a fails.
  const read = async (after: string | null): Promise<Stretch<string>> => {
    if (after === 'a') await delay(50);
    return readNow(after);
  };
  const started: string[] = [];
  await assert.rejects(
    inStretches(
      RANGE,
      read,
      2,
      (page) => {
        started.push(page.firstId);
        return Promise.reject(new Error(`the target refused ${page.firstId}`));
      },
      points().progress,
    ),
    /the target refused a/,
  );
  assert.deepEqual(started, ['a']);
});
