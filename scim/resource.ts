/**
 * Incoming SCIM resources made canonical: attribute names in their schema's letter case, values coerced to their
 * declared types (Entra's `"False"` becomes false), read-only and unknown attributes dropped (RFC 7644 §3.3 lets a
 * service provider ignore them), required ones checked.
 */
import {
  COMMON_ATTRIBUTES,
  findAttribute,
  findSchema,
  type AttributeDef,
  type ResourceSchema,
} from './resource-schema.ts';
import { badRequest } from './service-error.ts';

/** A resource's writable content: core attributes and `externalId` at the top, extensions under their URN. */
export type ResourceDocument = Record<string, unknown>;

const MAX_STRING = 4096;

/** A plain JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Coerces one simple value to `def`'s type; undefined means "no value". */
function coerceSimple(def: AttributeDef, value: unknown, where: string): unknown {
  if (value === null || value === undefined) return undefined;
  switch (def.type) {
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
      throw badRequest('invalidValue', `${where} must be a boolean`);
    case 'integer':
    case 'decimal': {
      const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (
        typeof number !== 'number' ||
        !Number.isFinite(number) ||
        (def.type === 'integer' && !Number.isInteger(number))
      )
        throw badRequest('invalidValue', `${where} must be a ${def.type}`);
      return number;
    }
    case 'dateTime':
      if (typeof value !== 'string' || Number.isNaN(Date.parse(value)))
        throw badRequest('invalidValue', `${where} must be an xsd:dateTime`);
      return value;
    default: {
      if (typeof value === 'number') return String(value);
      if (typeof value !== 'string') throw badRequest('invalidValue', `${where} must be a string`);
      if (value.length > MAX_STRING) throw badRequest('invalidValue', `${where} is longer than ${MAX_STRING}`);
      return value;
    }
  }
}

/** Coerces a complex value; a bare string stands for its `value` sub-attribute (Entra sends `manager: "id"`). */
function coerceComplex(def: AttributeDef, value: unknown, where: string): Record<string, unknown> | undefined {
  if (value === null || value === undefined) return undefined;
  if (Array.isArray(value) && value.length === 1 && !def.multiValued) return coerceComplex(def, value[0], where);
  const subs = def.subAttributes ?? [];
  if (!isObject(value)) {
    const valueDef = findAttribute(subs, 'value');
    if (!valueDef) throw badRequest('invalidValue', `${where} must be an object`);
    const coerced = coerceSimple(valueDef, value, `${where}.value`);
    return coerced === undefined ? undefined : { value: coerced };
  }
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(value)) {
    const sub = findAttribute(subs, key);
    if (!sub || sub.mutability === 'readOnly') continue;
    const coerced = coerceSimple(sub, raw, `${where}.${sub.name}`);
    if (coerced !== undefined) out[sub.name] = coerced;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** Coerces any value to `def` (multi-valued: a single value becomes a one-element list; duplicates go). */
export function coerceValue(def: AttributeDef, value: unknown, where = def.name): unknown {
  if (def.multiValued) {
    if (value === null || value === undefined) return undefined;
    const items = Array.isArray(value) ? value : [value];
    const out: unknown[] = [];
    const seen = new Set<string>();
    items.forEach((item, i) => {
      const coerced =
        def.type === 'complex' ? coerceComplex(def, item, `${where}[${i}]`) : coerceSimple(def, item, `${where}[${i}]`);
      const key = JSON.stringify(coerced);
      if (coerced !== undefined && !seen.has(key)) {
        seen.add(key);
        out.push(coerced);
      }
    });
    return out.length === 0 ? undefined : out;
  }
  return def.type === 'complex' ? coerceComplex(def, value, where) : coerceSimple(def, value, where);
}

function normalizeAttributes(
  defs: readonly AttributeDef[],
  input: Record<string, unknown>,
  out: Record<string, unknown>,
): void {
  for (const [key, value] of Object.entries(input)) {
    const def = findAttribute(defs, key);
    if (!def || def.mutability === 'readOnly') continue;
    const coerced = coerceValue(def, value);
    if (coerced !== undefined) out[def.name] = coerced;
  }
}

/**
 * The canonical document of a resource `input` as a client sent it (POST, PUT, or the result of a PATCH).
 * Throws 400 invalidValue for wrong types and missing required attributes, invalidSyntax for a non-object.
 */
export function normalizeResource(resource: ResourceSchema, input: unknown): ResourceDocument {
  if (!isObject(input)) throw badRequest('invalidSyntax', `a ${resource.name} must be a JSON object`);
  const doc: ResourceDocument = {};
  const core: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    const lower = key.toLowerCase();
    if (lower === 'schemas' || lower === 'id' || lower === 'meta') continue;
    if (lower === 'externalid') {
      const externalId = coerceSimple(findAttribute(COMMON_ATTRIBUTES, 'externalId')!, value, 'externalId');
      if (externalId !== undefined) doc['externalId'] = externalId;
      continue;
    }
    const schema = lower.startsWith('urn:') ? findSchema(resource, key) : undefined;
    if (schema === resource.core) {
      if (isObject(value)) Object.assign(core, value);
    } else if (schema) {
      if (value === null) continue;
      if (!isObject(value)) throw badRequest('invalidValue', `${schema.id} must be an object`);
      const extension: Record<string, unknown> = {};
      normalizeAttributes(schema.attributes, value, extension);
      if (Object.keys(extension).length > 0) doc[schema.id] = extension;
    } else {
      core[key] = value;
    }
  }
  normalizeAttributes(resource.core.attributes, core, doc);
  for (const def of resource.core.attributes) {
    if (def.required && (doc[def.name] === undefined || doc[def.name] === '')) {
      throw badRequest('invalidValue', `${def.name} is required`);
    }
  }
  return doc;
}

/** The `schemas` list of a document: the core URN and each extension it carries. */
export function schemasOf(resource: ResourceSchema, doc: ResourceDocument): string[] {
  return [resource.core.id, ...resource.extensions.filter((ext) => doc[ext.id] !== undefined).map((ext) => ext.id)];
}
