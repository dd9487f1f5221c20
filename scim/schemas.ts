/** zod schemas for the SCIM 2.0 resources and messages scimflow sends and reads (RFC 7643, RFC 7644). */
import * as z from 'zod';
// The rule PostgreSQL sets, in a module that imports nothing: the same check as the directory's text fields.
import { isStorableText, UNSTORABLE_TEXT } from '../db/text.ts';

export const SCHEMA_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCHEMA_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const SCHEMA_ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const SCHEMA_PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SCHEMA_LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SCHEMA_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** Reads a boolean that some vendors send as the string "true"/"false" (Salesforce's examples do). */
const LenientBooleanSchema = z.preprocess(
  (value) => (typeof value === 'string' && /^(true|false)$/i.test(value) ? value.toLowerCase() === 'true' : value),
  z.boolean(),
);

/** One value of a multi-valued attribute such as emails or phoneNumbers. */
export const MultiValueSchema = z.looseObject({
  value: z.string().max(2048),
  type: z.string().max(64).optional(),
  primary: z.boolean().optional(),
  display: z.string().max(2048).optional(),
});

/** One value of a multi-valued attribute as a target returns it: `primary` may come as "true". */
const RemoteMultiValueSchema = MultiValueSchema.extend({ primary: LenientBooleanSchema.optional() });

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

/** Reads a count that some vendors send as a numeric string. */
const LenientCountSchema = z.preprocess(
  (value) => (typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value),
  z.number().int().nonnegative(),
);

/** One PATCH operation (RFC 7644 §3.5.2). `op` is read case-insensitively: Entra sends `Replace`. */
export const PatchOperationSchema = z.looseObject({
  op: z.preprocess(
    (value) => (typeof value === 'string' ? value.toLowerCase() : value),
    z.enum(['add', 'replace', 'remove']),
  ),
  path: z.string().min(1).optional(),
  value: z.unknown().optional(),
});
/** One PATCH operation: add, replace or remove, with an optional path and value. */
export type PatchOperation = z.infer<typeof PatchOperationSchema>;

/** A PatchOp request message (RFC 7644 §3.5.2). */
export const PatchOpSchema = z.looseObject({
  schemas: z.array(z.string()).min(1),
  Operations: z.array(PatchOperationSchema).min(1),
});
/** A PatchOp request message. */
export type PatchOp = z.infer<typeof PatchOpSchema>;

/**
 * Renames an object's keys that differ only in case from `names` to their RFC spelling: RFC 7643 §2.1 makes
 * attribute names case-insensitive, and some servers send `resources` or `totalresults`. A key already spelled
 * right wins over a differently-cased twin. Anything that is not a plain object passes through.
 */
export function canonicalKeys(names: readonly string[]): (value: unknown) => unknown {
  const byLower = new Map(names.map((name) => [name.toLowerCase(), name]));
  const spelled = new Set(names);
  return (value) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
    const source = value as Record<string, unknown>;
    let renamed: Record<string, unknown> | undefined;
    for (const key of Object.keys(source)) {
      // A key spelled right needs no lower-case copy: nearly every key of every answer (a user's are a dozen).
      if (spelled.has(key)) continue;
      const canonical = byLower.get(key.toLowerCase());
      if (canonical === undefined || canonical === key || Object.hasOwn(source, canonical)) continue;
      renamed ??= { ...source };
      renamed[canonical] = source[key];
      delete renamed[key];
    }
    return renamed ?? value;
  };
}

const LIST_RESPONSE_KEYS = ['schemas', 'totalResults', 'startIndex', 'itemsPerPage', 'Resources'];

/**
 * A ListResponse (RFC 7644 §3.4.2) around `resourceSchema`, its attribute names read case-insensitively. `Resources` may be omitted when nothing matched, and
 * `totalResults` is optional because cursor-paged targets (AWS) leave it out.
 */
export function listResponseSchema<T extends z.ZodType>(resourceSchema: T) {
  return z.preprocess(
    canonicalKeys(LIST_RESPONSE_KEYS),
    z.looseObject({
      schemas: z.array(z.string()).optional(),
      totalResults: LenientCountSchema.optional(),
      startIndex: LenientCountSchema.optional(),
      itemsPerPage: LenientCountSchema.optional(),
      Resources: z.array(resourceSchema).default([]),
    }),
  );
}

/** A SCIM error body (RFC 7644 §3.12); `status` is a string per the RFC, but many targets send a number. */
export const ScimErrorSchema = z.looseObject({
  schemas: z.array(z.string()).optional(),
  status: z.union([z.string(), z.number()]).optional(),
  scimType: z.string().optional(),
  detail: z.string().optional(),
});
/** A SCIM error body. */
export type ScimError = z.infer<typeof ScimErrorSchema>;

