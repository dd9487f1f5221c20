/**
 * What a mapping set can read of its inputs, decided from the expressions' text alone, so the engine sends the
 * sandbox only that. Every answer errs towards sending more: text that could be a read (in a string or a comment
 * too) counts as one, and any use of the object other than reading a named property means the whole object.
 */

// Anything that could reach a parameter without spelling its name: `arguments`, and an escaped name (any backslash).
const INDIRECT = /arguments|\\/;
const IDENTIFIER_PART = /[A-Za-z0-9_$]/;
// `.name` or `?.name` right after the parameter (ASCII spaces allowed), the name ending at neither an ASCII nor a
// non-ASCII character (either could continue it).
const PROPERTY = /[ \t\r\n]*\??\.[ \t\r\n]*([A-Za-z_$][A-Za-z0-9_$]*)(?![A-Za-z0-9_$]|[^\0-\x7f])/y;

/** What a mapping set can read: the object's fields (null: all of it), and whether any mapping can read its link. */
export interface MappingReads {
  fields: ReadonlySet<string> | null;
  link: boolean;
}

/** What the bodies can read of their object (`parameter`: `user` or `group`) and of its link: the two answers below. */
export function mappingReads(expressions: readonly string[], parameter: string): MappingReads {
  return { fields: objectFieldsRead(expressions, parameter), link: expressions.some(canReadLink) };
}

/**
 * Whether a mapping body could read its `link` parameter: by that name, through `arguments`, or with a unicode
 * escape spelling either (any backslash counts). Strict mode, and no eval or Function, leave it no other way.
 */
export function canReadLink(expression: string): boolean {
  return expression.includes('link') || INDIRECT.test(expression);
}

/**
 * The top-level fields of the object parameter (`parameter`: `user` or `group`) that the bodies can read, or null
 * when one could reach the object as a whole: pass it on, spread it, list its keys, read a computed property, call
 * a method it inherits, reach it through `arguments` or an escaped name. Only `object.name` and `object?.name`,
 * `name` not inherited from Object.prototype, are reads of one field.
 */
export function objectFieldsRead(expressions: readonly string[], parameter: string): Set<string> | null {
  const fields = new Set<string>();
  for (const expression of expressions) {
    if (INDIRECT.test(expression)) return null;
    for (let at = expression.indexOf(parameter); at >= 0; at = expression.indexOf(parameter, at + 1)) {
      const end = at + parameter.length;
      // Inside a longer identifier (`username`, `superuser`) it is another name.
      if (IDENTIFIER_PART.test(expression[at - 1] ?? '') || IDENTIFIER_PART.test(expression[end] ?? '')) continue;
      PROPERTY.lastIndex = end;
      const field = PROPERTY.exec(expression)?.[1];
      // A name the object inherits reaches it whole: `valueOf()` returns it, `hasOwnProperty(name)` tests its keys
      // (and `__proto__` would set a copy's prototype instead of a field).
      if (field === undefined || field in Object.prototype) return null;
      fields.add(field);
    }
  }
  return fields;
}

/**
 * What of `object` to send when the mappings read only `fields` (null: all of it): its own enumerable properties
 * of those names, the ones JSON would carry. An object with a `toJSON` goes whole, as JSON would turn it into
 * something else.
 */
export function pickFields(object: unknown, fields: ReadonlySet<string> | null): unknown {
  if (fields === null || !isColumnRecord(object)) return object;
  const picked: Record<string, unknown> = {};
  // Object.keys lists what JSON.stringify would: the own enumerable string keys.
  for (const key of Object.keys(object)) if (fields.has(key)) picked[key] = object[key];
  return picked;
}

/** A batch's objects as one array per field read: `names` lists the fields every object has, in column order. */
export interface PickedColumns {
  names: string[];
  columns: unknown[][];
}

/** Whether `name` is an own enumerable property of `object`: one that JSON writes. */
const isEnumerableOwn = (object: object, name: string): boolean =>
  Object.prototype.propertyIsEnumerable.call(object, name);

/**
 * The objects' fields of `fields` as columns, one array per field, when that carries exactly what `pickFields`
 * would for each: every object a plain record without `toJSON`, all of them having the same of those fields as own
 * enumerable properties, and no value that JSON would leave out of an object but write into an array as null
 * (undefined, a function, a symbol) or turn into something else depending on its key (a `toJSON` method). Null
 * when any object is otherwise: the objects then go one by one. Each value is read once, as JSON would.
 */
export function pickColumns(objects: readonly unknown[], fields: ReadonlySet<string>): PickedColumns | null {
  const all = [...fields];
  const first = objects[0];
  if (!isColumnRecord(first)) return null;
  // Object.keys lists the own enumerable string keys, from V8's cache for objects of one layout: an object listing
  // exactly the first one's has the same fields present, with no check per field (each a call of
  // propertyIsEnumerable: 0.13 µs per user of the 0.28 pickColumns took).
  const firstKeys = Object.keys(first);
  const present = all.map((name) => firstKeys.includes(name));
  const names = all.filter((_, k) => present[k]);
  // Filled by push, never preallocated: a holey array (even once full) is what isolated-vm's copy writes as a sparse
  // one, key by key, and the isolate adds back one element at a time (a tenth of its CPU time in the bench driver).
  const columns = names.map((): unknown[] => []);
  for (let index = 0; index < objects.length; index++) {
    const object = objects[index];
    if (!isColumnRecord(object)) return null;
    const alike = sameKeys(Object.keys(object), firstKeys);
    let column = 0;
    for (let k = 0; k < all.length; k++) {
      const name = all[k] as string;
      const has = alike ? (present[k] as boolean) : isEnumerableOwn(object, name);
      if (has !== present[k]) return null;
      if (!has) continue;
      const value = object[name];
      if (!carriesAsIs(value)) return null;
      (columns[column++] as unknown[]).push(value);
    }
  }
  return { names, columns };
}

/**
 * What `column` takes in the isolate, in characters (a string's length and 3, any other value 8), when isolated-vm
 * copies every value of it as JSON would carry it: a string, a boolean, null, or a finite number other than -0.
 * Null when any value is otherwise (the column then goes as JSON).
 */
export function plainColumnSize(column: readonly unknown[]): number | null {
  let size = 0;
  for (const value of column) {
    if (typeof value === 'string') size += value.length + 3;
    else if (typeof value === 'boolean' || value === null) size += 8;
    else if (typeof value === 'number' && Number.isFinite(value) && !Object.is(value, -0)) size += 8;
    else return null;
  }
  return size;
}

/** Whether two key lists are the same keys in the same order. */
function sameKeys(keys: readonly string[], expected: readonly string[]): boolean {
  if (keys.length !== expected.length) return false;
  for (let index = 0; index < keys.length; index++) if (keys[index] !== expected[index]) return false;
  return true;
}

/** Whether `value` is a record JSON writes key by key: an object, not an array, without a `toJSON`. */
function isColumnRecord(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as Record<string, unknown>)['toJSON'] !== 'function'
  );
}

/** Whether JSON writes `value` the same as an object's property and as an array's element. */
function carriesAsIs(value: unknown): boolean {
  switch (typeof value) {
    case 'undefined':
    case 'function':
    case 'symbol':
      return false;
    case 'object':
      return value === null || typeof (value as Record<string, unknown>)['toJSON'] !== 'function';
    default:
      return true;
  }
}
