import {
  addCounts,
  countedPages,
  getLinks,
  loadGroupsInRange,
  userStretch,
  type CountedPage,
  type Db,
  type ObjectType,
  type ProviderForSync,
  type RunCounts,
  type SyncGroupRow,
  type SyncUserRow,
} from '../db/index.ts';
import { BatchRecorder, type LinkWriter } from './batch-recorder.ts';
import { firstAttempt } from './heartbeat.ts';
import { ensureStillEnabled } from './provider-enabled.ts';
import { inStretches, type Page, type Stretch } from './stretches.ts';
import type { IdRange } from './sync-deps.ts';
import type { PayloadMapper } from './mapper.ts';
import type { StatisticsKeeper } from './statistics-keeper.ts';
import type { RowSync } from './sync-rows.ts';
import type { Target } from './targets.ts';

/**
 * Rows a stretch of a range activity holds to sync (ten pages, at most 1,000): a retry resumes after the last
 * finished stretch. Rows that need nothing do not count: a range with nothing to sync is one stretch. An activity's
 * first stretch is one page: its requests start once one page is read and mapped, not ten (at the start of a sync,
 * eight ranges' forty pages were read and queued for the mapping sandbox together, and the last ranges' first
 * requests waited 0.5-0.8 s for them, with 20 ms from the target).
 */
function stretchRows(pageSize: number, first: boolean): number {
  return first ? pageSize : Math.min(1000, pageSize * 10);
}

/**
 * Pages of one range activity in flight at a time, for a provider's `concurrency` (its ranges in flight, and each
 * range's request slots). The slots bound what is sent, so more pages cost the target nothing: they keep the slots
 * busy while the last objects of a page wait out their backoffs, and start every object early, so its retries overlap
 * the others' work instead of trailing it (faults bench (1) and (2): 2 pages left the slots idle at each page's end).
 * They cost worker memory, so the pages of all ranges together are held to about 32 (8 pages at concurrency 4, 4 at
 * 8: at 8, 8 pages added 30-40 MB of RSS to a 10,000-user sync).
 */
function pagesInFlight(concurrency: number): number {
  return Math.min(8, Math.max(2, Math.ceil(32 / concurrency)));
}

/**
 * Splits a stretch's rows (in id order) into pages of at most `size` rows to sync; the rows that need nothing lie
 * between them and are counted with the page they fall in (a stretch with nothing to sync is one page).
 */
function pagesOf<R extends { id: string }>(
  rows: readonly R[],
  toSync: ReadonlySet<string>,
  size: number,
): Array<Page<R>> {
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
  return pages.map((p) => ({
    firstId: p.rows[0]!.id,
    lastId: p.rows.at(-1)!.id,
    processed: p.rows.length,
    sync: p.sync,
  }));
}

/**
 * The pages of a stretch read by `userStretch`: its rows to sync, `size` a page; each page counts the rows from the
 * one after the previous page's last row to sync up to its own last (the last page, to the stretch's end).
 */
function pagesOfStretch<R extends { id: string }>(
  stretch: {
    rows: ReadonlyArray<{ row: R; position: number; nextId: string | null }>;
    firstId: string | null;
    lastId: string | null;
    count: number;
    linked: ReadonlySet<string>;
  },
  size: number,
): Array<Page<R>> {
  const { firstId, lastId } = stretch;
  if (firstId === null || lastId === null) return [];
  const chunks: Array<typeof stretch.rows> = [];
  for (let i = 0; i < stretch.rows.length; i += size) chunks.push(stretch.rows.slice(i, i + size));
  if (chunks.length === 0) chunks.push([]);
  return chunks.map((chunk, k) => {
    const final = k === chunks.length - 1;
    // The previous page's last row to sync: a row follows it (this page's), so its next id is never null.
    const before = chunks[k - 1]?.at(-1);
    return {
      firstId: before?.nextId ?? firstId,
      lastId: final ? lastId : chunk.at(-1)!.row.id,
      processed: (final ? stretch.count : chunk.at(-1)!.position) - (before?.position ?? 0),
      sync: chunk.map((r) => r.row),
      linked: stretch.linked,
    };
  });
}

/** What a range activity does with one object type: read a stretch of its rows, and sync a page of them. */
interface RangeKind<R extends { id: string }> {
  type: ObjectType;
  /**
   * The next stretch after `after`, up to `range.last`, without the rows of the `counted` pages, split into pages;
   * the rows that need nothing (pushed, as they are, from the very same input) are only counted.
   */
  stretch(
    provider: ProviderForSync,
    range: IdRange,
    counted: readonly CountedPage[],
    first: boolean,
  ): Promise<Stretch<R>>;
  /** Syncs a page's rows that need it (`page.sync`). */
  sync(rec: BatchRecorder, provider: ProviderForSync, target: Target, page: Page<R>): Promise<void>;
}

