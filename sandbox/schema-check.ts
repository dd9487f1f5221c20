/**
 * A fast accept-path for zod schemas: `compileSchemaCheck` reads a schema's definition once and builds plain
 * closures that answer "zod accepts this value, and its output would be equal to the value itself" for the common
 * case, without copying anything. Whatever the closures cannot vouch for (a failure, an `undefined`, a string whose
 * length needs its code points counted, a kind of schema they do not know) gets `false`, and the caller asks zod,
 * so zod stays the one definition of the wire types and the one source of error messages. schema-check.test.ts
 * proves the agreement over the fixtures and over edited payloads.
 */
import * as z from 'zod';

/** True only when zod accepts `value` and would return a value deep-equal to it. Never throws for JSON-like input. */
export type SchemaCheck = (value: unknown) => boolean;

/** The parts of a zod 4 definition the compiler reads. */
interface Def {
  type: string;
  coerce?: boolean;
  checks?: ReadonlyArray<{ _zod: { def: CheckDef } }>;
  shape?: Record<string, Schema>;
  catchall?: Schema;
  innerType?: Schema;
  element?: Schema;
}
interface CheckDef {
  check: string;
  minimum?: number;
  maximum?: number;
  when?: unknown;
}
interface Schema {
  _zod: { def: Def };
}

// zod gives every length check this `when` unless the schema sets its own; a custom one is not supported.
const DEFAULT_LENGTH_WHEN = (z.string().min(1) as unknown as Schema)._zod.def.checks?.[0]?._zod.def.when;
const objectPrototype = Object.prototype;

/**
 * Compiles the accept-path of `schema`, or returns null when the schema uses anything beyond plain objects
 * (loose, with an unknown catchall), optional, string, boolean, array, unknown and length checks.
 */
export function compileSchemaCheck(schema: z.ZodType): SchemaCheck | null {
  return compile(schema);
}

function compile(schema: Schema): SchemaCheck | null {
  const def = schema._zod.def;
  const lengths = lengthChecks(def);
  if (lengths === null || def.coerce === true) return null;
  switch (def.type) {
    case 'string':
      return stringCheck(lengths);
    case 'boolean':
      return lengths.checked ? null : (value) => typeof value === 'boolean';
    case 'unknown':
      return lengths.checked ? null : (value) => value !== undefined;
    case 'optional':
      // An undefined value is left to zod (it keeps a present key, drops an absent one); absence is the object's.
      return def.innerType && !lengths.checked ? compile(def.innerType) : null;
    case 'array': {
      const element = def.element ? compile(def.element) : null;
      if (element === null) return null;
      return (value) => {
        if (!Array.isArray(value) || !fitsLength(value.length, lengths)) return false;
        for (let index = 0; index < value.length; index++) if (!element(value[index])) return false;
        return true;
      };
    }
    case 'object':
      return lengths.checked ? null : compileObject(def);
    default:
      return null;
  }
}

function compileObject(def: Def): SchemaCheck | null {
  const catchall = def.catchall?._zod.def;
  if (!def.shape || catchall?.type !== 'unknown' || (catchall.checks?.length ?? 0) > 0) return null;
  const keys = Object.keys(def.shape);
  if (Object.getOwnPropertySymbols(def.shape).length > 0 || keys.includes('__proto__')) return null;
  const fields = new Map<string, { check: SchemaCheck; required: boolean }>();
  let requiredCount = 0;
  for (const key of keys) {
    const field = def.shape[key] as Schema;
    const check = compile(field);
    if (check === null) return null;
    const required = field._zod.def.type !== 'optional';
    if (required) requiredCount++;
    fields.set(key, { check, required });
  }
  return (value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== objectPrototype && proto !== null) return false;
    const input = value as Record<string, unknown>;
    // One pass over the value's keys (a plain object inherits none): shape keys are checked, the rest pass through
    // (the catchall is unknown), and every required key must have been seen.
    let required = 0;
    for (const key in input) {
      const item = input[key];
      if (item === undefined || key === '__proto__') return false;
      const field = fields.get(key);
      if (field === undefined) continue;
      if (!field.check(item)) return false;
      if (field.required) required++;
    }
    return required === requiredCount;
  };
}

/** A compiled check specialised to one shape: reads an entry `[shape number, ...leaf values]` (shapes.ts). */
export type ShapeCheck = (entry: readonly unknown[]) => boolean;

/**
 * `schema`'s compiled check specialised to the objects of one shape (a parsed shapes.ts descriptor): true for an
 * entry exactly when the compiled check is for the object built from it, testing only the leaves a check reads
 * (which keys there are, how long each array is, which are required, are the shape's, known once). Null when no
 * object of the shape passes whatever its leaves, or the schema has what the compiler does not know: the caller then
 * checks the built object as before.
 */
export function compileShapeCheck(schema: z.ZodType, shape: unknown): ShapeCheck | null {
  // Only where the compiled check exists: planning a shape reads only the fields it has.
  if (compile(schema) === null) return null;
  const into: Plan = { leaves: 0, tests: [] };
  if (!plan(schema, shape, into)) return null;
  const { tests } = into;
  return (entry) => {
    for (const { at, test } of tests) if (!test(entry[at])) return false;
    return true;
  };
}

