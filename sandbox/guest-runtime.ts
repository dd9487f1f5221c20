/**
 * The code that runs inside a provider's isolate. The host injects `guestRuntime` as source text
 * (`guestRuntime.toString()`), so it must use nothing but its parameters and the isolate's own globals: no value
 * imports, no module-level values, no Node APIs. The merge rules arrive as `kernel` (merge.ts's `mergeKernel`,
 * injected the same way), so the isolate merges exactly as the host does; the shape encoder of results arrives as
 * `shaper` (shapes.ts's `shapeEncoder`), so it writes exactly what the host's `compileShape` reads.
 */

import type { mergeKernel } from './merge.ts';
import type { shapeEncoder } from './shapes.ts';

/**
 * What the guest sends back for one object: the merged result, a skip, or an error (`m` = mapping index; `s` = what
 * an object the clock found over its limit produced, kept by the host when the CPU time clears it).
 */
export type GuestItemResult =
  | { v: unknown; c?: unknown[] }
  | { k: number; why?: string; c?: unknown[] }
  | { e: string; m: number; p?: string; c?: unknown[]; s?: GuestItemResult };

/**
 * How a result string that is not a bare payload starts: `!` and the GuestItemResult as JSON. A bare payload is the
 * JSON of a merged result (an object, or null when no mapping returned one), which never starts with it.
 */
export const MARKED_RESULT = '!';

/**
 * The answer of one `step` or `salvage` call: `results`, one per object, start at the
 * `acknowledged` index the host passed (results it has are dropped, results an interrupted call could not hand over
 * are sent again); `stopped` (from `salvage`, else -1) is the item that was running when the call was stopped, or
 * NOT_ADOPTED when the guest holds no batch of the id the host asked about (a call stopped before it took its input).
 * The results stay separate: isolated-vm copies an array of short strings out of the isolate for a quarter of what
 * one joined string costs (measured: 17 against 66 µs of the isolate's CPU per 100 default users), and the host can
 * take them in order now and rebuild them later, while the isolate works on the next call.
 */
export interface GuestStepAnswer {
  stopped: number;
  /**
   * Each object's merged result as `[shape number, ...leaf values]` (shapes.ts: most results); or as JSON, with no
   * wrapper (a result of no numbered shape); or MARKED_RESULT and its GuestItemResult as JSON: a skip, an error, a
   * result with contributions or one the clock stopped.
   */
  results: Array<string | unknown[]>;
  /** The descriptors of the shapes numbered from the `shapesKnown` the host passed on, when there are any. */
  shapes?: string[];
  /** With `stopped`: the index of the mapping that was running when the call was stopped (-1: none was). */
  mapping?: number;
}

/** `stopped` in an answer about a batch the guest never took: nothing of it ran. */
export const NOT_ADOPTED = -2;

/** The functions a compiled guest exposes to the host, through isolated-vm References only. */
export interface GuestApi {
  compileErrors: string;
  /**
   * Runs the batch for up to `sliceMs`. `input` (null to go on with the batch `batchId`) is JSON:
   * `{"now", "provider", "contributions", "items": [objects], "links"?: [each object's last payload]}`, links left
   * out when no mapping can read them; or, for objects that all have the same fields, `"count": n, "fields": [names],
   * "columns": [[each object's value of the first field], ...]` in place of `items`, where a column of 0 is the next
   * of the `plain` columns, which cross as they are (null: none do).
   */
  step(
    input: string | null,
    plain: unknown[][] | null,
    acknowledged: number,
    sliceMs: number,
    objectBudgetMs: number,
    maxOutput: number,
    batchId: number,
    shapesKnown: number,
  ): GuestStepAnswer;
  /** After a stopped call: the running item is skipped (and reported as `stopped`), or with `retry` run again. */
  salvage(acknowledged: number, batchId: number, retry: boolean, shapesKnown: number): GuestStepAnswer;
}

/**
 * Installs the helpers, freezes the clock and the intrinsics, compiles the mapping bodies and returns the batch
 * runner. `parameter` is `user` or `group`: the name the bodies see their object under.
 */
