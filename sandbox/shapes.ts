/**
 * The shape transfer format for merged results: an object leaves the isolate as the number of its shape and its leaf
 * values, and the host rebuilds it from the shape, which crosses once per compiled mapping set. Results of one
 * mapping set mostly share a few shapes, so neither side writes or parses a key, a brace or a quote per object.
 * `shapeEncoder` runs inside the isolate (injected as source text, like mergeKernel); `compileShape` runs on the
 * host and trusts nothing it is sent. Measured on bench/mapping.ts against JSON per result (paired runs, load 5-6):
 * the host's main thread 3.1 -> 2.7 µs of CPU per user (no JSON.parse); the isolate's threads unchanged (its walk
 * and the copy of the leaves cost what JSON.stringify did).
 */
import { FORBIDDEN_KEYS, MAX_MERGE_DEPTH } from './merge.ts';

/**
 * A shape as it crosses (as JSON): 0 is a leaf (a string, a finite number, a boolean or null), an array lists the
 * shapes of its items, and `{ "o": [[key, shape], ...] }` is an object with those keys, in their order.
 */
export type ShapeDescriptor = 0 | ShapeDescriptor[] | { o: Array<[string, ShapeDescriptor]> };

/** The isolate's side: numbers the shapes it meets and splits objects into a shape number and leaves. */
export interface ShapeEncoder {
  /** `[shape number, ...leaf values]`, or null when the object goes as JSON instead (not JSON data, or too many shapes). */
  encode(value: object): unknown[] | null;
  /** The descriptors (JSON) of the shapes numbered from `from` on, in order. */
  shapesFrom(from: number): string[];
}

/** Rebuilds an object from `[shape number, ...leaf values]`; undefined when the entry does not fit the shape. */
export type ShapeBuilder = (entry: unknown[]) => unknown;

/**
 * Builds the encoder. Self-contained on purpose (the sandbox injects its source text): it may use only its
 * parameters and standard globals. At most `maxShapes` shapes are numbered, each with a descriptor of at most
 * `maxDescriptor` characters, and `maxNodes` trie nodes made, so what the isolate keeps, and the host's builders,
 * stay small whatever the mappings return; past either, objects of new shapes go as JSON.
 */
export function shapeEncoder(maxShapes: number, maxNodes: number, maxDescriptor: number): ShapeEncoder {
  const isArray = Array.isArray;
  const isFinite = Number.isFinite;
  const stringify = JSON.stringify;
  // A trie over the walk of an object (leaf, object start, key, array start, end): the node a walk ends at is the
  // shape. Known shapes cost one Map lookup per key and no text at all.
  interface Node {
    id: number;
    leaf: Node | null;
    object: Node | null;
    array: Node | null;
    end: Node | null;
    /** The first key met after this node, and where it leads: most objects of a set list their keys alike. */
    key: string | null;
    next: Node | null;
    /** Every other key met after this node. */
    keys: Map<string, Node> | null;
  }
  let nodes = 0;
  const fresh = (): Node | null => {
    if (nodes >= maxNodes) return null;
    nodes += 1;
    return { id: -1, leaf: null, object: null, array: null, end: null, key: null, next: null, keys: null };
  };
  const root = fresh() as Node;
  const shapes: string[] = [];

  const leafOf = (at: Node): Node | null => at.leaf ?? (at.leaf = fresh());
  const endOf = (at: Node): Node | null => at.end ?? (at.end = fresh());
  // The node after `key` at `at`, made when new (null past the node limit): the first key met there is kept in
  // `key` and `next`, which the walk compares before any Map lookup; this halved the walk's time (bench driver).
  const keyed = (at: Node, key: string): Node | null => {
    if (at.key === null) {
      at.next = fresh();
      if (at.next !== null) at.key = key;
      return at.next;
    }
    const keys: Map<string, Node> = at.keys ?? (at.keys = new Map<string, Node>());
    let next = keys.get(key) ?? null;
    if (next === null) {
      next = fresh();
      if (next !== null) keys.set(key, next);
    }
    return next;
  };
  const walk = (value: unknown, at: Node | null, leaves: unknown[]): Node | null => {
    if (at === null) return null;
    switch (typeof value) {
      case 'string':
      case 'boolean':
        leaves.push(value);
        return leafOf(at);
      case 'number':
        if (!isFinite(value)) return null;
        // JSON writes -0 as 0: the leaf must rebuild what the JSON would have.
        leaves.push(value === 0 ? 0 : value);
        return leafOf(at);
      case 'object':
        break;
      default:
        return null;
    }
    if (value === null) {
      leaves.push(null);
      return leafOf(at);
    }
    if (isArray(value)) {
      let node = at.array ?? (at.array = fresh());
      for (let index = 0; index < value.length && node !== null; index++) node = walk(value[index], node, leaves);
      return node === null ? null : endOf(node);
    }
    let node = at.object ?? (at.object = fresh());
    // for-in lists what JSON.stringify writes, in its order: the value is a plain object the merge made.
    for (const key in value) {
      if (node === null) return null;
      node = walk((value as Record<string, unknown>)[key], node.key === key ? node.next : keyed(node, key), leaves);
    }
    return node === null ? null : endOf(node);
  };
  const describe = (value: unknown): ShapeDescriptor => {
    if (typeof value !== 'object' || value === null) return 0;
    if (isArray(value)) return value.map(describe);
    const entries: Array<[string, ShapeDescriptor]> = [];
    for (const key in value) entries.push([key, describe((value as Record<string, unknown>)[key])]);
    return { o: entries };
  };

  return {
    encode(value) {
      if (isArray(value)) return null;
      const entry: unknown[] = [0];
      const end = walk(value, root, entry);
      // -2: a shape whose descriptor was too long to number; its objects go as JSON without describing it again.
      if (end === null || end.id === -2) return null;
      if (end.id < 0) {
        if (shapes.length >= maxShapes) return null;
        const descriptor = stringify(describe(value));
        if (descriptor.length > maxDescriptor) {
          end.id = -2;
          return null;
        }
        end.id = shapes.length;
        shapes.push(descriptor);
      }
      entry[0] = end.id;
      return entry;
    },
    shapesFrom: (from) => shapes.slice(from),
  };
}

