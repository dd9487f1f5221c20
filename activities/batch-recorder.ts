import {
  deleteLinks,
  inTransaction,
  makeLink,
  recordBatch,
  recordProgress,
  saveLinks,
  zeroCounts,
  type Db,
  type Link,
  type ObjectType,
  type SyncEvent,
} from '../db/index.ts';

/**
 * Writes the links of objects just created, for every batch this worker runs: a crash after a POST must not lead to
 * a second one, so a created object's link is written at once, not at batch end. One write at a time; the links
 * that arrive meanwhile, from any batch, go together in the next (a group commit), so a link waits at most for one
 * write in flight, and concurrent batches share statements instead of each sending its own.
 */
export class LinkWriter {
  readonly #db: Db;
  /** The links of the next write (the last one per object wins), and who waits for it. */
  #next: { links: Map<string, Link>; written: PromiseWithResolvers<void> } | undefined;
  #writing = false;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Queues `link` for the next write; resolves once it is committed, rejects with that write's error. */
  save(link: Link): Promise<void> {
    if (this.#next === undefined) {
      const written = Promise.withResolvers<void>();
      written.promise.catch(() => undefined);
      this.#next = { links: new Map(), written };
    }
    this.#next.links.set(`${link.providerId}/${link.objectType}/${link.localId}`, link);
    const { promise } = this.#next.written;
    if (!this.#writing) void this.#drain();
    return promise;
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      for (let group = this.#next; group !== undefined; group = this.#next) {
        this.#next = undefined;
        try {
          await saveLinks(this.#db, [...group.links.values()]);
          group.written.resolve();
        } catch (error) {
          group.written.reject(error);
        }
      }
    } finally {
      this.#writing = false;
    }
  }
}

/** Collects link writes, events and counters for one batch, flushed in one statement (or one transaction). */
export class BatchRecorder {
  readonly counts = zeroCounts();
  readonly events: SyncEvent[] = [];
  readonly links: Link[] = [];
  readonly deletedLinks: Array<{ objectType: ObjectType; localId: string }> = [];
  /** Linked objects a mapping skipped: marked `skipped`, their remote objects still to remove (through the guard). */
  readonly removalsBySkip: Link[] = [];
  /** Link writes started as soon as creates returned; awaited before the batch is flushed. */
  readonly #writes: Array<Promise<void>> = [];
  readonly #db: Db;
  readonly #writer: LinkWriter;
  readonly #runId: string;
  readonly providerId: string;

  constructor(db: Db, writer: LinkWriter, runId: string, providerId: string) {
    this.#db = db;
    this.#writer = writer;
    this.#runId = runId;
    this.providerId = providerId;
  }

  /** A link of this batch's provider, with `fields` over an empty one. */
  link(objectType: ObjectType, localId: string, fields: Partial<Link>): Link {
    return makeLink(this.providerId, objectType, localId, fields);
  }

  event(objectType: ObjectType, localId: string, action: SyncEvent['action'], detail?: Record<string, unknown>): void {
    this.events.push({ objectType, localId, action, detail });
  }

  /** Records a permanent failure for one object: on its link (keeping any remote id) and in the run. */
  fail(objectType: ObjectType, localId: string, link: Link | undefined, error: Record<string, unknown>): void {
    this.#unfinished('failed', objectType, localId, link, error);
  }

  /**
   * Records an object whose transient failures outlasted its retry budget: `retrying` on its link (keeping any remote
   * id, with the last error) and in the run. Not a permanent failure: the next push or full sync sends it again.
   */
  retrying(objectType: ObjectType, localId: string, link: Link | undefined, error: Record<string, unknown>): void {
    this.#unfinished('retrying', objectType, localId, link, error);
  }

  #unfinished(
    status: 'failed' | 'retrying',
    objectType: ObjectType,
    localId: string,
    link: Link | undefined,
    error: Record<string, unknown>,
  ): void {
    this.links.push(
      this.link(objectType, localId, {
        remoteId: link?.remoteId ?? null,
        lastPayload: link?.lastPayload ?? null,
        // An unfinished object must be re-sent next time: no hash.
        lastPayloadHash: null,
        status,
        lastError: error,
      }),
    );
    this.event(objectType, localId, status === 'failed' ? 'fail' : 'retry', error);
    this.counts[status] += 1;
  }

  /** Writes the link of an object just created without waiting for the batch to end; a failure surfaces at flush. */
  saveSoon(link: Link): void {
    this.#writes.push(this.#writer.save(link));
  }

  async flush(): Promise<void> {
    await Promise.all(this.#writes);
    const { counts, events, links, deletedLinks } = this;
    if (deletedLinks.length === 0) {
      if (events.length > 0 || links.length > 0) await recordBatch(this.#db, this.#runId, links, counts, events);
      // Nothing changed (an unchanged batch): only the counters.
      else if (counts.processed > 0) await recordProgress(this.#db, this.#runId, counts, events);
      return;
    }
    await inTransaction(this.#db, async (client) => {
      await saveLinks(client, links);
      for (const type of ['user', 'group'] as const) {
        const ids = deletedLinks.filter((d) => d.objectType === type).map((d) => d.localId);
        await deleteLinks(client, this.providerId, type, ids);
      }
      await recordProgress(client, this.#runId, counts, events);
    });
  }
}
