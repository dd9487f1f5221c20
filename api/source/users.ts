/** The `/Users` endpoint of a source: create, read, list, replace, patch and delete directory users over SCIM. */
import { changeUser, inTransaction, insertUser, removeUser, type DirectoryUser } from '../../db/index.ts';
import { applyPatch, parsePatchRequest } from '../../scim/patch.ts';
import { USER_RESOURCE } from '../../scim/resource-schema.ts';
import { sourceResources, storableResource, type Rendered, type SourceRequest } from './kind.ts';
import { renderUser, userColumns, userDocument, type Projection } from './render.ts';
import { getSourceUser, listSourceUsers, markUserDeleted, type GroupRef } from './store.ts';

const { render, reload, locked, write, create, replace, get, list } = sourceResources({
  type: 'user',
  resource: USER_RESOURCE,
  noun: 'User',
  related: 'groups',
  load: getSourceUser,
  list: listSourceUsers,
  insert: (q, doc) => insertUser(q, userColumns(doc)),
  update: (q, user, doc) => {
    const { kind: _kind, ...columns } = userColumns(doc, user.attributes);
    return changeUser(q, user.id, columns);
  },
  render: (user: DirectoryUser, version, groups: GroupRef[] | undefined, base) =>
    renderUser(USER_RESOURCE, user, version, groups ?? [], base),
});

/** POST /Users. */
export const createUser = create;

/** GET /Users/{id}. */
export const getUser = get;

/** GET /Users and POST /Users/.search. */
export const listUsers = list;

/** PUT /Users/{id}: the body replaces every writable attribute. */
export const replaceUser = replace;

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
    const doc = storableResource(USER_RESOURCE, applyPatch(USER_RESOURCE, userDocument(current.object), operations));
    await write(client, request, current, doc);
    return render(request, await reload(client, request, id, projection), projection);
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
