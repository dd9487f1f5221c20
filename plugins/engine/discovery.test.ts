import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { ScimRequestError } from '../../errors/index.ts';
import type { ScimClient, ScimResponse } from '../../scim/index.ts';
import type { PluginContext } from '../sdk.ts';
import { createScim2Plugin, Scim2OptionsSchema, type Scim2Options } from '../scim2/index.ts';

const SPC = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
  patch: { supported: true },
  bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
  filter: { supported: true, maxResults: 200 },
};
const RESOURCE_TYPES = {
  schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
  totalResults: 1,
  Resources: [{ name: 'Group', endpoint: '/Groups', schema: 'urn:ietf:params:scim:schemas:core:2.0:Group' }],
};

/**
 * A target that answers each discovery request 20 ms later, or with the status `fail` gives its path; records the
 * most requests it had in flight at once.
 */
function slowTarget(fail: Record<string, number> = {}) {
  const seen = { inFlight: 0, most: 0, paths: [] as string[] };
  const client: ScimClient = {
    baseUrl: 'http://target.test/scim/v2',
    async request<T>(method: string, path: string): Promise<ScimResponse<T>> {
      seen.paths.push(path);
      seen.inFlight += 1;
      seen.most = Math.max(seen.most, seen.inFlight);
      try {
        await sleep(20);
        const status = fail[path];
        if (status !== undefined) {
          throw new ScimRequestError('ERR_SCIM_SERVER', `${path} answered ${status}`, { status, method, path });
        }
        const body = path === '/ResourceTypes' ? RESOURCE_TYPES : SPC;
        return { status: 200, headers: {}, body: body as T };
      } finally {
        seen.inFlight -= 1;
      }
    },
    close: () => Promise.resolve(),
  };
  const ctx: PluginContext<Scim2Options> = {
    providerId: 'p1',
    configVersion: 1,
    client,
    options: Scim2OptionsSchema.parse({}),
  };
  return { ctx, seen };
}

describe('capability discovery', () => {
  test('asks for the ServiceProviderConfig and the ResourceTypes at once, not one after the other', async () => {
    const { ctx, seen } = slowTarget();
    const capabilities = await createScim2Plugin().capabilities(ctx);
    assert.deepEqual(seen.paths.toSorted(), ['/ResourceTypes', '/ServiceProviderConfig']);
    assert.equal(seen.most, 2, 'both discovery requests were in flight together');
    assert.equal(capabilities.patch, true);
    assert.equal(capabilities.groups, true);
    assert.equal(capabilities.maxPageSize, 200);
  });

  test('a failed ResourceTypes fails the discovery, even though the ServiceProviderConfig answered', async () => {
    const { ctx } = slowTarget({ '/ResourceTypes': 503 });
    await assert.rejects(createScim2Plugin().capabilities(ctx), (error: unknown) => {
      assert.ok(error instanceof ScimRequestError);
      assert.equal(error.details['path'], '/ResourceTypes');
      return true;
    });
  });

  test("when both fail, the ServiceProviderConfig's failure is the one reported", async () => {
    const { ctx } = slowTarget({ '/ResourceTypes': 502, '/ServiceProviderConfig': 503 });
    await assert.rejects(createScim2Plugin().capabilities(ctx), (error: unknown) => {
      assert.ok(error instanceof ScimRequestError);
      assert.equal(error.status, 503);
      assert.equal(error.details['path'], '/ServiceProviderConfig');
      return true;
    });
  });
});
