import * as z from 'zod';
import { randomUUID } from 'node:crypto';
import { stableUid } from '../activities/index.ts';
import {
  createMapping,
  deleteMapping,
  getGroup,
  getMapping,
  getProvider,
  getUser,
  listMappings,
  listProviderMappings,
  loadMappingLimits,
  loadProviderMappings,
  MappingInputSchema,
  MappingUpdateSchema,
  setProviderMappings,
  updateMapping,
  type Db,
} from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';
import type { MappingEngine, MappingGroup, MappingLimits, MappingUser } from '../sandbox/index.ts';
import type { Auditor } from './audit.ts';
import { defineRoute, named, type ApiRoute } from './route.ts';

const MappingViewSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  objectType: z.enum(['user', 'group']),
  expression: z.string(),
  version: z.number().int(),
  builtin: z.boolean(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const Mapping = named('Mapping', MappingViewSchema);
const MappingList = named('MappingList', z.object({ items: z.array(MappingViewSchema) }));

/** `GET /mappings` parameters. */
export const MappingsQuerySchema = z.object({ objectType: z.enum(['user', 'group']).optional() });

/** `PUT /providers/{id}/mappings` body: the provider's full mapping set. */
export const ProviderMappingsSchema = z.strictObject({ mappingIds: z.array(z.uuid()).max(1000) });

const InlineUserSchema = z.strictObject({
  id: z.string().optional(),
  username: z.string().min(1),
  displayName: z.string().nullable().default(null),
  email: z.string().nullable().default(null),
  givenName: z.string().nullable().default(null),
  familyName: z.string().nullable().default(null),
  active: z.boolean().default(true),
  kind: z.enum(['internal', 'service_account']).default('internal'),
  attributes: z.record(z.string(), z.unknown()).default({}),
});
const InlineGroupSchema = z.strictObject({
  id: z.string().optional(),
  name: z.string().min(1),
  attributes: z.record(z.string(), z.unknown()).default({}),
});

/** `POST /providers/{id}/preview` body: a stored user or group, or an inline one. */
export const PreviewInputSchema = z.union([
  z.strictObject({ userId: z.uuid() }),
  z.strictObject({ groupId: z.uuid() }),
  z.strictObject({ user: InlineUserSchema }),
  z.strictObject({ group: InlineGroupSchema }),
]);

const PreviewSchema = z.object({
  objectType: z.enum(['user', 'group']),
  payload: z.unknown().nullable(),
  contributions: z.array(z.object({ mapping: z.string(), value: z.unknown() })),
  skippedBy: z.string().nullable(),
  error: z.unknown().nullable(),
});

/** Throws ERR_MAPPING (400) naming the line when the expression does not compile. */
export function assertCompiles(engine: MappingEngine, expression: string, objectType: 'user' | 'group'): void {
  const result = engine.compile(expression, objectType);
  if (result.ok) return;
  const message = `line ${result.line}: ${result.message}`;
  throw new ScimflowError('ERR_MAPPING', `the mapping does not compile: ${message}`, {
    details: { issues: [{ path: 'expression', message }] },
  });
}

/** Mappings, providers' mapping sets and previews. */
export function mappingRoutes(deps: { db: Db; engine: MappingEngine; audit: Auditor }): ApiRoute[] {
  const { db, engine, audit } = deps;
  return [
    defineRoute({
      method: 'GET',
      path: '/mappings',
      operationId: 'listMappings',
      summary: 'List mappings by name',
      tag: 'mappings',
      role: 'viewer',
      status: 200,
      query: MappingsQuerySchema,
      response: MappingList,
      handle: async ({ query }) => ({ items: await listMappings(db, query) }),
    }),
    defineRoute({
      method: 'POST',
      path: '/mappings',
      operationId: 'createMapping',
      summary: 'Create a mapping; it is compiled first and a syntax error is a 400 naming the line',
      tag: 'mappings',
      role: 'admin',
      status: 201,
      body: named('MappingInput', MappingInputSchema),
      response: Mapping,
      conflicts: true,
      handle: async ({ body, caller }) => {
        assertCompiles(engine, body.expression, body.objectType);
        return audit.change(
          caller,
          (q) => createMapping(q, body),
          (mapping) => ({
            action: 'mapping.create',
            targetType: 'mapping',
            targetId: mapping.id,
            targetName: mapping.name,
            details: { objectType: mapping.objectType, version: mapping.version },
          }),
        );
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/mappings/:id',
      operationId: 'getMapping',
      summary: 'Get a mapping by id or name',
      tag: 'mappings',
      role: 'viewer',
      status: 200,
      response: Mapping,
      handle: ({ params }) => getMapping(db, params['id']!),
    }),
    defineRoute({
      method: 'PATCH',
      path: '/mappings/:id',
      operationId: 'updateMapping',
      summary: 'Change a mapping; a real change bumps its version, so its providers re-map at the next sync',
      tag: 'mappings',
      role: 'admin',
      status: 200,
      body: named('MappingUpdate', MappingUpdateSchema),
      response: Mapping,
      conflicts: true,
      handle: async ({ params, body, caller }) => {
        const before = await getMapping(db, params['id']!);
        if (body.expression !== undefined) assertCompiles(engine, body.expression, before.objectType);
        return audit.change(
          caller,
          (q) => updateMapping(q, before.id, body),
          (after) =>
            after.version === before.version
              ? null
              : {
                  action: 'mapping.update',
                  targetType: 'mapping',
                  targetId: after.id,
                  targetName: after.name,
                  details: {
                    changed: (['name', 'expression'] as const).filter((field) => after[field] !== before[field]),
                    version: after.version,
                  },
                },
        );
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/mappings/:id',
      operationId: 'deleteMapping',
      summary: 'Delete a mapping; providers using it stop using it. A built-in mapping cannot be deleted (409)',
      tag: 'mappings',
      role: 'admin',
      status: 204,
      conflicts: true,
      handle: async ({ params, caller }) => {
        await audit.change(
          caller,
          (q) => deleteMapping(q, params['id']!),
          (mapping) => ({
            action: 'mapping.delete',
            targetType: 'mapping',
            targetId: mapping.id,
            targetName: mapping.name,
          }),
        );
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/providers/:id/mappings',
      operationId: 'listProviderMappings',
      summary: "A provider's mappings, in the order they apply (by name)",
      tag: 'mappings',
      role: 'viewer',
      status: 200,
      response: MappingList,
      handle: async ({ params }) => {
        const provider = await getProvider(db, params['id']!);
        return { items: await listProviderMappings(db, provider.id) };
      },
    }),
    defineRoute({
      method: 'PUT',
      path: '/providers/:id/mappings',
      operationId: 'setProviderMappings',
      summary: "Replace a provider's whole mapping set",
      tag: 'mappings',
      role: 'admin',
      status: 200,
      body: named('ProviderMappings', ProviderMappingsSchema),
      response: MappingList,
      handle: async ({ params, body, caller }) => {
        const provider = await getProvider(db, params['id']!);
        const items = await audit.change(
          caller,
          (q) => setProviderMappings(q, provider.id, body.mappingIds),
          (set) => ({
            action: 'provider.mappings.set',
            targetType: 'provider',
            targetId: provider.id,
            targetName: provider.slug,
            details: { mappings: set.map((mapping) => mapping.name) },
          }),
        );
        return { items };
      },
    }),
    defineRoute({
      method: 'POST',
      path: '/providers/:id/preview',
      operationId: 'previewMappings',
      summary:
        "Run a provider's mappings on a user or group and return the payload, each mapping's part and any error; sends nothing",
      tag: 'mappings',
      role: 'operator',
      status: 200,
      body: named('PreviewInput', PreviewInputSchema),
      response: named('Preview', PreviewSchema),
      handle: async ({ params, body }) => {
        const provider = await getProvider(db, params['id']!);
        const [sets, limits] = await Promise.all([
          loadProviderMappings(db, provider.id),
          loadMappingLimits(db, provider.id),
        ]);
        const base = {
          key: `preview:${provider.id}`,
          version: randomUUID(),
          provider: { id: provider.id, slug: provider.slug, name: provider.name },
          now: new Date().toISOString(),
          limits: limits as Partial<MappingLimits>,
          withContributions: true,
        };
        let objectType: 'user' | 'group';
        let results;
        if ('userId' in body || 'user' in body) {
          objectType = 'user';
          const user: MappingUser = 'userId' in body ? await storedUser(db, body.userId) : inlineUser(body.user);
          results = await engine.evaluate({
            ...base,
            objectType,
            mappings: sets.user,
            items: [{ object: user, link: null }],
          });
        } else {
          objectType = 'group';
          const group: MappingGroup = 'groupId' in body ? await storedGroup(db, body.groupId) : inlineGroup(body.group);
          results = await engine.evaluate({
            ...base,
            objectType,
            mappings: sets.group,
            items: [{ object: group, link: null }],
          });
        }
        await engine.dispose(base.key);
        const result = results[0]!;
        return {
          objectType,
          payload: result.status === 'ok' ? result.payload : null,
          contributions: result.contributions ?? [],
          skippedBy: result.status === 'skip' ? result.mapping : null,
          error: result.status === 'error' ? result.error : null,
        };
      },
    }),
  ];
}

async function storedUser(db: Db, id: string): Promise<MappingUser> {
  const u = await getUser(db, id);
  return {
    id: u.id,
    uid: stableUid(u.id),
    username: u.username,
    displayName: u.displayName,
    email: u.email,
    givenName: u.givenName,
    familyName: u.familyName,
    active: u.active,
    kind: u.kind,
    attributes: u.attributes,
  };
}

function inlineUser(input: z.infer<typeof InlineUserSchema>): MappingUser {
  const id = input.id ?? randomUUID();
  return { ...input, id, uid: stableUid(id) };
}

async function storedGroup(db: Db, id: string): Promise<MappingGroup> {
  const g = await getGroup(db, id);
  return { id: g.id, uid: stableUid(g.id), name: g.name, attributes: g.attributes };
}

function inlineGroup(input: z.infer<typeof InlineGroupSchema>): MappingGroup {
  const id = input.id ?? randomUUID();
  return { ...input, id, uid: stableUid(id) };
}
