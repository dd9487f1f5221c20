/**
 * The outbox relay: moves directory changes from the `outbox` table to every enabled provider. Rows are claimed with
 * FOR UPDATE SKIP LOCKED (several relays can run), delivered (by default queued per provider in PostgreSQL, see
 * `queueDeliver`), and marked dispatched in the same transaction only after every delivery succeeded, so a crash or
 * an outage loses nothing; a redelivered batch is harmless because changes coalesce per object. A batch whose delivery is held up does not
 * hold up the batches behind it. NOTIFY only wakes the relay early; the polling interval is what guarantees progress.
 */
import type { Client } from '@temporalio/client';
import type pg from 'pg';
import { hasStaleChanges, inTransaction, queueChanges, type Db } from '../db/index.ts';
import { directoryChangesSignal, providerSync, type DirectoryChanges, type FlushPolicy } from '../workflows/index.ts';
import { providerSyncStartOptions } from './schedules.ts';

/** The channel the outbox trigger (migration 0003) notifies. */
export const OUTBOX_CHANNEL = 'scimflow_outbox';

/** A provider the relay delivers to. */
export interface RelayTarget {
  id: string;
  slug: string;
}

/** Delivers one batch to one provider; resolves once Temporal accepted it. */
export interface Deliver {
  (provider: RelayTarget, changes: DirectoryChanges): Promise<void>;
  /** Resolves once nothing this deliverer sent is still in flight, re-sends included; the relay awaits it on stop. */
  idle?(): Promise<void>;
}

/** A running relay. */
export interface OutboxRelay {
  /** Claims and delivers one batch; returns how many outbox rows it dispatched. */
  drainOnce(): Promise<number>;
  /** Stops polling and listening; waits for the batches in flight. */
  stop(): Promise<void>;
}

interface OutboxRow {
  seq: string;
  object_type: 'user' | 'group' | 'membership';
  object_id: string;
  related_id: string | null;
}

/** Turns outbox rows into the ids a provider must re-examine: a membership touches its group and its user. */
export function changesOf(rows: readonly OutboxRow[]): DirectoryChanges {
  const userIds = new Set<string>();
  const groupIds = new Set<string>();
  let seq = 0;
  for (const row of rows) {
    seq = Math.max(seq, Number(row.seq));
    if (row.object_type === 'user') userIds.add(row.object_id);
    else if (row.object_type === 'group') groupIds.add(row.object_id);
    else {
      groupIds.add(row.object_id);
      if (row.related_id) userIds.add(row.related_id);
    }
  }
  return { userIds: [...userIds], groupIds: [...groupIds], seq };
}

// A signal normally takes a few milliseconds. While a provider workflow continues as new and a signal lands at the
// same moment, Temporal rejects further signals ("workflow is closing", RESOURCE_EXHAUSTED) until the run has
// closed, and the client's own retry waits a full second before trying again. So a signal not accepted after
// HEDGE_AFTER_MS is sent again alongside, up to HEDGE_ATTEMPTS in all; the first accepted one counts, and
// the provider workflow coalesces the duplicates.
const HEDGE_AFTER_MS = 200;
const HEDGE_ATTEMPTS = 5;

// A round still delivering after ROUND_PATIENCE_MS (a signal held up by a continue-as-new) does not hold up the
// changes behind it: the relay claims the next batch alongside (SKIP LOCKED passes the rows still in flight), with up
// to MAX_ROUNDS rounds at once. Order between rounds does not matter: provider workflows coalesce per object and
// push what the directory holds when they push.
const ROUND_PATIENCE_MS = 200;
const MAX_ROUNDS = 4;

/** Signals-with-start `provider-sync:<slug>` with the batch: the default way to deliver. */
export function temporalDeliver(client: Client, taskQueue: string, flush?: Partial<FlushPolicy>): Deliver {
  const signal = (provider: RelayTarget, changes: DirectoryChanges) =>
    client.workflow.signalWithStart(providerSync, {
      ...providerSyncStartOptions(provider, taskQueue, flush),
      signal: directoryChangesSignal,
      signalArgs: [changes],
    });
  // Re-sends still under way after the first acceptance: the client retries them on its own timers, so its
  // connection must outlive them (a retry on a closed connection throws outside any caller).
  const inFlight = new Set<Promise<void>>();
  const deliver: Deliver = (provider, changes) =>
    new Promise<void>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      const attempt = (n: number) => {
        const sent = signal(provider, changes).then(
          () => settle(),
          (error: unknown) => settle(error instanceof Error ? error : new Error('signal-with-start failed')),
        );
        inFlight.add(sent);
        void sent.finally(() => inFlight.delete(sent));
        if (n < HEDGE_ATTEMPTS) timer = setTimeout(() => attempt(n + 1), HEDGE_AFTER_MS);
      };
      attempt(1);
    });
  deliver.idle = async () => {
    while (inFlight.size > 0) await Promise.all(inFlight);
  };
  return deliver;
}

