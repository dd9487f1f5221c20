import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isUnstorableTextError, UNSTORABLE_TEXT, type Db, type SecretSealer } from '../db/index.ts';
import { ERROR_CODES, isScimflowError, ScimflowError } from '../errors/index.ts';
import type { MappingEngine } from '../sandbox/index.ts';
import { auditRoutes, createAuditor } from './audit.ts';
import { authenticate, requireRole, type ApiVariables } from './auth.ts';
import { directoryRoutes } from './directory-routes.ts';
import {
  assertJsonDepth,
  hostAndOriginGuard,
  jsonBodyGuard,
  LOOPBACK_HOSTS,
  ndjsonBodyGuard,
  type RequestPolicy,
} from './guards.ts';
import { mappingRoutes } from './mapping-routes.ts';
import type { OidcVerifier } from './oidc.ts';
import { buildOpenApiDocument } from './openapi.ts';
import {
  oauthCallbackRoutes,
  providerAuthRoutes,
  type ProviderAuthRouteDeps,
  type ProviderAuthWorker,
} from './provider-auth-routes.ts';
import { providerRoutes } from './provider-routes.ts';
import { sourceRoutes } from './source-routes.ts';
import { createSourceApi, SOURCE_PREFIX, type SourceApiOptions } from './source/app.ts';
import { defineRoute, named, type ApiRoute } from './route.ts';
import type { SyncControl } from './sync-control.ts';
import { tokenRoutes } from './token-routes.ts';
import { parseInput, parseJsonBody, type Issue } from './validation.ts';
import { HealthSchema } from './view-schemas.ts';

/** The slice of a pino logger the API writes to. */
export interface ApiLogger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** Limits and allowlists of the API; each has a default (see DEFAULT_API_POLICY). */
export interface ApiPolicy extends RequestPolicy {
  /** Largest request body of every route but the directory import. */
  maxBodyBytes: number;
  /** Largest body of `POST /import` (a whole directory, checked as a whole and written in batches). */
  importMaxBodyBytes: number;
  /** Longest line of `POST /import/stream` (a streamed import has no limit on the whole). */
  importMaxLineBytes: number;
  /** Rows (a user; a group and each member it lists) `POST /import/stream` writes per transaction. */
  importBatchRows: number;
}

/**
 * Loopback hosts only, no other origins, 1 MiB bodies and 64 MiB for the directory import; streamed imports in lines
 * of up to 1 MiB, written 1,000 rows per transaction.
 */
export const DEFAULT_API_POLICY: ApiPolicy = {
  allowedHosts: LOOPBACK_HOSTS,
  allowedOrigins: [],
  maxBodyBytes: 1024 * 1024,
  importMaxBodyBytes: 64 * 1024 * 1024,
  importMaxLineBytes: 1024 * 1024,
  importBatchRows: 1000,
};

/** What the API is built from. */
export interface ApiDeps {
  db: Db;
  /** Seals and fingerprints provider tokens; the API is never given a way to decrypt one. */
  secrets: SecretSealer;
  sync: SyncControl;
  /**
   * Checks a plugin's options, and the base URL against the plugin's vendor form; throws ScimflowError ERR_CONFIG for
   * an unknown plugin, bad options or a URL the plugin refuses.
   */
  validatePluginOptions: (pluginId: string, options: unknown, baseUrl?: string) => unknown;
  log?: ApiLogger;
  /** Settings of the inbound SCIM source endpoints (`/source/scim/<slug>/v2`). */
  sources?: SourceApiOptions;
  /** Compiles mappings on save and runs previews; without it the mapping routes are not served. */
  mappingEngine?: MappingEngine;
  /**
   * Runs provider connection checks and completes interactive OAuth authorisations on a worker; without it
   * `/providers/{id}/test`, `/providers/{id}/oauth*` and `/oauth/callback` are not served.
   */
  providerAuth?: ProviderAuthWorker;
  /** The URL browsers reach this API at (`SCIMFLOW_PUBLIC_URL`), read when needed; the OAuth redirect URI is under it. */
  publicUrl?: () => string;
  /** Checks OIDC bearer tokens of the organisation's identity provider; without it only API tokens are accepted. */
  oidc?: OidcVerifier;
  /** Overrides of DEFAULT_API_POLICY. */
  policy?: Partial<ApiPolicy>;
}

/** Where the versioned admin routes live; every route under it needs an API token (or an OIDC token, when configured). */
export const API_PREFIX = '/api/v1';

const silentLogger: ApiLogger = { error: () => undefined, warn: () => undefined, debug: () => undefined };

/** The error body every failing request gets. */
interface ErrorBody {
  error: { code: string; message: string; issues?: Issue[]; details?: Record<string, unknown> };
}

function errorJson(c: Context, status: ContentfulStatusCode, body: ErrorBody['error']): Response {
  return c.json({ error: body } satisfies ErrorBody, status);
}