/** What a shape's check tests: the leaf at `at` of an entry, with `test`; `leaves` numbers them as they are met. */
interface Plan {
  leaves: number;
  tests: Array<{ at: number; test: SchemaCheck }>;
}

/**
 * Adds to `tests` what objects of `shape` need for `schema`, numbering leaves in the order shapes.ts's builders do
 * (depth first, keys and items in order); false when none can pass (or the schema is beyond the compiler).
 */
function plan(schema: Schema, shape: unknown, into: Plan): boolean {
  const def = schema._zod.def;
  const lengths = lengthChecks(def);
  if (lengths === null || def.coerce === true) return false;
  switch (def.type) {
    case 'string':
      if (shape !== 0) return false;
      into.tests.push({ at: ++into.leaves, test: stringCheck(lengths) });
      return true;
    case 'boolean':
      if (lengths.checked || shape !== 0) return false;
      into.tests.push({ at: ++into.leaves, test: (value) => typeof value === 'boolean' });
      return true;
    case 'unknown':
      // A leaf is never undefined (the builder takes only JSON values), so anything passes.
      return !lengths.checked && countLeaves(shape, into);
    case 'optional':
      return def.innerType !== undefined && !lengths.checked && plan(def.innerType, shape, into);
    case 'array': {
      if (!def.element || !Array.isArray(shape) || !fitsLength(shape.length, lengths)) return false;
      for (const item of shape as unknown[]) if (!plan(def.element, item, into)) return false;
      return true;
    }
    case 'object':
      return !lengths.checked && planObject(def, shape, into);
    default:
      return false;
  }
}

function planObject(def: Def, shape: unknown, into: Plan): boolean {
  const catchall = def.catchall?._zod.def;
  if (!def.shape || catchall?.type !== 'unknown' || (catchall.checks?.length ?? 0) > 0) return false;
  const fields = (shape as { o?: unknown } | null)?.o;
  if (typeof shape !== 'object' || Array.isArray(shape) || !Array.isArray(fields)) return false;
  let required = 0;
  for (const field of fields as unknown[]) {
    const [key, child] = Array.isArray(field) ? (field as unknown[]) : [];
    if (typeof key !== 'string' || key === '__proto__') return false;
    const known = Object.hasOwn(def.shape, key) ? def.shape[key] : undefined;
    if (known === undefined) {
      if (!countLeaves(child, into)) return false;
      continue;
    }
    if (!plan(known, child, into)) return false;
    if (known._zod.def.type !== 'optional') required++;
  }
  const requiredCount = Object.values(def.shape).filter((field) => field._zod.def.type !== 'optional').length;
  return required === requiredCount;
}

/** Numbers the leaves of `shape` as plan does, testing none; false for what is not a descriptor. */
function countLeaves(shape: unknown, into: Plan): boolean {
  if (shape === 0) {
    into.leaves++;
    return true;
  }
  const items = Array.isArray(shape) ? (shape as unknown[]) : (shape as { o?: unknown } | null)?.o;
  if (!Array.isArray(items)) return false;
  for (const item of items as unknown[]) {
    const child = Array.isArray(shape) ? item : Array.isArray(item) ? (item as unknown[])[1] : undefined;
    if (!countLeaves(child, into)) return false;
  }
  return true;
}

interface Lengths {
  checked: boolean;
  min: number;
  max: number;
}

/** The schema's min/max length checks, or null when it has a check of any other kind. */
function lengthChecks(def: Def): Lengths | null {
  const lengths: Lengths = { checked: false, min: 0, max: Infinity };
  for (const check of def.checks ?? []) {
    const { check: kind, minimum, maximum, when } = check._zod.def;
    if (when !== undefined && when !== DEFAULT_LENGTH_WHEN) return null;
    if (kind === 'min_length' && typeof minimum === 'number') lengths.min = Math.max(lengths.min, minimum);
    else if (kind === 'max_length' && typeof maximum === 'number') lengths.max = Math.min(lengths.max, maximum);
    else return null;
    lengths.checked = true;
  }
  return lengths;
}

/** A string within `lengths`, as zod counts them. */
function stringCheck(lengths: Lengths): SchemaCheck {
  return (value) => typeof value === 'string' && fitsLength(value.length, lengths) && fitsCodePoints(value, lengths);
}

function fitsLength(length: number, lengths: Lengths): boolean {
  return length >= lengths.min && length <= lengths.max;
}

/**
 * Zod measures strings in code points; a string within the limits in UTF-16 units is within them in code points
 * too, except that a string shorter than twice the minimum may hold surrogate pairs that bring it under.
 */
function fitsCodePoints(value: string, lengths: Lengths): boolean {
  if (value.length >= lengths.min * 2) return true;
  for (let index = 0; index < value.length; index++) {
    const unit = value.charCodeAt(index);
    if (unit >= 0xd800 && unit <= 0xdfff) return false;
  }
  return true;
}
