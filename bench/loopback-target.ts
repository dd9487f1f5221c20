/**
 * A minimal, fast in-memory SCIM 2.0 server for benchmarks (not for tests: tests use SCIMMY). Run as its own
 * process so its CPU does not share an event loop with what is measured. Prints `LISTENING <port>` when ready.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

type Resource = Record<string, unknown> & { id: string };

const users = new Map<string, Resource>();
const groups = new Map<string, Resource>();
const index = {
  userName: new Map<string, string>(),
  userExt: new Map<string, string>(),
  groupName: new Map<string, string>(),
  groupExt: new Map<string, string>(),
};
let writes = 0;
const recording: Array<{ method: string; path: string; body: string }> = [];
let record = false;
// Added before every SCIM answer (`POST /_latency?ms=20`), as a distant target would; control endpoints answer at once.
let latencyMs = 0;
// Requests between arrival and answer (SCIM ones only), integrated over time from the first arrival to the last answer
// since the last reset: their mean is how much of the client's bound was used (`GET /_stats`).
const flight = { now: 0, max: 0, last: 0, area: 0, first: 0 };
// The same over time (`GET /_timeline`): per `BUCKET_MS` from the first arrival, the area (its mean in flight) and
// the requests that arrived, by method and resource type.
const BUCKET_MS = 100;
let timeline: Array<{ area: number; arrived: Record<string, number> }> = [];
function bucket(at: number): { area: number; arrived: Record<string, number> } {
  const index = Math.floor((at - flight.first) / BUCKET_MS);
  while (timeline.length <= index) timeline.push({ area: 0, arrived: {} });
  return timeline[index]!;
}
function inFlight(delta: 1 | -1, label?: string): void {
  const at = performance.now();
  if (flight.first === 0) {
    flight.first = at;
    flight.last = at;
  }
  flight.area += flight.now * (at - flight.last);
  // By bucket index, not by time: a boundary computed back from a time may round into the bucket before it.
  const lastIndex = Math.floor((at - flight.first) / BUCKET_MS);
  for (let index = Math.floor((flight.last - flight.first) / BUCKET_MS); index <= lastIndex; index += 1) {
    const from = Math.max(flight.last, flight.first + index * BUCKET_MS);
    const to = Math.min(at, flight.first + (index + 1) * BUCKET_MS);
    if (to > from) bucket(from + (to - from) / 2).area += flight.now * (to - from);
  }
  if (label !== undefined) {
    const arrived = bucket(at).arrived;
    arrived[label] = (arrived[label] ?? 0) + 1;
  }
  flight.last = at;
  flight.now += delta;
  flight.max = Math.max(flight.max, flight.now);
}

const SPC = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
  patch: { supported: true },
  bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
  filter: { supported: true, maxResults: 1000 },
  changePassword: { supported: false },
  sort: { supported: false },
  etag: { supported: false },
  authenticationSchemes: [],
};
const RESOURCE_TYPES = {
  schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
  totalResults: 2,
  Resources: [
    {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
      id: 'User',
      name: 'User',
      endpoint: '/Users',
      schema: 'urn:ietf:params:scim:schemas:core:2.0:User',
    },
    {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:ResourceType'],
      id: 'Group',
      name: 'Group',
      endpoint: '/Groups',
      schema: 'urn:ietf:params:scim:schemas:core:2.0:Group',
    },
  ],
};

function send(res: ServerResponse, status: number, body?: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/scim+json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function list(items: Resource[]): unknown {
  return {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
    totalResults: items.length,
    startIndex: 1,
    itemsPerPage: items.length,
    Resources: items,
  };
}

/** Answers `attr eq "v"` filters, alone or joined with `or`; any other filter lists everything. */
function filtered(
  store: Map<string, Resource>,
  byName: Map<string, string>,
  byExt: Map<string, string>,
  filter: string,
): Resource[] {
  const clause = /^(\w+) eq "((?:[^"\\]|\\.)*)"(?: or |$)/;
  if (filter === '') return [...store.values()];
  const ids = new Set<string>();
  let rest = filter;
  while (rest !== '') {
    const match = clause.exec(rest);
    if (!match) return [...store.values()];
    const value = JSON.parse(`"${match[2]}"`) as string;
    const id = match[1] === 'externalId' ? byExt.get(value) : byName.get(value.toLowerCase());
    if (id && store.has(id)) ids.add(id);
    rest = rest.slice(match[0].length);
  }
  return [...ids].map((id) => store.get(id)!);
}

function indexOf(kind: 'Users' | 'Groups') {
  return kind === 'Users'
    ? { store: users, byName: index.userName, byExt: index.userExt, nameAttr: 'userName' }
    : { store: groups, byName: index.groupName, byExt: index.groupExt, nameAttr: 'displayName' };
}

function put(kind: 'Users' | 'Groups', resource: Resource): void {
  const { store, byName, byExt, nameAttr } = indexOf(kind);
  const old = store.get(resource.id);
  if (old) {
    byName.delete(String(old[nameAttr]).toLowerCase());
    if (typeof old['externalId'] === 'string') byExt.delete(old['externalId']);
  }
  store.set(resource.id, resource);
  byName.set(String(resource[nameAttr]).toLowerCase(), resource.id);
  if (typeof resource['externalId'] === 'string' && resource['externalId'] !== '')
    byExt.set(resource['externalId'], resource.id);
}

function handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const parts = url.pathname
    .replace(/^\/scim\/v2/, '')
    .split('/')
    .filter(Boolean);
  const method = req.method ?? 'GET';
  if (parts[0] === 'ServiceProviderConfig') return send(res, 200, SPC);
  if (parts[0] === 'ResourceTypes') return send(res, 200, RESOURCE_TYPES);
  if (parts[0] === '_stats') {
    const span = flight.last - flight.first;
    const requestsInFlight = { mean: span > 0 ? flight.area / span : 0, max: flight.max };
    return send(res, 200, { writes, users: users.size, groups: groups.size, requestsInFlight });
  }
  if (parts[0] === '_timeline')
    return send(res, 200, {
      bucketMs: BUCKET_MS,
      buckets: timeline.map((b) => ({ inFlight: b.area / BUCKET_MS, arrived: b.arrived })),
    });
  if (parts[0] === '_log') {
    // A page of the recording: a million requests are more text than one string may hold.
    const offset = Number(url.searchParams.get('offset') ?? 0);
    const limit = Number(url.searchParams.get('limit') ?? recording.length);
    return send(res, 200, recording.slice(offset, offset + limit));
  }
  if (parts[0] === '_record' && method === 'POST') {
    // Starting clears what an earlier recording kept; stopping keeps it for `/_log`.
    record = url.searchParams.get('on') === '1';
    if (record) recording.length = 0;
    return send(res, 204);
  }
  if (parts[0] === '_latency' && method === 'POST') {
    latencyMs = Number(url.searchParams.get('ms') ?? 0);
    return send(res, 204);
  }
  if (parts[0] === '_reset' && method === 'POST') {
    writes = 0;
    Object.assign(flight, { max: flight.now, area: 0, first: 0, last: performance.now() });
    timeline = [];
    users.clear();
    groups.clear();
    for (const map of Object.values(index)) map.clear();
    return send(res, 204);
  }
  if (record) recording.push({ method, path: (req.url ?? '/').replace(/^\/scim\/v2/, ''), body: raw });
  const kind = parts[0];
  if (kind !== 'Users' && kind !== 'Groups') return send(res, 404, { status: '404', detail: 'no such endpoint' });
  const { store, byName, byExt, nameAttr } = indexOf(kind);
  const id = parts[1] ? decodeURIComponent(parts[1]) : undefined;
  const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
  if (method !== 'GET') writes += 1;
  if (method === 'GET' && !id)
    return send(res, 200, list(filtered(store, byName, byExt, url.searchParams.get('filter') ?? '')));
  if (method === 'POST' && !id) {
    if (byName.has(String(body[nameAttr]).toLowerCase()))
      return send(res, 409, { status: '409', scimType: 'uniqueness', detail: 'exists' });
    const resource = { ...body, id: randomUUID() };
    put(kind, resource);
    return send(res, 201, resource);
  }
  const existing = id ? store.get(id) : undefined;
  if (!id || !existing) return send(res, 404, { status: '404', detail: 'not found' });
  if (method === 'GET') return send(res, 200, existing);
  if (method === 'PUT') {
    const resource = { ...body, id };
    put(kind, resource);
    return send(res, 200, resource);
  }
  if (method === 'DELETE') {
    store.delete(id);
    byName.delete(String(existing[nameAttr]).toLowerCase());
    return send(res, 204);
  }
  if (method === 'PATCH') {
    const resource: Resource = { ...existing };
    const members = new Map(
      ((resource['members'] as Array<{ value: string }> | undefined) ?? []).map((m) => [m.value, m]),
    );
    for (const op of (body['Operations'] as Array<{ op: string; path?: string; value?: unknown }>) ?? []) {
      const kindOfOp = op.op.toLowerCase();
      if (op.path === 'members' && kindOfOp === 'add')
        for (const m of op.value as Array<{ value: string }>) members.set(m.value, m);
      else if (op.path?.startsWith('members[') && kindOfOp === 'remove') {
        const value = /value eq "([^"]+)"/.exec(op.path)?.[1];
        if (value) members.delete(value);
      } else if (kindOfOp === 'replace' && op.path) resource[op.path] = op.value;
      else if (kindOfOp === 'replace' && op.value && typeof op.value === 'object') Object.assign(resource, op.value);
    }
    if (kind === 'Groups') resource['members'] = [...members.values()];
    put(kind, resource);
    return send(res, 200, resource);
  }
  return send(res, 405, { status: '405', detail: 'method not allowed' });
}

const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  const scim = !/^\/scim\/v2\/_/.test(req.url ?? '');
  if (scim) inFlight(1, `${req.method ?? 'GET'} ${/^\/scim\/v2\/(\w+)/.exec(req.url ?? '')?.[1] ?? '?'}`);
  req.on('end', () => {
    const answer = (): void => {
      try {
        handle(req, res, Buffer.concat(chunks).toString('utf8'));
      } catch (error) {
        send(res, 500, { status: '500', detail: String(error) });
      }
      if (scim) inFlight(-1);
    };
    if (latencyMs > 0 && scim) setTimeout(answer, latencyMs);
    else answer();
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(`LISTENING ${typeof address === 'object' && address ? address.port : 0}`);
});
process.on('disconnect', () => process.exit(0));
