/**
 * The objects mappings see, and the built-in default mappings as plain host functions. The sandboxed default
 * mappings must produce exactly what these produce.
 */
import { SCHEMA_GROUP, SCHEMA_USER, type ScimGroup, type ScimUser } from '../scim/index.ts';

/** A directory user as a mapping sees it. `uid` is the stable hash of `id` sent as externalId. */
export interface MappingUser {
  id: string;
  uid: string;
  username: string;
  displayName: string | null;
  email: string | null;
  givenName: string | null;
  familyName: string | null;
  active: boolean;
  kind: 'internal' | 'service_account';
  attributes: Record<string, unknown>;
}

/** A directory group as a mapping sees it. Members are added by the engine, from the provider's links. */
export interface MappingGroup {
  id: string;
  uid: string;
  name: string;
  attributes: Record<string, unknown>;
}

/** The provider as a mapping sees it: identity only, never credentials. */
export interface MappingProvider {
  id: string;
  slug: string;
  name: string;
}

/** The built-in user mapping: userName, name, displayName, emails, active, externalId. */
export function defaultUserPayload(user: MappingUser): ScimUser {
  const name: NonNullable<ScimUser['name']> = { formatted: user.displayName ?? user.username };
  if (user.givenName) name.givenName = user.givenName;
  if (user.familyName) name.familyName = user.familyName;
  const payload: ScimUser = {
    schemas: [SCHEMA_USER],
    externalId: user.uid,
    userName: user.username,
    name,
    displayName: user.displayName ?? user.username,
    active: user.active,
  };
  if (user.email) payload.emails = [{ value: user.email, type: 'work', primary: true }];
  return payload;
}

/** The built-in group mapping: displayName and externalId (members are added by the engine). */
export function defaultGroupPayload(group: MappingGroup): ScimGroup {
  return { schemas: [SCHEMA_GROUP], externalId: group.uid, displayName: group.name };
}
