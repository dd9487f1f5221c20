/**
 * SCIM filters (parsed by scim2-parse-filter) translated to parameterised SQL over the directory tables, so a
 * filter is evaluated by PostgreSQL: `userName eq "x"` becomes `lower(u.username) = lower($n::text)`, a lookup in
 * the `lower(username)` index. caseExact false attributes compare lower-cased on both sides, by PostgreSQL's
 * `lower` like the index (RFC 7643 §2.2). A comparison with a missing value is NULL, which a WHERE, `and` and `or`
 * treat as false; only `not` turns it into true (`IS NOT TRUE`), so missing values never match except through `ne`
 * and `not`. Comparisons are never wrapped in anything else: a wrapped one could not use an index.
 */
import {
  COMMON_ATTRIBUTES,
  findAttribute,
  splitSchemaPrefix,
  type AttributeDef,
  type ResourceSchema,
} from '../../scim/resource-schema.ts';
import { badRequest } from '../../scim/service-error.ts';
import type { Comparison, Filter } from '../../scim/path.ts';

/** Which table a filter runs over: users aliased `u`, groups aliased `g`. */
export type FilterTarget = 'user' | 'group';

/** The growing parameter list of one statement. */
export interface SqlParams {
  values: unknown[];
  /** Counter for the aliases of EXISTS subqueries. */
  aliases?: number;
}

/** A value in SQL: an expression and how it is typed there. */
interface Scalar {
  kind: 'scalar';
  sql: string;
  /** `text` columns and jsonb `->>` results are text; the others are native columns. */
  native: 'text' | 'boolean' | 'timestamptz';
  def: AttributeDef;
}

/** A multi-valued attribute: a FROM item producing one row per value, and how to reach each sub-attribute. */
interface Multi {
  kind: 'multi';
  def: AttributeDef;
  from: (alias: string) => string;
  sub: (alias: string, name: string) => Scalar;
  /** The sub-attribute named in the path (`emails.value`), if any. */
  subName: string | undefined;
  /** Ties a row of `from` to the outer object, when `from` is a table rather than a function of it. */
  join?: (alias: string) => string;
}

const SCIM = (alias: string) => `${alias}.attributes->'scim'`;

function param(params: SqlParams, value: unknown): string {
  params.values.push(value);
  return `$${params.values.length}`;
}

function jsonText(base: string, keys: string[]): string {
  const quoted = keys.map((key) => `'${key.replace(/'/g, "''")}'`);
  const last = quoted.pop()!;
  return `(${[base, ...quoted].join('->')}->>${last})`;
}

function column(sql: string, native: Scalar['native'], def: AttributeDef): Scalar {
  return { kind: 'scalar', sql, native, def };
}

function multiJson(alias: string, keys: string[], def: AttributeDef, sub: string | undefined) {
  const array = `${[SCIM(alias), ...keys.map((key) => `'${key}'`)].join('->')}`;
  return {
    kind: 'multi',
    def,
    subName: sub,
    from: (e: string) =>
      `jsonb_array_elements(CASE WHEN jsonb_typeof(${array}) = 'array' THEN ${array} ELSE '[]'::jsonb END) AS ${e}(v)`,
    sub: (e: string, name: string) => {
      const subDef = findAttribute(def.subAttributes ?? [], name);
      if (!subDef) throw badRequest('invalidFilter', `${def.name} has no sub-attribute "${name}"`);
      return column(jsonText(`${e}.v`, [subDef.name]), 'text', subDef);
    },
  } satisfies Multi;
}

/** Members of a group (target group) or groups of a user (target user), from group_members. */
function membership(target: FilterTarget, alias: string, def: AttributeDef, sub: string | undefined): Multi {
  const [own, other, otherTable, otherName] =
    target === 'group' ? ['group_id', 'user_id', 'users', 'username'] : ['user_id', 'group_id', 'groups', 'name'];
  return {
    kind: 'multi',
    def,
    subName: sub,
    from: (m: string) => `group_members ${m}`,
    sub: (m: string, name: string) => {
      const subDef = findAttribute(def.subAttributes ?? [], name);
      if (subDef?.name === 'value') return column(`${m}.${other}::text`, 'text', subDef);
      if (subDef?.name === 'display') {
        return column(`(SELECT x.${otherName} FROM ${otherTable} x WHERE x.id = ${m}.${other})`, 'text', subDef);
      }
      throw badRequest('invalidFilter', `filtering on ${def.name}.${name} is not supported`);
    },
    join: (m: string) => `${m}.${own} = ${alias}.id`,
  };
}

