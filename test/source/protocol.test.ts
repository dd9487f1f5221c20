/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return -- SCIM bodies are untyped JSON: the assertions are what check their shape */
/**
 * The source as an RFC 7644 service provider: filters, paging, sorting, projections, ETags, errors, atomic PATCH,
 * Okta's documented request shapes, isolation between sources, the delete policy, the outbox and rate limiting.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  createProvider,
  createSecretBox,
  createUser as createDirectoryUser,
  generateSecretKey,
  ProviderInputSchema,
} from '../../db/index.ts';
import { startSourceHarness, type SourceHarness, type TestSource } from './harness.ts';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const patch = (...Operations: Array<Record<string, unknown>>) => ({ schemas: [PATCH_OP], Operations });
const q = (filter: string) => encodeURIComponent(filter);

/**
 * POSTs a JSON body of about `bytes` bytes and resolves with the answer as soon as it comes; the server may answer
 * 413 and close before the body is sent, which fetch reports as a failure instead of the response.
 */
function postLarge(
  url: string,
  token: string,
  bytes: number,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
    });
    request.on('response', (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
      );
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
    });
    request.end(JSON.stringify({ schemas: [USER_SCHEMA], userName: 'huge', title: 'x'.repeat(bytes) }));
  });
}

describe('a source as a SCIM service provider', () => {
  let harness: SourceHarness;
  let source: TestSource;
  let clock = 0;
  const ids: Record<string, string> = {};

  const names = async (path: string): Promise<string[]> => {
    const response = await source.scim('GET', path);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    return response.body['Resources'].map((r: Record<string, string>) => r['userName'] ?? r['displayName']);
  };

  before(async () => {
    harness = await startSourceHarness({
      maxResults: 3,
      maxBulkOperations: 4,
      rateLimit: { ratePerSecond: 1, burst: 1000 },
      now: () => clock,
    });
    source = await harness.addSource({ slug: 'main' });
    const people = [
      {
        userName: 'alice@x.com',
        title: 'Engineer',
        active: true,
        emails: [{ value: 'alice@x.com', type: 'work' }],
        externalId: 'EXT-A',
        dept: 'R&D',
      },
      {
        userName: 'Bob@y.org',
        title: 'Manager',
        active: false,
        emails: [{ value: 'bob@home.net', type: 'home' }],
        externalId: 'ext-b',
        dept: 'Sales',
      },
      {
        userName: 'carol@x.com',
        title: 'engineer',
        active: true,
        emails: [
          { value: 'carol@x.com', type: 'work' },
          { value: 'c@home.net', type: 'home' },
        ],
        externalId: 'EXT-C',
        dept: 'R&D',
      },
      { userName: 'dave@z.io', active: true, emails: [], externalId: 'EXT-D', dept: undefined },
    ];
    for (const person of people) {
      const created = await source.scim('POST', '/Users', {
        schemas: [USER_SCHEMA, ENTERPRISE],
        userName: person.userName,
        title: person.title,
        active: person.active,
        emails: person.emails,
        externalId: person.externalId,
        ...(person.dept ? { [ENTERPRISE]: { department: person.dept } } : {}),
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      ids[person.userName] = created.body['id'];
    }
  });
  after(() => harness?.close());

  describe('filters', () => {
    const cases: Array<[string, string[]]> = [
      ['userName eq "ALICE@X.COM"', ['alice@x.com']],
      ['USERNAME Eq "bob@y.org"', ['Bob@y.org']],
      ['userName ne "alice@x.com"', ['Bob@y.org', 'carol@x.com', 'dave@z.io']],
      ['userName co "@X."', ['alice@x.com', 'carol@x.com']],
      ['userName sw "B"', ['Bob@y.org']],
      ['userName ew ".IO"', ['dave@z.io']],
      ['userName gt "carol@x.com"', ['dave@z.io']],
      ['userName ge "carol@x.com"', ['carol@x.com', 'dave@z.io']],
      ['userName lt "b"', ['alice@x.com']],
      ['userName le "bob@y.org"', ['alice@x.com', 'Bob@y.org']],
      ['title pr', ['alice@x.com', 'Bob@y.org', 'carol@x.com']],
      ['title eq "engineer"', ['alice@x.com', 'carol@x.com']],
      ['active eq false', ['Bob@y.org']],
      ['externalId eq "ext-a"', []],
      ['externalId eq "EXT-A"', ['alice@x.com']],
      ['emails[type eq "work" and value co "@x"]', ['alice@x.com', 'carol@x.com']],
      ['emails[type eq "home"] and not (active eq false)', ['carol@x.com']],
      ['emails.value ew "home.net"', ['Bob@y.org', 'carol@x.com']],
      ['emails pr', ['alice@x.com', 'Bob@y.org', 'carol@x.com']],
      ['not (emails pr)', ['dave@z.io']],
      ['title eq "engineer" or (active eq false and userName sw "b")', ['alice@x.com', 'Bob@y.org', 'carol@x.com']],
      [`${ENTERPRISE}:department eq "r&d"`, ['alice@x.com', 'carol@x.com']],
      ['meta.created gt "2000-01-01T00:00:00Z" and userName eq "dave@z.io"', ['dave@z.io']],
      ['userName eq "it\'s \\"quoted\\""', []],
    ];
    for (const [filter, expected] of cases) {
      test(`${filter} → ${expected.length === 0 ? 'nothing' : expected.join(', ')}`, async () => {
        assert.deepEqual(await names(`/Users?sortBy=userName&count=3&filter=${q(filter)}`), expected.slice(0, 3));
        const total = (await source.scim('GET', `/Users?filter=${q(filter)}`)).body['totalResults'];
        assert.equal(total, expected.length);
      });
    }

    test('malformed filters and unknown attributes are 400 invalidFilter', async () => {
      for (const filter of ['userName eq', 'userName zz "a"', '(userName eq "a"', 'nosuch eq "a"', 'active eq "yes"']) {
        const response = await source.scim('GET', `/Users?filter=${q(filter)}`);
        assert.equal(response.status, 400, filter);
        assert.equal(response.body['scimType'], 'invalidFilter', filter);
      }
    });
  });

  describe('paging, sorting, projections and search', () => {
    test('startIndex and count page a stable order; count above the configured maximum is lowered to it', async () => {
      const first = await source.scim('GET', '/Users?sortBy=userName&startIndex=1&count=2');
      assert.deepEqual(
        first.body['Resources'].map((r: Record<string, string>) => r['userName']),
        ['alice@x.com', 'Bob@y.org'],
      );
      assert.equal(first.body['totalResults'], 4);
      assert.deepEqual(await names('/Users?sortBy=userName&startIndex=3&count=2'), ['carol@x.com', 'dave@z.io']);
      assert.deepEqual(await names('/Users?sortBy=userName&sortOrder=descending&count=2'), [
        'dave@z.io',
        'carol@x.com',
      ]);
      const capped = await source.scim('GET', '/Users?count=1000');
      assert.equal(capped.body['itemsPerPage'], 3);
      const empty = await source.scim('GET', '/Users?count=0');
      assert.deepEqual([empty.body['totalResults'], empty.body['Resources']], [4, []]);
    });

    test('attributes returns only what is asked (and id); excludedAttributes leaves out what is named', async () => {
      const only = await source.scim(
        'GET',
        `/Users/${ids['alice@x.com']}?attributes=userName,emails.value,${ENTERPRISE}:department`,
      );
      assert.deepEqual(only.body, {
        schemas: [USER_SCHEMA, ENTERPRISE],
        id: ids['alice@x.com'],
        userName: 'alice@x.com',
        emails: [{ value: 'alice@x.com' }],
        [ENTERPRISE]: { department: 'R&D' },
      });
      const without = await source.scim('GET', `/Users/${ids['alice@x.com']}?excludedAttributes=emails,meta`);
      assert.equal(without.body['emails'], undefined);
      assert.equal(without.body['meta'], undefined);
      assert.equal(without.body['userName'], 'alice@x.com');
    });

    test('POST /Users/.search takes the same parameters in a body', async () => {
      const response = await source.scim('POST', '/Users/.search', {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
        filter: 'title eq "Engineer"',
        attributes: ['userName'],
        sortBy: 'userName',
        sortOrder: 'descending',
        startIndex: 1,
        count: 10,
      });
      assert.equal(response.status, 200);
      assert.deepEqual(
        response.body['Resources'].map((r: Record<string, unknown>) => Object.keys(r).sort()),
        [
          ['id', 'schemas', 'userName'],
          ['id', 'schemas', 'userName'],
        ],
      );
      assert.deepEqual(
        response.body['Resources'].map((r: Record<string, string>) => r['userName']),
        ['carol@x.com', 'alice@x.com'],
      );
    });
  });

  describe('POST /.search at the root (RFC 7644 §3.4.3)', () => {
    let root: TestSource;
    const found = async (body: Record<string, unknown>) => {
      const response = await root.scim('POST', '/.search', {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
        ...body,
      });
      assert.equal(response.status, 200, JSON.stringify(response.body));
      return {
        total: response.body['totalResults'],
        startIndex: response.body['startIndex'],
        names: response.body['Resources'].map((r: Record<string, unknown>) => [
          r['meta'] === undefined ? null : (r['meta'] as Record<string, unknown>)['resourceType'],
          r['userName'] ?? r['displayName'],
        ]),
      };
    };

    before(async () => {
      root = await harness.addSource({ slug: 'root-search' });
      const made: string[] = [];
      for (const [userName, displayName] of [
        ['eng.one@r.io', 'Eng One'],
        ['ops.two@r.io', 'Ops Two'],
      ]) {
        const created = await root.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName, displayName });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        made.push(created.body['id'] as string);
      }
      for (const displayName of ['Engineering', 'Operations']) {
        const group = await root.scim('POST', '/Groups', {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
          displayName,
          members: [{ value: made[0] }],
        });
        assert.equal(group.status, 201, JSON.stringify(group.body));
      }
    });

    test('a filter on an attribute both types have finds users and groups, users first', async () => {
      assert.deepEqual(await found({ filter: 'displayName sw "eng"' }), {
        total: 2,
        startIndex: 1,
        names: [
          ['User', 'eng.one@r.io'],
          ['Group', 'Engineering'],
        ],
      });
    });

    test('a filter on an attribute of one type finds only that type; one no type has is 400 invalidFilter', async () => {
      assert.deepEqual((await found({ filter: 'userName eq "OPS.TWO@r.io"' })).names, [['User', 'ops.two@r.io']]);
      assert.deepEqual((await found({ filter: 'members pr' })).names, [
        ['Group', 'Engineering'],
        ['Group', 'Operations'],
      ]);
      const refused = await root.scim('POST', '/.search', { filter: 'noSuchAttribute eq "x"' });
      assert.equal(refused.status, 400);
      assert.equal(refused.body['scimType'], 'invalidFilter');
    });

    test('startIndex and count page across the two types as one list, within the configured maximum', async () => {
      const everything = await found({});
      assert.equal(everything.total, 4);
      assert.deepEqual(everything.names, [
        ['User', 'eng.one@r.io'],
        ['User', 'ops.two@r.io'],
        ['Group', 'Engineering'],
      ]);
      assert.deepEqual(await found({ startIndex: 2, count: 2 }), {
        total: 4,
        startIndex: 2,
        names: [
          ['User', 'ops.two@r.io'],
          ['Group', 'Engineering'],
        ],
      });
      assert.deepEqual((await found({ startIndex: 4, count: 3 })).names, [['Group', 'Operations']]);
      assert.deepEqual((await found({ startIndex: 5 })).names, []);
    });

    test('attributes apply to each type; sortBy across types and a body that is not an object are 400', async () => {
      const projected = await root.scim('POST', '/.search', {
        filter: 'displayName sw "o"',
        attributes: ['displayName'],
      });
      assert.deepEqual(
        projected.body['Resources'].map((r: Record<string, unknown>) => Object.keys(r).sort()),
        [
          ['displayName', 'id', 'schemas'],
          ['displayName', 'id', 'schemas'],
        ],
      );
      const sorted = await root.scim('POST', '/.search', { sortBy: 'displayName' });
      assert.equal(sorted.status, 400);
      assert.equal(sorted.body['scimType'], 'invalidValue');
      assert.equal((await root.scim('POST', '/.search', ['filter'])).status, 400);
    });

    test("another source's token is refused at this root", async () => {
      const response = await source.scim('POST', '/.search', {}, { token: root.token });
      assert.equal(response.status, 401);
    });
  });

  describe('POST /Bulk (RFC 7644 §3.7)', () => {
    type BulkResult = Record<string, string | undefined> & { response?: Record<string, string> };
    const BULK = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
    let bulkSource: TestSource;
    const bulk = async (Operations: unknown[], extra: Record<string, unknown> = {}) => {
      const response = await bulkSource.scim('POST', '/Bulk', { schemas: [BULK], Operations, ...extra });
      assert.equal(response.status, 200, JSON.stringify(response.body));
      return response.body['Operations'] as BulkResult[];
    };
    const user = (userName: string) => ({ schemas: [USER_SCHEMA], userName });
    const userNames = async () =>
      (await bulkSource.scim('GET', '/Users?count=3')).body['Resources'].map(
        (r: Record<string, string>) => r['userName'],
      );
    before(async () => {
      bulkSource = await harness.addSource({ slug: 'bulk' });
    });

    test('a group may name, by bulkId, a user created later in the same request; each operation answers its status', async () => {
      const results = await bulk([
        {
          method: 'POST',
          path: '/Groups',
          bulkId: 'g1',
          data: {
            schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
            displayName: 'Bulk team',
            members: [{ value: 'bulkId:u1' }],
          },
        },
        { method: 'POST', path: '/Users', bulkId: 'u1', data: user('bulk.one@b.io') },
        {
          method: 'PATCH',
          path: '/Users/bulkId:u1',
          data: patch({ op: 'replace', path: 'title', value: 'Lead' }),
        },
      ]);
      assert.deepEqual(
        results.map((r) => [r['method'], r['bulkId'], r['status']]),
        // In the order they ran: the group waited for the user it names.
        [
          ['POST', 'u1', '201'],
          ['PATCH', undefined, '200'],
          ['POST', 'g1', '201'],
        ],
      );
      const userId = (results[0]!['location'] as string).split('/').pop()!;
      const created = await bulkSource.scim('GET', `/Users/${userId}`);
      assert.deepEqual([created.body['userName'], created.body['title']], ['bulk.one@b.io', 'Lead']);
      assert.equal(results[1]!['version'], created.headers.get('etag'));
      const group = await bulkSource.scim('GET', new URL(results[2]!['location']!).pathname.replace(/^.*\/v2/, ''));
      assert.deepEqual(
        group.body['members'].map((m: Record<string, string>) => m['value']),
        [userId],
      );
      const removed = await bulk([{ method: 'DELETE', path: `/Groups/${group.body['id']}` }]);
      assert.equal(removed[0]!['status'], '204');
      assert.equal((await bulkSource.scim('GET', `/Groups/${group.body['id']}`)).status, 404);
    });

    test('each operation applies alone: a 409 or a 412 in the middle leaves the others applied and itself nothing', async () => {
      const first = await bulk([{ method: 'POST', path: '/Users', bulkId: 'a', data: user('bulk.two@b.io') }]);
      const id = (first[0]!['location'] as string).split('/').pop()!;
      const results = await bulk([
        { method: 'POST', path: '/Users', bulkId: 'dup', data: user('BULK.TWO@b.io') },
        { method: 'PUT', path: `/Users/${id}`, version: 'W/"stale"', data: { ...user('bulk.two@b.io'), title: 'x' } },
        { method: 'POST', path: '/Users', bulkId: 'ok', data: user('bulk.three@b.io') },
        { method: 'PATCH', path: '/Users/bulkId:dup', data: patch({ op: 'replace', path: 'title', value: 'y' }) },
      ]);
      assert.deepEqual(
        results.map((r) => [r['status'], r['response']?.['scimType']]),
        [
          ['409', 'uniqueness'],
          ['412', undefined],
          ['201', undefined],
          ['409', 'invalidValue'],
        ],
      );
      assert.equal((await bulkSource.scim('GET', `/Users/${id}`)).body['title'], undefined);
      assert.deepEqual((await userNames()).sort(), ['bulk.one@b.io', 'bulk.three@b.io', 'bulk.two@b.io']);
    });

    test('failOnErrors stops the request after that many failures; more than maxOperations is a 413', async () => {
      const results = await bulk(
        [
          { method: 'DELETE', path: '/Users/00000000-0000-4000-8000-000000000000' },
          { method: 'POST', path: '/Users', bulkId: 'never', data: user('bulk.never@b.io') },
        ],
        { failOnErrors: 1 },
      );
      assert.deepEqual(
        results.map((r) => r['status']),
        ['404'],
      );
      const filter = q('userName eq "bulk.never@b.io"');
      assert.equal((await bulkSource.scim('GET', `/Users?filter=${filter}`)).body['totalResults'], 0);
      const tooMany = await bulkSource.scim('POST', '/Bulk', {
        schemas: [BULK],
        Operations: Array.from({ length: 5 }, (_, i) => ({
          method: 'POST',
          path: '/Users',
          bulkId: `m${i}`,
          data: user(`m${i}@b.io`),
        })),
      });
      assert.deepEqual([tooMany.status, tooMany.body['status']], [413, '413']);
      const unnamed = await bulkSource.scim('POST', '/Bulk', {
        schemas: [BULK],
        Operations: [{ method: 'POST', path: '/Users', data: user('x@b.io') }],
      });
      assert.deepEqual([unnamed.status, unnamed.body['scimType']], [400, 'invalidValue']);
    });
  });

  describe('versions and errors', () => {
    test('If-None-Match with the current ETag answers 304; If-Match with an old one answers 412 and changes nothing', async () => {
      const read = await source.scim('GET', `/Users/${ids['dave@z.io']}`);
      const etag = read.headers.get('etag')!;
      assert.equal(etag, read.body['meta'].version);
      assert.equal(
        (await source.scim('GET', `/Users/${ids['dave@z.io']}`, undefined, { headers: { 'if-none-match': etag } }))
          .status,
        304,
      );
      const changed = await source.scim(
        'PATCH',
        `/Users/${ids['dave@z.io']}`,
        patch({ op: 'replace', path: 'title', value: 'CTO' }),
        {
          headers: { 'if-match': etag },
        },
      );
      assert.equal(changed.status, 200);
      assert.notEqual(changed.headers.get('etag'), etag);
      const stale = await source.scim(
        'PATCH',
        `/Users/${ids['dave@z.io']}`,
        patch({ op: 'replace', path: 'title', value: 'CEO' }),
        {
          headers: { 'if-match': etag },
        },
      );
      assert.equal(stale.status, 412);
      assert.equal((await source.scim('GET', `/Users/${ids['dave@z.io']}`)).body['title'], 'CTO');
    });

    test('a PATCH whose last operation is invalid applies none of its operations', async () => {
      const before = (await source.scim('GET', `/Users/${ids['carol@x.com']}`)).body;
      const failed = await source.scim(
        'PATCH',
        `/Users/${ids['carol@x.com']}`,
        patch({ op: 'replace', path: 'title', value: 'Changed' }, { op: 'replace', path: 'active', value: 'maybe' }),
      );
      assert.equal(failed.status, 400);
      assert.equal(failed.body['scimType'], 'invalidValue');
      assert.deepEqual((await source.scim('GET', `/Users/${ids['carol@x.com']}`)).body, before);
    });

    test('malformed JSON, bad paths, missing userName, oversized bodies and unknown endpoints', async () => {
      const badJson = await source.scim('POST', '/Users', '{"userName": ');
      assert.deepEqual([badJson.status, badJson.body['scimType']], [400, 'invalidSyntax']);
      const badPath = await source.scim(
        'PATCH',
        `/Users/${ids['carol@x.com']}`,
        patch({ op: 'replace', path: 'emails[type eq', value: 'x' }),
      );
      assert.deepEqual([badPath.status, badPath.body['scimType']], [400, 'invalidPath']);
      const unknownOp = await source.scim(
        'PATCH',
        `/Users/${ids['carol@x.com']}`,
        patch({ op: 'move', path: 'title', value: 'x' }),
      );
      assert.deepEqual([unknownOp.status, unknownOp.body['scimType']], [400, 'invalidSyntax']);
      const readOnly = await source.scim(
        'PATCH',
        `/Users/${ids['carol@x.com']}`,
        patch({ op: 'replace', path: 'id', value: 'x' }),
      );
      assert.deepEqual([readOnly.status, readOnly.body['scimType']], [400, 'mutability']);
      const noName = await source.scim('POST', '/Users', { schemas: [USER_SCHEMA], title: 'x' });
      assert.deepEqual([noName.status, noName.body['scimType']], [400, 'invalidValue']);
      assert.equal((await source.scim('GET', '/Nothing')).status, 404);
      // RFC 7644 §3.11: a service provider without the /Me alias answers 501, with a SCIM error body.
      for (const [method, path] of [
        ['GET', '/Me'],
        ['PATCH', '/Me'],
        ['GET', '/Me/groups'],
      ] as const) {
        const me = await source.scim(
          method,
          path,
          method === 'GET' ? undefined : patch({ op: 'replace', path: 'title', value: 'x' }),
        );
        assert.deepEqual([me.status, me.body['status'], me.body['schemas']], [501, '501', [ERROR_SCHEMA]], path);
      }
      assert.equal((await source.scim('GET', '/Me', undefined, { token: 'wrong' })).status, 401);
      const huge = await postLarge(`${source.base}/Users`, source.token, 2_000_000);
      assert.equal(huge.status, 413);
      assert.equal(huge.body['status'], '413');
    });

    test('text PostgreSQL cannot store (U+0000, an unpaired surrogate) is 400 invalidValue naming it, never a 500', async () => {
      // An IdP retries a 5xx, and would send the same request for ever; a 400 tells it the request itself is wrong.
      const own = await harness.addSource({ slug: 'text' });
      const refused = async (method: string, path: string, body: unknown, named: string) => {
        const response = await own.scim(method, path, body);
        assert.deepEqual(
          [response.status, response.body['scimType']],
          [400, 'invalidValue'],
          JSON.stringify(response.body),
        );
        const detail = String(response.body['detail']);
        assert.ok(detail.startsWith(`${named} must not contain U+0000`), detail);
      };
      await refused('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'n\u0000@t.io' }, 'userName');
      await refused(
        'POST',
        '/Users',
        { schemas: [USER_SCHEMA], userName: 'x@t.io', externalId: '\u0000' },
        'externalId',
      );
      await refused(
        'POST',
        '/Users',
        { schemas: [USER_SCHEMA], userName: 'x@t.io', emails: [{ value: 'x\ud800@t.io' }] },
        'emails[0].value',
      );
      await refused(
        'POST',
        '/Users',
        { schemas: [USER_SCHEMA, ENTERPRISE], userName: 'x@t.io', [ENTERPRISE]: { department: 'R\u0000D' } },
        `${ENTERPRISE}:department`,
      );
      await refused(
        'POST',
        '/Groups',
        { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'g', members: [{ value: '\u0000' }] },
        'members[0].value',
      );
      await refused(
        'POST',
        '/Groups',
        { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'g\u0000' },
        'displayName',
      );
      const created = await own.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'x@t.io' });
      assert.equal(created.status, 201);
      const path = `/Users/${created.body['id']}`;
      await refused('PUT', path, { schemas: [USER_SCHEMA], userName: 'x@t.io', displayName: 'X\u0000' }, 'displayName');
      await refused('PATCH', path, patch({ op: 'replace', path: 'name.givenName', value: '\udc00' }), 'name.givenName');
      assert.deepEqual(
        Object.keys((await own.scim('GET', path)).body).filter((key) => key === 'displayName' || key === 'name'),
        [],
        'nothing of the refused writes was kept',
      );
      // In a Bulk request the operation answers 400, and the others apply.
      const bulk = await own.scim('POST', '/Bulk', {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:BulkRequest'],
        Operations: [
          { method: 'POST', path: '/Users', bulkId: 'bad', data: { schemas: [USER_SCHEMA], userName: 'b\u0000@t.io' } },
          { method: 'POST', path: '/Users', bulkId: 'good', data: { schemas: [USER_SCHEMA], userName: 'b@t.io' } },
        ],
      });
      assert.equal(bulk.status, 200, JSON.stringify(bulk.body));
      assert.deepEqual(
        bulk.body['Operations'].map((r: { bulkId: string; status: string; response?: { scimType?: string } }) => [
          r['bulkId'],
          r['status'],
          r['response']?.['scimType'],
        ]),
        [
          ['bad', '400', 'invalidValue'],
          ['good', '201', undefined],
        ],
      );
      assert.equal((await own.scim('GET', '/Users')).body['totalResults'], 2);
    });

    test('ServiceProviderConfig, ResourceTypes and Schemas describe what is served', async () => {
      const spc = (await source.scim('GET', '/ServiceProviderConfig')).body;
      assert.deepEqual(
        [
          spc['patch'].supported,
          spc['bulk'],
          spc['filter'].supported,
          spc['filter'].maxResults,
          spc['sort'].supported,
          spc['etag'].supported,
        ],
        [true, { supported: true, maxOperations: 4, maxPayloadSize: 1024 * 1024 }, true, 3, true, true],
      );
      const types = (await source.scim('GET', '/ResourceTypes')).body['Resources'];
      assert.deepEqual(
        types.map((t: Record<string, string>) => [t['name'], t['endpoint']]),
        [
          ['User', '/Users'],
          ['Group', '/Groups'],
        ],
      );
      assert.deepEqual(types[0].schemaExtensions, [{ schema: ENTERPRISE, required: false }]);
      const schemas = (await source.scim('GET', '/Schemas')).body['Resources'];
      const user = schemas.find((s: Record<string, string>) => s['id'] === USER_SCHEMA);
      const userName = user.attributes.find((a: Record<string, string>) => a['name'] === 'userName');
      assert.deepEqual([userName.required, userName.caseExact, userName.uniqueness], [true, false, 'server']);
      assert.ok(
        !user.attributes.some((a: Record<string, string>) => a['name'] === 'password'),
        'passwords are not accepted, so not listed',
      );
    });
  });

  describe("Okta's documented requests (developer.okta.com/docs/reference/scim/scim-20)", () => {
    test('"Update the User": GET, then PUT the whole object (with id and groups) replaces it', async () => {
      const current = (await source.scim('GET', `/Users/${ids['alice@x.com']}`)).body;
      const put = await source.scim('PUT', `/Users/${ids['alice@x.com']}`, {
        schemas: [USER_SCHEMA],
        id: ids['alice@x.com'],
        userName: 'alice@x.com',
        name: { givenName: 'Another', middleName: 'Excited', familyName: 'User' },
        emails: [{ primary: true, value: 'alice@x.com', type: 'work', display: 'alice@x.com' }],
        active: true,
        groups: [],
        meta: { resourceType: 'User' },
      });
      assert.equal(put.status, 200);
      assert.equal(put.body['id'], current['id']);
      assert.deepEqual(put.body['name'], { givenName: 'Another', middleName: 'Excited', familyName: 'User' });
      assert.equal(put.body['title'], undefined, 'PUT replaces: attributes left out are removed');
      assert.equal(put.body['externalId'], undefined);
    });

    test('"Update specific Group membership": remove members[value eq …] and add members in one PATCH; then replace all', async () => {
      const group = (
        await source.scim('POST', '/Groups', {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
          displayName: 'Test SCIMv2',
          members: [],
        })
      ).body;
      await source.scim(
        'PATCH',
        `/Groups/${group['id']}`,
        patch({ op: 'add', path: 'members', value: [{ value: ids['carol@x.com'] }] }),
      );
      const changed = await source.scim(
        'PATCH',
        `/Groups/${group['id']}`,
        patch(
          { op: 'remove', path: `members[value eq "${ids['carol@x.com']}"]` },
          { op: 'add', path: 'members', value: [{ value: ids['alice@x.com'], display: 'alice@x.com' }] },
        ),
      );
      assert.equal(changed.status, 204);
      const members = async () =>
        ((await source.scim('GET', `/Groups/${group['id']}`)).body['members'] as Array<{ value: string }>)
          .map((m) => m.value)
          .sort();
      assert.deepEqual(await members(), [ids['alice@x.com']]);
      await source.scim(
        'PATCH',
        `/Groups/${group['id']}`,
        patch({ op: 'replace', path: 'members', value: [{ value: ids['Bob@y.org'] }, { value: ids['dave@z.io'] }] }),
      );
      assert.deepEqual(await members(), [ids['Bob@y.org'], ids['dave@z.io']].sort());
      const renamed = await source.scim(
        'PATCH',
        `/Groups/${group['id']}`,
        patch({ op: 'replace', value: { id: group['id'], displayName: 'Test SCIMv20' } }),
      );
      assert.equal(renamed.status, 204);
      assert.equal((await source.scim('GET', `/Groups/${group['id']}`)).body['displayName'], 'Test SCIMv20');
      const unknownMember = await source.scim(
        'PATCH',
        `/Groups/${group['id']}`,
        patch({ op: 'add', path: 'members', value: [{ value: '00000000-0000-4000-8000-000000000000' }] }),
      );
      assert.deepEqual([unknownMember.status, unknownMember.body['scimType']], [400, 'invalidValue']);
    });
  });

  describe('ownership, policies, outbox and limits', () => {
    test("a token of source A gets 401 on source B's URL, and 404 for B's objects through A's own URL", async () => {
      const other = await harness.addSource({ slug: 'other' });
      const theirs = (await other.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'theirs@b.com' })).body;
      const onTheirUrl = await other.scim('GET', `/Users/${theirs['id']}`, undefined, { token: source.token });
      assert.equal(onTheirUrl.status, 401);
      assert.equal((await source.scim('GET', `/Users/${theirs['id']}`)).status, 404);
      assert.equal(
        (await source.scim('PATCH', `/Users/${theirs['id']}`, patch({ op: 'replace', path: 'title', value: 'x' })))
          .status,
        404,
      );
      assert.equal((await source.scim('DELETE', `/Users/${theirs['id']}`)).status, 404);
      assert.equal(
        (await source.scim('GET', `/Users?filter=${q('userName eq "theirs@b.com"')}`)).body['totalResults'],
        0,
      );
      const taken = await source.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'THEIRS@b.com' });
      assert.equal(taken.status, 409, 'userName is unique across the whole directory');
      const group = (await other.scim('POST', '/Groups', { displayName: 'theirs' })).body;
      const borrow = await source.scim('POST', '/Groups', { displayName: 'mine', members: [{ value: theirs['id'] }] });
      assert.deepEqual([borrow.status, borrow.body['scimType']], [400, 'invalidValue']);
      assert.equal((await source.scim('GET', `/Groups/${group['id']}`)).status, 404);
    });

    test('objects made through the admin API are invisible unless the source claims them; a claiming write takes ownership', async () => {
      const admin = await createDirectoryUser(harness.db, {
        username: 'admin.made@x.com',
        active: true,
        kind: 'internal',
        attributes: { team: 'ops' },
      });
      assert.equal((await source.scim('GET', `/Users/${admin.id}`)).status, 404);
      const claimer = await harness.addSource({ slug: 'claimer', claim: true });
      const seen = await claimer.scim('GET', `/Users/${admin.id}`);
      assert.equal(seen.body['userName'], 'admin.made@x.com');
      assert.equal(
        (await claimer.scim('GET', `/Users/${claimer.source.serviceAccountId}`)).status,
        404,
        'service accounts are never claimable',
      );
      await claimer.scim('PATCH', `/Users/${admin.id}`, patch({ op: 'replace', path: 'title', value: 'Claimed' }));
      const row = await harness.db.query<{ slug: string; attributes: Record<string, unknown> }>(
        'SELECT s.slug, u.attributes FROM scim_source_users o JOIN scim_sources s ON s.id = o.source_id JOIN users u ON u.id = o.user_id WHERE o.user_id = $1',
        [admin.id],
      );
      assert.equal(row.rows[0]?.slug, 'claimer');
      assert.equal(row.rows[0]?.attributes['team'], 'ops', 'attributes set through the admin API are kept');
    });

    test('with the deactivate policy a DELETE leaves the directory user inactive and hidden from the source', async () => {
      const soft = await harness.addSource({ slug: 'soft', deletePolicy: 'deactivate' });
      const created = (await soft.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'leaver@x.com' })).body;
      assert.equal((await soft.scim('DELETE', `/Users/${created['id']}`)).status, 204);
      assert.equal((await soft.scim('GET', `/Users/${created['id']}`)).status, 404);
      assert.equal((await soft.scim('DELETE', `/Users/${created['id']}`)).status, 404);
      const row = await harness.db.query<{ active: boolean }>('SELECT active FROM users WHERE id = $1', [
        created['id'],
      ]);
      assert.deepEqual(row.rows, [{ active: false }]);
    });

    test("a DELETE of a group a provider's scope names is a 409 naming the provider, and the group stays", async () => {
      const created = (await source.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'scoped@x.com' })).body;
      const group = (
        await source.scim('POST', '/Groups', { displayName: 'app-users', members: [{ value: created['id'] }] })
      ).body;
      await createProvider(harness.db, createSecretBox(generateSecretKey()), {
        ...ProviderInputSchema.parse({
          slug: 'scoped-app',
          name: 'Scoped app',
          baseUrl: 'https://scim.example.test/scim/v2',
          auth: { mode: 'none' },
        }),
        scope: { includeServiceAccounts: false, accessGroups: [group['id']] },
      });
      const refused = await source.scim('DELETE', `/Groups/${group['id']}`);
      assert.equal(refused.status, 409);
      assert.deepEqual(refused.body['schemas'], [ERROR_SCHEMA]);
      assert.equal(refused.body['scimType'], undefined, 'not a uniqueness conflict');
      assert.match(String(refused.body['detail']), /scope of provider "scoped-app"/);
      const kept = await source.scim('GET', `/Groups/${group['id']}`);
      assert.equal(kept.status, 200);
      assert.deepEqual(
        kept.body['members'].map((m: Record<string, string>) => m['value']),
        [created['id']],
      );
    });

    test('each write is one transaction with its outbox rows, and is audited as the source', async () => {
      const {
        rows: [mark],
      } = await harness.db.query<{ seq: string }>('SELECT coalesce(max(seq), 0) AS seq FROM outbox');
      const created = (await source.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'outbox@x.com' })).body;
      const group = (
        await source.scim('POST', '/Groups', { displayName: 'outboxed', members: [{ value: created['id'] }] })
      ).body;
      await source.scim(
        'PATCH',
        `/Groups/${group['id']}`,
        patch({ op: 'remove', path: 'members', value: [{ value: created['id'] }] }),
      );
      await source.scim('DELETE', `/Users/${created['id']}`);
      const { rows } = await harness.db.query<{ object_type: string; change: string; object_id: string }>(
        'SELECT object_type, change, object_id FROM outbox WHERE seq > $1 ORDER BY seq',
        [mark!.seq],
      );
      assert.deepEqual(
        rows.map((row) => `${row.object_type}:${row.change}`),
        ['user:created', 'group:created', 'membership:member_added', 'membership:member_removed', 'user:deleted'],
      );
      const audit = await harness.db.query<{ actor: string; action: string; target_id: string }>(
        'SELECT actor, action, target_id FROM audit_log WHERE target_id = ANY($1) ORDER BY id',
        [[created['id'], group['id']]],
      );
      assert.deepEqual(
        audit.rows.map((row) => [row.actor, row.action, row.target_id]),
        [
          ['source:main', 'user.create', created['id']],
          ['source:main', 'group.create', group['id']],
          ['source:main', 'group.members', group['id']],
          ['source:main', 'group.members', group['id']],
          ['source:main', 'user.delete', created['id']],
        ],
      );
    });

    test('requests beyond the per-token rate answer 429 with Retry-After; other sources are not affected', async () => {
      const limited = await startSourceHarness({ rateLimit: { ratePerSecond: 1, burst: 2 }, now: () => clock });
      try {
        const a = await limited.addSource({ slug: 'a' });
        const b = await limited.addSource({ slug: 'b' });
        assert.equal((await a.scim('GET', '/Users')).status, 200);
        assert.equal((await a.scim('GET', '/Users')).status, 200);
        const refused = await a.scim('GET', '/Users');
        assert.equal(refused.status, 429);
        assert.equal(refused.headers.get('retry-after'), '1');
        assert.equal(refused.body['status'], '429');
        assert.equal((await b.scim('GET', '/Users')).status, 200);
        clock += 1000;
        assert.equal((await a.scim('GET', '/Users')).status, 200);
      } finally {
        await limited.close();
      }
    });

    test('a Bulk request counts each of its operations against the rate, and one refused runs none of them', async () => {
      const limited = await startSourceHarness({ rateLimit: { ratePerSecond: 1, burst: 3 }, now: () => clock });
      try {
        const a = await limited.addSource({ slug: 'a' });
        const operations = ['one', 'two', 'three'].map((name) => ({
          method: 'POST',
          path: '/Users',
          bulkId: name,
          data: { schemas: [USER_SCHEMA], userName: `${name}@rate.io` },
        }));
        const body = { schemas: ['urn:ietf:params:scim:api:messages:2.0:BulkRequest'], Operations: operations };
        assert.equal((await a.scim('GET', '/Users')).status, 200);
        const refused = await a.scim('POST', '/Bulk', body);
        assert.equal(refused.status, 429);
        assert.equal(refused.headers.get('retry-after'), '2');
        assert.equal((await limited.db.query(`SELECT 1 FROM users WHERE username LIKE '%@rate.io'`)).rows.length, 0);
        clock += 3000;
        const accepted = await a.scim('POST', '/Bulk', body);
        assert.equal(accepted.status, 200);
        assert.equal((await a.scim('GET', '/Users')).status, 429, 'the three operations used the whole burst');
      } finally {
        await limited.close();
      }
    });
  });
});

describe('a source whose write PostgreSQL refuses for its text', () => {
  let harness: SourceHarness;
  before(async () => {
    harness = await startSourceHarness({
      // Stands for text no parser checked: the audit row of the write carries it, and PostgreSQL refuses it (22021).
      audit: async (q) => void (await q.query('SELECT $1::text', ['\u0000'])),
    });
  });
  after(() => harness?.close());

  test('answers 400 invalidValue without repeating the text, not a 500 an IdP would retry for ever', async () => {
    const source = await harness.addSource({ slug: 'refused' });
    const response = await source.scim('POST', '/Users', { schemas: [USER_SCHEMA], userName: 'fine@t.io' });
    assert.deepEqual(
      [response.status, response.body['scimType']],
      [400, 'invalidValue'],
      JSON.stringify(response.body),
    );
    assert.doesNotMatch(String(response.body['detail']), /\u0000|0x00/);
    assert.equal((await source.scim('GET', '/Users')).body['totalResults'], 0);
  });
});
