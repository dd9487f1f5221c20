import { Context } from '@temporalio/activity';
import {
  addCounts,
  countInScope,
  createRun,
  deleteLinks,
  existingGroupIds,
  finishRun,
  getLinks,
  inTransaction,
  listOutOfScopeLinks,
  listScopeIds,
  loadGroupsByIds,
  loadGroupsInRange,
  loadUsersByIds,
  loadUsersInRange,
  makeLink,
  memberRemoteIds,
  recordBatch,
  recordProgress,
  saveLinks,
  setRunTotal,
  zeroCounts,
  type Db,
  type Link,
  type ObjectType,
  type ProviderForSync,
  type RunCounts,
  type RunSummary,
  type SyncEvent,
  type SyncGroupRow,
  type SyncUserRow,
} from '../db/index.ts';
import { isScimflowError, ScimRequestError, type ErrorCode, type ScimflowError } from '../errors/index.ts';
import type { BatchLookupResult, MatchKeys, RemoteObject } from '../plugins/index.ts';
import type { ScimGroup, ScimUser } from '../scim/index.ts';
import { deletionsHeld } from './deletion-guard.ts';
import { toApplicationFailure } from './failures.ts';
import { toMappingGroup, toMappingUser, type MapResult, type PayloadMapper } from './mapper.ts';
import { payloadHash } from './payload-hash.ts';
import type { Target, TargetPool } from './targets.ts';

/** What the sync activities are built from. */
export interface SyncActivityDeps {
  db: Db;
  targets: TargetPool;
  mapper: PayloadMapper;
  /** Loads a provider with its secret decrypted (worker side only). */
  loadProvider: (providerId: string) => Promise<ProviderForSync>;
}

/** A half-open keyset range of directory ids: `after < id <= last`. */
export interface IdRange {
  after: string | null;
  last: string;
}

/** What a full sync needs to know to plan itself; ids and numbers only, never objects or secrets. */
export interface FullSyncPlan {
  slug: string;
  pageSize: number;
  concurrency: number;
  groups: boolean;
  total: number;
}

// Errors that end the whole run: every further request would fail the same way.
const RUN_FATAL: ReadonlySet<ErrorCode> = new Set(['ERR_SCIM_UNAUTHORIZED', 'ERR_CONFIG', 'ERR_AUTH_TOKEN']);

function isPermanentForObject(error: unknown): error is ScimflowError {
  return isScimflowError(error) && !error.retryable && !RUN_FATAL.has(error.code);
}

function errorRecord(
  error: ScimflowError | { code: string; message: string; mapping?: string | null; path?: string },
): Record<string, unknown> {
  return isScimflowError(error) ? error.toJSON() : { ...error };
}

function beat(details?: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Outside an activity (unit tests call the functions directly): nothing to heartbeat.
  }
}

/**
 * Runs `fn` over `items`, at most `limit` at a time. After a failure no further item starts; the running ones end
 * (so their results are recorded) and then the first failure is thrown.
 */
async function eachConcurrently<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
}

/** The plugin operations of one kind of object: all the per-object sync flow needs to know about users or groups. */
interface ObjectKind<T extends ScimUser | ScimGroup> {
  type: ObjectType;
  /** What identifies the object on the target when it has no link: externalId, then userName / displayName. */
  keys(payload: T): MatchKeys;
  /** Looks the object up on the target by its match keys. */
  find(target: Target, payload: T): Promise<RemoteObject<T> | null>;
  /** Looks many objects up at once by their match keys; undefined when the plugin has no such operation. */
  findMany(target: Target, keys: readonly MatchKeys[]): Promise<Array<BatchLookupResult<T>>> | undefined;
  create(target: Target, payload: T): Promise<RemoteObject<T>>;
  update(target: Target, remoteId: string, payload: T, previous: T | null): Promise<void>;
}

