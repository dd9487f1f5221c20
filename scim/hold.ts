/**
 * A target's pause after it asked for one: a `Retry-After` on a 429 or 503 tells the client, not the one request, to
 * wait, so every request to that target waits it out, not only the retry of the request that was refused.
 */
export class TargetHold {
  #until = 0;
  readonly #now: () => number;

  /** `now`: the clock (injected in tests). */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Holds every request until `ms` from now, unless an earlier answer asked for longer. */
  extend(ms: number): void {
    this.#until = Math.max(this.#until, this.#now() + ms);
  }

  /** Milliseconds left of the hold (0: none). */
  remainingMs(): number {
    return Math.max(0, this.#until - this.#now());
  }

  /** Resolves once no hold is left, waiting with `wait` (which rejects when its caller is cancelled). */
  async ready(wait: (ms: number) => Promise<void>): Promise<void> {
    // A hold extended while this one waited is waited out too.
    for (let left = this.remainingMs(); left > 0; left = this.remainingMs()) await wait(left);
  }
}
