/**
 * The schemas a SCIM service provider serves (RFC 7643 §4, §8.7.1) as data: they drive `/Schemas`, the case-
 * insensitive lookup of attribute names, type coercion of incoming values, and how filters compare values.
 */
import { SCHEMA_ENTERPRISE_USER, SCHEMA_GROUP, SCHEMA_USER } from './schemas.ts';

/** An attribute's data type (RFC 7643 §2.3). */
export type AttributeType = 'string' | 'boolean' | 'decimal' | 'integer' | 'dateTime' | 'reference' | 'complex';

/** One attribute definition, in the shape `/Schemas` returns it. */
export interface AttributeDef {
  name: string;
  type: AttributeType;
  multiValued: boolean;
  description: string;
  required: boolean;
  caseExact: boolean;
  mutability: 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
  returned: 'always' | 'never' | 'default' | 'request';
  uniqueness: 'none' | 'server' | 'global';
  subAttributes?: AttributeDef[];
  canonicalValues?: string[];
  referenceTypes?: string[];
}

/** A schema: its URN, name and attributes. */
export interface SchemaDef {
  id: string;
  name: string;
  description: string;
  attributes: AttributeDef[];
}

/** A resource type: its core schema and the extensions it may carry. */
export interface ResourceSchema {
  name: 'User' | 'Group';
  endpoint: '/Users' | '/Groups';
  core: SchemaDef;
  extensions: SchemaDef[];
}

type Options = Partial<Omit<AttributeDef, 'name' | 'type' | 'subAttributes'>>;

function attr(name: string, type: AttributeType, description: string, options: Options = {}): AttributeDef {
  return {
    name,
    type,
    multiValued: false,
    description,
    required: false,
    caseExact: false,
    mutability: 'readWrite',
    returned: 'default',
    uniqueness: 'none',
    ...options,
  };
}

function complex(name: string, description: string, subAttributes: AttributeDef[], options: Options = {}) {
  return { ...attr(name, 'complex', description, options), subAttributes };
}

/** The value / display / type / primary shape of emails, phoneNumbers, ims, photos, roles and the like. */
function plural(name: string, description: string, types: string[] | undefined, valueType: AttributeType = 'string') {
  return complex(
    name,
    description,
    [
      attr('value', valueType, `The value of the ${name} entry.`),
      attr('display', 'string', 'A human-readable name, primarily used for display purposes.'),
      attr('type', 'string', 'A label indicating the function of the entry.', types ? { canonicalValues: types } : {}),
      attr('primary', 'boolean', 'Whether this is the primary value of the attribute.'),
    ],
    { multiValued: true },
  );
}

