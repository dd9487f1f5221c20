/** Attribute paths of SCIM PATCH operations and `attributes` parameters (RFC 7644 §3.5.2, §3.10). */
import { parse, Tester, type Compare, type Filter, type Suffix } from 'scim2-parse-filter';
import {
  COMMON_ATTRIBUTES,
  findAttribute,
  splitSchemaPrefix,
  type AttributeDef,
  type ResourceSchema,
} from './resource-schema.ts';
import { badRequest, type ScimErrorType } from './service-error.ts';

export type { Filter } from 'scim2-parse-filter';
/** A comparison of one attribute: `attr op value` or `attr pr`. */
export type Comparison = Compare | Suffix;

/** A parsed path: `[urn:]attr[filter][.sub]`, or a whole extension (`attribute` undefined). */
export interface AttributePath {
  /** The extension URN the attribute lives under; undefined for core and common attributes. */
  extension: string | undefined;
  attribute: AttributeDef | undefined;
  /** The value filter of `attr[filter]`, over sub-attributes of each value. */
  filter: Filter | undefined;
  sub: AttributeDef | undefined;
}

const ATTRIBUTE_PART = /^([A-Za-z$][\w$-]*)(?:\[(.+)\])?(?:\.([A-Za-z$][\w$-]*))?$/s;

/** Parses a SCIM filter expression; a malformed one is a 400 with `scimType` (default `invalidFilter`). */
export function parseFilter(text: string, scimType: ScimErrorType = 'invalidFilter'): Filter {
  try {
    return parse(text);
  } catch (error) {
    throw badRequest(scimType, `malformed filter "${text}": ${error instanceof Error ? error.message : 'invalid'}`);
  }
}

/** Parses and resolves `text` against `resource`; unknown attributes and malformed paths are 400 invalidPath. */
export function parseAttributePath(resource: ResourceSchema, text: string): AttributePath {
  const split = splitSchemaPrefix(resource, text.trim());
  if (!split) throw badRequest('invalidPath', `unknown schema in path "${text}"`);
  const extension = split.isExtension ? split.schema.id : undefined;
  if (split.rest === '') {
    if (!extension) throw badRequest('invalidPath', `path "${text}" names no attribute`);
    return { extension, attribute: undefined, filter: undefined, sub: undefined };
  }
  const match = ATTRIBUTE_PART.exec(split.rest);
  if (!match) throw badRequest('invalidPath', `malformed path "${text}"`);
  const [, name = '', filterText, subName] = match;
  const attribute = extension
    ? findAttribute(split.schema.attributes, name)
    : (findAttribute(resource.core.attributes, name) ?? findAttribute(COMMON_ATTRIBUTES, name));
  if (!attribute) throw badRequest('invalidPath', `unknown attribute "${name}" in path "${text}"`);
  if (filterText !== undefined && !attribute.multiValued) {
    throw badRequest('invalidPath', `"${attribute.name}" is not multi-valued; it takes no filter`);
  }
  let sub: AttributeDef | undefined;
  if (subName !== undefined) {
    sub = findAttribute(attribute.subAttributes ?? [], subName);
    if (!sub) throw badRequest('invalidPath', `"${attribute.name}" has no sub-attribute "${subName}"`);
  }
  const filter = filterText === undefined ? undefined : parseFilter(filterText, 'invalidPath');
  return { extension, attribute, filter, sub };
}

/**
 * Matches values of a multi-valued attribute against a value filter. Attribute names are case-insensitive (the
 * library's tester), and so are string comparisons: every sub-attribute these filters name in practice (`type`,
 * `value` of emails and member ids) is caseExact false or a lower-case id.
 */
class CaseInsensitiveTester extends Tester {
  private static fold(value: unknown): unknown {
    return typeof value === 'string' ? value.toLowerCase() : value;
  }
  override eq(r: unknown, v: Compare['compValue']): boolean {
    return CaseInsensitiveTester.fold(r) === CaseInsensitiveTester.fold(v);
  }
  override ne(r: unknown, v: Compare['compValue']): boolean {
    return !this.eq(r, v);
  }
  override co(r: unknown, v: Compare['compValue']): boolean {
    return typeof r === 'string' && typeof v === 'string' && r.toLowerCase().includes(v.toLowerCase());
  }
  override sw(r: unknown, v: Compare['compValue']): boolean {
    return typeof r === 'string' && typeof v === 'string' && r.toLowerCase().startsWith(v.toLowerCase());
  }
  override ew(r: unknown, v: Compare['compValue']): boolean {
    return typeof r === 'string' && typeof v === 'string' && r.toLowerCase().endsWith(v.toLowerCase());
  }
}

const tester = new CaseInsensitiveTester();

/** Whether one value of a multi-valued attribute matches `filter`. */
export function matchesValueFilter(value: unknown, filter: Filter): boolean {
  return tester.test(value, filter);
}

/**
 * The `sub eq "x"` comparisons of a filter made only of them joined by `and` (`type eq "work"`), as the
 * sub-attribute values a new entry must have to match it; null for any other filter.
 */
export function equalityConditions(filter: Filter): Record<string, unknown> | null {
  if (filter.op === 'eq') return { [filter.attrPath]: filter.compValue };
  if (filter.op !== 'and') return null;
  const merged: Record<string, unknown> = {};
  for (const part of filter.filters) {
    const conditions = equalityConditions(part);
    if (!conditions) return null;
    Object.assign(merged, conditions);
  }
  return merged;
}
