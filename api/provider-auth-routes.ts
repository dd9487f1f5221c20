import { ProviderCheckSchema, type ProviderCheck } from '../auth/check.ts';
import { OAuthStatusSchema } from '../auth/schemas.ts';
import { getOAuthStatus, getProvider, type Db, type ProviderView } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';
import { defineRoute, named, type ApiRoute } from './route.ts';

/** What the worker side does for these routes (only workers decrypt provider secrets). */
export interface ProviderAuthWorker {
  /** Fetches a token and reads ServiceProviderConfig, reporting each step. */
  check(provider: Pick<ProviderView, 'id' | 'slug'>): Promise<ProviderCheck>;
}

/** What the provider auth routes are built from. */
export interface ProviderAuthRouteDeps {
  db: Db;
  worker: ProviderAuthWorker;
}

/** Connection checks and interactive OAuth status. */
export function providerAuthRoutes(deps: ProviderAuthRouteDeps): ApiRoute[] {
  const { db, worker } = deps;
  const interactive = async (id: string): Promise<ProviderView> => {
    const provider = await getProvider(db, id);
    if (provider.auth.mode !== 'oauth_interactive') {
      throw new ScimflowError('ERR_CONFLICT', `provider ${provider.slug} does not use interactive OAuth`, {
        details: { field: 'auth.mode' },
      });
    }
    return provider;
  };
  return [
    defineRoute({
      method: 'POST',
      path: '/providers/:id/test',
      operationId: 'testProvider',
      summary: "Fetch a token and read the target's ServiceProviderConfig, reporting which step failed",
      tag: 'providers',
      role: 'operator',
      status: 200,
      response: named('ProviderCheck', ProviderCheckSchema),
      handle: async ({ params }) => worker.check(await getProvider(db, params['id']!)),
    }),
    defineRoute({
      method: 'GET',
      path: '/providers/:id/oauth',
      operationId: 'getProviderOAuthStatus',
      summary: 'Interactive OAuth status: authorised, when the access token expires, or needs re-authorisation',
      tag: 'providers',
      role: 'viewer',
      status: 200,
      response: named('OAuthStatus', OAuthStatusSchema),
      conflicts: true,
      handle: async ({ params }) => getOAuthStatus(db, (await interactive(params['id']!)).id),
    }),
  ];
}
