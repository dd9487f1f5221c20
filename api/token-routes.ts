import * as z from 'zod';
import {
  createApiToken,
  listApiTokens,
  revokeApiToken,
  ROLES,
  tokenAuditEntry,
  TokenInputSchema,
  type Db,
} from '../db/index.ts';
import type { Auditor } from './audit.ts';
import { defineRoute, named, type ApiRoute } from './route.ts';

const TokenViewSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  prefix: z.string().describe('the first characters of the token, as logs and listings show it'),
  role: z.enum(ROLES),
  createdAt: z.string(),
  createdBy: z.string(),
  expiresAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
});

/** Admin API tokens: create (the token is in this one answer only), list and revoke. */
export function tokenRoutes(deps: { db: Db; audit: Auditor }): ApiRoute[] {
  const { db, audit } = deps;
  return [
    defineRoute({
      method: 'GET',
      path: '/tokens',
      operationId: 'listTokens',
      summary: 'List API tokens (never the tokens themselves), live ones first',
      tag: 'admin',
      role: 'admin',
      status: 200,
      response: named('TokenList', z.object({ items: z.array(TokenViewSchema) })),
      handle: async () => ({ items: await listApiTokens(db) }),
    }),
    defineRoute({
      method: 'POST',
      path: '/tokens',
      operationId: 'createToken',
      summary: 'Create an API token; the answer is the only time the token is shown',
      tag: 'admin',
      role: 'admin',
      status: 201,
      body: named('TokenInput', TokenInputSchema),
      response: named('TokenCreated', TokenViewSchema.extend({ token: z.string() })),
      conflicts: true,
      handle: async ({ body, caller }) => {
        const { token, view } = await audit.change(
          caller,
          (q) => createApiToken(q, body, caller?.name ?? 'anonymous'),
          (created) => tokenAuditEntry('token.create', created.view),
        );
        return { ...view, token };
      },
    }),
    defineRoute({
      method: 'DELETE',
      path: '/tokens/:name',
      operationId: 'revokeToken',
      summary: 'Revoke the live token with this name; it is refused from its next request on',
      tag: 'admin',
      role: 'admin',
      status: 204,
      handle: async ({ params, caller }) => {
        await audit.change(
          caller,
          (q) => revokeApiToken(q, params['name']!),
          (view) => tokenAuditEntry('token.revoke', view),
        );
      },
    }),
  ];
}
