/**
 * Which line a request attempt waits in for a slot: a `retry` (it has waited its backoff already), a `read` (a lookup,
 * whose answer lets the objects it names go on), or a `write`.
 */
export type SlotLane = 'retry' | 'read' | 'write';

/** An attempt waiting in line: granted its slot's release, or refused with its signal's reason. */
interface Waiter {
  grant: (release: () => void) => void;
  refuse: (reason: unknown) => void;
  signal: AbortSignal | undefined;
}

/**
 * Slots for requests in flight: at most `size` request attempts at a time. An object waiting out a backoff holds
 * none, so the others' requests go on meanwhile. A freed slot goes to the first retry in line, else the first read,
 * else the first write: a retry has waited already, and a read (a page's lookup) lets a whole page's writes join the
 * line. Behind the writes of the pages before it, a lookup of 23 ms waited 583 ms on average (20 ms from the target,
 * 1,250 users a range), and its page's writes with it.
 */
export class RequestSlots {
  readonly size: number;
  #used = 0;
  readonly #lines: Record<SlotLane, Waiter[]> = { retry: [], read: [], write: [] };
  /**
   * The signals of the attempts in line, with how many wait on each: one abort listener per signal, not one per
   * attempt. Every object of an activity waits on the activity's signal, and Node's EventTarget walks a signal's
   * listeners on each add: with hundreds in line, adding and removing them was 1.6 % of a first sync's CPU.
   */
  readonly #signals = new Map<AbortSignal, number>();

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError('request slots must be a positive integer');
    this.size = size;
  }

  /**
   * Resolves with the slot's release (call it once) when one is free and nothing is in line before it (see
   * {@link SlotLane}); rejects with the reason if `signal` aborts first.
   */
  acquire(signal?: AbortSignal, lane: SlotLane = 'write'): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const release = this.tryAcquire();
    if (release !== undefined) return Promise.resolve(release);
    return new Promise((grant, refuse) => {
      this.#lines[lane].push({ grant, refuse, signal });
      if (signal !== undefined) this.#watch(signal);
    });
  }

  /** A slot's release when one is free and nothing is in line, taken at once; otherwise undefined. */
  tryAcquire(): (() => void) | undefined {
    if (this.#used >= this.size || this.#next() !== undefined) return undefined;
    this.#used += 1;
    return this.#releaser();
  }

  #watch(signal: AbortSignal): void {
    const waiting = this.#signals.get(signal) ?? 0;
    this.#signals.set(signal, waiting + 1);
    if (waiting === 0) signal.addEventListener('abort', this);
  }

  #unwatch(signal: AbortSignal): void {
    const waiting = this.#signals.get(signal)! - 1;
    if (waiting > 0) {
      this.#signals.set(signal, waiting);
      return;
    }
    this.#signals.delete(signal);
    signal.removeEventListener('abort', this);
  }

  /** A signal aborted: every attempt in line on it is refused with its reason. */
  handleEvent(event: Event): void {
    const signal = event.target as AbortSignal;
    this.#signals.delete(signal);
    signal.removeEventListener('abort', this);
    for (const lane of Object.keys(this.#lines) as SlotLane[]) {
      const refused = this.#lines[lane].filter((waiter) => waiter.signal === signal);
      if (refused.length === 0) continue;
      this.#lines[lane] = this.#lines[lane].filter((waiter) => waiter.signal !== signal);
      for (const waiter of refused) waiter.refuse(signal.reason);
    }
  }

  /** The line the next freed slot is taken from, if anyone waits. */
  #next(): Waiter[] | undefined {
    const { retry, read, write } = this.#lines;
    return retry.length > 0 ? retry : read.length > 0 ? read : write.length > 0 ? write : undefined;
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#next()?.shift();
      // The slot passes straight to the next in line.
      if (next === undefined) {
        this.#used -= 1;
        return;
      }
      if (next.signal !== undefined) this.#unwatch(next.signal);
      next.grant(this.#releaser());
    };
  }
}
