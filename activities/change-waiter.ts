import type pg from 'pg';
import { CHANGES_CHANNEL, type Db } from '../db/index.ts';

/** Wakes the activities of this worker that wait for a provider's queued changes. */
export interface ChangeWaiter {
  /**
   * Starts listening for the provider's changes; `woken` resolves at the first one after this call, after `ms`, when
   * `signal` aborts, or when `stop()` is called (whichever comes first). Subscribe before looking at the queue, so
   * nothing slips between; a caller that stops waiting without awaiting `woken` calls `stop()`, or the listening
   * connection stays out of the pool until `ms` has passed (a stopped worker's pool waited up to 1 s to close).
   */
  subscribe(providerId: string, ms: number, signal?: AbortSignal): Promise<Subscription>;
}

/** One wait for a provider's changes. */
export interface Subscription {
  /** Resolves when the wait ends. */
  woken: Promise<void>;
  /** Ends the wait now; nothing once it has ended. */
  stop(): void;
}

/**
 * One LISTEN connection per worker process, held only while some activity waits (a worker with nothing waiting holds
 * no connection). A lost connection only costs latency: waits end at their deadline, and the next one reconnects.
 */
export function createChangeWaiter(db: Db): ChangeWaiter {
  const waiters = new Map<string, Set<() => void>>();
  let listener: Promise<pg.PoolClient | null> | null = null;
  let count = 0;

  const wakeAll = (providerId: string) => {
    const set = waiters.get(providerId);
    if (!set) return;
    waiters.delete(providerId);
    for (const wake of set) wake();
  };
  // The client listening now; `gone` holds every client handed back, which pg refuses to take twice (a client that
  // failed after it was handed back, or one whose LISTEN failed after its error event, came back twice).
  let current: pg.PoolClient | null = null;
  const gone = new WeakSet<pg.PoolClient>();
  const letGo = (client: pg.PoolClient) => {
    if (current === client) current = null;
    if (gone.has(client)) return;
    gone.add(client);
    client.release(true);
  };
  const connect = (): Promise<pg.PoolClient | null> =>
    (listener ??= (async () => {
      let client: pg.PoolClient | null = null;
      try {
        client = await db.connect();
        const own = client;
        current = own;
        own.on('notification', (message) => wakeAll(message.payload ?? ''));
        own.on('error', () => drop(own));
        await own.query(`LISTEN ${CHANGES_CHANNEL}`);
        return own;
      } catch {
        if (client) drop(client);
        else listener = null;
        return null;
      }
    })());
  const drop = (client: pg.PoolClient) => {
    // Only the listening client's failure ends the listener (one handed back earlier may still fail later).
    if (current === client) listener = null;
    letGo(client);
  };
  const release = async () => {
    if (count > 0 || !listener) return;
    const pending = listener;
    listener = null;
    const client = await pending;
    if (client) letGo(client);
  };

  return {
    async subscribe(providerId, ms, signal) {
      count += 1;
      await connect();
      let done: () => void = () => undefined;
      const woken = new Promise<void>((resolve) => {
        const timer = setTimeout(() => done(), ms);
        const onAbort = () => done();
        done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          waiters.get(providerId)?.delete(done);
          resolve();
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        let set = waiters.get(providerId);
        if (!set) waiters.set(providerId, (set = new Set()));
        set.add(done);
        if (signal?.aborted) done();
      }).finally(() => {
        count -= 1;
        void release();
      });
      return { woken, stop: () => done() };
    },
  };
}
