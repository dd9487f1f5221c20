import {
  createSource,
  deleteSource,
  getSource,
  listSources,
  rotateSourceToken,
  SourceInputSchema,
  SourceUpdateSchema,
  updateSource,
  type Db,
  type SourceWithToken,
} from '../db/index.ts';
import { defineRoute, named, type ApiRoute } from './route.ts';
import { SourceTokenSchema, SourceViewSchema } from './view-schemas.ts';
import * as z from 'zod';

/** Where a source's SCIM service provider is served, relative to the API's base URL. */
export function sourceScimPath(slug: string): string {
  return `/source/scim/${slug}/v2`;
}

const Source = named('Source', SourceViewSchema);
const SourceToken = named('SourceToken', SourceTokenSchema);

function withPath(created: SourceWithToken) {
  return { ...created, scimPath: sourceScimPath(created.source.slug) };
}

/** Inbound SCIM sources: create (with the token, once), list, show, change, rotate the token, delete. */
export function sourceRoutes(db: Db): ApiRoute[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/sources',
      operationId: 'listSources',
      summary: 'List inbound SCIM sources',
      tag: 'sources',
      status: 200,
      response: named('SourceList', z.object({ items: z.array(SourceViewSchema) })),
      handle: async () => ({ items: await listSources(db) }),
    }),
    defineRoute({
      method: 'POST',
      path: '/sources',
      operationId: 'createSource',
      summary: 'Create a source and its service account; the answer carries the bearer token, shown only this once',
      tag: 'sources',
      status: 201,
      body: named('SourceInput', SourceInputSchema),
      response: SourceToken,
      conflicts: true,
      handle: async ({ body }) => withPath(await createSource(db, body)),
    }),
    defineRoute({
      method: 'GET',
      path: '/sources/:slug',
      operationId: 'getSource',
      summary: 'Get a source',
      tag: 'sources',
      status: 200,
      response: Source,
      handle: ({ params }) => getSource(db, params['slug']!),
    }),
    defineRoute({
      method: 'PATCH',
      path: '/sources/:slug',
      operationId: 'updateSource',
      summary: "Change a source's name, delete policy or claim setting",
      tag: 'sources',
      status: 200,
      body: named('SourceUpdate', SourceUpdateSchema),
      response: Source,
      handle: ({ params, body }) => updateSource(db, params['slug']!, body),
    }),
    defineRoute({
      method: 'POST',
      path: '/sources/:slug/rotate-token',
      operationId: 'rotateSourceToken',
      summary: "Replace a source's token; the old one stops working at once and the new one is shown only this once",
      tag: 'sources',
      status: 200,
      response: SourceToken,
      handle: async ({ params }) => withPath(await rotateSourceToken(db, params['slug']!)),
    }),
    defineRoute({
      method: 'DELETE',
      path: '/sources/:slug',
      operationId: 'deleteSource',
      summary: 'Delete a source and its service account; the objects it created stay in the directory',
      tag: 'sources',
      status: 204,
      handle: ({ params }) => deleteSource(db, params['slug']!),
    }),
  ];
}
