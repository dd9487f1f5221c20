/**
 * The SCIM test target's server, run inside its own worker thread because SCIMMY keeps resource declarations in
 * module-global state. SCIMMY parses, filters, patches, paginates and shapes responses; this file supplies the
 * in-memory store and the rules SCIMMY leaves to the implementer (uniqueness, referential integrity).
 */
import { randomUUID } from 'node:crypto';
import { workerData } from 'node:worker_threads';
import type { NextFunction, Request, Response, Router } from 'express';
import SCIMMY from 'scimmy';
import SCIMMYRouters from 'scimmy-routers';
import { createTargetApp, sendScimError as sendError } from './request-log.ts';
import type { ScimTargetOptions } from './scim-target-types.ts';
import { hostTarget, listenOnLoopback } from './target-worker-host.ts';
import { verifyAccessToken } from './jwt-verify.ts';
import type { VendorEmulator } from '../emulators/emulator.ts';

const options = workerData as Required<ScimTargetOptions>;
const emulator =
  options.emulator === null ? null : ((await import(options.emulator.module)) as { default: VendorEmulator }).default;
const emulatorOptions = options.emulator?.options ?? {};
const BASE_PATH = emulator?.basePath(emulatorOptions) ?? '/scim/v2';
const SCHEMA_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const SCHEMA_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';

type Stored = Record<string, unknown> & { id: string; meta: { created: string; lastModified: string } };
interface Member {
  value: string;
  display?: string;
  type?: string;
}

const users = new Map<string, Stored>();
const groups = new Map<string, Stored>();

function scimError(status: number, scimType: string | null, detail: string): InstanceType<typeof SCIMMY.Types.Error> {
  return new SCIMMY.Types.Error(status, scimType as never, detail);
}

/** A plain JSON copy of what SCIMMY handed the ingress handler, without the server-owned attributes. */
function plain(instance: unknown): Record<string, unknown> {
  const data = JSON.parse(JSON.stringify(instance)) as Record<string, unknown>;
  delete data.schemas;
  delete data.meta;
  delete data.id;
  return data;
}

function save(store: Map<string, Stored>, id: string | undefined, data: Record<string, unknown>): Stored {
  const now = new Date().toISOString();
  const existing = id === undefined ? undefined : store.get(id);
  if (id !== undefined && existing === undefined) throw scimError(404, null, `Resource ${id} not found`);
  const stored: Stored = {
    ...data,
    id: id ?? randomUUID(),
    meta: { created: existing?.meta.created ?? now, lastModified: now },
  };
  store.set(stored.id, stored);
  return stored;
}

function lower(value: unknown): string | undefined {
  return typeof value === 'string' ? value.toLowerCase() : undefined;
}

function membersOf(group: Stored): Member[] {
  return Array.isArray(group.members) ? (group.members as Member[]) : [];
}

function userOut(user: Stored): Stored {
  const memberOf = [...groups.values()]
    .filter((group) => membersOf(group).some((member) => member.value === user.id))
    .map((group) => ({ value: group.id, display: group.displayName as string }));
  return memberOf.length === 0 ? user : { ...user, groups: memberOf };
}

function writeUser(id: string | undefined, instance: unknown): Stored {
  const data = plain(instance);
  delete data.groups;
  const userName = lower(data.userName);
  for (const other of users.values()) {
    if (other.id === id) continue;
    if (userName !== undefined && lower(other.userName) === userName) {
      throw scimError(409, 'uniqueness', `userName ${String(data.userName)} is already taken`);
    }
    if (data.externalId !== undefined && other.externalId === data.externalId) {
      throw scimError(409, 'uniqueness', `externalId ${JSON.stringify(data.externalId)} is already taken`);
    }
  }
  return save(users, id, data);
}

function writeGroup(id: string | undefined, instance: unknown): Stored {
  const data = plain(instance);
  const displayName = lower(data.displayName);
  for (const other of groups.values()) {
    if (other.id !== id && displayName !== undefined && lower(other.displayName) === displayName) {
      throw scimError(409, 'uniqueness', `displayName ${String(data.displayName)} is already taken`);
    }
  }
  const members: Member[] = [];
  const seen = new Set<string>();
  for (const member of Array.isArray(data.members) ? (data.members as Member[]) : []) {
    if (!users.has(member.value)) throw scimError(400, 'invalidValue', `member ${member.value} is not a known user`);
    if (seen.has(member.value)) continue;
    seen.add(member.value);
    members.push(member);
  }
  data.members = members;
  return save(groups, id, data);
}