function toErrorResponse(c: Context, error: unknown, log: ApiLogger): Response {
  if (isScimflowError(error)) {
    const status = ERROR_CODES[error.code].httpStatus;
    if (error.code === 'ERR_VALIDATION' || (error.code === 'ERR_MAPPING' && Array.isArray(error.details['issues']))) {
      const { issues = [], ...details } = error.details as { issues?: Issue[] };
      // What else the error tells (a streamed import's failed line and what it committed before it).
      const more = error.code === 'ERR_VALIDATION' && Object.keys(details).length > 0 ? { details } : {};
      return errorJson(c, status, { code: error.code, message: error.message, issues, ...more });
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
  // Text no input schema checked (a path parameter) that PostgreSQL refused; the answer does not repeat it.
  if (isUnstorableTextError(error)) {
    return errorJson(c, 400, { code: 'ERR_VALIDATION', message: `the request's text ${UNSTORABLE_TEXT}`, issues: [] });
  }
  log.error({ err: error, method: c.req.method, path: c.req.path }, 'request failed');
  return errorJson(c, 500, { code: 'ERR_INTERNAL', message: 'internal error; see the server log' });
}

function limitBody(maxSize: number) {
  return bodyLimit({
    maxSize,
    onError: (c) =>
      errorJson(c, 413, {
        code: 'ERR_VALIDATION',
        message: `request body is larger than ${maxSize} bytes`,
        issues: [],
      }),
  });
}

/**
 * Serves `routes` under `prefix`. Each route checks its role first (the caller was authenticated by the prefix's
 * middleware), then that a write's body is JSON, then the body's size, and only then reads it.
 */
function mount(app: Hono<{ Variables: ApiVariables }>, prefix: string, routes: readonly ApiRoute[], policy: ApiPolicy) {
  for (const route of routes) {
    const role = route.role;
    app.on(
      route.method,
      `${prefix}${route.path}`,
      async (c, next) => {
        if (role !== 'public') requireRole(c.get('caller') ?? null, role, `${route.method} ${prefix}${route.path}`);
        await next();
      },
      route.streamed ? ndjsonBodyGuard : jsonBodyGuard,
      // A streamed body has no limit on the whole: its route limits each line and holds only a batch of them.
      route.streamed ? (_c, next) => next() : limitBody(route.maxBodyBytes ?? policy.maxBodyBytes),
      async (c) => {
        let body: unknown = undefined;
        if (route.body) {
          const parsed = parseJsonBody(await c.req.text());
          assertJsonDepth(parsed);
          body = parseInput(route.body.schema, parsed, 'request body');
        }
        const query = route.query ? parseInput(route.query, c.req.query(), 'query') : undefined;
        const caller = role === 'public' ? null : c.get('caller');
        const stream = route.streamed ? c.req.raw.body : null;
        const result = await route.handle({ body, query, params: c.req.param(), caller, stream });
        if (result instanceof Response) return result;
        if (route.status === 204) return c.body(null, 204);
        return c.json(result, route.status);
      },
    );
  }
}

/**
 * Builds the HTTP admin API: the directory, providers, runs, mappings, tokens and audit log under `/api/v1` (each
 * route with its role, behind the Host/Origin guard and token authentication), plus `/healthz` and `/openapi.json`.
 */
export function createApi(deps: ApiDeps): Hono<{ Variables: ApiVariables }> {
  const { db, secrets, sync, validatePluginOptions } = deps;
  const log = deps.log ?? silentLogger;
  const policy: ApiPolicy = { ...DEFAULT_API_POLICY, ...deps.policy };
  const audit = createAuditor(db);
  const providerAuth: ProviderAuthRouteDeps | undefined = deps.providerAuth && {
    db,
    secrets,
    worker: deps.providerAuth,
    audit,
    publicUrl:
      deps.publicUrl ??
      (() => {
        throw new ScimflowError('ERR_CONFIG', 'SCIMFLOW_PUBLIC_URL is not set: the OAuth redirect URI is under it');
      }),
  };
  const versioned = [
    ...directoryRoutes(db, policy),
    ...providerRoutes({
      db,
      secrets,
      sync,
      audit,
      validatePluginOptions,
      onNotifyFailure: (error, provider, event) =>
        log.error(
          { err: error, provider: provider.slug, event },
          'the provider was saved but the sync engine could not be told',
        ),
    }),
    ...(providerAuth ? providerAuthRoutes(providerAuth) : []),
    ...sourceRoutes(db, audit),
    ...(deps.mappingEngine ? mappingRoutes({ db, engine: deps.mappingEngine, audit }) : []),
    ...tokenRoutes({ db, audit }),
    ...auditRoutes(db),
  ];
  const open = versioned.find((route) => route.role === 'public');
  if (open) throw new Error(`${open.operationId}: routes under ${API_PREFIX} cannot be public`);
  const root: ApiRoute[] = [
    defineRoute({
      method: 'GET',
      path: '/healthz',
      operationId: 'health',
      summary: 'Liveness and database reachability',
      tag: 'meta',
      role: 'public',
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
      role: 'public',
      status: 200,
      handle: () => Promise.resolve(document),
    }),
    ...(providerAuth ? oauthCallbackRoutes(providerAuth) : []),
  ];
  const document = buildOpenApiDocument(
    [
      { prefix: API_PREFIX, routes: versioned },
      { prefix: '', routes: root },
    ],
    { title: 'scimflow admin API', version: '1' },
  );

  const app = new Hono<{ Variables: ApiVariables }>();
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    log.debug(
      {
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        ms: Math.round(performance.now() - started),
        caller: c.get('caller')?.name,
      },
      'request',
    );
  });
  // Only the admin API: other mounts (the inbound SCIM source) have callers and credentials of their own.
  app.use(
    `${API_PREFIX}/*`,
    hostAndOriginGuard(policy),
    authenticate(db, {
      oidc: deps.oidc,
      // A revoked or expired token still in use, or one tried by guessing: named by its prefix, never in full.
      onRefused: (refused) => log.warn(refused, 'API token refused'),
    }),
  );
  mount(app, API_PREFIX, versioned, policy);
  app.route(
    SOURCE_PREFIX,
    createSourceApi(db, deps.sources, (error) => log.error({ err: error }, 'SCIM source request failed')),
  );
  mount(app, '', root, policy);
  app.notFound((c) => errorJson(c, 404, { code: 'ERR_NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` }));
  app.onError((error, c) => toErrorResponse(c, error, log));
  return app;
}
