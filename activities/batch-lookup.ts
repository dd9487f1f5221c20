/**
 * Finding a whole batch of not-yet-linked objects on the target with one combined filter per chunk
 * (`externalId eq "a" or userName eq "x" or …`) instead of one or two GETs per object. The plugin's own
 * `findUser` / `findGroup` stays the authority: whatever this cannot settle for certain is left to it.
 */
import type * as z from 'zod';
import type { MatchKeys, RemoteObject } from '../plugins/index.ts';
import { eqFilter, listResponseSchema, type ScimClient, type ScimGroup, type ScimUser } from '../scim/index.ts';

/** Objects looked up per request; two comparisons each keep the URL near 8 KB with uuid-sized values. */
export const LOOKUP_CHUNK = 50;

/**
 * What a batch lookup knows about one object: the remote object to adopt, `null` when the target surely has none,
 * or `undefined` when it cannot tell (several candidates, a truncated answer) and the plugin must look it up alone.
 */
export type LookupResult<T> = RemoteObject<T> | null | undefined;

/** Where and how one kind of object is looked up. */
export interface LookupKind<T extends ScimUser | ScimGroup> {
  endpoint: '/Users' | '/Groups';
  /** The second match key after externalId: userName for users, displayName for groups. */
  nameAttribute: 'userName' | 'displayName';
  schema: z.ZodType<T & { id: string }>;
}

// zod compiles a parser per schema instance: build each list schema once, not once per request.
const listSchemas = new WeakMap<z.ZodType, ReturnType<typeof listResponseSchema>>();
function listSchemaOf(schema: z.ZodType): ReturnType<typeof listResponseSchema> {
  let list = listSchemas.get(schema);
  if (!list) {
    list = listResponseSchema(schema);
    listSchemas.set(schema, list);
  }
  return list;
}

/**
 * Looks up every object of `keys` (externalId first, then the name, as the plugins do) with one `or` filter per
 * {@link LOOKUP_CHUNK} objects. Only exact matches count (externalId exactly, names case-insensitively), so a
 * target that ignores the filter cannot make us adopt a stranger. Throws the request's error when the target
 * refuses the filter; the caller then falls back to per-object lookups.
 */
export async function lookUpMany<T extends ScimUser | ScimGroup>(
  client: ScimClient,
  kind: LookupKind<T>,
  keys: readonly MatchKeys[],
): Promise<Array<LookupResult<T>>> {
  const results: Array<LookupResult<T>> = [];
  for (let start = 0; start < keys.length; start += LOOKUP_CHUNK) {
    const part = keys.slice(start, start + LOOKUP_CHUNK);
    const clauses = part.flatMap(({ externalId, name }) => [
      ...(externalId ? [eqFilter('externalId', externalId)] : []),
      ...(name ? [eqFilter(kind.nameAttribute, name)] : []),
    ]);
    if (clauses.length === 0) {
      results.push(...part.map(() => undefined));
      continue;
    }
    const { body } = await client.request('GET', kind.endpoint, {
      query: { filter: clauses.join(' or '), count: clauses.length + 1 },
      schema: listSchemaOf(kind.schema),
    });
    const resources = (body?.Resources ?? []) as Array<T & { id: string }>;
    const complete = body !== undefined && (body.totalResults === undefined || body.totalResults <= resources.length);
    for (const { externalId, name } of part) {
      results.push(settle(resources, complete, [
        externalId ? (r: T) => r.externalId === externalId : undefined,
        name ? (r: T) => sameName(r[kind.nameAttribute as keyof T], name) : undefined,
      ]));
    }
  }
  return results;
}

/** The one resource the first usable key matches; `undefined` when a key matches several (the plugin reports that) or the answer is partial. */
function settle<T>(resources: ReadonlyArray<T & { id: string }>, complete: boolean, keys: ReadonlyArray<((r: T) => boolean) | undefined>): LookupResult<T> {
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

/** userName and displayName compare case-insensitively (RFC 7643 caseExact=false). */
function sameName(actual: unknown, wanted: string): boolean {
  return typeof actual === 'string' && actual.toLowerCase() === wanted.toLowerCase();
}
