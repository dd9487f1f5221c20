import {
  addCounts,
  countedPages,
  getLinks,
  loadGroupsInRange,
  loadUsersInRange,
  zeroCounts,
  type CountedPage,
  type Db,
  type ObjectType,
  type ProviderForSync,
  type RunCounts,
  type SyncGroupRow,
  type SyncUserRow,
} from '../db/index.ts';
import { BatchRecorder, type LinkWriter } from './batch-recorder.ts';
import { eachConcurrently } from './concurrency.ts';
import { lastResumePoint, markResumePoint } from './heartbeat.ts';
import { inputHash, pushedFrom } from './input-hash.ts';
import type { IdRange } from './sync-deps.ts';
import type { RowSync } from './sync-rows.ts';
import type { Target } from './targets.ts';

/**
 * Directory rows a range activity reads at a time (ten pages, at most 1,000): the unchanged among them are settled
 * together, and a retry resumes after the last finished stretch.
 */
function stretchRows(pageSize: number): number {
  return Math.min(1000, pageSize * 10);
}

/** Pages of one range activity in flight at a time: the next one starts while the last objects of one wait out their backoffs. */
const PAGES_IN_FLIGHT = 2;

/** Where a range activity got to: the last id of its last finished stretch, and its counts so far. */
interface RangeProgress {
  after: string | null;
  counts: RunCounts;
}

/**
 * Runs `handle` over a range's rows, read `size` at a time (the next read overlapping the current stretch),
 * from the resume point of an earlier attempt if there is one, marking a new one after each stretch.
 */
async function inStretches<R extends { id: string }>(
  range: IdRange,
  size: number,
  read: (after: string | null, limit: number) => Promise<R[]>,
  handle: (rows: R[], counts: RunCounts) => Promise<void>,
): Promise<RunCounts> {
  const resumed = lastResumePoint() as RangeProgress | undefined;
  const counts = resumed?.counts ? addCounts(zeroCounts(), resumed.counts) : zeroCounts();
  let next = read(resumed?.counts ? resumed.after : range.after, size);
  for (;;) {
    const rows = await next;
    if (rows.length === 0) break;
    const last = rows.at(-1)!.id;
    next = rows.length === size ? read(last, size) : Promise.resolve([]);
    // A failure of this stretch ends the activity; the read already under way must not become an unhandled rejection.
    next.catch(() => undefined);
    await handle(rows, counts);
    // A copy: the heartbeat may be sent later, after the next stretch changed `counts`.
    markResumePoint({ after: last, counts: { ...counts } } satisfies RangeProgress);
  }
  return counts;
}

/**
 * Splits a stretch's rows (in id order) into pages of at most `size` rows to sync; the rows that need nothing lie
 * between them and are counted with the page they fall in (a stretch with nothing to sync is one page).
 */
function pagesOf<R extends { id: string }>(
  rows: readonly R[],
  toSync: ReadonlySet<string>,
  size: number,
): Array<{ rows: R[]; sync: R[] }> {
  const pages: Array<{ rows: R[]; sync: R[] }> = [];
  let page: { rows: R[]; sync: R[] } = { rows: [], sync: [] };
  for (const row of rows) {
    if (page.sync.length === size && toSync.has(row.id)) {
      pages.push(page);
      page = { rows: [], sync: [] };
    }
    page.rows.push(row);
    if (toSync.has(row.id)) page.sync.push(row);
  }
  if (page.rows.length > 0) pages.push(page);
  return pages;
}

/** What a range activity does with one object type: read its rows, tell which need syncing, sync a page of them. */
interface RangeKind<R extends { id: string }> {
  type: ObjectType;
  read(provider: ProviderForSync, after: string | null, last: string, limit: number): Promise<R[]>;
  /** The ids of the rows that need syncing; the others were pushed from the very same input and are only counted. */
  toSync(provider: ProviderForSync, rows: readonly R[]): Promise<Set<string>>;
  sync(rec: BatchRecorder, provider: ProviderForSync, target: Target, page: R[]): Promise<void>;
}

