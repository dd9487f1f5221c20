import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { createScimClient } from '../../scim/index.ts';
import type { PluginContext } from '../sdk.ts';
import { createScim2Plugin, Scim2OptionsSchema, type Scim2Options } from '../scim2/index.ts';
import { LOOKUP_CHUNK } from './lookup.ts';

const user = (id: string, userName: string, externalId?: string) => ({
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
  id,
  userName,
  ...(externalId === undefined ? {} : { externalId }),
});

/**
 * A target with no discovery endpoints (so filtering is assumed) that answers every /Users list request with
 * `answer(filter)` and records the filters it was sent.
 */
async function target(
  t: TestContext,
  answer: (filter: string) => { Resources: unknown[]; totalResults?: number },
  options: Partial<Scim2Options> = {},
  spell: (key: string) => string = (key) => key,
  maxUrl = Infinity,
) {
  const filters: string[] = [];
  const refused: number[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if ((req.url ?? '').length > maxUrl) {
      refused.push((req.url ?? '').length);
      res.writeHead(414, { 'content-type': 'text/html' });
      res.end('<html>414 Request-URI Too Large</html>');
      return;
    }
    if (!url.pathname.endsWith('/Users')) {
      res.writeHead(404, { 'content-type': 'application/scim+json' });
      res.end(JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '404' }));
      return;
    }
    const filter = url.searchParams.get('filter') ?? '';
    filters.push(filter);
    const { Resources, totalResults = Resources.length } = answer(filter);
    res.writeHead(200, { 'content-type': 'application/scim+json' });
    res.end(
      JSON.stringify({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
        [spell('totalResults')]: totalResults,
        [spell('Resources')]: Resources,
      }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = createScimClient({
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/scim/v2`,
    token: 't',
  });
  t.after(async () => {
    await client.close();
    server.close();
  });
  const ctx: PluginContext<Scim2Options> = {
    providerId: 'p1',
    configVersion: 1,
    client,
    options: Scim2OptionsSchema.parse(options),
  };
  return { plugin: createScim2Plugin(), ctx, filters, refused };
}

describe('scim2 findUsers: a batch looked up with one combined filter', () => {
  test('only exact matches count, externalId before name, so a target that ignores the filter adopts no stranger', async (t) => {
    const everyone = [
      user('r1', 'a@example.test', 'ext-a'),
      user('r2', 'B@EXAMPLE.TEST'),
      user('r3', 'stranger@example.test', 'ext-c-not'),
    ];
    const { plugin, ctx, filters } = await target(t, () => ({ Resources: everyone }));

    const found = await plugin.findUsers(ctx, [
      { externalId: 'ext-a', name: 'someone.else@example.test' },
      { externalId: 'ext-b', name: 'b@example.test' },
      { externalId: 'ext-c', name: 'c@example.test' },
    ]);

    assert.deepEqual(
      found.map((f) => f?.id ?? f),
      ['r1', 'r2', null],
    );
    assert.deepEqual(filters, [
      'externalId eq "ext-a" or userName eq "someone.else@example.test" or externalId eq "ext-b" or userName eq "b@example.test" or externalId eq "ext-c" or userName eq "c@example.test"',
    ]);
  });

  test('a key several remote objects match is left to the per-object lookup, which reports the conflict', async (t) => {
    const { plugin, ctx } = await target(t, () => ({
      Resources: [user('r1', 'x@example.test', 'dup'), user('r2', 'y@example.test', 'dup')],
    }));

    const found = await plugin.findUsers(ctx, [
      { externalId: 'dup', name: 'z@example.test' },
      { externalId: 'free', name: 'free@example.test' },
    ]);

    assert.deepEqual(found, [undefined, null]);
    await assert.rejects(plugin.findUser(ctx, { externalId: 'dup', name: 'z@example.test' }), {
      code: 'ERR_SCIM_CONFLICT',
    });
  });

  test('a paged answer settles nothing: absence is not proven when matches may be on another page', async (t) => {
    const { plugin, ctx } = await target(t, () => ({
      Resources: [user('r1', 'a@example.test', 'ext-a')],
      totalResults: 3,
    }));

    const found = await plugin.findUsers(ctx, [{ externalId: 'ext-a' }, { externalId: 'ext-b' }]);

    assert.deepEqual(found, [undefined, undefined]);
  });

  test(`keys go ${LOOKUP_CHUNK} to a request, and the results keep the order of the keys`, async (t) => {
    const { plugin, ctx, filters } = await target(t, (filter) => ({
      Resources: [...filter.matchAll(/externalId eq "(ext-\d+)"/g)]
        .filter((m) => Number(m[1]!.slice(4)) % 2 === 0)
        .map((m) => user(`r-${m[1]}`, `${m[1]}@example.test`, m[1])),
    }));
    const keys = Array.from({ length: LOOKUP_CHUNK * 2 + 3 }, (_, i) => ({
      externalId: `ext-${i}`,
      name: `n${i}@example.test`,
    }));

    const found = await plugin.findUsers(ctx, keys);

    assert.equal(filters.length, 3);
    assert.deepEqual(
      found.map((f) => f?.id ?? null),
      keys.map((k, i) => (i % 2 === 0 ? `r-${k.externalId}` : null)),
    );
  });
});

describe('engine lookups bend to the target', () => {
  test('a target refusing long URLs (414) gets each chunk halved until it fits; later lookups start at what fitted', async (t) => {
    const { plugin, ctx, filters, refused } = await target(
      t,
      (filter) => ({
        Resources: [...filter.matchAll(/externalId eq "(ext-\d+)"/g)].map((m) =>
          user(`r-${m[1]}`, `${m[1]}@example.test`, m[1]),
        ),
      }),
      {},
      undefined,
      2000,
    );
    const keys = Array.from({ length: LOOKUP_CHUNK * 2 }, (_, i) => ({
      externalId: `ext-${i}`,
      name: `n${i}@example.test`,
    }));

    const found = await plugin.findUsers(ctx, keys);
    assert.deepEqual(
      found.map((f) => f?.id ?? null),
      keys.map((k) => `r-${k.externalId}`),
      'every key settled, in order',
    );
    assert.ok(refused.length > 0, 'the first chunks were refused');
    const accepted = filters.length;

    refused.length = 0;
    const again = await plugin.findUsers(ctx, keys);
    assert.deepEqual(
      again.map((f) => f?.id ?? null),
      found.map((f) => f?.id ?? null),
    );
    assert.deepEqual(refused, [], 'the next lookup starts at a size the target takes');
    assert.ok(filters.length - accepted <= accepted + 1, 'about as many requests as the first lookup sent');
  });
});

describe('engine lookups bend to the capabilities', () => {
  test('list responses are read whatever the case of their attribute names (resources, totalresults)', async (t) => {
    const { plugin, ctx } = await target(
      t,
      () => ({ Resources: [user('r1', 'a@example.test', 'ext-a')], totalResults: 1 }),
      {},
      (key) => key.toLowerCase(),
    );
    const found = await plugin.findUsers(ctx, [{ externalId: 'ext-a' }, { externalId: 'ext-b' }]);
    assert.deepEqual(
      found.map((f) => f?.id ?? f),
      ['r1', null],
    );
  });

  test('a target without `or` filters gets no combined filter: each object is left to its own lookup', async (t) => {
    const { plugin, ctx, filters } = await target(t, () => ({ Resources: [] }), { capabilities: { filterOr: false } });
    const found = await plugin.findUsers(ctx, [{ externalId: 'ext-a' }, { externalId: 'ext-b' }]);
    assert.deepEqual(found, [undefined, undefined]);
    assert.deepEqual(filters, []);
    assert.equal(await plugin.findUser(ctx, { externalId: 'ext-a', name: 'a@example.test' }), null);
    assert.deepEqual(filters, ['externalId eq "ext-a"', 'userName eq "a@example.test"']);
  });

  test('a small maximum page size makes smaller combined filters, none asking for more than a page', async (t) => {
    const { plugin, ctx, filters } = await target(t, () => ({ Resources: [] }), { capabilities: { maxPageSize: 11 } });
    const keys = Array.from({ length: 12 }, (_, i) => ({ externalId: `ext-${i}`, name: `n${i}@example.test` }));
    await plugin.findUsers(ctx, keys);
    // Five objects (ten comparisons, eleven results) per request.
    assert.deepEqual(
      filters.map((filter) => filter.split(' or ').length),
      [10, 10, 4],
    );
  });
});
