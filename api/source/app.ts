/**
 * The inbound SCIM service provider: `/source/scim/<slug>/v2/...`, authenticated by the source's own bearer token,
 * rate-limited per source, answering RFC 7644 error bodies.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import {
  authenticateSource,
  isUnstorableTextError,
  recordAudit,
  UNSTORABLE_TEXT,
  type Db,
  type Queryable,
  type SourceView,
} from '../../db/index.ts';
import { isScimflowError } from '../../errors/index.ts';
import { findSchema, GROUP_RESOURCE, USER_RESOURCE } from '../../scim/resource-schema.ts';
import { SCHEMA_LIST_RESPONSE } from '../../scim/schemas.ts';
import { badRequest, ScimServiceError } from '../../scim/service-error.ts';
import {
  allSchemas,
  listOf,
  resourceType,
  schemaResource,
  serviceProviderConfig,
  SOURCE_RESOURCES,
} from './discovery.ts';
import { runBulk } from './bulk.ts';
import * as groups from './groups.ts';
import { readListQuery, readProjection } from './list-query.ts';
import { createRateLimiter, type RateLimit } from './rate-limit.ts';
import { createSourceAuthenticator, type SourceTokenCacheOptions } from './token-cache.ts';
import { etag, etagMatches } from './render.ts';
import * as users from './users.ts';
import type { Rendered, SourceRequest } from './kind.ts';

/** Settings of the SCIM source endpoints. */
export interface SourceApiOptions {
  /** Most resources one list page returns (`count` above it is lowered). @default 200 */
  maxResults?: number;
  /** Largest request body. @default 1 MiB */
  maxPayloadBytes?: number;
  /** Most operations one `POST /Bulk` may hold. @default 100 */
  maxBulkOperations?: number;
  /** Requests per second each source may make. @default 100/s, bursts of 200 */
  rateLimit?: RateLimit;
  /** Milliseconds clock of the rate limiter and the token cache. */
  now?: () => number;
  /** How sources and their tokens are cached (see token-cache.ts); false: every request looks its token up. */
  tokenCache?: Omit<SourceTokenCacheOptions, 'now'> | false;
  /** Records a write by a source; called inside the write's transaction. @default a row in audit_log */
  audit?: (q: Queryable, entry: { source: SourceView; action: string; objectId: string }) => Promise<void>;
}

/** The path prefix under which sources are served. */
export const SOURCE_PREFIX = '/source/scim';
const SCIM_JSON = 'application/scim+json';

type Variables = { source: SourceView; base: string };
type SourceContext = Context<{ Variables: Variables }>;

function scimJson(c: Context, body: unknown, status: 200 | 201 = 200, version?: string): Response {
  const headers: Record<string, string> = { 'content-type': SCIM_JSON };
  if (version !== undefined) headers['etag'] = etag(version);
  return c.body(JSON.stringify(body), status, headers);
}

function errorResponse(error: ScimServiceError, extraHeaders: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(error.toBody()), {
    status: error.status,
    headers: { 'content-type': SCIM_JSON, ...extraHeaders },
  });
}

/** Maps anything thrown by a handler to a SCIM error response, once. */
function toScimError(error: unknown): ScimServiceError {
  if (error instanceof ScimServiceError) return error;
  if (isScimflowError(error)) {
    if (error.code === 'ERR_NOT_FOUND') return new ScimServiceError(404, error.message);
    // A conflict naming a field is a uniqueness rule; another (a group a provider's scope names) has no scimType.
    if (error.code === 'ERR_CONFLICT') {
      return new ScimServiceError(409, error.message, error.details['field'] === undefined ? undefined : 'uniqueness');
    }
    if (error.code === 'ERR_VALIDATION') return badRequest('invalidValue', error.message);
  }
  // A unique violation that got past the case-insensitive check (a write that took no name lock: SQL by hand).
  if ((error as { code?: unknown }).code === '23505') {
    return new ScimServiceError(409, 'the userName or displayName is already taken', 'uniqueness');
  }
  // Text that got past storableResource (no way is known) and PostgreSQL refused: an IdP retries a 500 for ever.
  if (isUnstorableTextError(error)) return badRequest('invalidValue', `the request's text ${UNSTORABLE_TEXT}`);
  return new ScimServiceError(500, 'internal error; see the server log');
}

