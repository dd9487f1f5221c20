/**
 * `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas` of a source (RFC 7643 §5-§7): what this service
 * provider really supports, from the same schema data that drives parsing, filtering and PATCH.
 */
import { GROUP_RESOURCE, USER_RESOURCE, type ResourceSchema, type SchemaDef } from '../../scim/resource-schema.ts';
import { SCHEMA_LIST_RESPONSE } from '../../scim/schemas.ts';
import { MAX_PATCH_OPERATIONS } from '../../scim/patch.ts';

const SCHEMA_SPC = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';
const SCHEMA_RESOURCE_TYPE = 'urn:ietf:params:scim:schemas:core:2.0:ResourceType';
const SCHEMA_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Schema';

/** The resource types a source serves. */
export const SOURCE_RESOURCES: readonly ResourceSchema[] = [USER_RESOURCE, GROUP_RESOURCE];

/** The ServiceProviderConfig of a source served at `base`. */
export function serviceProviderConfig(
  base: string,
  limits: { maxResults: number; maxPayloadBytes: number; maxBulkOperations: number },
) {
  return {
    schemas: [SCHEMA_SPC],
    documentationUri: 'https://github.com/scimflow/scimflow#inbound-scim-sources',
    patch: { supported: true },
    bulk: { supported: true, maxOperations: limits.maxBulkOperations, maxPayloadSize: limits.maxPayloadBytes },
    filter: { supported: true, maxResults: limits.maxResults },
    changePassword: { supported: false },
    sort: { supported: true },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Bearer token',
        description: `The source's own token, issued by \`scimflow sources create\` (at most ${MAX_PATCH_OPERATIONS} PATCH operations and ${limits.maxPayloadBytes} bytes a request)`,
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${base}/ServiceProviderConfig` },
  };
}

/** One resource type as `/ResourceTypes` lists it. */
export function resourceType(resource: ResourceSchema, base: string) {
  return {
    schemas: [SCHEMA_RESOURCE_TYPE],
    id: resource.name,
    name: resource.name,
    endpoint: resource.endpoint,
    description: resource.core.description,
    schema: resource.core.id,
    schemaExtensions: resource.extensions.map((extension) => ({ schema: extension.id, required: false })),
    meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/${resource.name}` },
  };
}

/** One schema as `/Schemas` lists it. */
export function schemaResource(schema: SchemaDef, base: string) {
  return {
    schemas: [SCHEMA_SCHEMA],
    id: schema.id,
    name: schema.name,
    description: schema.description,
    attributes: schema.attributes,
    meta: { resourceType: 'Schema', location: `${base}/Schemas/${schema.id}` },
  };
}

/** Every schema a source serves. */
export function allSchemas(): SchemaDef[] {
  return SOURCE_RESOURCES.flatMap((resource) => [resource.core, ...resource.extensions]);
}

/** A ListResponse of everything in `items` (discovery lists are never paged). */
export function listOf(items: unknown[]) {
  return {
    schemas: [SCHEMA_LIST_RESPONSE],
    totalResults: items.length,
    startIndex: 1,
    itemsPerPage: items.length,
    Resources: items,
  };
}
