/**
 * A better-auth server with its SCIM plugin (`@better-auth/scim`), the second independent SCIM 2.0 implementation
 * the engine is tested against, run in its own worker thread. better-auth does all of SCIM here (parsing, filters,
 * PATCH, paging, uniqueness, its own error bodies) on an in-memory node:sqlite database, whose native transactions
 * the plugin requires; this file only logs requests and injects faults in front of it, as for SCIMMY.
 */
import { randomBytes } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { workerData } from 'node:worker_threads';
import { scim } from '@better-auth/scim';
import { betterAuth, type BetterAuthOptions, type BetterAuthPlugin } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import type { NextFunction, Request, Response } from 'express';
import type { ScimGroup, ScimUser } from '../../scim/index.ts';
import { createTargetApp, sendScimError } from './request-log.ts';
import { hostTarget, listenOnLoopback } from './target-worker-host.ts';

/** Where better-auth serves SCIM: its default basePath plus the plugin's routes. */
const BETTER_AUTH_SCIM_PATH = '/api/auth/scim/v2';
const { token } = workerData as { token: string };
const SCIM_JSON = 'application/scim+json';
const SCHEMA_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const SCHEMA_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
/** better-auth caps pages at 100 resources (its ServiceProviderConfig's filter.maxResults). */
const PAGE = 100;

function relativePath(path: string): string {
  return path.startsWith(BETTER_AUTH_SCIM_PATH) ? path.slice(BETTER_AUTH_SCIM_PATH.length) || '/' : path;
}

// The body is parsed in front only so the log and the fault rules can read it; better-auth gets it again as JSON text.
const { app, requestLog } = createTargetApp(relativePath);
const server = await listenOnLoopback(app);
const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;

const options = {
  database: new DatabaseSync(':memory:'),
  baseURL: origin,
  secret: randomBytes(32).toString('hex'),
  // better-auth's own request limiter guards sign-in endpoints in production; a provisioning test is not that.
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  logger: { disabled: true },
  // The assertion only bridges this project's exactOptionalPropertyTypes, which better-auth's declarations predate.
  plugins: [
    scim({
      connections: [{ id: 'scimflow-test', credentials: [{ type: 'bearer', id: 'test', token }] }],
    }) as BetterAuthPlugin,
  ],
} satisfies BetterAuthOptions;
await (await getMigrations(options)).runMigrations();
const auth = betterAuth(options);

/** Sends one request to better-auth as a web Request, as its framework adapters do. */
async function handle(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const request = new Request(`${origin}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return auth.handler(request);
}

/** A request of the test's own (reading the store, seeding it), with the accepted token; never logged. */
function handleDirectly(method: string, path: string, body?: unknown) {
  const headers = { authorization: `Bearer ${token}`, 'content-type': SCIM_JSON };
  return handle(method, `${BETTER_AUTH_SCIM_PATH}${path}`, headers, body);
}

app.use(BETTER_AUTH_SCIM_PATH, (req: Request, res: Response, next: NextFunction) => {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === 'string' && name !== 'content-length' && name !== 'host') headers[name] = value;
  }
  const hasBody = req.method !== 'GET' && req.method !== 'DELETE' && req.body !== undefined;
  handle(req.method, req.originalUrl, headers, hasBody ? req.body : undefined)
    .then(async (response) => {
      res.status(response.status);
      for (const name of ['content-type', 'location', 'etag', 'retry-after']) {
        const value = response.headers.get(name);
        if (value !== null) res.set(name, value);
      }
      res.send(await response.text());
    })
    .catch(next);
});
app.use((_req: Request, res: Response) => sendScimError(res, 404, undefined, 'Endpoint Not Found'));

/** Every resource of a kind, read through better-auth's own SCIM API page by page (not logged). */
async function listAll<T>(endpoint: '/Users' | '/Groups'): Promise<T[]> {
  const all: T[] = [];
  for (let startIndex = 1; ; startIndex += PAGE) {
    const response = await handleDirectly('GET', `${endpoint}?startIndex=${startIndex}&count=${PAGE}`);
    if (!response.ok) throw new Error(`GET ${endpoint} answered ${response.status}: ${await response.text()}`);
    const page = (await response.json()) as { totalResults: number; Resources?: T[] };
    all.push(...(page.Resources ?? []));
    if ((page.Resources ?? []).length === 0 || all.length >= page.totalResults) return all;
  }
}

async function create<T>(endpoint: '/Users' | '/Groups', body: Record<string, unknown>): Promise<T> {
  const response = await handleDirectly('POST', endpoint, body);
  if (response.status !== 201)
    throw new Error(`POST ${endpoint} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

hostTarget(server, BETTER_AUTH_SCIM_PATH, {
  users: () => listAll<ScimUser>('/Users'),
  groups: () => listAll<ScimGroup>('/Groups'),
  requests: requestLog.requests,
  writes: requestLog.writes,
  resetLog: requestLog.resetLog,
  failNext: requestLog.failNext,
  seedUser: (user) => create<ScimUser>('/Users', { schemas: [SCHEMA_USER], ...user }),
  seedGroup: (group) => create<ScimGroup>('/Groups', { schemas: [SCHEMA_GROUP], ...group }),
});
