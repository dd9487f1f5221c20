/**
 * SCIM PATCH (RFC 7644 §3.5.2) applied to a canonical resource document, including the forms Entra and Okta
 * send: capitalised ops (`"Replace"`), no-path values with dotted or URN-prefixed keys, value filters in paths
 * (`emails[type eq "work"].value`, creating the entry when none matches), and string booleans.
 *
 * No maintained library fits here: SCIMMY's PatchOp works only on its own declared resources and refuses
 * `"False"`; this module is the RFC's algorithm over the schema data in resource-schema.ts.
 */
import { equalityConditions, matchesValueFilter, parseAttributePath } from './path.ts';
import { findSchema, resolveAttribute, type AttributeDef, type ResourceSchema } from './resource-schema.ts';
import { coerceValue, isObject, type ResourceDocument } from './resource.ts';
import { SCHEMA_PATCH_OP } from './schemas.ts';
import { badRequest } from './service-error.ts';

/** One operation of a PatchOp request, its `op` made lower-case. */
export interface PatchOperation {
  op: 'add' | 'replace' | 'remove';
  path: string | undefined;
  value: unknown;
}

/** Most operations one PATCH request may carry. */
export const MAX_PATCH_OPERATIONS = 1000;

type Json = Record<string, unknown>;

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : value === undefined ? [] : [value];
}

/** Reads a PatchOp body; 400 invalidSyntax when it is not one. */
export function parsePatchRequest(body: unknown): PatchOperation[] {
  if (!isObject(body)) throw badRequest('invalidSyntax', 'the body must be a PatchOp object');
  const schemas = body['schemas'];
  if (Array.isArray(schemas) && !schemas.includes(SCHEMA_PATCH_OP)) {
    throw badRequest('invalidSyntax', `schemas must contain ${SCHEMA_PATCH_OP}`);
  }
  const operations = body['Operations'] ?? body['operations'];
  if (!Array.isArray(operations) || operations.length === 0) {
    throw badRequest('invalidSyntax', 'Operations must be a non-empty array');
  }
  if (operations.length > MAX_PATCH_OPERATIONS) {
    throw badRequest('tooMany', `at most ${MAX_PATCH_OPERATIONS} operations per request`);
  }
  return operations.map((raw, i) => {
    if (!isObject(raw)) throw badRequest('invalidSyntax', `Operations[${i}] must be an object`);
    const entries = Object.fromEntries(Object.entries(raw).map(([key, value]) => [key.toLowerCase(), value]));
    const op = typeof entries['op'] === 'string' ? entries['op'].toLowerCase() : undefined;
    if (op !== 'add' && op !== 'replace' && op !== 'remove') {
      throw badRequest('invalidSyntax', `Operations[${i}].op must be add, replace or remove`);
    }
    const path = entries['path'];
    if (path !== undefined && path !== null && typeof path !== 'string') {
      throw badRequest('invalidPath', `Operations[${i}].path must be a string`);
    }
    if (op !== 'remove' && entries['value'] === undefined) {
      throw badRequest('invalidValue', `Operations[${i}] (${op}) needs a value`);
    }
    return { op, path: typeof path === 'string' && path.trim() !== '' ? path : undefined, value: entries['value'] };
  });
}

function setOrDelete(container: Json, key: string, value: unknown): void {
  if (value === undefined || (Array.isArray(value) && value.length === 0)) delete container[key];
  else container[key] = value;
}

/** Removes the values of a multi-valued attribute that equal one of `values` (by their `value` sub-attribute). */
function removeValues(def: AttributeDef, current: unknown[], values: unknown): unknown[] {
  const doomed = asArray(coerceValue(def, values)).map((item) => JSON.stringify(isObject(item) ? item['value'] : item));
  return current.filter((item) => !doomed.includes(JSON.stringify(isObject(item) ? item['value'] : item)));
}

