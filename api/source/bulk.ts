/**
 * `POST /Bulk` of a source (RFC 7644 §3.7): up to `maxOperations` creates, replaces, patches and deletes of users and
 * groups in one request, each applied atomically on its own (one transaction, as if sent alone). `bulkId:<id>`
 * references, in `data` or in a `path`, name what an earlier or later POST of the same request created: operations
 * whose references are not yet known wait until they are, and those that never can be resolved answer 409.
 */
import { badRequest, ScimServiceError } from '../../scim/service-error.ts';
import * as groups from './groups.ts';
import type { Rendered, SourceRequest } from './kind.ts';
import { etag, type Projection } from './render.ts';
import * as users from './users.ts';

const BULK_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:BulkRequest';
const BULK_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:BulkResponse';
const FULL: Projection = { attributes: undefined, excludedAttributes: undefined };
const REFERENCE = /^bulkId:(.+)$/;
/** A path's last segment naming a resource by bulkId: `/Users/bulkId:u1`. */
const PATH_REFERENCE = /\/bulkId:([^/]+)$/;

interface BulkOperation {
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  bulkId: string | undefined;
  version: string | undefined;
  path: string;
  data: unknown;
}

/** One operation's outcome as the response lists it. */
interface BulkResult {
  method: string;
  bulkId?: string;
  location?: string;
  version?: string;
  status: string;
  response?: unknown;
}

function readOperations(body: unknown, maxOperations: number): { operations: BulkOperation[]; failOnErrors: number } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest('invalidSyntax', 'a bulk request must be a JSON object');
  }
  const request = body as Record<string, unknown>;
  const schemas = request['schemas'];
  if (!Array.isArray(schemas) || !schemas.includes(BULK_REQUEST)) {
    throw badRequest('invalidSyntax', `a bulk request must list the schema ${BULK_REQUEST}`);
  }
  const list = request['Operations'];
  if (!Array.isArray(list)) throw badRequest('invalidSyntax', 'Operations must be an array');
  if (list.length > maxOperations) {
    throw new ScimServiceError(413, `a bulk request may hold at most ${maxOperations} operations, not ${list.length}`);
  }
  const failOnErrors = request['failOnErrors'];
  if (failOnErrors !== undefined && !(Number.isInteger(failOnErrors) && (failOnErrors as number) > 0)) {
    throw badRequest('invalidValue', 'failOnErrors must be a positive integer');
  }
  const seen = new Set<string>();
  const operations = list.map((item: unknown, i): BulkOperation => {
    if (typeof item !== 'object' || item === null)
      throw badRequest('invalidSyntax', `Operations[${i}] is not an object`);
    const op = item as Record<string, unknown>;
    const method = typeof op['method'] === 'string' ? op['method'].toUpperCase() : '';
    if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH' && method !== 'DELETE') {
      throw badRequest('invalidValue', `Operations[${i}].method must be POST, PUT, PATCH or DELETE`);
    }
    if (typeof op['path'] !== 'string') throw badRequest('invalidValue', `Operations[${i}].path is required`);
    const bulkId = op['bulkId'];
    if (bulkId !== undefined && (typeof bulkId !== 'string' || bulkId === '')) {
      throw badRequest('invalidValue', `Operations[${i}].bulkId must be a non-empty string`);
    }
    if (method === 'POST' && bulkId === undefined)
      throw badRequest('invalidValue', `Operations[${i}] (POST) needs a bulkId`);
    if (bulkId !== undefined) {
      if (seen.has(bulkId)) throw badRequest('uniqueness', `bulkId "${bulkId}" is used twice`);
      seen.add(bulkId);
    }
    if (method !== 'DELETE' && (typeof op['data'] !== 'object' || op['data'] === null)) {
      throw badRequest('invalidValue', `Operations[${i}].data is required for ${method}`);
    }
    return {
      method,
      bulkId: bulkId,
      version: typeof op['version'] === 'string' ? op['version'] : undefined,
      path: op['path'],
      data: op['data'],
    };
  });
  return { operations, failOnErrors: (failOnErrors as number | undefined) ?? Number.POSITIVE_INFINITY };
}

/** The bulkIds a value refers to (`"bulkId:…"` strings anywhere in it). */
function referencesOf(value: unknown, into = new Set<string>()): Set<string> {
  if (typeof value === 'string') {
    const match = REFERENCE.exec(value);
    if (match) into.add(match[1]!);
  } else if (Array.isArray(value)) for (const item of value) referencesOf(item, into);
  else if (typeof value === 'object' && value !== null)
    for (const item of Object.values(value)) referencesOf(item, into);
  return into;
}

/** `value` with every `"bulkId:…"` string replaced by the id it names. */
function resolve(value: unknown, ids: ReadonlyMap<string, string>): unknown {
  if (typeof value === 'string') {
    const match = REFERENCE.exec(value);
    return match ? (ids.get(match[1]!) ?? value) : value;
  }
  if (Array.isArray(value)) return value.map((item) => resolve(item, ids));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, resolve(item, ids)]));
  }
  return value;
}