const USERS: ObjectKind<ScimUser> = {
  type: 'user',
  keys: (user) => ({ externalId: user.externalId, name: user.userName }),
  find: ({ plugin, ctx }, user) => plugin.findUser(ctx, USERS.keys(user)),
  findMany: ({ plugin, ctx }, keys) => plugin.findUsers?.(ctx, keys),
  create: ({ plugin, ctx }, user) => plugin.createUser(ctx, user),
  update: ({ plugin, ctx }, remoteId, user, previous) => plugin.updateUser(ctx, remoteId, user, previous),
};

const GROUPS: ObjectKind<ScimGroup> = {
  type: 'group',
  keys: (group) => ({ externalId: group.externalId, name: group.displayName }),
  find: ({ plugin, ctx }, group) => plugin.findGroup(ctx, GROUPS.keys(group)),
  findMany: ({ plugin, ctx }, keys) => plugin.findGroups?.(ctx, keys),
  create: ({ plugin, ctx }, group) => plugin.createGroup(ctx, group),
  update: ({ plugin, ctx }, remoteId, group, previous) => plugin.updateGroup(ctx, remoteId, group, previous),
};

/** One object of a batch: its mapped payload, its link if any, and extra detail for its provisioning event. */
interface BatchItem<T> {
  localId: string;
  mapped: MapResult<T>;
  link: Link | undefined;
  detail?: Record<string, unknown>;
}

/** A group's batch item: its payload carries `members` (remote user ids). */
function groupItem(
  localId: string,
  mapped: MapResult<ScimGroup>,
  members: readonly string[],
  link: Link | undefined,
): BatchItem<ScimGroup> {
  return {
    localId,
    mapped:
      mapped.status === 'ok'
        ? { status: 'ok', payload: { ...mapped.payload, members: members.map((value) => ({ value })) } }
        : mapped,
    link,
    detail: { members: members.length },
  };
}

/**
 * Writes the links of objects just created, for every batch this worker runs: a crash after a POST must not lead to
 * a second one, so a created object's link is written at once, not at batch end. One write at a time; the links
 * that arrive meanwhile, from any batch, go together in the next (a group commit), so a link waits at most for one
 * write in flight, and concurrent batches share statements instead of each sending its own.
 */
class LinkWriter {
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
class BatchRecorder {
  readonly counts = zeroCounts();
  readonly events: SyncEvent[] = [];
  readonly links: Link[] = [];
  readonly deletedLinks: Array<{ objectType: ObjectType; localId: string }> = [];
  /** Link writes started as soon as creates returned; awaited before the batch is flushed. */
  readonly #writes: Array<Promise<void>> = [];
  readonly #db: Db;
  readonly #writer: LinkWriter;
  readonly #runId: string;
  readonly #providerId: string;

  constructor(db: Db, writer: LinkWriter, runId: string, providerId: string) {
    this.#db = db;
    this.#writer = writer;
    this.#runId = runId;
    this.#providerId = providerId;
  }

  event(objectType: ObjectType, localId: string, action: SyncEvent['action'], detail?: Record<string, unknown>): void {
    this.events.push({ objectType, localId, action, detail });
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
        await deleteLinks(client, this.#providerId, type, ids);
      }
      await recordProgress(client, this.#runId, counts, events);
    });
  }
}

