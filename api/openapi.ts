import * as z from 'zod';
import type { ApiRoute, Named } from './route.ts';
import { ErrorBodySchema } from './view-schemas.ts';

/** Routes served under one path prefix. */
export interface RouteGroup {
  prefix: string;
  routes: readonly ApiRoute[];
}

type JsonSchema = Record<string, unknown>;

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'The body or query failed validation (`ERR_VALIDATION`, with `issues` naming each field), or the configuration is unusable (`ERR_CONFIG`)',
  401: 'No API token, or one that is unknown, expired or revoked (`ERR_UNAUTHENTICATED`; `details.reason` says which)',
  403: "The token's role is too weak (`ERR_FORBIDDEN`, `details.reason` `role`), or the Host or Origin is not allowed",
  404: 'No such object (`ERR_NOT_FOUND`)',
  409: 'A uniqueness rule or the object state forbids it (`ERR_CONFLICT`)',
  413: 'The request body is larger than the limit (`ERR_VALIDATION`)',
  415: 'The request body is not of the type the operation takes (`application/json`, or `application/x-ndjson` for a streamed import) (`ERR_UNSUPPORTED_MEDIA_TYPE`)',
  500: 'Unexpected failure; the details are in the server log',
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as JsonSchema;
  return rest;
}

/** `/users/:id` → `/users/{id}`. */
function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** The OpenAPI extension that carries each operation's weakest allowed role. */
export const ROLE_EXTENSION = 'x-scimflow-role';

/**
 * Builds the OpenAPI 3.1 document of `groups` from the same zod schemas the routes validate with. Every
 * non-public operation requires the bearer scheme and names its role in `x-scimflow-role`.
 */
export function buildOpenApiDocument(
  groups: readonly RouteGroup[],
  info: { title: string; version: string },
): JsonSchema {
  const components: Record<string, JsonSchema> = { Error: jsonSchema(ErrorBodySchema, 'output') };
  const ref = (named: Named, io: 'input' | 'output'): JsonSchema => {
    components[named.name] ??= jsonSchema(named.schema, io);
    return { $ref: `#/components/schemas/${named.name}` };
  };
  const errorResponse = (status: number) => ({
    description: ERROR_DESCRIPTIONS[status] ?? 'Error',
    content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
  });

  const paths: Record<string, Record<string, unknown>> = {};
  for (const { prefix, routes } of groups) {
    for (const route of routes) {
      const pathParams = [...route.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((match) => match[1]!);
      const parameters: JsonSchema[] = pathParams.map((name) => ({
        name,
        in: 'path',
        required: true,
        schema: { type: 'string' },
      }));
      if (route.query) {
        const query = jsonSchema(route.query, 'input') as {
          properties?: Record<string, JsonSchema>;
          required?: string[];
        };
        for (const [name, schema] of Object.entries(query.properties ?? {})) {
          const { description, ...rest } = schema as { description?: string };
          parameters.push({
            name,
            in: 'query',
            required: query.required?.includes(name) ?? false,
            schema: rest,
            ...(description === undefined ? {} : { description }),
          });
        }
      }
      const guarded = route.role !== 'public';
      const writes = route.method !== 'GET';
      const errors = [
        ...(route.body || route.query || route.streamed ? [400] : []),
        ...(guarded ? [401, 403] : []),
        ...(pathParams.length > 0 ? [404] : []),
        ...(route.conflicts ? [409] : []),
        ...(guarded && writes && route.body ? [413, 415] : []),
        ...(guarded && writes && route.streamed ? [415] : []),
        500,
      ];
      const success =
        route.status === 204 || !route.response
          ? { description: 'Done; no content' }
          : { description: 'Success', content: { 'application/json': { schema: ref(route.response, 'output') } } };
      const operation = {
        operationId: route.operationId,
        summary: route.summary,
        tags: [route.tag],
        security: guarded ? [{ apiToken: [] }] : [],
        [ROLE_EXTENSION]: route.role,
        ...(parameters.length > 0 ? { parameters } : {}),
        ...(route.body
          ? { requestBody: { required: true, content: { 'application/json': { schema: ref(route.body, 'input') } } } }
          : {}),
        ...(route.streamed
          ? {
              requestBody: {
                required: true,
                description: 'Newline-delimited JSON: one value of this schema per line, read as it arrives',
                content: { 'application/x-ndjson': { schema: ref(route.streamed.lines, 'input') } },
              },
            }
          : {}),
        responses: {
          [String(route.status)]: success,
          ...Object.fromEntries(errors.map((status) => [String(status), errorResponse(status)])),
        },
      };
      const path = openApiPath(`${prefix}${route.path}`);
      paths[path] = { ...paths[path], [route.method.toLowerCase()]: operation };
    }
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        apiToken: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An API token (`sfa_...`) from `scimflow tokens create` or `POST /api/v1/tokens`, or, when SCIMFLOW_OIDC_ISSUER is set, a JWT of that issuer',
        },
      },
    },
  };
}