/**
 * The host's builder for a shape descriptor, or null when the descriptor is not one the encoder can have written
 * (not JSON, a forbidden or repeated key, nested deeper than a merge allows, not an object at the top).
 */
export function compileShape(descriptor: string): ShapeBuilder | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(descriptor);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  let leaves = 0;
  type Part = (entry: unknown[]) => unknown;
  const part = (shape: unknown, depth: number): Part | null => {
    if (depth > MAX_MERGE_DEPTH + 1) return null;
    if (shape === 0) {
      const at = ++leaves;
      return (entry) => entry[at];
    }
    if (Array.isArray(shape)) {
      const items: Part[] = [];
      for (const item of shape as unknown[]) {
        const built = part(item, depth + 1);
        if (built === null) return null;
        items.push(built);
      }
      // Made by map, not from an array literal: a literal's allocation site, its arrays outliving minor GCs while
      // their batch lasts, got pretenured, and each old array kept its young items alive until a full GC (bench
      // driver, 500,000 users: 207 MB promoted on the host instead of 38, 0.7 µs/user more of V8's GC threads).
      return (entry) => items.map((item) => item(entry));
    }
    const fields = (shape as { o?: unknown } | null)?.o;
    if (!Array.isArray(fields)) return null;
    const keys: string[] = [];
    const values: Part[] = [];
    const seen = new Set<string>();
    for (const field of fields as unknown[]) {
      const key: unknown = Array.isArray(field) ? field[0] : undefined;
      if (typeof key !== 'string' || FORBIDDEN_KEYS.has(key) || seen.has(key)) return null;
      const built = part((field as unknown[])[1], depth + 1);
      if (built === null) return null;
      seen.add(key);
      keys.push(key);
      values.push(built);
    }
    const count = keys.length;
    return (entry) => {
      const object: Record<string, unknown> = {};
      for (let index = 0; index < count; index++) object[keys[index] as string] = (values[index] as Part)(entry);
      return object;
    };
  };
  const build = part(parsed, 0);
  if (build === null) return null;
  const count = leaves;
  return (entry) => {
    if (entry.length !== count + 1) return undefined;
    for (let index = 1; index <= count; index++) {
      const value = entry[index];
      if (typeof value === 'number') {
        if (!Number.isFinite(value)) return undefined;
        if (value === 0) entry[index] = 0;
      } else if (typeof value !== 'string' && typeof value !== 'boolean' && value !== null) {
        return undefined;
      }
    }
    return build(entry);
  };
}
