import {
  ActivityCancellationType,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineSignal,
  defineUpdate,
  isCancellation,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  uuid4,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { FullSyncActivities } from '../activities/index.ts';
import { describeLoggedError, FAILURE_CHAIN } from '../engine/logged-error.ts';
import { NON_RETRYABLE_CODES } from '../errors/index.ts';
import { databaseProfile } from './activity-profiles.ts';
import { failureRecord, fullSync } from './full-sync.ts';
import { SCIM_PROVIDER } from './search-attributes.ts';

/** Temporal workflow id of a provider's long-running sync workflow (its single writer). */
export function providerSyncWorkflowId(slug: string): string {
  return `provider-sync:${slug}`;
}

/** Temporal workflow id of a provider's full sync (a child of its provider workflow). */
export function fullSyncWorkflowId(slug: string): string {
  return `full-sync:${slug}`;
}

/** Directory changes for a provider: ids only; membership changes name both the group and the user. */
export interface DirectoryChanges {
  userIds: string[];
  groupIds: string[];
  /** Highest outbox sequence number the batch carries. */
  seq: number;
}

/** When the provider workflow flushes pending changes. */
export interface FlushPolicy {
  /** Flush as soon as this many objects are pending. @default 100 */
  maxObjects: number;
  /**
   * Wait this long after the first pending change before flushing, so that changes in quick succession go out
   * together. With 0 a change goes out as soon as the writer is idle; changes that arrive while a batch is being
   * pushed are coalesced into the next one either way, and a batch already this late never waits. @default 0
   */
  maxDelayMs: number;
  /**
   * With more objects than this pending, they are dropped for a full sync, which brings every object up to date
   * anyway and costs less after a mass change (an import). It also bounds what a continue-as-new carries: Temporal
   * refuses payloads over 2 MB, about 55,000 ids. @default 10000
   */
  maxPending: number;
}

/** Input of `providerSync`; `pending` and `fullSyncRequested` are what a continued-as-new run carries over. */
export interface ProviderSyncInput {
  providerId: string;
  slug: string;
  flush?: Partial<FlushPolicy> | undefined;
  pending?: { userIds: string[]; groupIds: string[]; seq: number } | undefined;
  fullSyncRequested?: boolean | undefined;
  /** Continue as new once the history holds this many events (or when Temporal suggests it). @default 500 */
  historyLimit?: number | undefined;
}

/** What a full-sync request answers: the run and the workflow to follow (joined when one is already under way). */
export interface FullSyncTicket {
  runId: string;
  /** The full sync's workflow; while the run is queued, it is still the one running before it. */
  workflowId: string;
  /** The run waits for the full sync under way to end (only when the request asked to be answered once queued). */
  queued?: boolean;
}

/** Hands the provider workflow a batch of directory changes. */
export const directoryChangesSignal = defineSignal<[DirectoryChanges]>('directoryChanges');
/** Asks for a full sync without waiting (schedules); coalesces with one already requested or running. */
export const fullSyncWantedSignal = defineSignal<[]>('fullSyncWanted');
/** What a person asking for a full sync may add to it. */
export interface FullSyncRequest {
  /** Let this full sync remove more objects than the provider's deletion limit. */
  allowDeletions?: boolean | undefined;
  /**
   * Answer once the run has started (the default), or once it is queued: at once, even while another full sync runs,
   * which may take hours (the API answers so, and its callers follow the run by its id).
   */
  answer?: 'started' | 'queued' | undefined;
}

/**
 * Asks for a full sync and answers once it has started (or queued, as asked); joins the one requested (not yet
 * running), if any. Refused when the run cannot be opened.
 */
export const requestFullSyncUpdate = defineUpdate<FullSyncTicket, [FullSyncRequest]>('requestFullSync');

// No batching window by default: a push takes tens of milliseconds, and what arrives meanwhile is coalesced into
// the next one, so batches grow with the load on their own (sub-second latency at any rate, issue #4).
const DEFAULT_FLUSH: FlushPolicy = { maxObjects: 100, maxDelayMs: 0, maxPending: 10_000 };
// Continue as new early and often. Under a steady stream of signals the continue-as-new now and then collides with
// a signal; Temporal then fails that workflow task, the worker replays the whole run, and signals are turned away
// until it is done (about 0.3 s per 500 events on 2 cores, 2.5-3 s at 5,000: the p99 tail of issue #4).
const DEFAULT_HISTORY_LIMIT = 500;

// Bounded: a push that keeps failing is given up (and recorded) after a few attempts, so the writer moves on; what it
// left undone is the next full sync's, and its retrying objects the next push's. A push heartbeats every second
// all along (`heartbeating`), so a dead worker's push runs again elsewhere after 20 s, not a minute, with every change
// behind it held that long.
const vendorCallProfile: ActivityOptions = {
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '20 seconds',
  retry: {
    initialInterval: '500 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 5,
    nonRetryableErrorTypes: [...NON_RETRYABLE_CODES],
  },
};
/** Pushes in a row that may fail before the provider shows as stalled. */
const STALLED_AFTER = 3;
/** The first wait before objects left retrying are pushed again with no change to carry them; it doubles to the cap. */
const RETRY_PUSH_FIRST_MS = 30_000;
const RETRY_PUSH_MAX_MS = 600_000;
const vendor = proxyActivities<FullSyncActivities>(vendorCallProfile);
// A cancelled push is over only once its attempt says so (it stops sending at its next heartbeat, within seconds):
// until then the full sync that cancelled it does not start, so the provider keeps a single writer.
const acknowledged = proxyActivities<FullSyncActivities>({
  ...vendorCallProfile,
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
});
const database = proxyActivities<FullSyncActivities>(databaseProfile);
/** The longest an idle provider waits for queued changes before it looks again (a few history events per wait). */
const IDLE_WAIT_MS = 10 * 60_000;
// Waiting is retried for ever (a database outage only delays changes); heartbeats (one a second) catch a worker that
// died.
const waiting = proxyActivities<FullSyncActivities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '20 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});
const local = proxyLocalActivities<FullSyncActivities>({ startToCloseTimeout: '1 minute' });

/** The full sync requested and not yet started; its run row exists once `runId` is set. */
interface NextFullSync {
  runId: string | null;
  started: boolean;
  allowDeletions: boolean;
  /** Its run was opened while a full sync ran, to start once that one ends. */
  queued: boolean;
  /** Why its run could not be opened: every request that joined it is refused with this. */
  failure: ApplicationFailure | null;
}

/** The provider's pending work: changed objects (latest wins, so a set of ids) and a wanted full sync. */
class PendingWork {
  readonly userIds = new Set<string>();
  readonly groupIds = new Set<string>();
  seq = 0;
  firstChangeAt: number | null = null;

  add(changes: DirectoryChanges): void {
    for (const id of changes.userIds) this.userIds.add(id);
    for (const id of changes.groupIds) this.groupIds.add(id);
    this.seq = Math.max(this.seq, changes.seq);
    if (this.size() > 0) this.firstChangeAt ??= Date.now();
  }

  size(): number {
    return this.userIds.size + this.groupIds.size;
  }

  /** Takes up to `limit` objects (users first, so they exist before the groups that name them), or all. */
  take(limit = Number.POSITIVE_INFINITY): { userIds: string[]; groupIds: string[] } {
    const userIds = [...this.userIds].slice(0, limit);
    const groupIds = [...this.groupIds].slice(0, Math.max(limit - userIds.length, 0));
    for (const id of userIds) this.userIds.delete(id);
    for (const id of groupIds) this.groupIds.delete(id);
    // What is left over is already due: keep its first-change time so the next flush does not wait again.
    if (this.size() === 0) this.firstChangeAt = null;
    return { userIds, groupIds };
  }
}

/**
 * The single writer of one provider: coalesces directory changes per object and pushes them in batches, and runs
 * full syncs (as child workflows) between batches, so a full sync and an incremental push never race on an object.
 */
export async function providerSync(input: ProviderSyncInput): Promise<void> {
  const { providerId, slug } = input;
  const policy: FlushPolicy = { ...DEFAULT_FLUSH, ...input.flush };
  const historyLimit = input.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  const pending = new PendingWork();
  if (input.pending) pending.add(input.pending);
  let fullWanted = input.fullSyncRequested ?? false;
  // The full sync requested and not yet started (once its run row exists, runId is set). A request made while
  // another full sync runs waits for the next one, since the running one may have read the directory already;
  // every request made meanwhile joins that same next one, so requests never queue up without bound.
  let next: NextFullSync | null = null;
  // A full sync is under way: a run opened meanwhile is queued behind it.
  let fullSyncRunning = false;
  // Started afresh (not continued as new), nothing of this provider runs: a run still open was left so by an earlier
  // run of this workflow that was terminated (its queued run, which never got a workflow of its own, stayed `queued`
  // for good). It is closed before any run is opened here, so that none of this workflow's own is taken for one.
  const swept =
    workflowInfo().continuedFromExecutionRunId === undefined && patched('close-abandoned-runs-at-start')
      ? database.closeAbandonedRuns({ providerId }).then(
          (closed) => {
            if (closed > 0) log.warn('closed runs an earlier workflow left open', { slug, closed });
          },
          (error: unknown) => log.warn('runs left open not closed', { slug, error: failureRecord(error) }),
        )
      : undefined;
  // The next full sync's ticket: the one set, else a new one, set before its run is opened so that a request or a
  // kick taken in meanwhile joins it. A run that cannot be opened (its activity failed for good) takes its ticket
  // with it: the requests that joined it are refused, and the next request or kick starts afresh (a ticket left
  // without a run was joined, and never answered, by every later request).
  const nextTicket = async (): Promise<NextFullSync> => {
    if (next !== null) return next;
    // Only when there is a sweep: an `await` more changes the order of commands in a history made without one.
    if (swept !== undefined) {
      await swept;
      if (next !== null) return next;
    }
    const queued = fullSyncRunning;
    const ticket: NextFullSync = { runId: null, started: false, allowDeletions: false, queued, failure: null };
    next = ticket;
    try {
      ticket.runId = await database.openFullSyncRun({ providerId, workflowId: fullSyncWorkflowId(slug), queued });
    } catch (error) {
      if (next === ticket) next = null;
      const { code, message } = failureRecord(error);
      ticket.failure = ApplicationFailure.create({
        type: code,
        message: `the full sync could not be queued: ${message}`,
      });
      throw ticket.failure;
    }
    return ticket;
  };

  setHandler(directoryChangesSignal, (changes) => {
    pending.add(changes);
    if (pending.size() > policy.maxPending) {
      log.info('too many pending changes: a full sync brings them', { slug, pending: pending.size() });
      pending.take();
      fullWanted = true;
    }
  });
  setHandler(fullSyncWantedSignal, () => {
    fullWanted = true;
  });
  setHandler(requestFullSyncUpdate, async (request?: FullSyncRequest) => {
    const joined = await nextTicket();
    // A consent joins the run it is given for; a run that has started already keeps what it started with.
    if (request?.allowDeletions && !joined.started) joined.allowDeletions = true;
    const onceQueued = request?.answer === 'queued';
    await condition(() => joined.started || joined.failure !== null || (onceQueued && joined.runId !== null));
    if (joined.failure !== null) throw joined.failure;
    const ticket: FullSyncTicket = { runId: joined.runId!, workflowId: fullSyncWorkflowId(slug) };
    return onceQueued ? { ...ticket, queued: joined.queued && !joined.started } : ticket;
  });
  const fullSyncReady = () => next !== null && next.runId !== null;

  // A full sync wanted or requested: a push under way gives way to it (the full sync brings its objects too).
  const fullSyncWaiting = () => fullWanted || fullSyncReady();
  const pushes = new PushOutcomes(slug);

  // Changes known to wait for this provider in PostgreSQL (the relay queues them there; each push takes a batch).
  let queued = 0;
  const overflowing = () => {
    if (queued <= policy.maxPending) return;
    // The full sync drops the whole queue before it reads the directory.
    log.info('too many queued changes: a full sync brings them', { slug, queued });
    queued = 0;
    fullWanted = true;
  };

  if (swept !== undefined) await swept;
  for (;;) {
    const retryIn = pushes.retryAt === null ? null : Math.max(pushes.retryAt - Date.now(), 1);
    // Changes are taken from the queue, not carried by signals: a signal that met a continue-as-new failed that
    // workflow task, and Temporal turned every later signal away for a whole replay (the latency tail of issue #16).
    const fromQueue = patched('changes-from-queue');
    if (fromQueue) {
      if (queued === 0 && pending.size() === 0 && !fullWanted && !fullSyncReady()) {
        queued = await awaitQueued(
          providerId,
          Math.min(retryIn ?? IDLE_WAIT_MS, IDLE_WAIT_MS),
          policy.maxPending + 1,
          () => pending.size() > 0 || fullWanted || fullSyncReady(),
        );
        overflowing();
      }
    } else if (retryIn !== null && patched('retry-push')) {
      await condition(() => pending.size() > 0 || fullWanted || fullSyncReady(), retryIn);
    } else {
      await condition(() => pending.size() > 0 || fullWanted || fullSyncReady());
    }
    if (fullWanted) {
      fullWanted = false;
      if (patched('ticket-before-its-run')) {
        // `next ??= { runId: await … }` set the ticket only once its run was opened: a request taken in meanwhile
        // opened a run of its own, which this ticket then replaced, so the request was never answered, its run stayed
        // open, and the workflow could no longer continue as new.
        // A run that cannot be opened is logged and dropped with its kick; the schedule's next kick tries again.
        await nextTicket().catch((error: unknown) => {
          log.warn('full sync not queued', { slug, error: failureRecord(error) });
        });
      } else {
        next ??= {
          runId: await database.openFullSyncRun({ providerId, workflowId: fullSyncWorkflowId(slug) }),
          started: false,
          allowDeletions: false,
          queued: false,
          failure: null,
        };
      }
    }
    if (fullSyncReady()) {
      const ticket = next!;
      next = null;
      fullSyncRunning = true;
      await runFullSync(providerId, slug, ticket);
      fullSyncRunning = false;
      // The full sync dropped what was queued before it began; what came since, the next wait finds.
      queued = 0;
    } else if (pending.size() > 0 || queued > 0) {
      const waited = Date.now() - (pending.firstChangeAt ?? Date.now());
      const remaining = policy.maxDelayMs - waited;
      if (pending.size() < policy.maxObjects && remaining > 0) await local.holdOff(remaining);
      const batch = pending.take(policy.maxObjects);
      const room = policy.maxObjects - batch.userIds.length - batch.groupIds.length;
      const queue = fromQueue ? { take: room, queuedCap: policy.maxPending + 1 } : undefined;
      // What the push left queued is taken by the next one at once; after a failure, the next wait finds it.
      queued = (await flush(providerId, slug, batch, fullSyncWaiting, pushes, queue)) ?? 0;
      overflowing();
    } else if (pushes.retryAt !== null && Date.now() >= pushes.retryAt) {
      // No change came to carry the objects left retrying: a push of its own sends them.
      await flush(providerId, slug, { userIds: [], groupIds: [] }, fullSyncWaiting, pushes);
    }
    const info = workflowInfo();
    if ((info.continueAsNewSuggested || info.historyLength > historyLimit) && next === null) {
      await condition(allHandlersFinished);
      if (next === null) {
        const carried = pending.take();
        await continueAsNew<typeof providerSync>({
          providerId,
          slug,
          // Only what was asked for: the next run takes the defaults of the code it runs on.
          flush: input.flush,
          pending: { ...carried, seq: pending.seq },
          fullSyncRequested: fullWanted,
          historyLimit: input.historyLimit,
        });
      }
    }
  }
}

async function runFullSync(providerId: string, slug: string, current: NextFullSync): Promise<void> {
  const runId = current.runId!;
  try {
    const child = await startChild(fullSync, {
      workflowId: fullSyncWorkflowId(slug),
      args: [{ providerId, runId, ...(current.allowDeletions ? { allowDeletions: true } : {}) }],
      memo: { runId },
      typedSearchAttributes: [{ key: SCIM_PROVIDER, value: slug }],
      staticSummary: `Full sync of provider ${slug}`,
      parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
    });
    current.started = true;
    await child.result();
  } catch (error) {
    // A failed full sync is recorded in its run and in its own workflow; the provider workflow carries on.
    current.started = true;
    // Described here: the line leaves the sandbox as a structured clone, which would lose the classes and the code.
    const described = error instanceof Error ? describeLoggedError(error, FAILURE_CHAIN) : String(error);
    log.warn('full sync failed', { slug, syncRunId: runId, error: described });
    // A full sync whose workflow was terminated or timed out (or could not start: one of that id still ran) never
    // closed its run: closed here, or it stays open.
    if (patched('close-abandoned-run-after-full-sync')) {
      await database.closeAbandonedRuns({ providerId, runId }).catch((failure: unknown) => {
        log.warn('run left open not closed', { slug, syncRunId: runId, error: failureRecord(failure) });
      });
    }
  }
}

/**
 * How the provider's pushes have gone: failures in a row (from {@link STALLED_AFTER} on, the provider shows as stalled
 * in the Temporal UI; its runs say so in the API and CLI), and when objects left retrying are due again.
 */
class PushOutcomes {
  failuresInARow = 0;
  retryAt: number | null = null;
  #retryDelayMs = RETRY_PUSH_FIRST_MS;
  readonly #slug: string;

  constructor(slug: string) {
    this.#slug = slug;
  }

  succeeded(retrying: number): void {
    if (this.failuresInARow >= STALLED_AFTER) setCurrentDetails(`Pushing changes to ${this.#slug} again`);
    this.failuresInARow = 0;
    if (retrying === 0) {
      this.retryAt = null;
      this.#retryDelayMs = RETRY_PUSH_FIRST_MS;
      return;
    }
    this.retryAt = Date.now() + this.#retryDelayMs;
    this.#retryDelayMs = Math.min(this.#retryDelayMs * 2, RETRY_PUSH_MAX_MS);
  }

  failed(record: { code: string; message: string }): void {
    this.failuresInARow += 1;
    if (this.failuresInARow >= STALLED_AFTER) {
      setCurrentDetails(
        `**Stalled** — ${this.failuresInARow} pushes to ${this.#slug} failed in a row; the last with ${record.code}: ${record.message}`,
      );
    }
  }
}

/**
 * Pushes a batch (and, with `queue`, up to `queue.take` changes taken from the provider's queue); returns how many
 * changes the push left queued (counted up to `queue.queuedCap`), or null when it did not end well or took none.
 */
async function flush(
  providerId: string,
  slug: string,
  batch: { userIds: string[]; groupIds: string[] },
  fullSyncWaiting: () => boolean,
  pushes: PushOutcomes,
  queue?: { take: number; queuedCap: number },
): Promise<number | null> {
  const retry = batch.userIds.length + batch.groupIds.length === 0 && !queue?.take;
  if (retry && pushes.retryAt === null) return null;
  const runId = uuid4();
  // A push gives way to a full sync asked for meanwhile: it is cancelled, and the full sync, which reads the whole
  // directory, brings its objects. The full sync starts once the push's attempt has stopped.
  const scope = new CancellationScope();
  let settled = false;
  const push = scope.run(() =>
    (patched('push-cancel-acknowledged') ? acknowledged : vendor).pushChanges({
      providerId,
      runId,
      workflowId: workflowInfo().workflowId,
      ...batch,
      ...queue,
    }),
  );
  if (patched('push-gives-way')) {
    void condition(() => settled || fullSyncWaiting()).then(() => {
      if (!settled) scope.cancel();
    });
  }
  try {
    const counts = await push;
    pushes.succeeded(counts.retrying);
    return counts.queued ?? null;
  } catch (error) {
    if (isCancellation(error)) {
      log.info('incremental push gave way to a full sync', { slug, syncRunId: runId });
      await database.finishFullSync({ runId, status: 'cancelled', error: null }).catch(() => undefined);
      return null;
    }
    // A batch that fails for good (configuration, credentials) is recorded; the next full sync repairs it.
    const cause = error instanceof Error && error.cause instanceof ApplicationFailure ? error.cause : null;
    const record = {
      code: cause?.type ?? 'ERR_INTERNAL',
      message: error instanceof Error ? error.message : String(error),
    };
    log.warn('incremental push failed', { slug, syncRunId: runId, ...record });
    pushes.failed(record);
    await database.finishFullSync({ runId, status: 'failed', error: record }).catch(() => undefined);
    return null;
  } finally {
    settled = true;
  }
}

/**
 * Waits, in an activity, until changes are queued for the provider or `waitMs` has passed, and returns how many wait
 * (up to `cap`); `interrupt` (a full sync wanted, a signal carrying changes) ends the wait early with 0.
 */
async function awaitQueued(providerId: string, waitMs: number, cap: number, interrupt: () => boolean): Promise<number> {
  const scope = new CancellationScope();
  let settled = false;
  const wait = scope.run(() => waiting.awaitChanges({ providerId, waitMs, cap }));
  void condition(() => settled || interrupt()).then(() => {
    if (!settled) scope.cancel();
  });
  try {
    return (await wait).queued;
  } catch (error) {
    if (isCancellation(error)) return 0;
    throw error;
  } finally {
    settled = true;
  }
}