type Resource = { id?: string; filter?: { match(values: unknown[]): unknown[] } };

function read(store: Map<string, Stored>, resource: Resource, shape: (value: Stored) => Stored): Stored | unknown[] {
  if (resource.id !== undefined) {
    const found = store.get(resource.id);
    if (found === undefined) throw scimError(404, null, `Resource ${resource.id} not found`);
    return shape(found);
  }
  const all = [...store.values()].map(shape);
  return resource.filter === undefined ? all : resource.filter.match(all);
}

SCIMMY.Resources.declare(SCIMMY.Resources.User)
  .ingress((resource, instance) => writeUser(resource.id, instance) as never)
  .egress((resource) => read(users, resource as Resource, userOut) as never)
  .degress((resource) => {
    const id = resource.id ?? '';
    if (!users.delete(id)) throw scimError(404, null, `Resource ${id} not found`);
    for (const group of groups.values()) {
      const members = membersOf(group);
      if (members.some((member) => member.value === id))
        group.members = members.filter((member) => member.value !== id);
    }
  });

if (options.groups) {
  SCIMMY.Resources.declare(SCIMMY.Resources.Group)
    .ingress((resource, instance) => writeGroup(resource.id, instance) as never)
    .egress((resource) => read(groups, resource as Resource, (group) => group) as never)
    .degress((resource) => {
      const id = resource.id ?? '';
      if (!groups.delete(id)) throw scimError(404, null, `Resource ${id} not found`);
    });
}

const scimRouter = new SCIMMYRouters({
  type: 'bearer',
  baseUri: (req) => `http://${req.headers.host ?? '127.0.0.1'}`,
  handler: (req) => {
    const header = req.header('authorization') ?? '';
    const accepted =
      options.oauth === null
        ? header === `Bearer ${options.token}`
        : header.startsWith('Bearer ') && verifyAccessToken(header.slice('Bearer '.length), options.oauth);
    if (!accepted) throw new Error('Authorization failed');
    return 'admin';
  },
});
// SCIMMYRouters switches every feature on; these are the ones this target really offers.
SCIMMY.Config.set({ patch: options.patch, filter: { supported: options.filter, maxResults: 1000 } });

function relativePath(path: string): string {
  return path.startsWith(BASE_PATH) ? path.slice(BASE_PATH.length) || '/' : path;
}

const { app, requestLog } = createTargetApp(relativePath);
app.use(BASE_PATH, (req: Request, res: Response, next: NextFunction) => {
  if (!options.patch && req.method === 'PATCH') return sendError(res, 501, undefined, 'PATCH is not supported');
  if (!options.filter && req.method === 'GET' && req.query.filter !== undefined) {
    return sendError(res, 400, 'invalidFilter', 'filtering is not supported');
  }
  next();
});
emulator?.install(
  {
    app,
    basePath: BASE_PATH,
    users,
    groups,
    sendError,
    relativePath,
    configure: (config) => {
      SCIMMY.Config.set(config);
    },
  },
  emulatorOptions,
);
app.use(BASE_PATH, scimRouter as unknown as Router);
app.use((_req: Request, res: Response) => sendError(res, 404, undefined, 'Endpoint Not Found'));

function resourceOut(value: Stored, schema: string): Record<string, unknown> {
  const { id, meta, ...rest } = value;
  return { schemas: [schema], id, ...rest, meta: { ...meta } };
}

hostTarget(await listenOnLoopback(app), BASE_PATH, {
  users: () => [...users.values()].map((user) => resourceOut(userOut(user), SCHEMA_USER)),
  groups: () => [...groups.values()].map((group) => resourceOut(group, SCHEMA_GROUP)),
  requests: requestLog.requests,
  writes: requestLog.writes,
  resetLog: requestLog.resetLog,
  failNext: requestLog.failNext,
  seedUser: async (user) => new SCIMMY.Resources.User().write({ schemas: [SCHEMA_USER], ...user }),
  seedGroup: async (group) => {
    if (!options.groups) throw new TypeError('this target serves no Groups');
    return new SCIMMY.Resources.Group().write({ schemas: [SCHEMA_GROUP], ...group });
  },
});
