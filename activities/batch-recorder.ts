import {
  claimRemoteIds,
  deleteLinks,
  inTransaction,
  linkKey,
  makeLink,
  recordBatch,
  recordProgress,
  saveInputHashes,
  saveLinks,
  saveLinksWithEvents,
  zeroCounts,
  type CountedPage,
  type Db,
  type Link,
  type ObjectType,
  type RunEvent,
  type SyncEvent,
} from '../db/index.ts';
import { GroupCommit } from './group-commit.ts';

/**
 * Writes, for every batch this worker runs, the links that must not wait for their batch to end: a created object's
 * (a crash after a POST must not lead to a second one) and an adopted object's claim on its remote id (made before
 * anything is sent to it, so two directory objects never both take one remote object).
 */
export class LinkWriter {
  readonly #saves: GroupCommit<{ link: Link; event: RunEvent | undefined }, void>;
  readonly #claims: GroupCommit<Link, Map<string, string>>;
  /**
   * Remote ids whose link is queued or being written (a create's, just answered), with the local id it is for: a
   * claim of one by another object is refused at once, not let through while the create's link waits its turn.
   */
  readonly #pending = new Map<string, { localId: string; writes: number }>();

  constructor(db: Db) {
    this.#saves = new GroupCommit(
      (items) =>
        saveLinksWithEvents(
          db,
          items.map((item) => item.link),
          items.flatMap((item) => (item.event ? [item.event] : [])),
        ),
      // The later link wins; an event queued with the earlier one is still written.
      (earlier, later) => ({ link: later.link, event: later.event ?? earlier.event }),
    );
    this.#claims = new GroupCommit((links) => claimRemoteIds(db, links));
  }

  /**
   * Queues `link`, and the run event that goes with it if any, for the next write; resolves once it is committed,
   * rejects with that write's error.
   */
  save(link: Link, event?: RunEvent): Promise<void> {
    const written = this.#saves.add(linkKey(link.providerId, link.objectType, link.localId), { link, event });
    const remote = remoteKey(link);
    if (remote === undefined) return written;
    const pending = this.#pending.get(remote) ?? { localId: link.localId, writes: 0 };
    pending.writes += 1;
    this.#pending.set(remote, pending);
    const settled = (): void => {
      if ((pending.writes -= 1) === 0 && this.#pending.get(remote) === pending) this.#pending.delete(remote);
    };
    written.then(settled, settled);
    return written;
  }

  /**
   * Writes `link` unless another object of its provider and type holds its remote id; resolves with that object's
   * local id, or null once `link` is written.
   */
  async claim(link: Link): Promise<string | null> {
    const pending = this.#pending.get(remoteKey(link) ?? '');
    if (pending !== undefined && pending.localId !== link.localId) return pending.localId;
    const key = linkKey(link.providerId, link.objectType, link.localId);
    return (await this.#claims.add(key, link)).get(key) ?? null;
  }
}

/** A link's remote object (provider, type, remote id), or undefined when it has none yet. */
function remoteKey(link: Link): string | undefined {
  return link.remoteId ? linkKey(link.providerId, link.objectType, link.remoteId) : undefined;
}

/** Collects link writes, events and counters for one batch, flushed in one statement (or one transaction). */
export class BatchRecorder {
  readonly counts = zeroCounts();
  readonly events: SyncEvent[] = [];
  readonly links: Link[] = [];
  readonly deletedLinks: Array<{ objectType: ObjectType; localId: string }> = [];
  /** Linked objects a mapping skipped: marked `skipped`, their remote objects still to remove (through the guard). */
  readonly removalsBySkip: Link[] = [];
  /** The directory rows this batch counts, recorded with it so a retried range activity skips them. */
  page: CountedPage | undefined = undefined;
  /** Ok links whose payload was found unchanged, with the input hash it was (again) made from. */
  readonly inputHashes: Array<{ objectType: ObjectType; localId: string; inputHash: string }> = [];
  /** Link writes started as soon as creates returned; awaited before the batch is flushed. */
  readonly #writes: Array<Promise<void>> = [];
  /** Objects whose create was logged with their early link write. */
  readonly #created = new Set<string>();
  /** Links written ahead of the flush, by local id: a retry pass starts from them. */
  readonly #early = new Map<string, Link>();
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

  /** Records that an object's unchanged payload was made from `inputHash` (stored on its link at flush). */
  pushedFrom(objectType: ObjectType, localId: string, inputHash: string): void {
    this.inputHashes.push({ objectType, localId, inputHash });
  }

  /**
   * Writes the link of an object just created without waiting for the batch to end, with its `create` event when
   * given (then not written again at flush); a failure surfaces at flush.
   */
  saveSoon(link: Link, created?: Record<string, unknown>): void {
    this.#early.set(link.localId, link);
    this.#writes.push(this.#writer.save(link, this.#createEvent(link, created)));
  }

  /**
   * Writes `link` now (a group's remote id, before its member requests), with its `create` event when given;
   * resolves once it is committed.
   */
  async saveNow(link: Link, created?: Record<string, unknown>): Promise<void> {
    this.#early.set(link.localId, link);
    await this.#writer.save(link, this.#createEvent(link, created));
  }

  /** The local ids of the objects this batch created or adopted (for the groups that name them). */
  appeared(): string[] {
    const adopted = this.events.filter((e) => e.action === 'create' || e.action === 'adopt').map((e) => e.localId);
    return [...new Set([...this.#created, ...adopted])];
  }

  #createEvent(link: Link, detail: Record<string, unknown> | undefined): RunEvent | undefined {
    if (detail === undefined) return undefined;
    this.#created.add(link.localId);
    return { runId: this.#runId, objectType: link.objectType, localId: link.localId, action: 'create', detail };
  }

  /**
   * Links an adopted object to its remote id before anything is sent to it, unless another object holds that id:
   * then nothing is written and the holder's local id is returned.
   */
  async claim(link: Link): Promise<string | null> {
    const holder = await this.#writer.claim(link);
    if (holder === null) this.#early.set(link.localId, link);
    return holder;
  }

  /** The link written for `localId` during this batch, ahead of its flush (by a create or a claim), if any. */
  writtenEarly(localId: string): Link | undefined {
    return this.#early.get(localId);
  }

  async flush(): Promise<void> {
    await Promise.all(this.#writes);
    // Not with the batch's links: only a hint for the next sync, which maps the object again without it.
    await saveInputHashes(this.#db, this.providerId, this.inputHashes);
    const { counts, events, links, deletedLinks } = this;
    if (deletedLinks.length === 0) {
      if (events.length > 0 || links.length > 0 || this.page)
        await recordBatch(this.#db, this.#runId, links, counts, events, this.page);
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
