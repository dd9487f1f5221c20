/** The `/Users` endpoint of a source: create, read, list, replace, patch and delete directory users over SCIM. */
import {
  changeUser,
  inTransaction,
  insertUser,
  removeUser,
  type Db,
  type DirectoryUser,
  type SourceView,
} from '../../db/index.ts';
import { applyPatch, parsePatchRequest } from '../../scim/patch.ts';
import { USER_RESOURCE } from '../../scim/resource-schema.ts';
import { normalizeResource, type ResourceDocument } from '../../scim/resource.ts';
import { ScimServiceError } from '../../scim/service-error.ts';
import type { ListQuery } from './list-query.ts';
import {
  checkIfMatch,
  project,
  projectionWants,
  renderUser,
  userColumns,
  userDocument,
  type Projection,
} from './render.ts';
import {
  getSourceUser,
  listSourceUsers,
  markUserDeleted,
  sourceUserGroups,
  takeOwnership,
  usernameTaken,
  type Versioned,
} from './store.ts';
import type { Queryable } from '../../db/index.ts';

/** Who is asking and where the answer's URLs point. */
export interface SourceRequest {
  db: Db;
  source: SourceView;
  /** The source's SCIM base URL, e.g. `http://host/source/scim/entra/v2`. */
  base: string;
  /** Records a write by this source in the audit log, inside the write's transaction. */
  audit: (q: Queryable, action: string, objectId: string) => Promise<void>;
}

/** A resource with its ETag, as handlers return it. */
export interface Rendered {
  body: Record<string, unknown>;
  version: string;
}

function notFound(id: string): ScimServiceError {
  return new ScimServiceError(404, `User ${id} not found`);
}

async function render(q: Queryable, request: SourceRequest, user: Versioned<DirectoryUser>, projection: Projection) {
  const groups = projectionWants(USER_RESOURCE, projection, 'groups')
    ? ((await sourceUserGroups(q, request.source, [user.object.id])).get(user.object.id) ?? [])
    : [];
  const body = renderUser(USER_RESOURCE, user.object, user.version, groups, request.base);
  return { body: project(USER_RESOURCE, body, projection), version: user.version };
}

async function reload(q: Queryable, request: SourceRequest, id: string): Promise<Versioned<DirectoryUser>> {
  const user = await getSourceUser(q, request.source, id);
  if (!user) throw notFound(id);
  return user;
}

async function ensureUnique(q: Queryable, userName: string, exceptId?: string): Promise<void> {
  if (await usernameTaken(q, userName, exceptId)) {
    throw new ScimServiceError(409, `userName "${userName}" is already taken`, 'uniqueness');
  }
}

/** POST /Users. */
export async function createUser(request: SourceRequest, body: unknown, projection: Projection): Promise<Rendered> {
  const doc = normalizeResource(USER_RESOURCE, body);
  return inTransaction(request.db, async (client) => {
    await ensureUnique(client, doc['userName'] as string);
    const user = await insertUser(client, userColumns(doc));
    await takeOwnership(client, request.source, 'user', user.id);
    await request.audit(client, 'user.create', user.id);
    return render(client, request, await reload(client, request, user.id), projection);
  });
}

/** GET /Users/{id}. */
export async function getUser(request: SourceRequest, id: string, projection: Projection): Promise<Rendered> {
  const user = await getSourceUser(request.db, request.source, id);
  if (!user) throw notFound(id);
  return render(request.db, request, user, projection);
}

/** GET /Users and POST /Users/.search. */
export async function listUsers(request: SourceRequest, query: ListQuery) {
  const { total, items } = await listSourceUsers(request.db, request.source, {
    filter: query.filter,
    sort: query.sort,
    offset: query.startIndex - 1,
    limit: query.count,
  });
  const groups = projectionWants(USER_RESOURCE, query.projection, 'groups')
    ? await sourceUserGroups(
        request.db,
        request.source,
        items.map((item) => item.object.id),
      )
    : new Map<string, Array<{ id: string; name: string }>>();
  const resources = items.map((item) =>
    project(
      USER_RESOURCE,
      renderUser(USER_RESOURCE, item.object, item.version, groups.get(item.object.id) ?? [], request.base),
      query.projection,
    ),
  );
  return { total, resources };
}

/** Writes `doc` over the user (after PUT or PATCH), in the caller's transaction. */
async function write(q: Queryable, request: SourceRequest, current: Versioned<DirectoryUser>, doc: ResourceDocument) {
  const { kind: _kind, ...columns } = userColumns(doc, current.object.attributes);
  if (columns.username !== current.object.username) await ensureUnique(q, columns.username, current.object.id);
  await changeUser(q, current.object.id, columns);
  await takeOwnership(q, request.source, 'user', current.object.id);
  await request.audit(q, 'user.update', current.object.id);
}

async function locked(q: Queryable, request: SourceRequest, id: string, ifMatch: string | undefined) {
  const current = await getSourceUser(q, request.source, id, true);
  if (!current) throw notFound(id);
  checkIfMatch(ifMatch, current.version);
  return current;
}

/** PUT /Users/{id}: the body replaces every writable attribute. */
export async function replaceUser(
  request: SourceRequest,
  id: string,
  body: unknown,
  ifMatch: string | undefined,
  projection: Projection,
): Promise<Rendered> {
  const doc = normalizeResource(USER_RESOURCE, body);
  return inTransaction(request.db, async (client) => {
    const current = await locked(client, request, id, ifMatch);
    await write(client, request, current, doc);
    return render(client, request, await reload(client, request, id), projection);
  });
}

/** PATCH /Users/{id}: every operation applies, or none does. */
export async function patchUser(
  request: SourceRequest,
  id: string,
  body: unknown,
  ifMatch: string | undefined,
  projection: Projection,
): Promise<Rendered> {
  const operations = parsePatchRequest(body);
  return inTransaction(request.db, async (client) => {
    const current = await locked(client, request, id, ifMatch);
    const doc = normalizeResource(USER_RESOURCE, applyPatch(USER_RESOURCE, userDocument(current.object), operations));
    await write(client, request, current, doc);
    return render(client, request, await reload(client, request, id), projection);
  });
}

/** DELETE /Users/{id}: deletes the directory user, or deactivates it under the source's deactivate policy. */
export async function deleteUser(request: SourceRequest, id: string, ifMatch: string | undefined): Promise<void> {
  await inTransaction(request.db, async (client) => {
    await locked(client, request, id, ifMatch);
    if (request.source.deletePolicy === 'delete') {
      await removeUser(client, id);
      await request.audit(client, 'user.delete', id);
    } else {
      await changeUser(client, id, { active: false });
      await markUserDeleted(client, request.source, id);
      await request.audit(client, 'user.deactivate', id);
    }
  });
}