function applyWithPath(resource: ResourceSchema, doc: ResourceDocument, operation: PatchOperation & { path: string }) {
  const { op, value } = operation;
  const path = parseAttributePath(resource, operation.path);
  if (!path.attribute) {
    // The whole extension: its attributes one by one, or all of it removed.
    const extension = path.extension!;
    if (op === 'remove') return void delete doc[extension];
    if (!isObject(value)) throw badRequest('invalidValue', `the value for ${extension} must be an object`);
    if (op === 'replace') delete doc[extension];
    for (const [key, item] of Object.entries(value))
      applyOne(resource, doc, { op, path: `${extension}:${key}`, value: item });
    return;
  }
  const def = path.attribute;
  if (def.mutability === 'readOnly' || def.name === 'id') {
    throw badRequest('mutability', `${def.name} is read-only`);
  }
  if (path.extension && !isObject(doc[path.extension])) {
    if (op === 'remove') return;
    doc[path.extension] = {};
  }
  const container = (path.extension ? doc[path.extension] : doc) as Json;
  const key = def.name;
  const where = operation.path;

  if (!path.filter && !path.sub) {
    if (op === 'remove') {
      const current = container[key];
      if (value !== undefined && def.multiValued && Array.isArray(current)) {
        setOrDelete(container, key, removeValues(def, current, value));
      } else delete container[key];
      return;
    }
    const coerced = coerceValue(def, value, where);
    if (def.multiValued) {
      setOrDelete(container, key, op === 'add' ? [...asArray(container[key]), ...asArray(coerced)] : coerced);
    } else if (def.type === 'complex' && isObject(container[key]) && isObject(coerced)) {
      container[key] = { ...container[key], ...coerced };
    } else setOrDelete(container, key, coerced);
    return;
  }

  if (!path.filter) {
    const sub = path.sub!;
    if (def.multiValued) {
      throw badRequest('invalidPath', `${where} needs a value filter, e.g. ${key}[type eq "work"].${sub.name}`);
    }
    const current: Json = isObject(container[key]) ? { ...container[key] } : {};
    setOrDelete(current, sub.name, op === 'remove' ? undefined : coerceValue(sub, value, where));
    setOrDelete(container, key, Object.keys(current).length > 0 ? current : undefined);
    return;
  }

  const items = asArray(container[key]).filter(isObject);
  const matched = items.filter((item) => matchesValueFilter(item, path.filter!));
  if (op === 'remove') {
    if (path.sub) for (const item of matched) delete item[path.sub.name];
    setOrDelete(
      container,
      key,
      items.filter((item) => !(path.sub ? false : matched.includes(item)) && Object.keys(item).length > 0),
    );
    return;
  }
  const single = { ...def, multiValued: false };
  if (matched.length === 0) {
    // Entra adds `emails[type eq "work"].value` for a user without a work email: the entry is created.
    const conditions = equalityConditions(path.filter);
    if (!conditions) throw badRequest('noTarget', `no value of ${key} matches ${where}`);
    const entry: Json = { ...conditions };
    if (path.sub) entry[path.sub.name] = value;
    else if (isObject(value)) Object.assign(entry, value);
    else entry['value'] = value;
    setOrDelete(container, key, [...items, coerceValue(single, entry, where)]);
    return;
  }
  for (const item of matched) {
    if (path.sub) setOrDelete(item, path.sub.name, coerceValue(path.sub, value, where));
    else {
      const coerced = coerceValue(single, value, where);
      if (!isObject(coerced)) throw badRequest('invalidValue', `the value for ${where} must be an object`);
      Object.assign(item, coerced);
    }
  }
  setOrDelete(container, key, items);
}

function applyOne(resource: ResourceSchema, doc: ResourceDocument, operation: PatchOperation): void {
  if (operation.path !== undefined) return applyWithPath(resource, doc, { ...operation, path: operation.path });
  if (operation.op === 'remove') throw badRequest('noTarget', 'remove needs a path');
  if (!isObject(operation.value)) {
    throw badRequest('invalidValue', `${operation.op} without a path needs an object value`);
  }
  for (const [key, value] of Object.entries(operation.value)) {
    const lower = key.toLowerCase();
    if (lower === 'schemas' || lower === 'meta' || lower === 'id') continue;
    const schema = lower.startsWith('urn:') ? findSchema(resource, key) : undefined;
    if (schema && isObject(value)) {
      const prefix = schema === resource.core ? '' : `${schema.id}:`;
      for (const [inner, item] of Object.entries(value)) {
        applyOne(resource, doc, { op: operation.op, path: `${prefix}${inner}`, value: item });
      }
      continue;
    }
    // Keys may be paths themselves (`name.givenName`, `urn:…:User:department`); attributes no schema knows are
    // ignored, as on create.
    const name = key.split(/[.[]/, 1)[0] ?? key;
    const known = schema ?? resolveAttribute(resource, lower.startsWith('urn:') ? key.split('.')[0]! : name);
    if (!known) continue;
    applyOne(resource, doc, { op: operation.op, path: key, value });
  }
}

/**
 * Applies `operations` in order to a copy of `doc` and returns it; the caller normalizes and validates the result
 * (normalizeResource), so all operations take effect together or not at all.
 */
export function applyPatch(
  resource: ResourceSchema,
  doc: ResourceDocument,
  operations: readonly PatchOperation[],
): ResourceDocument {
  const next = structuredClone(doc);
  for (const operation of operations) applyOne(resource, next, operation);
  return next;
}
