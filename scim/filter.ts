/** Builders for SCIM filter expressions (RFC 7644 §3.4.2.2) that quote values correctly. */

/** An attribute path: optional schema URN prefix, an attribute name, and at most one sub-attribute. */
const ATTRIBUTE_PATH =
  /^(?:urn:[A-Za-z0-9][A-Za-z0-9.:_-]*:)?\$?[A-Za-z][A-Za-z0-9_-]*(?:\.\$?[A-Za-z][A-Za-z0-9_-]*)?$/;

/** A value a comparison can carry: a JSON string, number, boolean or null. */
export type FilterValue = string | number | boolean | null;

/**
 * Renders `value` as a filter literal: strings become JSON strings, so `"` and `\` (and control characters)
 * are escaped exactly as RFC 7644 requires.
 * @example quoteFilterValue('a"b') // → '"a\\"b"'
 */
export function quoteFilterValue(value: FilterValue): string {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new TypeError(`filter value must be a finite number, got ${value}`);
  }
  if (value !== null && !['string', 'number', 'boolean'].includes(typeof value)) {
    throw new TypeError(`filter value must be a string, number, boolean or null, got ${typeof value}`);
  }
  return JSON.stringify(value);
}

/** Throws TypeError unless `attribute` is a valid SCIM attribute path such as `userName` or `emails.value`. */
export function assertAttributePath(attribute: string): void {
  if (typeof attribute !== 'string' || !ATTRIBUTE_PATH.test(attribute)) {
    throw new TypeError(`invalid SCIM attribute path: ${JSON.stringify(attribute)}`);
  }
}

/**
 * An equality filter.
 * @example eqFilter('userName', 'a"b') // → 'userName eq "a\\"b"'
 */
export function eqFilter(attribute: string, value: FilterValue): string {
  assertAttributePath(attribute);
  return `${attribute} eq ${quoteFilterValue(value)}`;
}

/**
 * Joins filters with `and`. Operands are used as given, without parentheses, because some targets (AWS) accept
 * only `a eq "x" and b eq "y"`; pass comparisons or already-grouped expressions.
 */
export function andFilter(...filters: string[]): string {
  if (filters.length === 0) throw new TypeError('andFilter needs at least one filter');
  for (const filter of filters) {
    if (typeof filter !== 'string' || filter.trim() === '') {
      throw new TypeError('andFilter operands must be non-empty filter strings');
    }
  }
  return filters.join(' and ');
}
