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
      return (value) =>
        typeof value === 'string' && fitsLength(value.length, lengths) && fitsCodePoints(value, lengths);
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