/** Builds the full-sync activities. Every input and output is ids, cursors and counts. */
export function createFullSyncActivities(deps: SyncActivityDeps) {
  const { db, targets, mapper, loadProvider } = deps;
  const writer = new LinkWriter(db);

  async function withFailures<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw toApplicationFailure(error);
    }
  }

  function newLink(provider: ProviderForSync, objectType: ObjectType, localId: string, fields: Partial<Link>): Link {
    return makeLink(provider.id, objectType, localId, fields);
  }

  /** Records a permanent failure for one object: on its link (keeping any remote id) and in the run. */
  function recordFailure(
    rec: BatchRecorder,
    provider: ProviderForSync,
    objectType: ObjectType,
    localId: string,
    link: Link | undefined,
    error: Record<string, unknown>,
  ): void {
    rec.links.push(
      newLink(provider, objectType, localId, {
        remoteId: link?.remoteId ?? null,
        lastPayload: link?.lastPayload ?? null,
        // A failed object must be re-sent next time: no hash.
        lastPayloadHash: null,
        status: 'failed',
        lastError: error,
      }),
    );
    rec.event(objectType, localId, 'fail', error);
    rec.counts.failed += 1;
  }

  /**
   * Adopts the remote object already `known` from a batch lookup (or, when that settled nothing, the one `find`
   * returns), or creates one, adopting after all what `find` sees if the create conflicts.
   */
  async function adoptOrCreate<T extends ScimUser | ScimGroup>(
    known: BatchLookupResult<T>,
    find: () => Promise<{ id: string; resource: T } | null>,
    create: () => Promise<{ id: string; resource: T }>,
  ): Promise<{ id: string; resource: T; adopted: boolean }> {
    const found = known === undefined ? await find() : known;
    if (found) return { ...found, adopted: true };
    try {
      return { ...(await create()), adopted: false };
    } catch (error) {
      // Someone (a crashed earlier attempt, another tool) created it between our lookup and our POST.
      if (isScimflowError(error) && error.code === 'ERR_SCIM_CONFLICT') {
        const again = await find();
        if (again) return { ...again, adopted: true };
      }
      throw error;
    }
  }

  /**
   * Brings one object to the target: skips it when its payload is unchanged, updates it when linked, otherwise
   * adopts a matching remote object or creates it. A permanent failure is recorded for this object only.
   */
  async function syncObject<T extends ScimUser | ScimGroup>(
    rec: BatchRecorder,
    provider: ProviderForSync,
    target: Target,
    kind: ObjectKind<T>,
    localId: string,
    mapped: MapResult<T>,
    link: Link | undefined,
    detail: Record<string, unknown> = {},
    known: BatchLookupResult<T> = undefined,
  ): Promise<void> {
    const { type } = kind;
    if (mapped.status === 'error') {
      recordFailure(rec, provider, type, localId, link, { ...mapped.error });
      return;
    }
    if (mapped.status === 'skip') {
      // Only users are ever deactivated; a deactivated user is not deprovisioned twice.
      if (link?.remoteId && link.status !== 'deactivated') {
        await deprovisionOne(rec, provider, target, link, { skippedBy: mapped.mapping });
      } else {
        rec.links.push(newLink(provider, type, localId, { status: 'skipped' }));
        rec.event(type, localId, 'skip', { mapping: mapped.mapping });
        rec.counts.skipped += 1;
      }
      return;
    }
    const payload = mapped.payload;
    const hash = payloadHash(payload);
    if (link?.status === 'ok' && link.remoteId && link.lastPayloadHash === hash) return;
    if (provider.dryRun) {
      rec.event(type, localId, link?.remoteId ? 'update' : 'create', { dryRun: true });
      rec.counts[link?.remoteId ? 'updated' : 'created'] += 1;
      return;
    }
    const synced = (remoteId: string): Link =>
      newLink(provider, type, localId, { remoteId, lastPayloadHash: hash, lastPayload: payload });
    try {
      let remoteId = link?.remoteId ?? null;
      let action: 'update' | 'adopt' | 'create' = 'update';
      if (remoteId) {
        try {
          await kind.update(target, remoteId, payload, (link?.lastPayload as T | null) ?? null);
        } catch (error) {
          // The remote object was deleted behind our back: provision it again.
          if (!(isScimflowError(error) && error.code === 'ERR_SCIM_NOT_FOUND')) throw error;
          remoteId = null;
        }
      }
      if (!remoteId) {
        // A link whose remote object vanished was not looked up with the batch: `known` is only for unlinked objects.
        const remote = await adoptOrCreate(
          link?.remoteId ? undefined : known,
          () => kind.find(target, payload),
          () => kind.create(target, payload),
        );
        remoteId = remote.id;
        if (remote.adopted) {
          action = 'adopt';
          await kind.update(target, remoteId, payload, remote.resource);
        } else {
          action = 'create';
        }
      }
      // A created object's link is written at once, not at batch end (not awaited: the next requests overlap it).
      if (action === 'create') rec.saveSoon(synced(remoteId));
      else rec.links.push(synced(remoteId));
      rec.event(type, localId, action, { remoteId, ...detail });
      rec.counts[action === 'create' ? 'created' : 'updated'] += 1;
    } catch (error) {
      if (!isPermanentForObject(error)) throw error;
      recordFailure(rec, provider, type, localId, link, errorRecord(error));
    }
  }

  // Providers (at a config version) whose target refused a batch lookup: they get per-object lookups.
  const refusesBatchLookup = new Map<string, number>();

  /**
   * Looks up, together, the objects of a batch that would otherwise each be looked up before their create: those
   * with a payload and no remote id, when the plugin can (`findUsers` / `findGroups`). A target that refuses the
   * batch lookup is remembered and its objects are looked up one by one (`findUser` / `findGroup`), as are those
   * the batch lookup could not settle.
   */
  async function lookUpUnlinked<T extends ScimUser | ScimGroup>(
    provider: ProviderForSync,
    target: Target,
    kind: ObjectKind<T>,
    items: ReadonlyArray<BatchItem<T>>,
  ): Promise<Map<string, BatchLookupResult<T>>> {
    const known = new Map<string, BatchLookupResult<T>>();
    if (provider.dryRun || refusesBatchLookup.get(provider.id) === provider.configVersion) return known;
    const unlinked = items.flatMap((item) =>
      item.mapped.status === 'ok' && !item.link?.remoteId
        ? [{ localId: item.localId, payload: item.mapped.payload }]
        : [],
    );
    // Even one object gains: its externalId and name go in one request instead of two.
    if (unlinked.length === 0) return known;
    try {
      const found = await kind.findMany(
        target,
        unlinked.map(({ payload }) => kind.keys(payload)),
      );
      if (found === undefined) return known;
      for (const [i, { localId }] of unlinked.entries()) known.set(localId, found[i]);
    } catch (error) {
      // Transient failures and run-fatal ones end the attempt as any request's would; a refusal means "not this way".
      if (!isPermanentForObject(error) && !(error instanceof ScimRequestError && error.status === 501)) throw error;
      refusesBatchLookup.set(provider.id, provider.configVersion);
    }
    return known;
  }

  /**
   * Syncs a batch of mapped objects of one kind, up to the provider's concurrency at a time (the batch's requests
   * overlap; its objects are independent of each other).
   */
  async function syncBatch<T extends ScimUser | ScimGroup>(
    rec: BatchRecorder,
    provider: ProviderForSync,
    target: Target,
    kind: ObjectKind<T>,
    items: ReadonlyArray<BatchItem<T>>,
  ): Promise<void> {
    const known = await lookUpUnlinked(provider, target, kind, items);
    let done = 0;
    let beaten = 0;
    await eachConcurrently(items, provider.concurrency, async (item) => {
      await syncObject(
        rec,
        provider,
        target,
        kind,
        item.localId,
        item.mapped,
        item.link,
        item.detail,
        known.get(item.localId),
      );
      done += 1;
      // Heartbeats are for liveness (timeout: a minute); one per object cost more CPU than a fast target's answer.
      if (performance.now() - beaten >= 1000) {
        beaten = performance.now();
        beat({ done });
      }
    });
  }

  /** Maps directory users and brings them to the target; `links` holds what was last pushed, by local id. */
  async function syncUserRows(
    rec: BatchRecorder,
    provider: ProviderForSync,
    target: Target,
    rows: readonly SyncUserRow[],
    links: ReadonlyMap<string, Link>,
  ): Promise<void> {
    const mapped = await mapper.mapUsers(
      provider,
      rows.map((row) => ({ user: toMappingUser(row), link: links.get(row.id)?.lastPayload ?? null })),
    );
    const items = rows.map((row, i) => ({ localId: row.id, mapped: mapped[i]!, link: links.get(row.id) }));
    await syncBatch(rec, provider, target, USERS, items);
    rec.counts.processed += rows.length;
  }

  /**
   * Maps directory groups and brings them, with their members, to the target. `links` (what was last pushed, by
   * local id) is awaited alongside the members query.
   */
  async function syncGroupRows(
    rec: BatchRecorder,
    provider: ProviderForSync,
    target: Target,
    rows: readonly SyncGroupRow[],
    links: Promise<ReadonlyMap<string, Link>>,
  ): Promise<void> {
    const [linked, members] = await Promise.all([
      links,
      memberRemoteIds(
        db,
        provider.scope,
        provider.id,
        rows.map((row) => row.id),
      ),
    ]);
    const mapped = await mapper.mapGroups(
      provider,
      rows.map((row) => ({ group: toMappingGroup(row), link: linked.get(row.id)?.lastPayload ?? null })),
    );
    const items = rows.map((row, i) => groupItem(row.id, mapped[i]!, members.get(row.id) ?? [], linked.get(row.id)));
    await syncBatch(rec, provider, target, GROUPS, items);
    rec.counts.processed += rows.length;
  }

  /** Removes, deactivates or leaves one linked remote object, per the provider's deprovision mode. */
  async function deprovisionOne(
    rec: BatchRecorder,
    provider: ProviderForSync,
    { plugin, ctx }: Target,
    link: Link,
    why: Record<string, unknown>,
  ): Promise<void> {
    const { objectType, localId, remoteId } = link;
    if (!remoteId) {
      rec.deletedLinks.push({ objectType, localId });
      return;
    }
    const mode = provider.deprovision;
    if (provider.dryRun) {
      rec.event(
        objectType,
        localId,
        mode === 'deactivate' && objectType === 'user' ? 'deactivate' : mode === 'leave' ? 'skip' : 'delete',
        {
          ...why,
          dryRun: true,
        },
      );
      return;
    }
    try {
      if (mode === 'leave') {
        rec.deletedLinks.push({ objectType, localId });
        rec.event(objectType, localId, 'skip', { ...why, deprovision: 'leave', remoteId });
        return;
      }
      if (objectType === 'user' && mode === 'deactivate') {
        await plugin.deactivateUser(ctx, remoteId, (link.lastPayload as ScimUser | null) ?? null);
        rec.links.push({ ...link, status: 'deactivated', lastPayloadHash: null, lastError: null });
        rec.event(objectType, localId, 'deactivate', { ...why, remoteId });
      } else {
        if (objectType === 'user') await plugin.deleteUser(ctx, remoteId);
        else await plugin.deleteGroup(ctx, remoteId);
        rec.deletedLinks.push({ objectType, localId });
        rec.event(objectType, localId, 'delete', { ...why, remoteId });
      }
      rec.counts.deleted += 1;
    } catch (error) {
      if (!isPermanentForObject(error)) throw error;
      recordFailure(rec, provider, objectType, localId, link, errorRecord(error));
    }
  }

  return {
    /** Opens a run row for a provider; used by whoever starts a full sync. */
    async openFullSyncRun(input: { providerId: string; workflowId: string | null }): Promise<string> {
      return withFailures(() => createRun(db, input.providerId, 'full', input.workflowId));
    },

    /** Discovers the target, counts the scope, and tells the workflow how to split the work. */
    async beginFullSync(input: { providerId: string; runId: string }): Promise<FullSyncPlan> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        const { plugin, ctx } = targets.get(provider);
        const capabilities = await plugin.capabilities(ctx);
        const scope = await countInScope(db, provider.scope);
        const total = scope.users + (capabilities.groups ? scope.groups : 0);
        await setRunTotal(db, input.runId, total);
        return {
          slug: provider.slug,
          pageSize: provider.pageSize,
          concurrency: provider.concurrency,
          groups: capabilities.groups,
          total,
        };
      });
    },

    /** Splits the next stretch of in-scope ids into up to `ranges` ranges of `rangeSize`; `next` is null at the end. */
    async planRanges(input: {
      providerId: string;
      objectType: ObjectType;
      after: string | null;
      rangeSize: number;
      ranges: number;
    }): Promise<{ ranges: IdRange[]; next: string | null }> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        const limit = input.rangeSize * input.ranges;
        const ids = await listScopeIds(db, provider.scope, input.objectType, input.after, limit);
        const ranges: IdRange[] = [];
        let after = input.after;
        for (let i = 0; i < ids.length; i += input.rangeSize) {
          const last = ids[Math.min(i + input.rangeSize, ids.length) - 1]!;
          ranges.push({ after, last });
          after = last;
        }
        return { ranges, next: ids.length === limit ? after : null };
      });
    },

    /** Brings every in-scope user of a range to the target; one permanent failure never stops the others. */
    async syncUserRange(input: { providerId: string; runId: string; range: IdRange }): Promise<RunCounts> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        const target = targets.get(provider);
        const rows = await loadUsersInRange(db, provider.scope, input.range.after, input.range.last);
        const links = await getLinks(
          db,
          provider.id,
          'user',
          rows.map((row) => row.id),
        );
        const rec = new BatchRecorder(db, writer, input.runId, provider.id);
        try {
          await syncUserRows(rec, provider, target, rows, links);
        } finally {
          await rec.flush();
        }
        return rec.counts;
      });
    },

    /** Brings every in-scope group of a range (attributes and members) to the target. */
    async syncGroupRange(input: { providerId: string; runId: string; range: IdRange }): Promise<RunCounts> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        const target = targets.get(provider);
        const rows = await loadGroupsInRange(db, provider.scope, input.range.after, input.range.last);
        const links = getLinks(
          db,
          provider.id,
          'group',
          rows.map((row) => row.id),
        );
        const rec = new BatchRecorder(db, writer, input.runId, provider.id);
        try {
          await syncGroupRows(rec, provider, target, rows, links);
        } finally {
          await rec.flush();
        }
        return rec.counts;
      });
    },

    /** Deprovisions one page of linked objects that left scope (or were deleted), per the provider's mode. */
    async deprovisionPage(input: {
      providerId: string;
      runId: string;
      objectType: ObjectType;
      after: string | null;
      limit: number;
    }): Promise<{ counts: RunCounts; next: string | null }> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        const target = targets.get(provider);
        const links = await listOutOfScopeLinks(
          db,
          provider.scope,
          provider.id,
          input.objectType,
          input.after,
          input.limit,
        );
        const rec = new BatchRecorder(db, writer, input.runId, provider.id);
        try {
          for (const link of links) {
            beat();
            await deprovisionOne(rec, provider, target, link, { reason: 'out of scope' });
          }
        } finally {
          await rec.flush();
        }
        return { counts: rec.counts, next: links.length === input.limit ? links.at(-1)!.localId : null };
      });
    },

    /**
     * Pushes the current state of the given users and groups (an incremental batch), recorded as run `runId` of
     * kind `incremental`: in-scope objects are created or updated, objects that left scope or were deleted are
     * deprovisioned per the provider's mode. Users are written before groups (so new members exist), and users
     * leave only after their groups dropped them; groups of users who appeared or left are re-sent too.
     */
    async pushChanges(input: {
      providerId: string;
      runId: string;
      workflowId: string;
      userIds: string[];
      groupIds: string[];
    }): Promise<RunCounts> {
      return withFailures(async () => {
        const provider = await loadProvider(input.providerId);
        await db.query(
          `INSERT INTO sync_runs (id, provider_id, kind, workflow_id) VALUES ($1, $2, 'incremental', $3) ON CONFLICT (id) DO NOTHING`,
          [input.runId, provider.id, input.workflowId],
        );
        const target = targets.get(provider);
        // Checked once, at the first removal: above the deletion limit every removal of this batch is held back
        // (recorded as skipped, the run failed) until a full sync is allowed to make them.
        let guard: Promise<ScimflowError | null> | undefined;
        const removeOrHold = async (rec: BatchRecorder, link: Link): Promise<void> => {
          guard ??= deletionsHeld(db, provider, false);
          const held = await guard;
          if (!held) return deprovisionOne(rec, provider, target, link, { reason: 'out of scope' });
          rec.event(link.objectType, link.localId, 'skip', { reason: 'deletion guard', remoteId: link.remoteId });
          rec.counts.skipped += 1;
        };
        const userIds = [...new Set(input.userIds)].sort();
        const rows = await loadUsersByIds(db, provider.scope, userIds);
        const userLinks = await getLinks(db, provider.id, 'user', userIds);
        const userRec = new BatchRecorder(db, writer, input.runId, provider.id);
        try {
          await syncUserRows(userRec, provider, target, rows, userLinks);
        } finally {
          // Flushed before the groups so the links of users adopted just now count as members.
          await userRec.flush();
        }
        const inScope = new Set(rows.map((row) => row.id));
        const leaving = userIds.flatMap((id) => {
          const link = userLinks.get(id);
          return !inScope.has(id) && link && link.status !== 'deactivated' ? [link] : [];
        });
        const counts = { ...userRec.counts };
        const { groups: withGroups } = await target.plugin.capabilities(target.ctx);
        if (withGroups) {
          const appeared = userRec.events
            .filter((e) => e.action === 'create' || e.action === 'adopt')
            .map((e) => e.localId);
          const moved = [...appeared, ...leaving.map((link) => link.localId)];
          const related =
            moved.length === 0
              ? []
              : (
                  await db.query<{ group_id: string }>(
                    'SELECT DISTINCT group_id FROM group_members WHERE user_id = ANY($1::uuid[])',
                    [moved],
                  )
                ).rows.map((row) => row.group_id);
          const groupIds = [...new Set([...input.groupIds, ...related])].sort();
          const groupRows = await loadGroupsByIds(db, provider.scope, groupIds);
          const linksOfGroups = getLinks(db, provider.id, 'group', groupIds);
          const groupRec = new BatchRecorder(db, writer, input.runId, provider.id);
          try {
            await syncGroupRows(groupRec, provider, target, groupRows, linksOfGroups);
            const groupLinks = await linksOfGroups;
            const groupsInScope = new Set(groupRows.map((row) => row.id));
            // A group outside the filter stays on the target as last synced unless the provider says otherwise;
            // one deleted from the directory goes.
            const outOfScope = groupIds.flatMap((id) => {
              const link = groupsInScope.has(id) ? undefined : groupLinks.get(id);
              return link ? [link] : [];
            });
            const kept = new Set(
              provider.scope.removeGroupsLeavingFilter
                ? []
                : await existingGroupIds(
                    db,
                    outOfScope.map((link) => link.localId),
                  ),
            );
            for (const link of outOfScope) if (!kept.has(link.localId)) await removeOrHold(groupRec, link);
          } finally {
            await groupRec.flush();
          }
          addCounts(counts, groupRec.counts);
        }
        const leaveRec = new BatchRecorder(db, writer, input.runId, provider.id);
        try {
          for (const link of leaving) {
            beat();
            await removeOrHold(leaveRec, link);
          }
        } finally {
          await leaveRec.flush();
        }
        addCounts(counts, leaveRec.counts);
        const held = guard ? await guard : null;
        await finishRun(db, input.runId, held ? 'failed' : 'succeeded', held ? held.toJSON() : null);
        return counts;
      });
    },

    /**
     * Waits `ms` (run as a local activity): the provider workflow's batching window. Server timers fire up to a
     * second late, which would put a floor under incremental latency; a local wait is as precise as the worker's clock.
     */
    async holdOff(ms: number): Promise<void> {
      await new Promise((resolve) => setTimeout(resolve, ms));
    },

    /** Closes the run with its final status and returns its counters. */
    async finishFullSync(input: {
      runId: string;
      status: 'succeeded' | 'failed' | 'cancelled';
      error: Record<string, unknown> | null;
    }): Promise<RunSummary> {
      return withFailures(() => finishRun(db, input.runId, input.status, input.error));
    },
  };
}

/** The full-sync activities, as workflows see them (by type only). */
export type FullSyncActivities = ReturnType<typeof createFullSyncActivities>;
