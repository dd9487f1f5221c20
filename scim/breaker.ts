/**
 * A circuit breaker for one target: after the target has answered nothing but transient failures (network errors,
 * timeouts, 5xx) for `openAfterMs`, it opens and every request fails at once with ERR_SCIM_UNAVAILABLE (which ends
 * the run); after `cooldownMs` it lets one probe through, and closes on the probe's success or opens again on its
 * failure. Any answer that shows the target alive (a success, a 4xx, a 429) counts as success.
 */
import { ScimflowError } from '../errors/index.ts';

/** How a breaker decides. */
export interface BreakerOptions {
  /** Failing this long, with no success in between, opens the breaker. @default 60000 */
  openAfterMs?: number;
  /** How long it stays open before letting a probe through. @default 30000 */
  cooldownMs?: number;
  /** Milliseconds, monotonic. @default performance.now */
  clock?: () => number;
}

/** The breaker's state, for status displays. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** One target's circuit breaker, shared by every request to it from this process. */
export class CircuitBreaker {
  readonly #openAfterMs: number;
  readonly #cooldownMs: number;
  readonly #clock: () => number;
  /** Since when every answer was a failure; null after a success. */
  #failingSince: number | null = null;
  #openUntil: number | null = null;
  #probing = false;

  constructor(options: BreakerOptions = {}) {
    this.#openAfterMs = options.openAfterMs ?? 60_000;
    this.#cooldownMs = options.cooldownMs ?? 30_000;
    this.#clock = options.clock ?? (() => performance.now());
  }

  /** Where the breaker stands now. */
  get state(): BreakerState {
    if (this.#openUntil === null) return 'closed';
    return this.#clock() >= this.#openUntil && !this.#probing ? 'half-open' : 'open';
  }

  /** Throws ERR_SCIM_UNAVAILABLE unless a request may be sent now; the caller must then report its outcome. */
  admit(): void {
    if (this.#openUntil === null) return;
    if (this.#clock() >= this.#openUntil && !this.#probing) {
      this.#probing = true;
      return;
    }
    throw new ScimflowError(
      'ERR_SCIM_UNAVAILABLE',
      `the SCIM target has answered nothing but failures for ${seconds(this.#openAfterMs)}; ` +
        `requests are paused and it is probed every ${seconds(this.#cooldownMs)}`,
      { details: { openAfterMs: this.#openAfterMs, cooldownMs: this.#cooldownMs } },
    );
  }

  /** The target answered (a success, or a failure that shows it alive): closes the breaker. */
  succeeded(): void {
    this.#failingSince = null;
    this.#openUntil = null;
    this.#probing = false;
  }

  /** A request admitted without an outcome (cancelled): a probe it was is owed to the next request. */
  abandoned(): void {
    this.#probing = false;
  }

  /** A transient failure: opens the breaker once failures alone have lasted `openAfterMs`, or a probe failed. */
  failed(): void {
    const now = this.#clock();
    this.#failingSince ??= now;
    if (this.#probing || now - this.#failingSince >= this.#openAfterMs) {
      this.#openUntil = now + this.#cooldownMs;
      this.#probing = false;
    }
  }
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}