/** How long changes may wait untaken before the relay wakes the provider's workflow (started, or on older code). */
const STALE_AFTER_MS = 5000;

/**
 * Queues each batch for the provider in PostgreSQL, where its workflow's push activity takes it: the default way to
 * deliver. Nothing goes through Temporal per change, so no change waits on a signal that met a continue-as-new.
 * `wake` (signal-with-start) runs only for a provider this relay has not woken yet, or whose changes have waited
 * untaken past a few seconds, at most once per that time: it starts a workflow that is not running and moves one
 * started by older code (which waits for signals) to the queue.
 */
export function queueDeliver(db: Db, wake: Deliver, staleAfterMs = STALE_AFTER_MS): Deliver {
  const wokenAt = new Map<string, number>();
  const deliver: Deliver = async (provider, changes) => {
    await queueChanges(db, provider.id, changes);
    const last = wokenAt.get(provider.id);
    if (
      last !== undefined &&
      (Date.now() - last < staleAfterMs || !(await hasStaleChanges(db, provider.id, staleAfterMs)))
    )
      return;
    await wake(provider, changes);
    wokenAt.set(provider.id, Date.now());
  };
  deliver.idle = async () => {
    await wake.idle?.();
  };
  return deliver;
}

/** `promise`'s value if it settles within `ms`, else undefined (it carries on). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts a relay. `deliver` defaults to Temporal signal-with-start; `onError` hears failed rounds (they are retried
 * at the next poll).
 */
export async function startOutboxRelay(options: {
  db: Db;
  deliver: Deliver;
  batchSize?: number;
  pollIntervalMs?: number;
  onError?: (error: unknown) => void;
}): Promise<OutboxRelay> {
  const { db, deliver } = options;
  const batchSize = options.batchSize ?? 500;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  let stopped = false;
  let wake: (() => void) | null = null;
  let hinted = false;
  const hint = () => {
    hinted = true;
    wake?.();
  };

  async function drainOnce(): Promise<number> {
    return inTransaction(db, async (client) => {
      const { rows } = await client.query<OutboxRow>(
        `SELECT seq, object_type, object_id, related_id FROM outbox WHERE dispatched_at IS NULL
          ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [batchSize],
      );
      if (rows.length === 0) return 0;
      const providers = await client.query<RelayTarget>(`SELECT id, slug FROM providers WHERE enabled ORDER BY slug`);
      const changes = changesOf(rows);
      // Every provider at once, so one slow signal does not hold up the others' changes; any failure keeps the
      // whole batch for the next round (a provider that got it already coalesces the repeat).
      const results = await Promise.allSettled(providers.rows.map((provider) => deliver(provider, changes)));
      const failed = results.find((result) => result.status === 'rejected');
      if (failed) throw failed.reason;
      await client.query(`UPDATE outbox SET dispatched_at = now() WHERE seq = ANY($1::bigint[])`, [
        rows.map((row) => row.seq),
      ]);
      return rows.length;
    });
  }

  let listener: pg.PoolClient | null = null;
  const listen = async () => {
    try {
      listener = await db.connect();
      listener.on('notification', hint);
      listener.on('error', () => {
        // A lost listening connection only costs latency: polling continues, and the next round reconnects.
        listener?.release(true);
        listener = null;
      });
      await listener.query(`LISTEN ${OUTBOX_CHANNEL}`);
    } catch (error) {
      listener?.release(true);
      listener = null;
      options.onError?.(error);
    }
  };
  await listen();

  const rounds = new Set<Promise<number>>();
  const loop = (async () => {
    while (!stopped) {
      hinted = false;
      const round = drainOnce().catch((error: unknown) => {
        options.onError?.(error);
        return 0;
      });
      rounds.add(round);
      void round.finally(() => rounds.delete(round));
      const dispatched = await within(round, ROUND_PATIENCE_MS);
      if (stopped) break;
      if (dispatched === undefined) {
        if (rounds.size >= MAX_ROUNDS) await Promise.race(rounds);
        continue;
      }
      if (dispatched === batchSize) continue;
      if (!listener) await listen();
      if (!hinted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollIntervalMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    }
  })();

  return {
    drainOnce,
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      await Promise.all(rounds);
      await deliver.idle?.();
      if (listener) {
        const l: pg.PoolClient = listener;
        listener = null;
        await l.query(`UNLISTEN ${OUTBOX_CHANNEL}`).catch(() => undefined);
        l.release();
      }
    },
  };
}
