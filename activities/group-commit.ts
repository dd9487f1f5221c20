/**
 * Runs writes one statement at a time; the items that arrive meanwhile, from any batch, go together in the next (a
 * group commit), so an item waits at most for one write in flight, and concurrent batches share statements instead of
 * each sending its own. The last item per key wins; every caller of a write gets its result.
 */
export class GroupCommit<I, R> {
  readonly #write: (items: I[]) => Promise<R>;
  readonly #merge: (earlier: I, later: I) => I;
  #next: { items: Map<string, I>; written: PromiseWithResolvers<R> } | undefined;
  #writing = false;

  /** `merge` makes the one item written of two queued under one key. @default the later one */
  constructor(write: (items: I[]) => Promise<R>, merge: (earlier: I, later: I) => I = (_, later) => later) {
    this.#write = write;
    this.#merge = merge;
  }

  /** Queues `item` under `key` for the next write; resolves with that write's result once it is committed. */
  add(key: string, item: I): Promise<R> {
    if (this.#next === undefined) {
      const written = Promise.withResolvers<R>();
      written.promise.catch(() => undefined);
      this.#next = { items: new Map(), written };
    }
    const earlier = this.#next.items.get(key);
    this.#next.items.set(key, earlier === undefined ? item : this.#merge(earlier, item));
    const { promise } = this.#next.written;
    if (!this.#writing) void this.#drain();
    return promise;
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      for (let group = this.#next; group !== undefined; group = this.#next) {
        this.#next = undefined;
        try {
          group.written.resolve(await this.#write([...group.items.values()]));
        } catch (error) {
          group.written.reject(error);
        }
      }
    } finally {
      this.#writing = false;
    }
  }
}