const userAttributes: AttributeDef[] = [
  attr('userName', 'string', 'Unique identifier for the User, case-insensitively unique in the directory.', {
    required: true,
    uniqueness: 'server',
  }),
  complex('name', "The components of the user's real name.", [
    attr('formatted', 'string', 'The full name, formatted for display.'),
    attr('familyName', 'string', 'The family name.'),
    attr('givenName', 'string', 'The given name.'),
    attr('middleName', 'string', 'The middle name(s).'),
    attr('honorificPrefix', 'string', 'The honorific prefix(es).'),
    attr('honorificSuffix', 'string', 'The honorific suffix(es).'),
  ]),
  attr('displayName', 'string', 'The name of the User, suitable for display to end-users.'),
  attr('nickName', 'string', 'The casual way to address the user.'),
  attr('profileUrl', 'reference', "A URI of the User's online profile.", { referenceTypes: ['external'] }),
  attr('title', 'string', "The user's title."),
  attr('userType', 'string', 'The relationship between the organization and the user.'),
  attr('preferredLanguage', 'string', "The User's preferred written or spoken language."),
  attr('locale', 'string', "The User's default location."),
  attr('timezone', 'string', "The User's time zone in the IANA Time Zone database format."),
  attr('active', 'boolean', "The User's administrative status; false deactivates the directory user."),
  plural('emails', 'Email addresses for the user.', ['work', 'home', 'other']),
  plural('phoneNumbers', 'Phone numbers for the User.', ['work', 'home', 'mobile', 'fax', 'pager', 'other']),
  plural('ims', 'Instant messaging addresses for the User.', undefined),
  plural('photos', 'URLs of photos of the User.', ['photo', 'thumbnail'], 'reference'),
  complex(
    'addresses',
    'A physical mailing address for this User.',
    [
      attr('formatted', 'string', 'The full mailing address, formatted for display.'),
      attr('streetAddress', 'string', 'The full street address component.'),
      attr('locality', 'string', 'The city or locality component.'),
      attr('region', 'string', 'The state or region component.'),
      attr('postalCode', 'string', 'The zip code or postal code component.'),
      attr('country', 'string', 'The country name component.'),
      attr('type', 'string', 'A label indicating the function of the address.', {
        canonicalValues: ['work', 'home', 'other'],
      }),
      attr('primary', 'boolean', 'Whether this is the primary address.'),
    ],
    { multiValued: true },
  ),
  complex(
    'groups',
    'The groups the user belongs to directly, managed through the Group resource.',
    [
      attr('value', 'string', 'The id of the Group.', { mutability: 'readOnly' }),
      attr('$ref', 'reference', 'The URI of the Group.', { mutability: 'readOnly', referenceTypes: ['Group'] }),
      attr('display', 'string', 'The displayName of the Group.', { mutability: 'readOnly' }),
      attr('type', 'string', 'How the membership was derived.', {
        mutability: 'readOnly',
        canonicalValues: ['direct'],
      }),
    ],
    { multiValued: true, mutability: 'readOnly' },
  ),
  plural('entitlements', 'A list of entitlements for the User.', undefined),
  plural('roles', 'A list of roles for the User.', undefined),
  plural('x509Certificates', 'A list of certificates issued to the User.', undefined),
];

const enterpriseAttributes: AttributeDef[] = [
  attr('employeeNumber', 'string', 'Numeric or alphanumeric identifier assigned to a person.'),
  attr('costCenter', 'string', 'Identifies the name of a cost center.'),
  attr('organization', 'string', 'Identifies the name of an organization.'),
  attr('division', 'string', 'Identifies the name of a division.'),
  attr('department', 'string', 'Identifies the name of a department.'),
  complex('manager', "The User's manager.", [
    attr('value', 'string', 'The id of the SCIM resource representing the manager.'),
    attr('$ref', 'reference', 'The URI of the manager.', { referenceTypes: ['User'] }),
    attr('displayName', 'string', 'The displayName of the manager.', { mutability: 'readOnly' }),
  ]),
];

const groupAttributes: AttributeDef[] = [
  attr('displayName', 'string', 'A human-readable name for the Group, case-insensitively unique in the directory.', {
    required: true,
    uniqueness: 'server',
  }),
  complex(
    'members',
    'The users in the group (nested groups are not supported).',
    [
      attr('value', 'string', 'The id of the member User.', { mutability: 'immutable' }),
      attr('$ref', 'reference', 'The URI of the member.', { mutability: 'immutable', referenceTypes: ['User'] }),
      attr('display', 'string', 'The userName of the member.', { mutability: 'readOnly' }),
      attr('type', 'string', 'The type of the member.', { mutability: 'immutable', canonicalValues: ['User'] }),
    ],
    { multiValued: true },
  ),
];

/** The User resource: core schema and the enterprise extension. */
export const USER_RESOURCE: ResourceSchema = {
  name: 'User',
  endpoint: '/Users',
  core: { id: SCHEMA_USER, name: 'User', description: 'User Account', attributes: userAttributes },
  extensions: [
    {
      id: SCHEMA_ENTERPRISE_USER,
      name: 'EnterpriseUser',
      description: 'Enterprise User',
      attributes: enterpriseAttributes,
    },
  ],
};

