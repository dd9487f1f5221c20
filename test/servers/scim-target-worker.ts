/**
 * The SCIM test target's server, run inside its own worker thread because SCIMMY keeps resource declarations in
 * module-global state. SCIMMY parses, filters, patches, paginates and shapes responses; this file supplies the
 * in-memory store and the rules SCIMMY leaves to the implementer (uniqueness, referential integrity).
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import express, { type NextFunction, type Request, type Response } from 'express';
import SCIMMY from 'scimmy';
import SCIMMYRouters from 'scimmy-routers';
import type {
  FaultRule,
  ReceivedRequest,
  ScimTargetOptions,
  TargetCallMessage,
  TargetCalls,
  TargetReplyMessage,
} from './scim-target-types.ts';
import { verifyAccessToken } from './jwt-verify.ts';
import type { VendorEmulator } from '../emulators/emulator.ts';

const options = workerData as Required<ScimTargetOptions>;
const emulator =
  options.emulator === null ? null : ((await import(options.emulator.module)) as { default: VendorEmulator }).default;
const emulatorOptions = options.emulator?.options ?? {};
const BASE_PATH = emulator?.basePath(emulatorOptions) ?? '/scim/v2';
const SCIM_JSON = 'application/scim+json';
const SCHEMA_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const SCHEMA_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const SCHEMA_ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

type Stored = Record<string, unknown> & { id: string; meta: { created: string; lastModified: string } };
interface Member {
  value: string;
  display?: string;
  type?: string;
}

const users = new Map<string, Stored>();
const groups = new Map<string, Stored>();
let log: ReceivedRequest[] = [];
let faults: Array<FaultRule & { remaining: number }> = [];

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

function sendError(res: Response, status: number, scimType: string | undefined, detail: string): void {
  res
    .status(status)
    .type(SCIM_JSON)
    .send(
      JSON.stringify({ schemas: [SCHEMA_ERROR], status: String(status), ...(scimType ? { scimType } : {}), detail }),
    );
}

function faultFor(req: Request, path: string): (FaultRule & { remaining: number }) | undefined {
  const body = req.body as { userName?: unknown } | undefined;
  return faults.find(
    (rule) =>
      (rule.method === undefined || rule.method.toUpperCase() === req.method) &&
      (rule.pathPrefix === undefined || path.startsWith(rule.pathPrefix)) &&
      (rule.match?.userName === undefined || body?.userName === rule.match.userName),
  );
}

const app = express();
app.disable('x-powered-by');
app.use((req: Request, res: Response, next: NextFunction) => {
  const entry: ReceivedRequest = {
    method: req.method,
    path: relativePath(req.path),
    query: structuredClone(req.query),
    body: undefined,
    status: 0,
    at: Date.now(),
    ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
  };
  log.push(entry);
  const hasBody = (req.headers['content-length'] ?? '0') !== '0' || req.headers['transfer-encoding'] !== undefined;
  res.on('finish', () => {
    entry.body = hasBody && req.body !== undefined ? structuredClone(req.body) : undefined;
    entry.status = res.statusCode;
  });
  next();
});
app.use(express.json({ type: [SCIM_JSON, 'application/json'], limit: '10mb' }));
app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
  if (error === undefined) return next();
  sendError(res, 400, 'invalidSyntax', 'request body is not valid JSON');
});
app.use((req: Request, res: Response, next: NextFunction) => {
  const path = relativePath(req.path);
  const rule = faultFor(req, path);
  if (rule === undefined) return next();
  rule.remaining -= 1;
  if (rule.remaining <= 0) faults = faults.filter((candidate) => candidate !== rule);
  res.status(rule.status).set(rule.headers ?? {});
  if (rule.body === undefined) return sendError(res, rule.status, undefined, `injected failure ${rule.status}`);
  res.type(SCIM_JSON).send(JSON.stringify(rule.body));
});
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
app.use(BASE_PATH, scimRouter as unknown as express.Router);
app.use((_req: Request, res: Response) => sendError(res, 404, undefined, 'Endpoint Not Found'));

function resourceOut(value: Stored, schema: string): Record<string, unknown> {
  const { id, meta, ...rest } = value;
  return { schemas: [schema], id, ...rest, meta: { ...meta } };
}

const calls: { [K in keyof TargetCalls]: (...args: TargetCalls[K]['args']) => unknown } = {
  users: () => [...users.values()].map((user) => resourceOut(userOut(user), SCHEMA_USER)),
  groups: () => [...groups.values()].map((group) => resourceOut(group, SCHEMA_GROUP)),
  requests: () => log,
  writes: () => log.filter((entry) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(entry.method)).length,
  resetLog: () => {
    log = [];
  },
  failNext: (rule) => {
    const times = rule.times ?? 1;
    if (!Number.isInteger(times) || times < 1) throw new TypeError('times must be a positive integer');
    faults.push({ ...rule, remaining: times });
  },
  seedUser: async (user) => new SCIMMY.Resources.User().write({ schemas: [SCHEMA_USER], ...user }),
  seedGroup: async (group) => {
    if (!options.groups) throw new TypeError('this target serves no Groups');
    return new SCIMMY.Resources.Group().write({ schemas: [SCHEMA_GROUP], ...group });
  },
  close: async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  },
};

function post(message: TargetReplyMessage): void {
  parentPort?.postMessage(message);
}

const server: Server = app.listen(0, '127.0.0.1', () => {
  post({ type: 'ready', port: (server.address() as AddressInfo).port, basePath: BASE_PATH });
});

parentPort?.on('message', (message: TargetCallMessage) => {
  void (async () => {
    try {
      const call = calls[message.call] as (...args: unknown[]) => unknown;
      const value: unknown = await call(...message.args);
      post({
        type: 'reply',
        id: message.id,
        ok: true,
        value: value === undefined ? undefined : JSON.parse(JSON.stringify(value)),
      });
    } catch (error) {
      post({ type: 'reply', id: message.id, ok: false, error: error instanceof Error ? error.message : String(error) });
    }
    if (message.call === 'close') parentPort?.close();
  })();
});
