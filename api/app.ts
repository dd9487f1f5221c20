import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { Db, SecretBox } from '../db/index.ts';
import { ERROR_CODES, isScimflowError } from '../errors/index.ts';
import type { MappingEngine } from '../sandbox/index.ts';
import { directoryRoutes } from './directory-routes.ts';
import { mappingRoutes } from './mapping-routes.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { providerRoutes } from './provider-routes.ts';
import { sourceRoutes } from './source-routes.ts';
import { defineRoute, named, type ApiRoute } from './route.ts';
import type { SyncControl } from './sync-control.ts';
import { parseInput, parseJsonBody, type Issue } from './validation.ts';
import { HealthSchema } from './view-schemas.ts';

/** The slice of a pino logger the API writes to. */
export interface ApiLogger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** What the API is built from. */
export interface ApiDeps {
  db: Db;
  secrets: SecretBox;
  sync: SyncControl;
  /** Checks a plugin's options; throws ScimflowError ERR_CONFIG for an unknown plugin or bad options. */
  validatePluginOptions: (pluginId: string, options: unknown) => unknown;
  log?: ApiLogger;
  /** Compiles mappings on save and runs previews; without it the mapping routes are not served. */
  mappingEngine?: MappingEngine;
}

/** Where the versioned admin routes live. */
export const API_PREFIX = '/api/v1';
/** Largest request body accepted (a directory import of a few hundred thousand users fits). */
export const MAX_BODY_BYTES = 64 * 1024 * 1024;

const silentLogger: ApiLogger = { error: () => undefined, warn: () => undefined, debug: () => undefined };

/** The error body every failing request gets. */
interface ErrorBody {
  error: { code: string; message: string; issues?: Issue[]; details?: Record<string, unknown> };
}

function errorJson(c: Context, status: 400 | 404 | 409 | 413 | 500 | 502 | 503, body: ErrorBody['error']): Response {
  return c.json({ error: body } satisfies ErrorBody, status);
}

function toErrorResponse(c: Context, error: unknown, log: ApiLogger): Response {
  if (isScimflowError(error)) {
    const status = ERROR_CODES[error.code].httpStatus;
    if (error.code === 'ERR_VALIDATION' || (error.code === 'ERR_MAPPING' && Array.isArray(error.details['issues']))) {
      const issues = (error.details['issues'] ?? []) as Issue[];
      return errorJson(c, status, { code: error.code, message: error.message, issues });
    }
    const hasDetails = Object.keys(error.details).length > 0;
    return errorJson(c, status, {
      code: error.code,
      message: error.message,
      ...(hasDetails ? { details: error.details } : {}),
    });
  }
  if (error instanceof HTTPException && error.status < 500) {
    return errorJson(c, 400, { code: 'ERR_VALIDATION', message: error.message || 'bad request', issues: [] });
  }
  log.error({ err: error, method: c.req.method, path: c.req.path }, 'request failed');
  return errorJson(c, 500, { code: 'ERR_INTERNAL', message: 'internal error; see the server log' });
}

function mount(app: Hono, prefix: string, routes: readonly ApiRoute[]): void {
  for (const route of routes) {
    app.on(route.method, `${prefix}${route.path}`, async (c) => {
      const body = route.body
        ? parseInput(route.body.schema, parseJsonBody(await c.req.text()), 'request body')
        : undefined;
      const query = route.query ? parseInput(route.query, c.req.query(), 'query') : undefined;
      const result = await route.handle({ body, query, params: c.req.param() });
      if (result instanceof Response) return result;
      if (route.status === 204) return c.body(null, 204);
      return c.json(result, route.status);
    });
  }
}

/** Builds the HTTP admin API: the directory, providers and runs under `/api/v1`, plus `/healthz` and `/openapi.json`. */
export function createApi(deps: ApiDeps): Hono {
  const { db, secrets, sync, validatePluginOptions } = deps;
  const log = deps.log ?? silentLogger;
  const versioned = [
    ...directoryRoutes(db),
    ...providerRoutes({
      db,
      secrets,
      sync,
      validatePluginOptions,
      onNotifyFailure: (error, provider, event) =>
        log.error(
          { err: error, provider: provider.slug, event },
          'the provider was saved but the sync engine could not be told',
        ),
    }),
    ...sourceRoutes(db),
    ...(deps.mappingEngine ? mappingRoutes({ db, engine: deps.mappingEngine }) : []),
  ];
  const root: ApiRoute[] = [
    defineRoute({
      method: 'GET',
      path: '/healthz',
      operationId: 'health',
      summary: 'Liveness and database reachability',
      tag: 'meta',
      status: 200,
      response: named('Health', HealthSchema),
      handle: async () => {
        try {
          await db.query('SELECT 1');
          return { status: 'ok' };
        } catch (error) {
          log.error({ err: error }, 'health check: database unreachable');
          return Response.json({ status: 'unavailable' }, { status: 503 });
        }
      },
    }),
    defineRoute({
      method: 'GET',
      path: '/openapi.json',
      operationId: 'openapi',
      summary: 'This OpenAPI 3.1 document',
      tag: 'meta',
      status: 200,
      handle: () => Promise.resolve(document),
    }),
  ];
  const document = buildOpenApiDocument(
    [
      { prefix: API_PREFIX, routes: versioned },
      { prefix: '', routes: root },
    ],
    { title: 'scimflow admin API', version: '1' },
  );

  const app = new Hono();
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    log.debug(
      { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) },
      'request',
    );
  });
  app.use(
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) =>
        errorJson(c, 413, {
          code: 'ERR_VALIDATION',
          message: `request body is larger than ${MAX_BODY_BYTES} bytes`,
          issues: [],
        }),
    }),
  );
  mount(app, API_PREFIX, versioned);
  mount(app, '', root);
  app.notFound((c) => errorJson(c, 404, { code: 'ERR_NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` }));
  app.onError((error, c) => toErrorResponse(c, error, log));
  return app;
}