/** Resolves a filter attribute path to a SQL value. */
function resolve(resource: ResourceSchema, target: FilterTarget, alias: string, path: string): Scalar | Multi {
  const split = splitSchemaPrefix(resource, path);
  if (!split || split.rest === '') throw badRequest('invalidFilter', `unknown attribute "${path}"`);
  const [name = '', subName, ...more] = split.rest.split('.');
  if (more.length > 0) throw badRequest('invalidFilter', `malformed attribute path "${path}"`);
  const def = split.isExtension
    ? findAttribute(split.schema.attributes, name)
    : (findAttribute(resource.core.attributes, name) ?? findAttribute(COMMON_ATTRIBUTES, name));
  if (!def) throw badRequest('invalidFilter', `unknown attribute "${path}"`);
  const subDef = subName === undefined ? undefined : findAttribute(def.subAttributes ?? [], subName);
  if (subName !== undefined && !subDef) throw badRequest('invalidFilter', `unknown attribute "${path}"`);

  if (def.multiValued) {
    if ((target === 'group' && def.name === 'members') || (target === 'user' && def.name === 'groups')) {
      return membership(target, alias, def, subDef?.name);
    }
    return multiJson(alias, split.isExtension ? [split.schema.id, def.name] : [def.name], def, subDef?.name);
  }
  const extension = split.isExtension ? [split.schema.id] : [];
  switch (split.isExtension ? '' : def.name) {
    case 'id':
      return column(`${alias}.id::text`, 'text', def);
    case 'meta':
      if (subDef?.name === 'created') return column(`${alias}.created_at`, 'timestamptz', subDef);
      if (subDef?.name === 'lastModified') return column(`${alias}.updated_at`, 'timestamptz', subDef);
      throw badRequest('invalidFilter', `filtering on "${path}" is not supported`);
    case 'userName':
      return column(`${alias}.username`, 'text', def);
    case 'displayName':
      return column(target === 'user' ? `${alias}.display_name` : `${alias}.name`, 'text', def);
    case 'active':
      return column(`${alias}.active`, 'boolean', def);
    case 'name':
      if (subDef?.name === 'givenName') return column(`${alias}.given_name`, 'text', subDef);
      if (subDef?.name === 'familyName') return column(`${alias}.family_name`, 'text', subDef);
  }
  if (def.type === 'complex') {
    const sub = subDef ?? findAttribute(def.subAttributes ?? [], 'value');
    if (!sub) throw badRequest('invalidFilter', `"${path}" is complex; name one of its sub-attributes`);
    return column(jsonText(SCIM(alias), [...extension, def.name, sub.name]), 'text', sub);
  }
  return column(jsonText(SCIM(alias), [...extension, def.name]), 'text', def);
}

function likePattern(value: string, op: 'co' | 'sw' | 'ew'): string {
  const escaped = value.replace(/[\\%_]/g, (c) => `\\${c}`);
  return op === 'co' ? `%${escaped}%` : op === 'sw' ? `${escaped}%` : `%${escaped}`;
}

const ORDERING = { gt: '>', ge: '>=', lt: '<', le: '<=' } as const;