export function guestRuntime(
  expressions: string[],
  parameter: string,
  kernel: typeof mergeKernel,
  shaper: typeof shapeEncoder,
): GuestApi {
  'use strict';
  const g = globalThis as unknown as Record<string, unknown>;
  const RealDate = Date;
  const realNow = RealDate.now;
  const RealFunction = Function;
  const jsonParse = JSON.parse;
  const jsonStringify = JSON.stringify;
  const getPrototypeOf = Object.getPrototypeOf;
  const objectKeys = Object.keys;
  const isArray = Array.isArray;
  const freeze = Object.freeze;
  let frozenMs = 0;
  let frozenIso = '';

  class SkipObject extends Error {
    constructor(reason?: string) {
      super(reason === undefined ? 'object skipped' : String(reason));
    }
  }
  Object.defineProperty(SkipObject.prototype, 'name', { value: 'SkipObject' });
  const lower = (value: unknown): unknown => (typeof value === 'string' ? value.toLowerCase() : value);
  const upper = (value: unknown): unknown => (typeof value === 'string' ? value.toUpperCase() : value);
  const trim = (value: unknown): unknown => (typeof value === 'string' ? value.trim() : value);
  const coalesce = (...values: unknown[]): unknown => {
    for (const value of values) if (value !== null && value !== undefined && value !== '') return value;
    return null;
  };

  const FrozenDate = function Date(this: unknown, ...args: unknown[]): unknown {
    if (new.target === undefined) return new RealDate(frozenMs).toString();
    return Reflect.construct(RealDate, args.length === 0 ? [frozenMs] : args, new.target);
  } as unknown as DateConstructor;
  Object.defineProperties(FrozenDate, {
    now: { value: () => frozenMs },
    parse: { value: (text: string) => RealDate.parse(text) },
    UTC: { value: (...parts: Parameters<DateConstructor['UTC']>) => RealDate.UTC(...parts) },
    prototype: { value: RealDate.prototype },
  });
  Object.defineProperty(RealDate.prototype, 'constructor', { value: FrozenDate });
  const dtfPrototype = Intl.DateTimeFormat.prototype;
  // Both are called with .call(this), so taking them off the prototype is safe.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const formatGetter = Object.getOwnPropertyDescriptor(dtfPrototype, 'format')?.get;
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const formatToParts = dtfPrototype.formatToParts;
  if (formatGetter) {
    Object.defineProperty(dtfPrototype, 'format', {
      get(this: Intl.DateTimeFormat) {
        const format = formatGetter.call(this) as (date?: number | Date) => string;
        return (date?: number | Date) => format(date === undefined ? frozenMs : date);
      },
    });
  }
  dtfPrototype.formatToParts = function (this: Intl.DateTimeFormat, date?: number | Date) {
    return formatToParts.call(this, date === undefined ? frozenMs : date);
  };

  const blocked = function Function(): never {
    throw new EvalError('mappings cannot create code from strings');
  };
  blocked.prototype = RealFunction.prototype;
  for (const sample of [function () {}, async function () {}, function* () {}, async function* () {}]) {
    Object.defineProperty(getPrototypeOf(sample), 'constructor', { value: blocked });
  }
  const noop = (): void => {};
  const globals: Record<string, unknown> = {
    Date: FrozenDate,
    Function: blocked,
    eval: blocked,
    console: { log: noop, info: noop, warn: noop, error: noop, debug: noop },
    SkipObject,
    lower,
    upper,
    trim,
    coalesce,
  };
  const remove = (holder: Record<string, unknown>, name: string): void => {
    try {
      delete holder[name];
    } catch {
      // A non-configurable property stays; it is frozen below like everything else.
    }
  };
  for (const name of ['SharedArrayBuffer', 'Atomics', 'WebAssembly', 'WeakRef', 'FinalizationRegistry'])
    remove(g, name);
  for (const name of objectKeys(globals)) {
    Object.defineProperty(g, name, { value: globals[name], writable: false, enumerable: false, configurable: false });
  }
  const regExpStatics = ['$1', '$2', '$3', '$4', '$5', '$6', '$7', '$8', '$9', 'input', '$_', 'lastMatch', '$&'];
  for (const name of [...regExpStatics, 'lastParen', '$+', 'leftContext', '$`', 'rightContext', "$'"]) {
    remove(RegExp as unknown as Record<string, unknown>, name);
  }

  const mappings: Array<(...args: unknown[]) => unknown> = [];
  const compileErrors: Array<{ index: number; message: string }> = [];
  expressions.forEach((body, index) => {
    try {
      mappings.push(
        new RealFunction(
          parameter,
          'provider',
          'link',
          'now',
          `"use strict";${body}\n//# sourceURL=mapping-${index}`,
        ) as (...args: unknown[]) => unknown,
      );
    } catch (error) {
      mappings.push(noop);
      compileErrors.push({
        index,
        message: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      });
    }
  });

  const seen = new Set<unknown>();
  const pending: unknown[] = [g, ...mappings];
  while (pending.length > 0) {
    const value = pending.pop();
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value)) continue;
    seen.add(value);
    try {
      freeze(value);
    } catch {
      // A few exotic intrinsics refuse to freeze; they hold no state a mapping can write.
    }
    pending.push(getPrototypeOf(value));
    for (const key of Reflect.ownKeys(value)) {
      const descriptor = Reflect.getOwnPropertyDescriptor(value, key);
      if (!descriptor) continue;
      if ('value' in descriptor) pending.push(descriptor.value);
      else pending.push(descriptor.get, descriptor.set);
    }
  }
  seen.clear();

  class Fault extends Error {
    readonly path: string;
    constructor(path: string, message: string) {
      super(message);
      this.path = path;
    }
  }
  let budget = 0;
  let maxOutput = 0;
  const { copyData, mergeInto, takeNulls } = kernel(
    (path, message) => {
      throw new Fault(path, budget < 0 ? `the output is larger than the limit of ${maxOutput} bytes` : message);
    },
    (amount) => (budget -= amount) >= 0,
  );
  // What this set's isolate numbers at most: 256 shapes of descriptors up to 4 KiB (a default user's is 119-210
  // characters; the default user mappings make at most 8 shapes), and 16,384 trie nodes.
  const shapes = shaper(256, 16384, 4096);
  // How many shape descriptors the host holds: an answer carries the ones after them.
  let shapesKnown = 0;
  const normalise = (value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    if (isArray(value)) {
      for (const item of value) normalise(item);
      return;
    }
    const record = value as Record<string, unknown>;
    for (const key of objectKeys(record)) {
      if (record[key] === null) delete record[key];
      else normalise(record[key]);
    }
  };
  const dedupeSchemas = (record: Record<string, unknown>): void => {
    const schemas = record['schemas'];
    if (isArray(schemas) && schemas.length > 1 && new Set(schemas).size !== schemas.length) {
      record['schemas'] = [...new Set(schemas)];
    }
  };

  // Only objects are passed on: a call per primitive value (most of an object's fields) cost the guest more than
  // the freezing itself.
  const freezeData = (value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    freeze(value);
    if (isArray(value)) {
      for (const item of value) if (typeof item === 'object' && item !== null) freezeData(item);
    } else {
      for (const key in value) {
        const item = (value as Record<string, unknown>)[key];
        if (typeof item === 'object' && item !== null) freezeData(item);
      }
    }
  };

  const describeThrown = (thrown: unknown, index: number): string => {
    try {
      if (thrown instanceof Error) {
        const stack = typeof thrown.stack === 'string' ? thrown.stack : '';
        const at = new RegExp(`mapping-${index}:(\\d+):\\d+`).exec(stack);
        const line = at ? ` (line ${Number(at[1]) - 2})` : '';
        return `${String(thrown.name)}: ${String(thrown.message).slice(0, 1000)}${line}`;
      }
      if (typeof thrown === 'string') return `threw a string: ${thrown.slice(0, 1000)}`;
      if (typeof thrown === 'object' && thrown !== null) {
        return `threw a non-Error value: ${String(jsonStringify(thrown)).slice(0, 1000)}`;
      }
      return `threw a non-Error value: ${typeof thrown === 'symbol' ? thrown.toString() : String(thrown)}`;
    } catch {
      return 'threw a value that cannot be described';
    }
  };

  const isSkip = (thrown: unknown): boolean => {
    try {
      return thrown === SkipObject || thrown instanceof SkipObject;
    } catch {
      return false;
    }
  };

  // A batch sent as columns becomes its objects through one object literal per list of fields, compiled once: every
  // object gets the shape V8 gives that literal, and nothing is looked up by name per value.
  const builders = new Map<string, (columns: unknown[][], index: number) => unknown>();
  const fromColumns = (count: number, names: string[], columns: unknown[][]): unknown[] => {
    const key = jsonStringify(names);
    let build = builders.get(key);
    if (build === undefined) {
      if (builders.size >= 16) builders.clear();
      // Each name a string literal; `__proto__` computed, so it is a field like any other and never a prototype.
      const entries = names.map((name, k) => {
        const literal = jsonStringify(name);
        return `${name === '__proto__' ? `[${literal}]` : literal}: c[${k}][i]`;
      });
      build = new RealFunction('c', 'i', `"use strict"; return { ${entries.join(', ')} };`) as (
        columns: unknown[][],
        index: number,
      ) => unknown;
      builders.set(key, build);
    }
    const items: unknown[] = [];
    for (let index = 0; index < count; index++) items.push(build(columns, index));
    return items;
  };

  interface Batch {
    /** The host's id for the batch: every call names it, so an answer never mixes two batches. */
    id: number;
    /** The objects to map; an item is dropped (set to null) once it has run, so the batch holds no finished input. */
    items: unknown[];
    /** Each object's last payload, or null when the host sent none (no mapping can read them). */
    links: unknown[] | null;
    provider: unknown;
    contributions: boolean;
    next: number;
    current: number;
    /** Each result as its shape's entry or as JSON, made as soon as the result is, so no result object outlives its item. */
    results: Array<string | unknown[]>;
    base: number;
  }
  let batch: Batch | null = null;
  // The mapping whose code, or whose result's handling, runs now (-1 between objects): a call stopped meanwhile names it.
  let running = -1;

  const withParts = <T extends object>(result: T, contributions: unknown[] | null): T =>
    contributions === null ? result : { ...result, c: contributions };

  const evaluateItem = (
    object: unknown,
    link: unknown,
    provider: unknown,
    withContributions: boolean,
  ): GuestItemResult => {
    freezeData(object);
    freezeData(link);
    budget = withContributions ? 2 * maxOutput : maxOutput;
    takeNulls();
    const contributions: unknown[] | null = withContributions ? [] : null;
    let merged: unknown = undefined;
    for (let index = 0; index < mappings.length; index++) {
      const mapping = mappings[index] as (...args: unknown[]) => unknown;
      let value: unknown;
      try {
        running = index;
        value = mapping(object, provider, link, frozenIso);
      } catch (thrown) {
        if (isSkip(thrown)) {
          let why: string | undefined;
          try {
            why =
              thrown instanceof SkipObject && thrown.message !== 'object skipped' ? String(thrown.message) : undefined;
          } catch {
            why = undefined;
          }
          return withParts(why === undefined ? { k: index } : { k: index, why: why.slice(0, 1000) }, contributions);
        }
        return withParts({ e: describeThrown(thrown, index), m: index }, contributions);
      }
      try {
        if (value === undefined || value === null) {
          contributions?.push(null);
          continue;
        }
        if (typeof value !== 'object' || isArray(value)) {
          const kind = isArray(value) ? 'an array' : `a ${typeof value}`;
          throw new Fault('', `the mapping returned ${kind}; return an object, null or undefined`);
        }
        if (contributions !== null) {
          const copy = copyData(value, '', 0);
          contributions.push(copy);
          merged = mergeInto(merged, copy, '', 0);
        } else {
          merged = mergeInto(merged, value, '', 0);
        }
      } catch (fault) {
        if (fault instanceof Fault) {
          return withParts(
            fault.path === '' ? { e: fault.message, m: index } : { e: fault.message, m: index, p: fault.path },
            contributions,
          );
        }
        return withParts(
          { e: `its result could not be read: ${describeThrown(fault, index)}`, m: index },
          contributions,
        );
      }
    }
    if (merged === undefined) return withParts({ v: null }, contributions);
    // Only a copied null can leave a null in the merged value (a contribution's copy counts too, to be safe).
    if (takeNulls()) normalise(merged);
    dedupeSchemas(merged as Record<string, unknown>);
    return withParts({ v: merged }, contributions);
  };

  const acknowledge = (acknowledged: number): void => {
    if (batch === null || acknowledged <= batch.base) return;
    batch.results.splice(0, acknowledged - batch.base);
    batch.base = acknowledged;
  };
  const report = (stopped = -1): GuestStepAnswer => {
    const answer: GuestStepAnswer = { stopped, results: batch === null ? [] : batch.results.slice() };
    if (stopped >= 0) answer.mapping = running;
    const unknown = shapes.shapesFrom(shapesKnown);
    if (unknown.length > 0) answer.shapes = unknown;
    return answer;
  };
  // NOT_ADOPTED, written out: this function may use nothing from outside it.
  const notAdopted = (): GuestStepAnswer => ({ stopped: -2, results: [] });

  return freeze({
    compileErrors: jsonStringify(compileErrors),
    step(
      input: string | null,
      plain: unknown[][] | null,
      acknowledged: number,
      sliceMs: number,
      objectBudgetMs: number,
      outputLimit: number,
      batchId: number,
      known: number,
    ): GuestStepAnswer {
      shapesKnown = known;
      if (input !== null) {
        // Drop the last batch first: a call stopped before the new one is in place must not answer with the old one.
        batch = null;
        const parsed = jsonParse(input) as {
          now: string;
          provider: unknown;
          contributions: boolean;
          items?: unknown[];
          count?: number;
          fields?: string[];
          columns?: Array<unknown[] | 0>;
          links?: unknown[];
        };
        const columns = parsed.columns ?? [];
        let next = 0;
        for (let k = 0; k < columns.length && plain !== null; k++)
          if (columns[k] === 0) columns[k] = plain[next++] ?? [];
        frozenIso = parsed.now;
        frozenMs = RealDate.parse(parsed.now);
        freezeData(parsed.provider);
        batch = {
          id: batchId,
          items: parsed.items ?? fromColumns(parsed.count ?? 0, parsed.fields ?? [], columns as unknown[][]),
          links: parsed.links ?? null,
          provider: parsed.provider,
          contributions: parsed.contributions,
          next: 0,
          current: -1,
          results: [],
          base: 0,
        };
      }
      if (batch?.id !== batchId) return notAdopted();
      acknowledge(acknowledged);
      maxOutput = outputLimit;
      const started = realNow();
      let last = started;
      let produced = 0;
      while (batch.next < batch.items.length) {
        if (produced > 0 && (last - started >= sliceMs || produced >= 4 * 1024 * 1024)) break;
        const index = batch.next;
        batch.current = index;
        const link = batch.links === null ? null : (batch.links[index] ?? null);
        let result = evaluateItem(batch.items[index] ?? null, link, batch.provider, batch.contributions);
        running = -1;
        const finished = realNow();
        if (finished - last > objectBudgetMs) {
          // By the clock only: the host, which reads the isolate's CPU time, keeps `s` when the CPU was not used.
          result = {
            e: `the mappings ran for ${finished - last} ms, over the per-object limit of ${objectBudgetMs} ms`,
            m: -1,
            s: result,
          };
        }
        last = finished;
        // `!` is MARKED_RESULT, written out: this function may use nothing from outside it.
        if ('v' in result && result.c === undefined) {
          const merged = result.v;
          const entry = typeof merged === 'object' && merged !== null ? shapes.encode(merged) : null;
          batch.results.push(entry ?? jsonStringify(merged));
        } else {
          batch.results.push(`!${jsonStringify(result)}`);
        }
        batch.next = index + 1;
        batch.current = -1;
        batch.items[index] = null;
        if (batch.links !== null) batch.links[index] = null;
        produced += (batch.contributions ? 2 * maxOutput : maxOutput) - budget + 16;
      }
      return report();
    },
    salvage(acknowledged: number, batchId: number, retry: boolean, known: number): GuestStepAnswer {
      shapesKnown = known;
      if (batch?.id !== batchId) return notAdopted();
      acknowledge(acknowledged);
      if (batch === null || batch.current < 0) return report();
      if (retry) {
        // Its input is frozen and the mappings can keep no state, so running it again is running it afresh.
        batch.next = batch.current;
        batch.current = -1;
        return report();
      }
      const stopped = batch.current;
      batch.items[stopped] = null;
      if (batch.links !== null) batch.links[stopped] = null;
      batch.next = stopped + 1;
      batch.current = -1;
      return report(stopped);
    },
  });
}