/** The Group resource. */
export const GROUP_RESOURCE: ResourceSchema = {
  name: 'Group',
  endpoint: '/Groups',
  core: { id: SCHEMA_GROUP, name: 'Group', description: 'Group', attributes: groupAttributes },
  extensions: [],
};

/** The common attributes every resource has (RFC 7643 §3.1), for attribute lookups. */
export const COMMON_ATTRIBUTES: readonly AttributeDef[] = [
  attr('id', 'string', 'Unique identifier assigned by the service provider.', {
    caseExact: true,
    mutability: 'readOnly',
    returned: 'always',
    uniqueness: 'server',
  }),
  attr('externalId', 'string', "The provisioning client's identifier for the resource.", { caseExact: true }),
  complex(
    'meta',
    'Resource metadata.',
    [
      attr('resourceType', 'string', 'The name of the resource type.', { caseExact: true, mutability: 'readOnly' }),
      attr('created', 'dateTime', 'When the resource was added.', { mutability: 'readOnly' }),
      attr('lastModified', 'dateTime', 'When the resource was last changed.', { mutability: 'readOnly' }),
      attr('location', 'reference', 'The URI of the resource.', { caseExact: true, mutability: 'readOnly' }),
      attr('version', 'string', 'The version (ETag) of the resource.', { caseExact: true, mutability: 'readOnly' }),
    ],
    { mutability: 'readOnly' },
  ),
];

/** Where an attribute path points: the schema URN it belongs to (core or an extension) and its definition. */
export interface ResolvedAttribute {
  /** The extension URN for extension attributes; undefined for core and common attributes. */
  extension: string | undefined;
  def: AttributeDef;
}

/** Finds `name` (any letter case) among `defs`. */
export function findAttribute(defs: readonly AttributeDef[], name: string): AttributeDef | undefined {
  const lower = name.toLowerCase();
  return defs.find((def) => def.name.toLowerCase() === lower);
}

/** The schema URN (core or extension) that `urn` names, in any letter case; undefined when none does. */
export function findSchema(resource: ResourceSchema, urn: string): SchemaDef | undefined {
  const lower = urn.toLowerCase();
  return [resource.core, ...resource.extensions].find((schema) => schema.id.toLowerCase() === lower);
}

/**
 * Splits `urn:…:attr.sub` into the schema and the attribute part; a path without a known URN prefix belongs to
 * the core schema. Returns null for a URN prefix the resource does not know.
 */
export function splitSchemaPrefix(
  resource: ResourceSchema,
  path: string,
): { schema: SchemaDef; isExtension: boolean; rest: string } | null {
  if (!path.toLowerCase().startsWith('urn:')) return { schema: resource.core, isExtension: false, rest: path };
  for (const schema of [resource.core, ...resource.extensions]) {
    if (path.toLowerCase() === schema.id.toLowerCase()) {
      return { schema, isExtension: schema !== resource.core, rest: '' };
    }
    if (path.toLowerCase().startsWith(`${schema.id.toLowerCase()}:`)) {
      return { schema, isExtension: schema !== resource.core, rest: path.slice(schema.id.length + 1) };
    }
  }
  return null;
}

/** Resolves a top-level attribute name (with optional schema URN prefix) of `resource`. */
export function resolveAttribute(resource: ResourceSchema, path: string): ResolvedAttribute | undefined {
  const split = splitSchemaPrefix(resource, path);
  if (!split || split.rest === '') return undefined;
  if (split.isExtension) {
    const def = findAttribute(split.schema.attributes, split.rest);
    return def && { extension: split.schema.id, def };
  }
  const def = findAttribute(resource.core.attributes, split.rest) ?? findAttribute(COMMON_ATTRIBUTES, split.rest);
  return def && { extension: undefined, def };
}