/** `/Users`, `/Groups`, or either with `/{id}`: which resource functions and which id. */
function target(path: string): { kind: 'Users' | 'Groups'; id: string | undefined } {
  const match = /^\/(Users|Groups)(?:\/([^/]+))?$/i.exec(path.trim());
  if (!match) throw badRequest('invalidPath', `a bulk path must be /Users, /Groups or one of their resources: ${path}`);
  const kind = match[1]!.toLowerCase() === 'users' ? 'Users' : 'Groups';
  return { kind, id: match[2] };
}

async function apply(request: SourceRequest, op: BulkOperation, path: string, data: unknown): Promise<BulkResult> {
  const { kind, id } = target(path);
  const api =
    kind === 'Users'
      ? { create: users.createUser, replace: users.replaceUser, patch: users.patchUser, remove: users.deleteUser }
      : {
          create: groups.createGroup,
          replace: groups.replaceGroup,
          patch: groups.patchGroup,
          remove: groups.deleteGroup,
        };
  const ifMatch = op.version;
  const done = (status: number, rendered: Rendered): BulkResult => ({
    method: op.method,
    ...(op.bulkId === undefined ? {} : { bulkId: op.bulkId }),
    location: (rendered.body['meta'] as { location?: string } | undefined)?.location ?? `${request.base}${path}`,
    version: etag(rendered.version),
    status: String(status),
  });
  if (op.method === 'POST') {
    if (id !== undefined) throw badRequest('invalidPath', 'a POST goes to /Users or /Groups');
    return done(201, await api.create(request, data, FULL));
  }
  if (id === undefined) throw badRequest('invalidPath', `${op.method} needs the resource's id in its path`);
  if (op.method === 'PUT') return done(200, await api.replace(request, id, data, ifMatch, FULL));
  if (op.method === 'PATCH') return done(200, await api.patch(request, id, data, ifMatch, FULL));
  await api.remove(request, id, ifMatch);
  return {
    method: op.method,
    ...(op.bulkId === undefined ? {} : { bulkId: op.bulkId }),
    location: `${request.base}/${kind}/${id}`,
    status: '204',
  };
}

/**
 * Runs a bulk request; `toError` maps what an operation threw to the SCIM error it answers. Operations run in order,
 * except that one waits for the POSTs whose bulkIds it refers to; after `failOnErrors` failures the rest are not run.
 */
export async function runBulk(
  request: SourceRequest,
  body: unknown,
  maxOperations: number,
  toError: (error: unknown) => ScimServiceError,
) {
  const { operations, failOnErrors } = readOperations(body, maxOperations);
  const ids = new Map<string, string>();
  const failedIds = new Set<string>();
  const results: BulkResult[] = [];
  let errors = 0;
  const fail = (op: BulkOperation, error: ScimServiceError) => {
    errors += 1;
    if (op.bulkId !== undefined) failedIds.add(op.bulkId);
    results.push({
      method: op.method,
      ...(op.bulkId === undefined ? {} : { bulkId: op.bulkId }),
      status: String(error.status),
      response: error.toBody(),
    });
  };
  let waiting = operations;
  while (waiting.length > 0 && errors < failOnErrors) {
    const later: BulkOperation[] = [];
    for (const op of waiting) {
      if (errors >= failOnErrors) break;
      const refs = referencesOf(op.data);
      const pathRef = PATH_REFERENCE.exec(op.path)?.[1];
      if (pathRef !== undefined) refs.add(pathRef);
      const broken = [...refs].find((ref) => failedIds.has(ref) || !operations.some((o) => o.bulkId === ref));
      if (broken !== undefined) {
        fail(
          op,
          new ScimServiceError(409, `bulkId "${broken}" names no resource this request created`, 'invalidValue'),
        );
        continue;
      }
      if ([...refs].some((ref) => !ids.has(ref))) {
        later.push(op);
        continue;
      }
      try {
        const path = op.path.replace(PATH_REFERENCE, (_, ref: string) => `/${ids.get(ref)!}`);
        const result = await apply(request, op, path, resolve(op.data, ids));
        if (op.method === 'POST' && op.bulkId !== undefined && result.location) {
          ids.set(op.bulkId, result.location.slice(result.location.lastIndexOf('/') + 1));
        }
        results.push(result);
      } catch (error) {
        fail(op, toError(error));
      }
    }
    if (later.length === waiting.length) {
      // Nothing ran in this pass: what is left refers, in a circle, to what is left.
      for (const op of later) {
        if (errors >= failOnErrors) break;
        fail(op, new ScimServiceError(409, 'its bulkId references go round in a circle', 'invalidValue'));
      }
      break;
    }
    waiting = later;
  }
  return { schemas: [BULK_RESPONSE], Operations: results };
}
