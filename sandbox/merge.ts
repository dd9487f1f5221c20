/**
 * The deep-merge that combines mapping results: objects merge, arrays concatenate, the last scalar wins, and
 * keys that could reach a prototype are refused. The sandbox runs the very same `mergeKernel` source inside each
 * isolate, so a merge there and a merge here cannot disagree.
 */
import { ScimflowError } from '../errors/index.ts';

/** Keys a mapping result may never carry, at any depth. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Deepest nesting a mapping result may have. */
export const MAX_MERGE_DEPTH = 32;

/** A merge refused its input; `path` is the dotted path of the offending key or value (e.g. `name.__proto__`). */
export class MergeError extends ScimflowError {
  /** Dotted path of the offending key or value. */
  readonly path: string;

  constructor(path: string, message: string) {
    super('ERR_MAPPING', message, { details: { path } });
    this.name = 'MergeError';
    this.path = path;
  }
}

/** The merge primitives `mergeKernel` returns; `path` is the dotted path of `value` / `source` ('' at the top). */
export interface MergeKernel {
  /** A checked deep copy of JSON-like data; `undefined` object properties are dropped. */
  copyData: (value: unknown, path: string, depth: number) => unknown;
  /** Merges `source` into `owned` (a value this merge made, mutated in place) and returns the result. */
  mergeInto: (owned: unknown, source: unknown, path: string, depth: number) => unknown;
}

/**
 * Builds the merge primitives. Self-contained on purpose (the sandbox injects its source text): it may use only
 * its parameters and standard globals. `fail` must throw. `spend` is charged for every value copied and returns
 * false once the caller's size budget is gone (the merge then fails at that path), so the output size is bounded.
 */
