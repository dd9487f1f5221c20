/**
 * Slots for requests in flight: at most `size` request attempts at a time. An object waiting out a backoff holds
 * none, so the others' requests go on meanwhile; when its wait is over its retry goes before every first attempt
 * still in line (retries among themselves, and first attempts among themselves, in arrival order).
 */
export class RequestSlots {
  readonly size: number;
  #used = 0;
  readonly #retries: Array<() => void> = [];
  readonly #firsts: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('request slots must be a positive integer');
    this.size = size;
  }

  /**
   * Resolves with the slot's release (call it once) when one is free; rejects with the reason if `signal` aborts
   * first. A `retry` has waited its backoff already: it is not put behind requests that have waited none.
   */
  acquire(signal?: AbortSignal, retry = false): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (this.#used < this.size && this.#retries.length === 0 && this.#firsts.length === 0) {
      this.#used += 1;
      return Promise.resolve(this.#releaser());
    }
    const queue = retry ? this.#retries : this.#firsts;
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.#releaser());
      };
      const onAbort = (): void => {
        const index = queue.indexOf(grant);
        if (index >= 0) queue.splice(index, 1);
        reject(signal!.reason as Error);
      };
      queue.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#retries.shift() ?? this.#firsts.shift();
      // The slot passes straight to the next in line.
      if (next) next();
      else this.#used -= 1;
    };
  }
}
