/**
 * The built-in default mappings as sandbox expressions. Merged, they produce exactly `defaultUserPayload` /
 * `defaultGroupPayload` (builtin.ts). db/migrations/0002_mappings.sql seeds the same text as editable rows.
 */
import type { MappingDefinition } from './engine.ts';

/** The default user mappings: account (schemas, externalId, userName, active), emails, and name/displayName. */
export const DEFAULT_USER_MAPPINGS: readonly MappingDefinition[] = Object.freeze([
  {
    name: 'default-user-account',
    expression: `return {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  externalId: user.uid,
  userName: user.username,
  active: user.active,
};`,
  },
  {
    name: 'default-user-emails',
    expression: `if (!user.email) return null;
return { emails: [{ value: user.email, type: 'work', primary: true }] };`,
  },
  {
    name: 'default-user-name',
    expression: `const name = { formatted: user.displayName ?? user.username };
if (user.givenName) name.givenName = user.givenName;
if (user.familyName) name.familyName = user.familyName;
return { name, displayName: user.displayName ?? user.username };`,
  },
]);

/** The default group mapping: schemas, externalId and displayName (the sync adds members). */
export const DEFAULT_GROUP_MAPPINGS: readonly MappingDefinition[] = Object.freeze([
  {
    name: 'default-group',
    expression: `return {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
  externalId: group.uid,
  displayName: group.name,
};`,
  },
]);