/** Builds the range sync of a worker: one loop for users and groups, told apart by their {@link RangeKind}. */
export function createRangeSync(deps: { db: Db; writer: LinkWriter; rowSync: RowSync }) {
  const { db, writer, rowSync } = deps;

  const users: RangeKind<SyncUserRow> = {
    type: 'user',
    read: (provider, after, last, limit) => loadUsersInRange(db, provider.scope, after, last, limit),
    async toSync(provider, rows) {
      const [version, known] = await Promise.all([
        rowSync.inputVersion(provider),
        getLinks(
          db,
          provider.id,
          'user',
          rows.map((row) => row.id),
          { withPayload: false },
        ),
      ]);
      return new Set(
        rows
          .filter((row) => !pushedFrom(known.get(row.id), version === null ? null : inputHash(version, row)))
          .map((row) => row.id),
      );
    },
    async sync(rec, provider, target, page) {
      const ids = page.map((row) => row.id);
      await rowSync.users(rec, provider, target, page, await getLinks(db, provider.id, 'user', ids));
    },
  };

  const groups: RangeKind<SyncGroupRow> = {
    type: 'group',
    read: (provider, after, last, limit) => loadGroupsInRange(db, provider.scope, after, last, limit),
    // Whether a group's input changed depends on its members' remote ids, which `rowSync.groups` reads anyway.
    toSync: (_provider, rows) => Promise.resolve(new Set(rows.map((row) => row.id))),
    sync: (rec, provider, target, page) =>
      // Not awaited here: `rowSync.groups` reads the links alongside the members.
      rowSync.groups(
        rec,
        provider,
        target,
        page,
        getLinks(
          db,
          provider.id,
          'group',
          page.map((row) => row.id),
        ),
      ),
  };

  /**
   * Brings every in-scope object of a range to the target; one permanent failure never stops the others. Reads the
   * range in stretches and syncs the rows that need it a page (the provider's page size) at a time, two pages
   * overlapping. Each finished page is recorded (links, events, counters, and which rows it counted) in one
   * statement: a retry (a worker killed mid-range) resumes after the last finished stretch its heartbeat carried
   * and skips the pages recorded since, so every row is counted once; the links in PostgreSQL make redoing a page
   * that did not finish harmless.
   */
  async function syncRange<R extends { id: string }>(
    kind: RangeKind<R>,
    provider: ProviderForSync,
    target: Target,
    runId: string,
    range: IdRange,
  ): Promise<RunCounts> {
    const counted = await countedPages(db, runId, kind.type, range.after, range.last);
    const isCounted = (id: string): boolean => counted.some((page) => id >= page.firstId && id <= page.lastId);
    return inStretches(
      range,
      stretchRows(provider.pageSize),
      (after, limit) => kind.read(provider, after, range.last, limit),
      async (stretch, counts) => {
        const rows = counted.length === 0 ? stretch : stretch.filter((row) => !isCounted(row.id));
        const toSync = await kind.toSync(provider, rows);
        await eachConcurrently(pagesOf(rows, toSync, provider.pageSize), PAGES_IN_FLIGHT, async (page) => {
          const rec = new BatchRecorder(db, writer, runId, provider.id);
          const whole: CountedPage = { objectType: kind.type, firstId: page.rows[0]!.id, lastId: page.rows.at(-1)!.id };
          try {
            if (page.sync.length > 0) await kind.sync(rec, provider, target, page.sync);
            rec.counts.processed += page.rows.length - page.sync.length;
            rec.page = whole;
          } catch (error) {
            // Links and events of what was done are kept; the page is counted by the attempt that finishes it.
            rec.counts.processed = 0;
            throw error;
          } finally {
            await rec.flush();
          }
          addCounts(counts, rec.counts);
        });
      },
    );
  }

  return {
    users: (provider: ProviderForSync, target: Target, runId: string, range: IdRange) =>
      syncRange(users, provider, target, runId, range),
    groups: (provider: ProviderForSync, target: Target, runId: string, range: IdRange) =>
      syncRange(groups, provider, target, runId, range),
  };
}