const SupportedSchema = z.looseObject({ supported: LenientBooleanSchema.catch(false).default(false) });

/**
 * A ServiceProviderConfig (RFC 7643 §5), read leniently: a missing or malformed feature object means the
 * feature is unsupported, so a sparse answer still yields a usable configuration.
 */
export const ServiceProviderConfigSchema = z.preprocess(
  canonicalKeys(['schemas', 'patch', 'bulk', 'filter', 'etag', 'changePassword', 'sort']),
  z.looseObject({
    schemas: z.array(z.string()).optional(),
    patch: SupportedSchema.catch({ supported: false }).default({ supported: false }),
    bulk: z
      .looseObject({
        supported: LenientBooleanSchema.catch(false).default(false),
        maxOperations: LenientCountSchema.catch(0).default(0),
        maxPayloadSize: LenientCountSchema.catch(0).default(0),
      })
      .catch({ supported: false, maxOperations: 0, maxPayloadSize: 0 })
      .default({ supported: false, maxOperations: 0, maxPayloadSize: 0 }),
    filter: z
      .looseObject({
        supported: LenientBooleanSchema.catch(false).default(false),
        maxResults: LenientCountSchema.catch(0).default(0),
      })
      .catch({ supported: false, maxResults: 0 })
      .default({ supported: false, maxResults: 0 }),
    etag: SupportedSchema.catch({ supported: false }).default({ supported: false }),
    changePassword: SupportedSchema.catch({ supported: false }).default({ supported: false }),
    sort: SupportedSchema.catch({ supported: false }).default({ supported: false }),
  }),
);
/** A ServiceProviderConfig with every feature object present. */
export type ServiceProviderConfig = z.infer<typeof ServiceProviderConfigSchema>;

/** A ResourceType (RFC 7643 §6). */
export const ResourceTypeSchema = z.looseObject({
  schemas: z.array(z.string()).optional(),
  id: z.string().optional(),
  name: z.string().min(1),
  endpoint: z.string().min(1),
  schema: z.string().min(1),
  description: z.string().optional(),
  schemaExtensions: z.array(z.looseObject({ schema: z.string(), required: z.boolean().optional() })).optional(),
});
/** A ResourceType. */
export type ResourceType = z.infer<typeof ResourceTypeSchema>;

/**
 * Reads an id some targets send as a number. An id with U+0000 or an unpaired surrogate is refused: PostgreSQL could
 * not store it as it is, and a changed one would name another object.
 */
const RemoteIdSchema = z.preprocess(
  (value) => (typeof value === 'number' ? String(value) : value),
  z.string().min(1).refine(isStorableText, UNSTORABLE_TEXT),
);

/*
 * The two schemas every create, read and lookup answer goes through are compiled (`z.compile`): zod generates a
 * parser for each that builds the same result as its runtime one, which it falls back on for any input the generated
 * one does not accept, so a failure's issues are the runtime's too. A user's answer cost 1.5 KiB and 2 µs less.
 */

/**
 * A User as a target returns it: `id` is required and `schemas` defaults to core User, because targets are
 * lenient about echoing it; its core attribute names are read in any case (RFC 7643 §2.1), and booleans sent as
 * "true" / "false" are read as booleans. What scimflow sends (`ScimUserSchema`) stays strict: the mapping sandbox's
 * compiled check covers only plain schemas.
 */
export const RemoteUserSchema = z.compile(
  z.preprocess(
    canonicalKeys(Object.keys(ScimUserSchema.shape)),
    ScimUserSchema.extend({
      schemas: z.array(z.string().min(1)).min(1).default([SCHEMA_USER]),
      id: RemoteIdSchema,
      active: LenientBooleanSchema.optional(),
      emails: z.array(RemoteMultiValueSchema).optional(),
      phoneNumbers: z.array(RemoteMultiValueSchema).optional(),
    }),
  ),
);

/** A Group as a target returns it: `id` is required and `schemas` defaults to core Group; names read in any case. */
export const RemoteGroupSchema = z.compile(
  z.preprocess(
    canonicalKeys(Object.keys(ScimGroupSchema.shape)),
    ScimGroupSchema.extend({
      schemas: z.array(z.string().min(1)).min(1).default([SCHEMA_GROUP]),
      id: RemoteIdSchema,
      members: z
        .array(z.preprocess(canonicalKeys(['value', 'display', 'type', '$ref']), ScimGroupMemberSchema))
        .optional(),
    }),
  ),
);
