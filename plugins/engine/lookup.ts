/**
 * Finding objects the target already has, to adopt them instead of creating duplicates: one object at a time (a
 * GET per match key), or a whole batch with one combined filter per chunk (`externalId eq "a" or userName eq "x"
 * or …`) instead of one or two GETs per object.
 */
import type * as z from 'zod';
import { ScimflowError, ScimRequestError } from '../../errors/index.ts';
import { eqFilter, listResponseSchema, type ScimClient, type ScimGroup, type ScimUser } from '../../scim/index.ts';
import type { BatchLookupResult, MatchKeys, RemoteObject } from '../sdk.ts';

/** Objects looked up per request; two comparisons each keep the URL near 8 KB with uuid-sized values. */
export const LOOKUP_CHUNK = 50;

/** Where and how one kind of object is looked up. */
export interface LookupKind<T extends ScimUser | ScimGroup> {
  endpoint: '/Users' | '/Groups';
  /** The second match key after externalId: userName for users, displayName for groups. */
  nameAttribute: 'userName' | 'displayName';
  schema: z.ZodType<T & { id: string }>;
}

// zod compiles a parser per schema instance: build each list schema once, not once per request.
const listSchemas = new WeakMap<z.ZodType, z.ZodType>();
function listSchemaOf<T>(schema: z.ZodType<T>) {
  let list = listSchemas.get(schema) as ReturnType<typeof listResponseSchema<z.ZodType<T>>> | undefined;
  if (!list) {
    list = listResponseSchema(schema);
    listSchemas.set(schema, list);
  }
  return list;
}

/**
 * Finds the one object the first usable key (externalId, then the name) matches exactly; null when none does.
 * Throws ERR_SCIM_CONFLICT when a key matches several.
 */
export async function findOne<T extends ScimUser | ScimGroup>(
  client: ScimClient,
  kind: LookupKind<T>,
  keys: MatchKeys,
): Promise<RemoteObject<T> | null> {
  const { endpoint } = kind;
  const attempts = [
    { attribute: 'externalId', value: keys.externalId },
    { attribute: kind.nameAttribute, value: keys.name },
  ] as const;
  for (const { attribute, value } of attempts) {
    if (value === undefined || value === '') continue;
    const { body } = await client.request('GET', endpoint, {
      query: { filter: eqFilter(attribute, value), count: 2 },
      schema: listSchemaOf(kind.schema),
    });
    // Keep only true matches: a target that ignores the filter must not make us adopt a stranger.
    const matches = (body?.Resources ?? []).filter((resource) =>
      sameValue(attribute, resource[attribute as keyof T], value),
    );
    if (matches.length > 1) {
      throw new ScimflowError(
        'ERR_SCIM_CONFLICT',
        `${matches.length} objects on the target at ${endpoint} match ${attribute} ${JSON.stringify(value)}; cannot choose one to adopt`,
        { details: { endpoint, attribute, matches: matches.map((match) => match.id) } },
      );
    }
    const [match] = matches;
    if (match !== undefined) return { id: match.id, resource: match };
  }
  return null;
}

/**
 * Looks up every object of `keys` (externalId first, then the name, as {@link findOne} does) with one `or` filter
 * per `chunkSize` objects (at most {@link LOOKUP_CHUNK}; less when the target's pages are smaller). Only exact matches count, so a target that ignores the filter cannot make us
 * adopt a stranger; a key several objects match, or an answer that may be partial, settles nothing (`undefined`).
 * Throws the request's error when the target refuses the filter.
 */
export async function findMany<T extends ScimUser | ScimGroup>(
  client: ScimClient,
  kind: LookupKind<T>,
  keys: readonly MatchKeys[],
  chunkSize: number = LOOKUP_CHUNK,
  onTooLong?: (fits: number) => void,
): Promise<Array<BatchLookupResult<T>>> {
  const parts: Array<readonly MatchKeys[]> = [];
  for (let start = 0; start < keys.length; start += chunkSize) parts.push(keys.slice(start, start + chunkSize));
  // Together (the client's request slots bound them): one after another, a page's second chunk waited out every
  // backoff of its first, and the page's creates waited for both.
  return (await Promise.all(parts.map((part) => findChunk(client, kind, part, onTooLong)))).flat();
}

/**
 * The results of one combined filter: {@link findMany} for at most a chunk of keys. A target that refuses its URL
 * as too long (414: 50 keys make some 9 KB, past nginx's default 8 KB) gets each half on its own, and `onTooLong`
 * learns the size tried next.
 */
async function findChunk<T extends ScimUser | ScimGroup>(
  client: ScimClient,
  kind: LookupKind<T>,
  part: readonly MatchKeys[],
  onTooLong?: (fits: number) => void,
): Promise<Array<BatchLookupResult<T>>> {
  const clauses = part.flatMap(({ externalId, name }) => [
    ...(externalId ? [eqFilter('externalId', externalId)] : []),
    ...(name ? [eqFilter(kind.nameAttribute, name)] : []),
  ]);
  if (clauses.length === 0) return part.map(() => undefined);
  let body;
  try {
    ({ body } = await client.request('GET', kind.endpoint, {
      query: { filter: clauses.join(' or '), count: clauses.length + 1 },
      schema: listSchemaOf(kind.schema),
    }));
  } catch (error) {
    if (!(error instanceof ScimRequestError && error.status === 414 && part.length > 1)) throw error;
    const half = Math.ceil(part.length / 2);
    onTooLong?.(half);
    const halves = [part.slice(0, half), part.slice(half)];
    return (await Promise.all(halves.map((keys) => findChunk(client, kind, keys, onTooLong)))).flat();
  }
  const resources = body?.Resources ?? [];
  const complete = body !== undefined && (body.totalResults === undefined || body.totalResults <= resources.length);
  return part.map(({ externalId, name }) =>
    settle(resources, complete, [
      externalId ? (r: T) => r.externalId === externalId : undefined,
      name ? (r: T) => sameValue(kind.nameAttribute, r[kind.nameAttribute as keyof T], name) : undefined,
    ]),
  );
}

/** The one resource the first usable key matches; `undefined` when a key matches several (findOne reports that) or the answer is partial. */
function settle<T>(
  resources: ReadonlyArray<T & { id: string }>,
  complete: boolean,
  keys: ReadonlyArray<((r: T) => boolean) | undefined>,
): BatchLookupResult<T> {
  // A paged answer may have left matches out: then neither a match nor an absence is certain.
  if (!complete) return undefined;
  for (const matches of keys) {
    if (!matches) continue;
    const found = resources.filter(matches);
    if (found.length > 1) return undefined;
    if (found[0]) return { id: found[0].id, resource: found[0] };
  }
  return null;
}

/** userName and displayName compare case-insensitively (RFC 7643 caseExact=false); externalId exactly. */
function sameValue(attribute: string, actual: unknown, wanted: string): boolean {
  if (typeof actual !== 'string') return false;
  return attribute === 'externalId' ? actual === wanted : actual.toLowerCase() === wanted.toLowerCase();
}
