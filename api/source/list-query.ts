/** The query of a SCIM list or `.search` request (RFC 7644 §3.4.2-§3.4.3), read and checked. */
import { parseFilter, type Filter } from '../../scim/path.ts';
import type { ResourceSchema } from '../../scim/resource-schema.ts';
import { badRequest } from '../../scim/service-error.ts';
import type { FilterTarget } from './filter-sql.ts';
import { sortExpression } from './filter-sql.ts';
import type { Projection } from './render.ts';

/** A list request as the store takes it, plus its projection and the 1-based start the response echoes. */
export interface ListQuery {
  filter: Filter | undefined;
  sort: { sql: string; descending: boolean } | undefined;
  startIndex: number;
  count: number;
  projection: Projection;
}

const MAX_FILTER_LENGTH = 4096;

function attributeList(value: unknown, name: string): string[] | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value;
  if (typeof value === 'string')
    return value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
  throw badRequest('invalidValue', `${name} must be a comma-separated list of attribute names`);
}

function integer(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const number = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(number)) throw badRequest('invalidValue', `${name} must be an integer`);
  return number;
}

/** Only the projection of a request (single-resource reads and writes). */
export function readProjection(params: Record<string, unknown>): Projection {
  const attributes = attributeList(params['attributes'], 'attributes');
  const excludedAttributes = attributeList(params['excludedAttributes'], 'excludedAttributes');
  if (attributes && excludedAttributes) {
    throw badRequest('invalidValue', 'attributes and excludedAttributes cannot be given together');
  }
  return { attributes, excludedAttributes };
}

/**
 * Reads a list request from query parameters or a `.search` body. `count` above `maxResults` is lowered to it
 * (RFC 7644 §3.4.2.4); startIndex below 1 is read as 1.
 */
export function readListQuery(
  params: Record<string, unknown>,
  resource: ResourceSchema,
  target: FilterTarget,
  maxResults: number,
): ListQuery {
  const filterText = params['filter'];
  if (filterText !== undefined && typeof filterText !== 'string')
    throw badRequest('invalidFilter', 'filter must be a string');
  if (typeof filterText === 'string' && filterText.length > MAX_FILTER_LENGTH) {
    throw badRequest('invalidFilter', `filter is longer than ${MAX_FILTER_LENGTH} characters`);
  }
  const sortBy = params['sortBy'];
  if (sortBy !== undefined && typeof sortBy !== 'string') throw badRequest('invalidValue', 'sortBy must be a string');
  const sortOrder = params['sortOrder'];
  if (sortOrder !== undefined && sortOrder !== 'ascending' && sortOrder !== 'descending') {
    throw badRequest('invalidValue', 'sortOrder must be ascending or descending');
  }
  const count = integer(params['count'], 'count');
  return {
    filter: typeof filterText === 'string' && filterText.trim() !== '' ? parseFilter(filterText) : undefined,
    sort: sortBy
      ? { sql: sortExpression(sortBy, resource, target), descending: sortOrder === 'descending' }
      : undefined,
    startIndex: Math.max(1, integer(params['startIndex'], 'startIndex') ?? 1),
    count: Math.min(maxResults, Math.max(0, count ?? maxResults)),
    projection: readProjection(params),
  };
}
