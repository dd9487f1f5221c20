import { randomUUID } from 'node:crypto';
import { ProviderInputSchema, type ProviderInput } from '../../db/index.ts';
import type { ScimTarget } from '../servers/index.ts';

/** A scim2 provider pointing at a test target, with a unique slug (`<prefix>-xxxxxxxx`); overrides win. */
export function testProviderInput(
  target: ScimTarget,
  prefix: string,
  overrides: Partial<ProviderInput> = {},
): ProviderInput {
  return {
    slug: `${prefix}-${randomUUID().slice(0, 8)}`,
    name: 'SCIMMY target',
    baseUrl: target.url,
    allowInsecureHttp: false,
    plugin: 'scim2',
    pluginOptions: {},
    auth: { mode: 'bearer', token: target.token },
    scope: { includeServiceAccounts: false, accessGroups: [] },
    deprovision: 'delete',
    pageSize: 50,
    concurrency: 4,
    fullSyncIntervalMinutes: 60,
    deletionLimit: 500,
    rateLimit: null,
    adoptBy: 'externalIdOrName',
    dryRun: false,
    enabled: true,
    ...overrides,
  };
}

/** A scim2 provider, slug and name `slug`, whose target is never reached (port 1): for tests of what it stores. */
export function storeOnlyProviderInput(slug: string): ProviderInput {
  return ProviderInputSchema.parse({
    slug,
    name: slug,
    baseUrl: 'http://127.0.0.1:1/scim/v2',
    auth: { mode: 'bearer', token: 't' },
  });
}
