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
  404: 'No such object (`ERR_NOT_FOUND`)',
  409: 'A uniqueness rule or the object state forbids it (`ERR_CONFLICT`)',
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

/** Builds the OpenAPI 3.1 document of `groups` from the same zod schemas the routes validate with. */
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
      const errors = [
        ...(route.body || route.query ? [400] : []),
        ...(pathParams.length > 0 ? [404] : []),
        ...(route.conflicts ? [409] : []),
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
        ...(parameters.length > 0 ? { parameters } : {}),
        ...(route.body
          ? { requestBody: { required: true, content: { 'application/json': { schema: ref(route.body, 'input') } } } }
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
  return { openapi: '3.1.0', info, paths, components: { schemas: components } };
}