/** Builds the range sync of a worker: one loop for users and groups, told apart by their {@link RangeKind}. */
export function createRangeSync(deps: {
  db: Db;
  writer: LinkWriter;
  rowSync: RowSync;
  mapper: PayloadMapper;
  statistics: StatisticsKeeper;
}) {
  const { db, writer, rowSync, mapper, statistics } = deps;

  const users: RangeKind<SyncUserRow> = {
    type: 'user',
    async stretch(provider, range, counted, first) {
      // The stretch's probes and its pages' link reads are planned from these: renewed as the links are written.
      await statistics.refresh();
      const version = await rowSync.inputVersion(provider);
      const max = stretchRows(provider.pageSize, first);
      const stretch = await userStretch(db, provider.scope, provider.id, version, range, max, counted);
      // A range's last stretch: the groups' mappings are readied while its pages are sent, not when the groups
      // phase starts (28 ms then, before the first group's lookup; scale bench, target 20 ms late).
      if (!stretch.more) mapper.prepare?.(provider, 'group').catch(() => undefined);
      return { pages: pagesOfStretch(stretch, provider.pageSize), lastId: stretch.lastId, more: stretch.more };
    },
    async sync(rec, provider, target, page) {
      // Only the rows the stretch found linked have a link to read (none, in a first sync). No link appears for the
      // others meanwhile: a provider's full sync and pushes never run at once, and each row is in one page. But an
      // earlier attempt of this range, timed out and still running, may write one after the stretch was read: a
      // retry reads every row's link just before its page, as the lookup before a create cannot find every object.
      const known = firstAttempt() ? page.linked : undefined;
      const ids = page.sync.filter((row) => known === undefined || known.has(row.id)).map((row) => row.id);
      await rowSync.users(rec, provider, target, page.sync, await getLinks(db, provider.id, 'user', ids));
    },
  };

  const groups: RangeKind<SyncGroupRow> = {
    type: 'group',
    async stretch(provider, range, counted, first) {
      // The users phase may just have written every link the members' reads join: the statistics are renewed, if
      // stale, beside this read rather than before it (an ANALYZE takes 0.1-0.5 s). The users' stretches renewed
      // them whenever stale by then (at 100,000 users, 8 times in a 46 s sync), so a large directory's read is
      // planned from most of those links already; a small one's users may have read too few stretches to renew
      // them at all (none at 10,000), and its first groups' reads are planned from the statistics the run began with.
      statistics.refresh().catch(() => undefined);
      const size = stretchRows(provider.pageSize, first);
      const read = await loadGroupsInRange(db, provider.scope, range.after, range.last, size);
      const isCounted = (id: string): boolean => counted.some((page) => id >= page.firstId && id <= page.lastId);
      const rows = counted.length === 0 ? read : read.filter((row) => !isCounted(row.id));
      // Whether a group's input changed depends on its members' remote ids, which `rowSync.groups` reads anyway.
      const pages = pagesOf(rows, new Set(rows.map((row) => row.id)), provider.pageSize);
      return { pages, lastId: read.at(-1)?.id ?? null, more: read.length === size };
    },
    sync: (rec, provider, target, { sync: page }) =>
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
   * range in stretches and syncs the rows that need it a page (the provider's page size) at a time, several pages
   * overlapping (`pagesInFlight`), across stretches. Each finished page is recorded (links, events, counters, and
   * which rows it counted) in one statement: a retry (a worker killed mid-range) resumes after the last finished
   * stretch its heartbeat carried and skips the pages recorded since, so every row is counted once; the links in
   * PostgreSQL make redoing a page that did not finish harmless.
   */
  async function syncRange<R extends { id: string }>(
    kind: RangeKind<R>,
    provider: ProviderForSync,
    target: Target,
    runId: string,
    range: IdRange,
  ): Promise<RunCounts> {
    const counted = await countedPages(db, runId, kind.type, range.after, range.last);
    let reads = 0;
    return inStretches(
      range,
      async (after) => {
        const first = (reads += 1) === 1;
        // A provider disabled meanwhile gets no further stretch: a range of thousands stops within one.
        if (!first) await ensureStillEnabled(db, provider);
        return kind.stretch(provider, { after, last: range.last }, counted, first);
      },
      pagesInFlight(provider.concurrency),
      async (page, counts) => {
        const rec = new BatchRecorder(db, writer, runId, provider.id);
        try {
          if (page.sync.length > 0) await kind.sync(rec, provider, target, page);
          rec.counts.processed += page.processed - page.sync.length;
          rec.page = { objectType: kind.type, firstId: page.firstId, lastId: page.lastId };
        } catch (error) {
          // Links and events of what was done are kept; the page is counted by the attempt that finishes it.
          rec.counts.processed = 0;
          throw error;
        } finally {
          await rec.flush();
        }
        addCounts(counts, rec.counts);
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