function param(c: Context, name: string): string {
  return c.req.param(name) ?? '';
}

async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') throw badRequest('invalidSyntax', 'the request body is empty');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badRequest('invalidSyntax', 'the request body is not valid JSON');
  }
}

function listResponse(result: { total: number; resources: unknown[] }, startIndex: number) {
  return {
    schemas: [SCHEMA_LIST_RESPONSE],
    totalResults: result.total,
    startIndex,
    itemsPerPage: result.resources.length,
    Resources: result.resources,
  };
}

/** Builds the SCIM endpoints of every source; mount with `app.route(SOURCE_PREFIX, …)`. */
export function createSourceApi(
  db: Db,
  options: SourceApiOptions = {},
  onError: (error: unknown) => void = () => undefined,
): Hono<{ Variables: Variables }> {
  const maxResults = options.maxResults ?? 200;
  const maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024;
  const maxBulkOperations = options.maxBulkOperations ?? 100;
  const limiter = createRateLimiter(options.rateLimit ?? { ratePerSecond: 100, burst: 200 }, options.now);
  const cache =
    options.tokenCache === false
      ? null
      : createSourceAuthenticator(db, { ...options.tokenCache, ...(options.now ? { now: options.now } : {}) });
  const authenticate = (slug: string, token: string) =>
    cache ? cache.authenticate(slug, token) : authenticateSource(db, slug, token);
  const app = new Hono<{ Variables: Variables }>();
  // Writes by a source are audited as `source:<slug>`, in the same transaction as the write.
  const audit =
    options.audit ??
    ((q: Queryable, entry: { source: SourceView; action: string; objectId: string }) =>
      recordAudit(q, {
        actor: `source:${entry.source.slug}`,
        remoteAddress: null,
        action: entry.action,
        targetType: entry.action.split('.')[0] ?? 'object',
        targetId: entry.objectId,
        targetName: null,
      }));

  const request = (c: SourceContext): SourceRequest => ({
    db,
    source: c.get('source'),
    base: c.get('base'),
    audit: (q, action, objectId) => audit(q, { source: c.get('source'), action, objectId }),
  });
  // Every handler's failures become SCIM error bodies here (hono's onError does not reach mounted sub-apps).
  const handle =
    (fn: (c: SourceContext) => Response | Promise<Response>) =>
    async (c: SourceContext): Promise<Response> => {
      try {
        return await fn(c);
      } catch (error) {
        const scimError = toScimError(error);
        if (scimError.status === 500) onError(error);
        return errorResponse(scimError);
      }
    };

  app.use('/:slug/*', async (c, next) => {
    const authorization = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    const source = match ? await authenticate(c.req.param('slug'), match[1]!) : null;
    if (!source) {
      return errorResponse(new ScimServiceError(401, 'a valid bearer token of this source is required'), {
        'www-authenticate': 'Bearer realm="scimflow source"',
      });
    }
    const decision = limiter.take(source.id);
    if (!decision.allowed) {
      return errorResponse(new ScimServiceError(429, 'too many requests for this source; retry later'), {
        'retry-after': String(decision.retryAfterSeconds),
      });
    }
    c.set('source', source);
    c.set('base', `${new URL(c.req.url).origin}${SOURCE_PREFIX}/${source.slug}/v2`);
    await next();
    return undefined;
  });
  app.use(
    '/:slug/*',
    bodyLimit({
      maxSize: maxPayloadBytes,
      onError: () =>
        errorResponse(new ScimServiceError(413, `the request body is larger than ${maxPayloadBytes} bytes`)),
    }),
  );

  const v2 = '/:slug/v2';
  app.get(
    `${v2}/ServiceProviderConfig`,
    handle((c) =>
      scimJson(c, serviceProviderConfig(c.get('base'), { maxResults, maxPayloadBytes, maxBulkOperations })),
    ),
  );
  app.get(
    `${v2}/ResourceTypes`,
    handle((c) => scimJson(c, listOf(SOURCE_RESOURCES.map((r) => resourceType(r, c.get('base')))))),
  );
  app.get(
    `${v2}/ResourceTypes/:name`,
    handle((c) => {
      const found = SOURCE_RESOURCES.find((r) => r.name === param(c, 'name'));
      if (!found) throw new ScimServiceError(404, `no resource type ${param(c, 'name')}`);
      return scimJson(c, resourceType(found, c.get('base')));
    }),
  );
  app.get(
    `${v2}/Schemas`,
    handle((c) => scimJson(c, listOf(allSchemas().map((s) => schemaResource(s, c.get('base')))))),
  );
  app.get(
    `${v2}/Schemas/:id`,
    handle((c) => {
      const id = param(c, 'id');
      const found = findSchema(USER_RESOURCE, id) ?? findSchema(GROUP_RESOURCE, id);
      if (!found) throw new ScimServiceError(404, `no schema ${id}`);
      return scimJson(c, schemaResource(found, c.get('base')));
    }),
  );

  const single = (c: SourceContext, result: Rendered, status: 200 | 201 = 200): Response => {
    const ifNoneMatch = c.req.header('if-none-match');
    if (status === 200 && c.req.method === 'GET' && ifNoneMatch && etagMatches(ifNoneMatch, result.version)) {
      return c.body(null, 304, { etag: etag(result.version) });
    }
    const response = scimJson(c, result.body, status, result.version);
    const location = (result.body['meta'] as { location?: unknown } | undefined)?.location;
    if (status === 201 && typeof location === 'string') response.headers.set('location', location);
    return response;
  };

  for (const [path, resource, target] of [
    ['Users', USER_RESOURCE, 'user'],
    ['Groups', GROUP_RESOURCE, 'group'],
  ] as const) {
    const list = (c: SourceContext, params: Record<string, unknown>) => {
      const query = readListQuery(params, resource, target, maxResults);
      const lister = target === 'user' ? users.listUsers : groups.listGroups;
      return lister(request(c), query).then((result) => scimJson(c, listResponse(result, query.startIndex)));
    };
    app.get(
      `${v2}/${path}`,
      handle((c) => list(c, c.req.query())),
    );
    app.post(
      `${v2}/${path}/.search`,
      handle(async (c) => {
        const body = await readJson(c);
        if (typeof body !== 'object' || body === null || Array.isArray(body)) {
          throw badRequest('invalidSyntax', 'a search request must be a JSON object');
        }
        return list(c, body as Record<string, unknown>);
      }),
    );
    app.post(
      `${v2}/${path}`,
      handle(async (c) => {
        const create = target === 'user' ? users.createUser : groups.createGroup;
        return single(c, await create(request(c), await readJson(c), readProjection(c.req.query())), 201);
      }),
    );
    app.get(
      `${v2}/${path}/:id`,
      handle(async (c) => {
        const get = target === 'user' ? users.getUser : groups.getGroup;
        return single(c, await get(request(c), param(c, 'id'), readProjection(c.req.query())));
      }),
    );
    app.put(
      `${v2}/${path}/:id`,
      handle(async (c) => {
        const replace = target === 'user' ? users.replaceUser : groups.replaceGroup;
        const body = await readJson(c);
        return single(
          c,
          await replace(request(c), param(c, 'id'), body, c.req.header('if-match'), readProjection(c.req.query())),
        );
      }),
    );
    app.patch(
      `${v2}/${path}/:id`,
      handle(async (c) => {
        const body = await readJson(c);
        const projection = readProjection(c.req.query());
        if (target === 'user') {
          return single(
            c,
            await users.patchUser(request(c), param(c, 'id'), body, c.req.header('if-match'), projection),
          );
        }
        const result = await groups.patchGroup(request(c), param(c, 'id'), body, c.req.header('if-match'), projection);
        return result.wantsBody ? single(c, result) : c.body(null, 204, { etag: etag(result.version) });
      }),
    );
    app.delete(
      `${v2}/${path}/:id`,
      handle(async (c) => {
        const remove = target === 'user' ? users.deleteUser : groups.deleteGroup;
        await remove(request(c), param(c, 'id'), c.req.header('if-match'));
        return c.body(null, 204);
      }),
    );
  }
  // RFC 7644 §3.4.3: a search at the root spans every resource type; the filter is applied to each type, and a
  // type that lacks an attribute it names has no match (a filter no type understands is a 400). Users come first,
  // then groups, each in its default order; startIndex and count page over the two as one list.
  app.post(
    `${v2}/.search`,
    handle(async (c) => {
      const body = await readJson(c);
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw badRequest('invalidSyntax', 'a search request must be a JSON object');
      }
      const params = body as Record<string, unknown>;
      if (params['sortBy'] !== undefined) {
        throw badRequest('invalidValue', 'sortBy is not supported in a search across resource types');
      }
      const userQuery = readListQuery(params, USER_RESOURCE, 'user', maxResults);
      const refusals: ScimServiceError[] = [];
      const matching = <T>(search: Promise<T>, none: T): Promise<T> =>
        search.catch((error: unknown) => {
          if (!(error instanceof ScimServiceError && error.scimType === 'invalidFilter')) throw error;
          refusals.push(error);
          return none;
        });
      const found = await matching(users.listUsers(request(c), userQuery), { total: 0, resources: [] });
      const groupQuery = {
        ...readListQuery(params, GROUP_RESOURCE, 'group', maxResults),
        startIndex: Math.max(1, userQuery.startIndex - found.total),
        count: userQuery.count - found.resources.length,
      };
      const groupsFound = await matching(groups.listGroups(request(c), groupQuery), { total: 0, resources: [] });
      if (refusals.length === 2) throw refusals[0]!;
      const result = {
        total: found.total + groupsFound.total,
        resources: [...found.resources, ...groupsFound.resources],
      };
      return scimJson(c, listResponse(result, userQuery.startIndex));
    }),
  );
  app.post(
    `${v2}/Bulk`,
    handle(async (c) => {
      const body = await readJson(c);
      // Each operation counts against the source's rate like a request of its own (the request itself took one).
      const operations = (body as { Operations?: unknown } | null)?.Operations;
      const extra = Array.isArray(operations) ? Math.min(operations.length, maxBulkOperations) - 1 : 0;
      if (extra > 0) {
        const decision = limiter.take(c.get('source').id, extra, extra + 1);
        if (!decision.allowed) {
          return errorResponse(new ScimServiceError(429, 'too many operations for this source; retry later'), {
            'retry-after': String(decision.retryAfterSeconds),
          });
        }
      }
      return scimJson(c, await runBulk(request(c), body, maxBulkOperations, toScimError));
    }),
  );
  // RFC 7644 §3.11: a source pushes as a client, it is no user of its own, so the /Me alias is not implemented.
  for (const path of [`${v2}/Me`, `${v2}/Me/*`]) {
    app.all(
      path,
      handle(() => Promise.reject(new ScimServiceError(501, 'the /Me alias is not supported by a SCIM source'))),
    );
  }
  app.all(
    '/:slug/*',
    handle((c) => Promise.reject(new ScimServiceError(404, `no endpoint ${c.req.method} ${c.req.path}`))),
  );
  return app;
}
