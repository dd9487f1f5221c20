/** zod schemas for the SCIM 2.0 resources and messages scimflow sends and reads (RFC 7643, RFC 7644). */
import * as z from 'zod';

export const SCHEMA_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCHEMA_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const SCHEMA_ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const SCHEMA_PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SCHEMA_LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SCHEMA_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** One value of a multi-valued attribute such as emails or phoneNumbers. */
export const MultiValueSchema = z.looseObject({
  value: z.string().max(2048),
  type: z.string().max(64).optional(),
  primary: z.boolean().optional(),
  display: z.string().max(2048).optional(),
});

/** The name complex attribute of a User. */
export const NameSchema = z.looseObject({
  formatted: z.string().max(1024).optional(),
  familyName: z.string().max(256).optional(),
  givenName: z.string().max(256).optional(),
  middleName: z.string().max(256).optional(),
  honorificPrefix: z.string().max(64).optional(),
  honorificSuffix: z.string().max(64).optional(),
});

const MetaSchema = z.looseObject({
  resourceType: z.string().optional(),
  created: z.string().optional(),
  lastModified: z.string().optional(),
  location: z.string().optional(),
  version: z.string().optional(),
});

/**
 * A SCIM User. Unknown attributes and extension URNs pass through untouched: targets define their own, and
 * mappings may send them.
 */
export const ScimUserSchema = z.looseObject({
  schemas: z.array(z.string().min(1)).min(1),
  id: z.string().min(1).optional(),
  externalId: z.string().min(1).max(1024).optional(),
  userName: z.string().min(1).max(1024),
  name: NameSchema.optional(),
  displayName: z.string().max(1024).optional(),
  nickName: z.string().max(1024).optional(),
  title: z.string().max(1024).optional(),
  userType: z.string().max(256).optional(),
  preferredLanguage: z.string().max(64).optional(),
  locale: z.string().max(64).optional(),
  timezone: z.string().max(64).optional(),
  active: z.boolean().optional(),
  emails: z.array(MultiValueSchema).optional(),
  phoneNumbers: z.array(MultiValueSchema).optional(),
  meta: MetaSchema.optional(),
});
export type ScimUser = z.infer<typeof ScimUserSchema>;

/** One member of a SCIM Group: `value` is the member's id on the target. */
export const ScimGroupMemberSchema = z.looseObject({
  value: z.string().min(1),
  display: z.string().optional(),
  type: z.string().optional(),
  $ref: z.string().optional(),
});
export type ScimGroupMember = z.infer<typeof ScimGroupMemberSchema>;

/** A SCIM Group. */
export const ScimGroupSchema = z.looseObject({
  schemas: z.array(z.string().min(1)).min(1),
  id: z.string().min(1).optional(),
  externalId: z.string().min(1).max(1024).optional(),
  displayName: z.string().min(1).max(1024),
  members: z.array(ScimGroupMemberSchema).optional(),
  meta: MetaSchema.optional(),
});
export type ScimGroup = z.infer<typeof ScimGroupSchema>;