/** One comparison of a scalar against a literal. */
function compare(value: Scalar, filter: Comparison, params: SqlParams): string {
  if (filter.op === 'pr') {
    return value.native === 'text' ? `(${value.sql} IS NOT NULL AND ${value.sql} <> '')` : `${value.sql} IS NOT NULL`;
  }
  const { op, compValue } = filter;
  const def = value.def;
  if (compValue === null) {
    if (op === 'eq') return `${value.sql} IS NULL`;
    if (op === 'ne') return `${value.sql} IS NOT NULL`;
    throw badRequest('invalidFilter', `${op} cannot compare with null`);
  }
  if (def.type === 'boolean') {
    if (typeof compValue !== 'boolean') throw badRequest('invalidFilter', `${def.name} compares with true or false`);
    const sql = value.native === 'boolean' ? value.sql : `(${value.sql})::boolean`;
    if (op === 'eq') return `${sql} = ${param(params, compValue)}`;
    if (op === 'ne') return `${sql} IS DISTINCT FROM ${param(params, compValue)}`;
    throw badRequest('invalidFilter', `${op} does not apply to the boolean ${def.name}`);
  }
  if (def.type === 'dateTime') {
    if (typeof compValue !== 'string' || Number.isNaN(Date.parse(compValue))) {
      throw badRequest('invalidFilter', `${def.name} compares with a dateTime string`);
    }
    const sql = value.native === 'timestamptz' ? value.sql : `(${value.sql})::timestamptz`;
    const p = `${param(params, compValue)}::timestamptz`;
    if (op === 'eq') return `${sql} = ${p}`;
    if (op === 'ne') return `${sql} IS DISTINCT FROM ${p}`;
    if (op in ORDERING) return `${sql} ${ORDERING[op as keyof typeof ORDERING]} ${p}`;
    throw badRequest('invalidFilter', `${op} does not apply to the dateTime ${def.name}`);
  }
  if (typeof compValue !== 'string' && typeof compValue !== 'number') {
    throw badRequest('invalidFilter', `${def.name} compares with a string`);
  }
  const fold = !def.caseExact;
  const sql = fold ? `lower(${value.sql})` : value.sql;
  const literal = (text: string) => (fold ? `lower(${param(params, text)}::text)` : param(params, text));
  const text = String(compValue);
  switch (op) {
    case 'eq':
      return `${sql} = ${literal(text)}`;
    case 'ne':
      return `${sql} IS DISTINCT FROM ${literal(text)}`;
    case 'co':
    case 'sw':
    case 'ew':
      return `${sql} LIKE ${literal(likePattern(text, op))}`;
    default:
      return `${sql} ${ORDERING[op]} ${literal(text)}`;
  }
}

function exists(multi: Multi, params: SqlParams, condition: (element: string) => string): string {
  params.aliases = (params.aliases ?? 0) + 1;
  const element = `e${params.aliases}`;
  const where = [multi.join?.(element), condition(element)].filter(Boolean).join(' AND ');
  return `EXISTS (SELECT 1 FROM ${multi.from(element)} WHERE ${where})`;
}

function translate(
  filter: Filter,
  resource: ResourceSchema,
  target: FilterTarget,
  alias: string,
  params: SqlParams,
  element?: { multi: Multi; alias: string },
): string {
  switch (filter.op) {
    case 'and':
    case 'or':
      return `(${filter.filters
        .map((part) => translate(part, resource, target, alias, params, element))
        .join(filter.op === 'and' ? ' AND ' : ' OR ')})`;
    case 'not':
      return `(${translate(filter.filter, resource, target, alias, params, element)}) IS NOT TRUE`;
    case '[]': {
      if (element) throw badRequest('invalidFilter', 'value filters cannot be nested');
      const multi = resolve(resource, target, alias, filter.attrPath);
      if (multi.kind !== 'multi') throw badRequest('invalidFilter', `"${filter.attrPath}" is not multi-valued`);
      return exists(multi, params, (e) =>
        translate(filter.valFilter, resource, target, alias, params, { multi, alias: e }),
      );
    }
    default: {
      const comparison = filter;
      if (element) {
        // Inside `attr[...]`: attribute names are sub-attributes of each value.
        return compare(element.multi.sub(element.alias, comparison.attrPath), comparison, params);
      }
      const value = resolve(resource, target, alias, comparison.attrPath);
      if (value.kind === 'scalar') return compare(value, comparison, params);
      if (filter.op === 'pr' && value.subName === undefined) return exists(value, params, () => 'true');
      const sub = value.subName ?? 'value';
      return exists(value, params, (e) => compare(value.sub(e, sub), comparison, params));
    }
  }
}

/** The SQL condition of `filter` over `u` (users) or `g` (groups); literals are appended to `params`. */
export function filterToSql(filter: Filter, resource: ResourceSchema, target: FilterTarget, params: SqlParams): string {
  return translate(filter, resource, target, target === 'user' ? 'u' : 'g', params);
}

/** The SQL expression to sort by for `sortBy` (a single-valued attribute); 400 invalidValue otherwise. */
export function sortExpression(sortBy: string, resource: ResourceSchema, target: FilterTarget): string {
  let value: Scalar | Multi;
  try {
    value = resolve(resource, target, target === 'user' ? 'u' : 'g', sortBy);
  } catch {
    throw badRequest('invalidValue', `cannot sort by "${sortBy}"`);
  }
  if (value.kind !== 'scalar') throw badRequest('invalidValue', `cannot sort by the multi-valued "${sortBy}"`);
  return value.def.caseExact || value.native !== 'text' ? value.sql : `lower(${value.sql})`;
}
