/**
 * Source authentication with a cache, so a SCIM request costs no query for its token. An entry is served only while
 * this process listens on PostgreSQL's `scimflow_sources` channel, where every change or deletion of a source is
 * announced in the transaction that makes it (migration 0018): a rotated token or a deleted source stops working
 * as soon as the notification arrives (milliseconds after the commit), in every API process. When the listening
 * connection is lost, everything is forgotten and requests query again until it is back. Entries also expire after
 * `maxAgeMs`. The listening connection is taken from the pool on the first request and given back after `idleMs`
 * without one, or as soon as the pool is ending, so it never holds `db.end()` up for long.
 */
import { timingSafeEqual } from 'node:crypto';
import type pg from 'pg';
import { authenticateSource, SOURCE_CHANGES_CHANNEL, type Db, type SourceView } from '../../db/index.ts';
import { hashSecret } from '../../db/secret-hash.ts';

/** Settings of the cache. */
export interface SourceTokenCacheOptions {
  /** Longest an entry is served without a query. @default 60 s */
  maxAgeMs?: number;
  /** The listening connection goes back to the pool after this long without a request. @default 10 s */
  idleMs?: number;
  /** Milliseconds clock. @default Date.now */
  now?: () => number;
}

/** Finds the source of a request. */
export interface SourceAuthenticator {
  /** The source `slug` when `token` is its current token; null otherwise. */
  authenticate(slug: string, token: string): Promise<SourceView | null>;
  /** Gives the listening connection back and forgets every entry. */
  close(): void;
}

interface Entry {
  source: SourceView;
  digest: Buffer;
  at: number;
}

const CHECK_EVERY_MS = 200;

/** A cached `authenticateSource` on `db`. */
export function createSourceAuthenticator(db: Db, options: SourceTokenCacheOptions = {}): SourceAuthenticator {
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  const idleMs = options.idleMs ?? 10_000;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  // Moves on with every forgetting, so a lookup that raced a notification does not store what it read.
  let generation = 0;
  let listener: pg.PoolClient | null = null;
  let connecting: Promise<void> | null = null;
  let lastUse = 0;
  let watch: NodeJS.Timeout | null = null;

  const forget = (slug?: string) => {
    generation += 1;
    if (slug === undefined) entries.clear();
    else entries.delete(slug);
  };

  const close = () => {
    forget();
    if (watch) clearInterval(watch);
    watch = null;
    const held = listener;
    listener = null;
    // Destroyed rather than released: nothing else should inherit a connection that is LISTENing.
    held?.release(true);
  };

  const listen = async (): Promise<void> => {
    const client = await db.connect();
    client.on('notification', (message) => {
      if (message.channel === SOURCE_CHANGES_CHANNEL) forget(message.payload);
    });
    client.on('error', () => {
      if (listener === client) close();
    });
    try {
      await client.query(`LISTEN ${SOURCE_CHANGES_CHANNEL}`);
    } catch (error) {
      client.release(true);
      throw error;
    }
    listener = client;
    watch = setInterval(() => {
      if (db.ending || now() - lastUse > idleMs) close();
    }, CHECK_EVERY_MS);
    watch.unref();
  };

  /** Listens if it can; a failure only means this request is not cached. */
  const ensureListening = async (): Promise<void> => {
    if (listener || db.ending) return;
    connecting ??= listen()
      .catch(() => undefined)
      .finally(() => {
        connecting = null;
      });
    await connecting;
  };

  return {
    async authenticate(slug, token) {
      lastUse = now();
      const digest = hashSecret(token);
      const cached = listener ? entries.get(slug) : undefined;
      if (cached && now() - cached.at < maxAgeMs && timingSafeEqual(cached.digest, digest)) return cached.source;
      await ensureListening();
      const listening = listener;
      const before = generation;
      const source = await authenticateSource(db, slug, token);
      if (source && listening !== null && listener === listening && generation === before) {
        entries.set(slug, { source, digest, at: now() });
      }
      return source;
    },
    close,
  };
}
