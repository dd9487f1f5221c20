/**
 * Runs `fn` over `items` (an array, or what an async source yields), at most `limit` at a time, taking the next item
 * as soon as a place is free. After a failure (of `fn`, or of the source) no further item starts and the source is
 * closed; the running ones end (so their results are recorded), and then the first failure is thrown.
 */
export async function eachConcurrently<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const iterator: Iterator<T> | AsyncIterator<T> =
    Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  let done = false;
  const worker = async (): Promise<void> => {
    while (failure === undefined && !done) {
      let next: IteratorResult<T>;
      try {
        // An async generator queues calls of next(): each place gets an item of its own, in order.
        next = await iterator.next();
      } catch (error) {
        failure ??= { error };
        return;
      }
      if (next.done === true) {
        done = true;
        return;
      }
      // Another place failed while this one waited for its item.
      if (failure !== undefined) return;
      try {
        await fn(next.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, limit) }, worker));
  if (failure) {
    try {
      await iterator.return?.();
    } catch {
      // Closing the source only; the first failure is what is thrown.
    }
    throw failure.error;
  }
}

/** What `promises` settle to, in the order they settle; a rejection is thrown at its turn. */
export async function* inSettlementOrder<T>(promises: ReadonlyArray<Promise<T>>): AsyncGenerator<T> {
  const settled: Array<PromiseSettledResult<T>> = [];
  let wake: (() => void) | undefined;
  for (const promise of promises) {
    promise.then(
      (value) => {
        settled.push({ status: 'fulfilled', value });
        wake?.();
      },
      (reason: unknown) => {
        settled.push({ status: 'rejected', reason });
        wake?.();
      },
    );
  }
  for (let taken = 0; taken < promises.length; taken += 1) {
    while (settled.length === 0) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
    const next = settled.shift()!;
    if (next.status === 'rejected') throw next.reason;
    yield next.value;
  }
}