export function mergeKernel(
  fail: (path: string, message: string) => never,
  spend: (amount: number) => boolean,
): MergeKernel {
  const forbidden = ['__proto__', 'constructor', 'prototype'];
  const maxDepth = 32;
  const objectPrototype = Object.prototype;
  const getPrototypeOf = Object.getPrototypeOf;
  const isArray = Array.isArray;
  const hasOwn = Object.hasOwn;
  const toTag = (value: unknown): string => objectPrototype.toString.call(value).slice(8, -1);
  // The keys from the top-level value down to the one being copied; its dotted path is built only for a failure.
  const trail: Array<string | number> = [];
  let prefix = '';
  const here = (): string => {
    let path = prefix;
    for (const key of trail) path = path === '' ? String(key) : `${path}.${String(key)}`;
    return path;
  };
  const where = (path: string): string => (path === '' ? 'the result' : path);
  const failHere = (describe: (where: string) => string): never => {
    const path = here();
    return fail(path, describe(where(path)));
  };
  const charge = (amount: number): void => {
    if (!spend(amount)) fail(here(), 'the output is too large');
  };
  const isPlain = (value: unknown): value is Record<string, unknown> => {
    if (typeof value !== 'object' || value === null || isArray(value)) return false;
    const proto: unknown = getPrototypeOf(value);
    return proto === objectPrototype || proto === null;
  };
  const checkKey = (key: string): void => {
    if (!forbidden.includes(key)) return;
    trail.push(key);
    const path = here();
    fail(path, `the key "${key}" is not allowed (at ${path})`);
  };
  const checkDepth = (depth: number): void => {
    if (depth >= maxDepth) failHere((at) => `${at} is nested more than ${maxDepth} levels deep`);
  };
  const refuseThenable = (value: object): void => {
    if (typeof (value as { then?: unknown }).then === 'function') {
      failHere((at) => `${at} is a Promise or thenable; mappings must return their result synchronously`);
    }
  };

  /** A checked copy of `value`, which sits at the end of `trail`. */
  const copyAt = (value: unknown, depth: number): unknown => {
    switch (typeof value) {
      case 'string':
        charge(value.length + 2);
        return value;
      case 'boolean':
        charge(5);
        return value;
      case 'number':
        if (value !== value || value === Infinity || value === -Infinity) {
          failHere((at) => `${at} is ${String(value)}, not a finite number`);
        }
        charge(8);
        return value;
      case 'undefined':
        return failHere((at) => `${at} is undefined`);
      case 'bigint':
        return failHere((at) => `${at} is a BigInt; use a string or a number`);
      case 'symbol':
        return failHere((at) => `${at} is a Symbol, which cannot be sent`);
      case 'function':
        return failHere((at) => `${at} is a function, which cannot be sent`);
      default:
        break;
    }
    if (value === null) {
      charge(4);
      return null;
    }
    checkDepth(depth);
    if (isArray(value)) {
      const length = value.length;
      charge(length + 2);
      const copy: unknown[] = [];
      for (let index = 0; index < length; index++) {
        trail.push(index);
        copy.push(copyAt(value[index], depth + 1));
        trail.pop();
      }
      return copy;
    }
    refuseThenable(value as object);
    if (!isPlain(value)) {
      const tag = toTag(value);
      const kind = tag === 'Object' ? 'an object with a custom prototype' : `a ${tag}`;
      const hint = tag === 'Date' ? ' (use .toISOString())' : '';
      failHere((at) => `${at} is ${kind}${hint}; only plain objects, arrays and primitives can be sent`);
    }
    const source = value as Record<string, unknown>;
    const copy: Record<string, unknown> = {};
    charge(2);
    // for-in sees exactly the own enumerable keys here: the prototype is Object.prototype (no enumerable keys) or null.
    for (const name in source) {
      checkKey(name);
      const item = source[name];
      if (item === undefined) continue;
      trail.push(name);
      charge(name.length + 4);
      copy[name] = copyAt(item, depth + 1);
      trail.pop();
    }
    return copy;
  };

  /** Merges `source` into `owned`; both sit at the end of `trail`. */
  const mergeAt = (owned: unknown, source: unknown, depth: number): unknown => {
    if (source === undefined) return owned;
    if (isPlain(owned) && isPlain(source)) {
      checkDepth(depth);
      refuseThenable(source);
      for (const name in source) {
        checkKey(name);
        const item = source[name];
        if (item === undefined) continue;
        trail.push(name);
        charge(name.length + 4);
        owned[name] = mergeAt(hasOwn(owned, name) ? owned[name] : undefined, item, depth + 1);
        trail.pop();
      }
      return owned;
    }
    if (isArray(owned) && isArray(source)) {
      const offset = owned.length;
      const length = source.length;
      charge(length);
      for (let index = 0; index < length; index++) {
        trail.push(offset + index);
        owned.push(copyAt(source[index], depth + 1));
        trail.pop();
      }
      return owned;
    }
    return copyAt(source, depth);
  };

  // A failure leaves `trail` where it was thrown; every entry starts it afresh.
  const enter = (path: string): void => {
    prefix = path;
    if (trail.length !== 0) trail.length = 0;
  };
  return {
    copyData: (value, path, depth) => {
      enter(path);
      return copyAt(value, depth);
    },
    mergeInto: (owned, source, path, depth) => {
      enter(path);
      return mergeAt(owned, source, depth);
    },
  };
}

const hostKernel = mergeKernel(
  (path, message) => {
    throw new MergeError(path, message);
  },
  () => true,
);

/**
 * Merges `source` over `target` into a new value; neither input is modified and the result shares nothing with
 * them. Plain objects merge key by key, arrays concatenate (target first), anything else is replaced by `source`;
 * an `undefined` source (or property) leaves the target as it is. Only JSON-like data is accepted; anything else,
 * a forbidden key or nesting deeper than MAX_MERGE_DEPTH throws a MergeError naming the path.
 * @example deepMerge({ a: 1, tags: ['x'] }, { b: 2, tags: ['y'] }) // { a: 1, b: 2, tags: ['x', 'y'] }
 */
export function deepMerge(target: unknown, source: unknown): unknown {
  const owned = target === undefined ? undefined : hostKernel.copyData(target, '', 0);
  return hostKernel.mergeInto(owned, source, '', 0);
}

/** Merges every value in order (`undefined` entries are skipped); `undefined` when there is nothing to merge. */
export function mergeAll(values: readonly unknown[]): unknown {
  let merged: unknown = undefined;
  for (const value of values) merged = hostKernel.mergeInto(merged, value, '', 0);
  return merged;
}

/** True for an object whose prototype is Object.prototype or null (what JSON.parse and object literals make). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
