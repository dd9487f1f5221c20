/** Caches one access token until shortly before it expires, with one fetch in flight shared by every caller. */

/** A token as the authorization server issued it. */
export interface IssuedToken {
  accessToken: string;
  /** Epoch milliseconds; undefined when the server did not say (`expires_in` absent). */
  expiresAt: number | undefined;
}

/** The cache of one provider's token. */
export interface TokenCache {
  /** The cached token, or a fresh one when there is none or it is about to expire. */
  get(): Promise<string>;
  /** Forgets `token` if it is still the cached one (the target refused it); the next `get` fetches anew. */
  invalidate(token: string): void;
  /** When the cached token expires (epoch ms), if one is cached and its lifetime is known. */
  expiresAt(): number | undefined;
}

/** Refresh this long before expiry, at most: a token must not expire between `get` and the request using it. */
const MAX_EARLY_MS = 60_000;
/** A token without `expires_in` is used for this long, or until the target refuses it. */
const UNKNOWN_LIFETIME_MS = 10 * 60_000;

/** Builds a cache around `fetch`; `now` is the clock (injected so tests can move time). */
export function createTokenCache(fetch: () => Promise<IssuedToken>, now: () => number = Date.now): TokenCache {
  let current: { token: string; refreshAt: number; expiresAt: number | undefined } | undefined;
  let inFlight: Promise<string> | undefined;

  function refresh(): Promise<string> {
    inFlight ??= (async () => {
      try {
        const fetchedAt = now();
        const issued = await fetch();
        const lifetime = issued.expiresAt === undefined ? UNKNOWN_LIFETIME_MS : issued.expiresAt - fetchedAt;
        // A tenth of the lifetime, so a short-lived token is still used for most of its life.
        const early = Math.min(MAX_EARLY_MS, Math.max(0, lifetime) / 10);
        current = { token: issued.accessToken, refreshAt: fetchedAt + lifetime - early, expiresAt: issued.expiresAt };
        return issued.accessToken;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  }

  return {
    get() {
      if (current !== undefined && now() < current.refreshAt) return Promise.resolve(current.token);
      return refresh();
    },
    invalidate(token) {
      if (current?.token === token) current = undefined;
    },
    expiresAt: () => current?.expiresAt,
  };
}
