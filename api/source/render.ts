/**
 * Directory users and groups as SCIM resources and back. Columns (userName, displayName, active, name, email) are
 * authoritative; every other SCIM attribute the source sent lives in `attributes.scim`, where mappings can read it.
 */
import type { DirectoryGroup, DirectoryUser, UserInput } from '../../db/index.ts';
import {
  findAttribute,
  splitSchemaPrefix,
  COMMON_ATTRIBUTES,
  type ResourceSchema,
} from '../../scim/resource-schema.ts';
import { isObject, schemasOf, type ResourceDocument } from '../../scim/resource.ts';
import { ScimServiceError } from '../../scim/service-error.ts';

type Json = Record<string, unknown>;

function storedScim(attributes: Record<string, unknown>): Json {
  return isObject(attributes['scim']) ? structuredClone(attributes['scim']) : {};
}

/** The writable SCIM content of a user: what PATCH starts from. */
export function userDocument(user: DirectoryUser): ResourceDocument {
  const doc = storedScim(user.attributes);
  doc['userName'] = user.username;
  if (user.displayName !== null) doc['displayName'] = user.displayName;
  else delete doc['displayName'];
  doc['active'] = user.active;
  const name: Json = isObject(doc['name']) ? doc['name'] : {};
  if (user.givenName !== null) name['givenName'] = user.givenName;
  else delete name['givenName'];
  if (user.familyName !== null) name['familyName'] = user.familyName;
  else delete name['familyName'];
  if (Object.keys(name).length > 0) doc['name'] = name;
  else delete doc['name'];
  if (doc['emails'] === undefined && user.email !== null) {
    doc['emails'] = [{ value: user.email, type: 'work', primary: true }];
  }
  return doc;
}

function primaryEmail(doc: ResourceDocument): string | null {
  const emails = Array.isArray(doc['emails']) ? doc['emails'].filter(isObject) : [];
  const chosen = emails.find((email) => email['primary'] === true) ?? emails[0];
  return typeof chosen?.['value'] === 'string' ? chosen['value'] : null;
}

/** The directory columns of a user document; `attributes` keeps every other key it already had. */
export function userColumns(doc: ResourceDocument, attributes: Record<string, unknown> = {}): UserInput {
  const { userName, displayName, active, ...rest } = doc;
  const name = isObject(doc['name']) ? doc['name'] : {};
  return {
    username: userName as string,
    displayName: typeof displayName === 'string' ? displayName : null,
    email: primaryEmail(doc),
    givenName: typeof name['givenName'] === 'string' ? name['givenName'] : null,
    familyName: typeof name['familyName'] === 'string' ? name['familyName'] : null,
    active: active !== false,
    kind: 'internal',
    attributes: { ...attributes, scim: rest },
  };
}

/** The writable SCIM content of a group (members are kept in group_members, not here). */
export function groupDocument(group: DirectoryGroup): ResourceDocument {
  return { ...storedScim(group.attributes), displayName: group.name };
}

/** The directory columns of a group document. */
export function groupColumns(doc: ResourceDocument, attributes: Record<string, unknown> = {}) {
  const { displayName, members: _members, ...rest } = doc;
  return { name: displayName as string, attributes: { ...attributes, scim: rest } };
}

/** A weak ETag from a version. */
export function etag(version: string): string {
  return `W/"${version}"`;
}

function meta(resourceType: string, object: DirectoryUser | DirectoryGroup, version: string, location: string) {
  return {
    resourceType,
    created: object.createdAt,
    lastModified: object.updatedAt,
    location,
    version: etag(version),
  };
}

/** A user as a SCIM resource. */
export function renderUser(
  resource: ResourceSchema,
  user: DirectoryUser,
  version: string,
  groups: ReadonlyArray<{ id: string; name: string }>,
  base: string,
): Json {
  const doc = userDocument(user);
  return {
    schemas: schemasOf(resource, doc),
    id: user.id,
    ...doc,
    ...(groups.length > 0
      ? {
          groups: groups.map((group) => ({
            value: group.id,
            $ref: `${base}/Groups/${group.id}`,
            display: group.name,
            type: 'direct',
          })),
        }
      : {}),
    meta: meta('User', user, version, `${base}/Users/${user.id}`),
  };
}

/** A group as a SCIM resource; `members` undefined leaves the attribute out (not asked for). */
export function renderGroup(
  resource: ResourceSchema,
  group: DirectoryGroup,
  version: string,
  members: ReadonlyArray<{ id: string; username: string }> | undefined,
  base: string,
): Json {
  const doc = groupDocument(group);
  return {
    schemas: schemasOf(resource, doc),
    id: group.id,
    ...doc,
    ...(members === undefined
      ? {}
      : {
          members: members.map((member) => ({
            value: member.id,
            $ref: `${base}/Users/${member.id}`,
            display: member.username,
            type: 'User',
          })),
        }),
    meta: meta('Group', group, version, `${base}/Groups/${group.id}`),
  };
}

