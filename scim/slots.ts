/**
 * Slots for requests in flight: at most `size` request attempts at a time, granted in arrival order. An object
 * waiting out a backoff holds none, so the others' requests go on meanwhile.
 */
export class RequestSlots {
  readonly size: number;
  #used = 0;
  readonly #queue: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('request slots must be a positive integer');
    this.size = size;
  }

  /** Resolves with the slot's release (call it once) when one is free; rejects with the reason if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (this.#used < this.size && this.#queue.length === 0) {
      this.#used += 1;
      return Promise.resolve(this.#releaser());
    }
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(this.#releaser());
      };
      const onAbort = (): void => {
        const index = this.#queue.indexOf(grant);
        if (index >= 0) this.#queue.splice(index, 1);
        reject(signal!.reason as Error);
      };
      this.#queue.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      // The slot passes straight to the next in line.
      if (next) next();
      else this.#used -= 1;
    };
  }
}
