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
  /** Whether a null was copied since the last call (which starts the count again): what made no null has none. */
  takeNulls: () => boolean;
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
  const maxDepth = 32;
  const objectPrototype = Object.prototype;
  const getPrototypeOf = Object.getPrototypeOf;
  const isArray = Array.isArray;
  const hasOwn = Object.hasOwn;
  let nulls = false;
  // A path is spelled out only when something fails: on the way down it is the parent's path and a key, so a merge
  // that succeeds builds no path text at all (it was an eighth of the sandbox's time per object).
  type Path = string | { up: Path; key: string | number };
  const text = (path: Path): string => {
    if (typeof path === 'string') return path;
    const up = text(path.up);
    return up === '' ? String(path.key) : `${up}.${String(path.key)}`;
  };
  const at = (parent: Path, key: string | number | null): Path => (key === null ? parent : { up: parent, key });
  const toTag = (value: unknown): string => objectPrototype.toString.call(value).slice(8, -1);
  const where = (path: string): string => (path === '' ? 'the result' : path);
  const refuse = (path: Path, message: (where: string, path: string) => string): never => {
    const spelled = text(path);
    return fail(spelled, message(where(spelled), spelled));
  };
  const charge = (amount: number, parent: Path, key: string | number | null): void => {
    if (!spend(amount)) refuse(at(parent, key), () => 'the output is too large');
  };
  const isPlain = (value: unknown): value is Record<string, unknown> => {
    if (typeof value !== 'object' || value === null || isArray(value)) return false;
    const proto: unknown = getPrototypeOf(value);
    return proto === objectPrototype || proto === null;
  };
  const checkKey = (key: string, parent: Path): void => {
    // Compared one by one, not looked up in a list (this runs for every key merged); the three are written here only.
    if (key === '__proto__' || key === 'constructor' || key === 'prototype')
      refuse(at(parent, key), (_, path) => `the key "${key}" is not allowed (at ${path})`);
  };

  const refuseThenable = (value: object, path: Path): void => {
    if (typeof (value as { then?: unknown }).then === 'function') {
      refuse(path, (place) => `${place} is a Promise or thenable; mappings must return their result synchronously`);
    }
  };

  const copyAt = (value: unknown, parent: Path, key: string | number | null, depth: number): unknown => {
    switch (typeof value) {
      case 'string':
        charge(value.length + 2, parent, key);
        return value;
      case 'boolean':
        charge(5, parent, key);
        return value;
      case 'number':
        if (value !== value || value === Infinity || value === -Infinity) {
          refuse(at(parent, key), (place) => `${place} is ${String(value)}, not a finite number`);
        }
        charge(8, parent, key);
        return value;
      case 'undefined':
        return refuse(at(parent, key), (place) => `${place} is undefined`);
      case 'bigint':
        return refuse(at(parent, key), (place) => `${place} is a BigInt; use a string or a number`);
      case 'symbol':
        return refuse(at(parent, key), (place) => `${place} is a Symbol, which cannot be sent`);
      case 'function':
        return refuse(at(parent, key), (place) => `${place} is a function, which cannot be sent`);
      default:
        break;
    }
    if (value === null) {
      charge(4, parent, key);
      nulls = true;
      return null;
    }
    const path = at(parent, key);
    if (depth >= maxDepth) refuse(path, (place) => `${place} is nested more than ${maxDepth} levels deep`);
    if (isArray(value)) {
      const length = value.length;
      charge(length + 2, parent, key);
      const copy: unknown[] = [];
      for (let index = 0; index < length; index++) copy.push(copyAt(value[index], path, index, depth + 1));
      return copy;
    }
    refuseThenable(value as object, path);
    if (!isPlain(value)) {
      const tag = toTag(value);
      const kind = tag === 'Object' ? 'an object with a custom prototype' : `a ${tag}`;
      const hint = tag === 'Date' ? ' (use .toISOString())' : '';
      refuse(path, (place) => `${place} is ${kind}${hint}; only plain objects, arrays and primitives can be sent`);
    }
    const source = value as Record<string, unknown>;
    const copy: Record<string, unknown> = {};
    charge(2, parent, key);
    // for-in sees exactly the own enumerable keys here: the prototype is Object.prototype (no enumerable keys) or null.
    for (const name in source) {
      checkKey(name, path);
      const item = source[name];
      if (item === undefined) continue;
      charge(name.length + 4, path, name);
      copy[name] = copyAt(item, path, name, depth + 1);
    }
    return copy;
  };

  const mergeAt = (owned: unknown, source: unknown, parent: Path, key: string | null, depth: number): unknown => {
    if (source === undefined) return owned;
    if (isPlain(owned) && isPlain(source)) {
      const path = at(parent, key);
      if (depth >= maxDepth) refuse(path, (place) => `${place} is nested more than ${maxDepth} levels deep`);
      refuseThenable(source, path);
      for (const name in source) {
        checkKey(name, path);
        const item = source[name];
        if (item === undefined) continue;
        charge(name.length + 4, path, name);
        owned[name] = mergeAt(hasOwn(owned, name) ? owned[name] : undefined, item, path, name, depth + 1);
      }
      return owned;
    }
    if (isArray(owned) && isArray(source)) {
      const path = at(parent, key);
      const offset = owned.length;
      const length = source.length;
      charge(length, parent, key);
      for (let index = 0; index < length; index++) owned.push(copyAt(source[index], path, offset + index, depth + 1));
      return owned;
    }
    return copyAt(source, parent, key, depth);
  };

  return {
    copyData: (value, path, depth) => copyAt(value, path, null, depth),
    mergeInto: (owned, source, path, depth) => mergeAt(owned, source, path, null, depth),
    takeNulls: () => {
      const seen = nulls;
      nulls = false;
      return seen;
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
