/** A range activity's rows in stretches: read ahead, synced a page at a time, with resume points between them. */
import { addCounts, zeroCounts, type RunCounts } from '../db/index.ts';
import { eachConcurrently } from './concurrency.ts';
import { lastResumePoint, markResumePoint } from './heartbeat.ts';
import type { IdRange } from './sync-deps.ts';

/** Where resume points are kept: `last` what an earlier attempt marked, `mark` records a new one. */
export interface ResumePoints {
  last(): unknown;
  mark(point: unknown): void;
}

/** The current activity's resume points, carried by its heartbeats. */
const HEARTBEATS: ResumePoints = { last: lastResumePoint, mark: markResumePoint };

/** Where a range activity got to: the last id of its last finished stretch, and its counts so far. */
export interface RangeProgress {
  after: string | null;
  counts: RunCounts;
}

/** Directory rows ids `firstId` to `lastId` a range activity counts together: `processed` rows, `sync` among them to sync. */
export interface Page<R> {
  firstId: string;
  lastId: string;
  processed: number;
  sync: R[];
  /** The ids of its stretch's rows to sync that had a link when it was read; absent: not known, every link is read. */
  linked?: ReadonlySet<string>;
}

/** A stretch of a range: its pages (in id order), its last id (null: none was left), whether the range goes on. */
export interface Stretch<R> {
  pages: Array<Page<R>>;
  lastId: string | null;
  more: boolean;
}

/** A stretch whose pages are under way: its last id, and how many of its pages have not finished. */
interface OpenStretch {
  last: string;
  left: number;
}

/**
 * Runs `handle` over a range's pages, `inFlight` at a time, from the resume point of an earlier attempt if there is
 * one. Stretches are read ahead (the next read under way while this one's pages run) and a stretch's pages start as
 * soon as a place is free, so a stretch's end leaves no request slot idle while the next one is mapped and looked up.
 * A new resume point is marked once every page of a stretch, and of those before it, has finished: a later page
 * finished before that is recorded as counted, so a retry skips it. `progress` reads and marks resume points (the
 * current activity's heartbeats).
 */
export async function inStretches<R>(
  range: IdRange,
  read: (after: string | null) => Promise<Stretch<R>>,
  inFlight: number,
  handle: (page: Page<R>, counts: RunCounts) => Promise<void>,
  progress: ResumePoints = HEARTBEATS,
): Promise<RunCounts> {
  const resumed = progress.last() as RangeProgress | undefined;
  const counts = resumed?.counts ? addCounts(zeroCounts(), resumed.counts) : zeroCounts();
  const open: OpenStretch[] = [];
  const settle = (): void => {
    for (let first = open[0]; first?.left === 0; first = open[0]) {
      open.shift();
      // A copy: the heartbeat may be sent later, after more pages changed `counts`.
      progress.mark({ after: first.last, counts: { ...counts } } satisfies RangeProgress);
    }
  };
  async function* pages(): AsyncGenerator<{ page: Page<R>; stretch: OpenStretch }> {
    let next = read(resumed?.counts ? resumed.after : range.after);
    for (;;) {
      const { pages: list, lastId: last, more } = await next;
      if (last === null) return;
      next = more ? read(last) : Promise.resolve({ pages: [], lastId: null, more: false });
      // A failure of this stretch ends the activity; the read already under way must not become an unhandled rejection.
      next.catch(() => undefined);
      const stretch: OpenStretch = { last, left: list.length };
      open.push(stretch);
      settle();
      for (const page of list) yield { page, stretch };
    }
  }
  await eachConcurrently(pages(), inFlight, async ({ page, stretch }) => {
    await handle(page, counts);
    stretch.left -= 1;
    settle();
  });
  return counts;
}
