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
import type { Auditor } from './audit.ts';
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

function sourceChange(action: string, source: { id: string; slug: string }) {
  return { action, targetType: 'source', targetId: source.id, targetName: source.slug };
}

/** Inbound SCIM sources: create (with the token, once), list, show, change, rotate the token, delete. */
export function sourceRoutes(db: Db, audit: Auditor): ApiRoute[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/sources',
      operationId: 'listSources',
      summary: 'List inbound SCIM sources',
      tag: 'sources',
      role: 'viewer',
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
      role: 'admin',
      status: 201,
      body: named('SourceInput', SourceInputSchema),
      response: SourceToken,
      conflicts: true,
      handle: async ({ body, caller }) => {
        const created = await audit.change(
          caller,
          (q) => createSource(q, body),
          (made) => sourceChange('source.create', made.source),
        );
        return withPath(created);
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/sources/:slug',
      operationId: 'getSource',
      summary: 'Get a source',
      tag: 'sources',
      role: 'viewer',
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
      role: 'admin',
      status: 200,
      body: named('SourceUpdate', SourceUpdateSchema),
      response: Source,
      handle: async ({ params, body, caller }) => {
        return audit.change(
          caller,
          (q) => updateSource(q, params['slug']!, body),
          (source) => ({ ...sourceChange('source.update', source), details: { fields: Object.keys(body) } }),
        );
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/sources/:slug/rotate-token',
      operationId: 'rotateSourceToken',
      summary: "Replace a source's token; the old one stops working at once and the new one is shown only this once",
      tag: 'sources',
      role: 'admin',
      status: 200,
      response: SourceToken,
      handle: async ({ params, caller }) => {
        const rotated = await audit.change(
          caller,
          (q) => rotateSourceToken(q, params['slug']!),
          (made) => sourceChange('source.rotate-token', made.source),
        );
        return withPath(rotated);
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/sources/:slug',
      operationId: 'deleteSource',
      summary: 'Delete a source and its service account; the objects it created stay in the directory',
      tag: 'sources',
      role: 'admin',
      status: 204,
      handle: async ({ params, caller }) => {
        const source = await getSource(db, params['slug']!);
        await audit.change(
          caller,
          (q) => deleteSource(q, source.slug),
          () => sourceChange('source.delete', source),
        );
      },
    }),
  ];
}