/** `attributes` / `excludedAttributes` of a request (RFC 7644 §3.4.2.5), as lists of attribute paths. */
export interface Projection {
  attributes: string[] | undefined;
  excludedAttributes: string[] | undefined;
}

/** Resolves a projection path to [top-level key, extension key or undefined, sub-attribute or undefined]. */
function projectionKey(resource: ResourceSchema, path: string): [string, string | undefined] | undefined {
  const split = splitSchemaPrefix(resource, path.trim());
  if (!split) return undefined;
  if (split.rest === '') return split.isExtension ? [split.schema.id, undefined] : undefined;
  const [name = '', sub] = split.rest.split('.');
  const defs = split.isExtension ? split.schema.attributes : [...resource.core.attributes, ...COMMON_ATTRIBUTES];
  const def = findAttribute(defs, name);
  if (!def) return undefined;
  const subDef = sub === undefined ? undefined : findAttribute(def.subAttributes ?? [], sub);
  return split.isExtension
    ? [split.schema.id, `${def.name}${subDef ? `.${subDef.name}` : ''}`]
    : [def.name, subDef?.name];
}

function pick(value: unknown, sub: string | undefined): unknown {
  if (sub === undefined) return value;
  if (Array.isArray(value)) {
    const items = value.filter(isObject).map((item) => (sub in item ? { [sub]: item[sub] } : undefined));
    const kept = items.filter((item) => item !== undefined);
    return kept.length > 0 ? kept : undefined;
  }
  return isObject(value) && sub in value ? { [sub]: value[sub] } : undefined;
}

function merge(target: Json, key: string, value: unknown): void {
  if (value === undefined) return;
  const current = target[key];
  if (isObject(current) && isObject(value)) target[key] = { ...current, ...value };
  else target[key] = value;
}

/** Whether a projection returns the top-level attribute `name` (e.g. whether group members must be read). */
export function projectionWants(resource: ResourceSchema, projection: Projection, name: string): boolean {
  const keys = (paths: string[]) => paths.map((path) => projectionKey(resource, path)?.[0]);
  if (projection.attributes) return keys(projection.attributes).includes(name);
  if (projection.excludedAttributes) {
    return !projection.excludedAttributes.some((path) => {
      const key = projectionKey(resource, path);
      return key?.[0] === name && key[1] === undefined;
    });
  }
  return true;
}

/** Applies a projection to a rendered resource; `id` and `schemas` are always returned. */
export function project(resource: ResourceSchema, rendered: Json, projection: Projection): Json {
  if (projection.attributes) {
    const out: Json = { schemas: rendered['schemas'], id: rendered['id'] };
    for (const path of projection.attributes) {
      const key = projectionKey(resource, path);
      if (!key) continue;
      const [top, inner] = key;
      if (top.startsWith('urn:') && inner !== undefined) {
        const [attr = '', sub] = inner.split('.');
        const extension = rendered[top];
        const value = isObject(extension) ? pick(extension[attr], sub) : undefined;
        if (value !== undefined) merge(out, top, { [attr]: value });
      } else merge(out, top, pick(rendered[top], inner));
    }
    return out;
  }
  if (projection.excludedAttributes) {
    const out = structuredClone(rendered);
    for (const path of projection.excludedAttributes) {
      const key = projectionKey(resource, path);
      if (!key || key[0] === 'id' || key[0] === 'schemas') continue;
      const [top, inner] = key;
      if (inner === undefined) delete out[top];
      else if (top.startsWith('urn:') && isObject(out[top])) {
        const [attr = '', sub] = inner.split('.');
        const extension = out[top];
        if (sub === undefined) delete extension[attr];
        else if (isObject(extension[attr])) delete extension[attr][sub];
      } else if (Array.isArray(out[top])) for (const item of out[top].filter(isObject)) delete item[inner];
      else if (isObject(out[top])) delete out[top][inner];
    }
    return out;
  }
  return rendered;
}

/** Whether an If-Match / If-None-Match header value (`*` or a list of ETags) matches `version`. */
export function etagMatches(header: string, version: string): boolean {
  const tags = header.split(',').map((tag) => tag.trim());
  return tags.some((tag) => tag === '*' || tag.replace(/^W\//, '') === `"${version}"`);
}

/** Throws 412 unless the If-Match header (when given) matches `version`. */
export function checkIfMatch(ifMatch: string | undefined, version: string): void {
  if (ifMatch !== undefined && !etagMatches(ifMatch, version)) {
    throw new ScimServiceError(412, 'the resource changed since the version given in If-Match');
  }
}
