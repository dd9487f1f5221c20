/**
 * The `/Groups` endpoint of a source. Members are users the source sees; member changes of a PATCH (add, remove by
 * value list or `members[value eq "…"]`, replace) become membership deltas, so adding one member to a large group
 * never reads the others.
 */
import {
  changeGroup,
  deleteMembers,
  inTransaction,
  insertGroup,
  insertMembers,
  removeGroup,
  type DirectoryGroup,
  type Queryable,
} from '../../db/index.ts';
import { applyPatch, parsePatchRequest, type PatchOperation } from '../../scim/patch.ts';
import { matchesValueFilter, parseAttributePath, type Filter } from '../../scim/path.ts';
import { findAttribute, GROUP_RESOURCE } from '../../scim/resource-schema.ts';
import { coerceValue, normalizeResource } from '../../scim/resource.ts';
import { badRequest } from '../../scim/service-error.ts';
import { groupColumns, groupDocument, renderGroup, type Projection } from './render.ts';
import {
  getSourceGroup,
  listSourceGroups,
  sourceGroupMembers,
  touchGroup,
  visibleUserIds,
  type MemberRef,
} from './store.ts';
import { sourceResources, storableResource, type Rendered, type SourceRequest } from './kind.ts';

const MEMBERS = findAttribute(GROUP_RESOURCE.core.attributes, 'members')!;

/** The user ids of a `members` value (one member or a list); nested groups are refused. */
function memberIds(value: unknown): string[] {
  const members = (coerceValue(MEMBERS, value, 'members') ?? []) as Array<Record<string, unknown>>;
  return members.map((member, i) => {
    if (typeof member['type'] === 'string' && member['type'].toLowerCase() === 'group') {
      throw badRequest('invalidValue', 'nested groups are not supported: members must be users');
    }
    if (typeof member['value'] !== 'string') throw badRequest('invalidValue', `members[${i}].value is required`);
    return member['value'].toLowerCase();
  });
}

/** Member changes of one request, in order: adds and removes, or a whole new set after a replace. */
class MemberDelta {
  replaced: Set<string> | null = null;
  readonly added = new Set<string>();
  readonly removed = new Set<string>();
  /** Filters of `remove members[...]` that name members by something other than their id. */
  readonly removedBy: Filter[] = [];

  add(ids: string[]): void {
    for (const id of ids) {
      if (this.replaced) this.replaced.add(id);
      else {
        this.added.add(id);
        this.removed.delete(id);
      }
    }
  }
  remove(ids: string[]): void {
    for (const id of ids) {
      if (this.replaced) this.replaced.delete(id);
      else {
        this.removed.add(id);
        this.added.delete(id);
      }
    }
  }
  replace(ids: string[]): void {
    this.replaced = new Set(ids);
    this.added.clear();
    this.removed.clear();
    this.removedBy.length = 0;
  }
  get empty(): boolean {
    return this.replaced === null && this.added.size === 0 && this.removed.size === 0 && this.removedBy.length === 0;
  }
}

/** `value eq "id"` comparisons, alone or joined by `or`: the ids they name; null for any other filter. */
function idsOfFilter(filter: Filter): string[] | null {
  if (filter.op === 'eq' && 'attrPath' in filter && filter.attrPath.toLowerCase() === 'value') {
    return typeof filter.compValue === 'string' ? [filter.compValue.toLowerCase()] : null;
  }
  if (filter.op === 'or' && 'filters' in filter) {
    const parts = filter.filters.map(idsOfFilter);
    return parts.every((part) => part !== null) ? parts.flat() : null;
  }
  return null;
}

/** Splits PATCH operations into those on the group's own attributes and the member changes. */
function splitOperations(operations: readonly PatchOperation[]): { own: PatchOperation[]; members: MemberDelta } {
  const own: PatchOperation[] = [];
  const members = new MemberDelta();
  for (const operation of operations) {
    if (operation.path === undefined) {
      const value = operation.value as Record<string, unknown>;
      const key = Object.keys(value ?? {}).find((name) => name.toLowerCase() === 'members');
      if (key === undefined || typeof value !== 'object' || Array.isArray(value)) {
        own.push(operation);
        continue;
      }
      const { [key]: memberValue, ...rest } = value;
      if (operation.op === 'add') members.add(memberIds(memberValue));
      else members.replace(memberIds(memberValue));
      if (Object.keys(rest).length > 0) own.push({ ...operation, value: rest });
      continue;
    }
    const path = parseAttributePath(GROUP_RESOURCE, operation.path);
    if (path.attribute?.name !== 'members') {
      own.push(operation);
      continue;
    }
    if (path.sub) throw badRequest('invalidPath', 'members can be added or removed, not edited');
    if (path.filter) {
      if (operation.op !== 'remove') throw badRequest('invalidPath', 'members can be added or removed, not edited');
      const ids = idsOfFilter(path.filter);
      if (ids) members.remove(ids);
      else members.removedBy.push(path.filter);
      continue;
    }
    if (operation.op === 'add') members.add(memberIds(operation.value));
    else if (operation.op === 'replace') members.replace(memberIds(operation.value));
    else if (operation.value !== undefined) members.remove(memberIds(operation.value));
    else members.replace([]);
  }
  return { own, members };
}

/** Applies the member changes; the group's new version when members changed, else undefined. */
async function applyMembers(
  q: Queryable,
  request: SourceRequest,
  groupId: string,
  delta: MemberDelta,
): Promise<string | undefined> {
  if (delta.empty) return undefined;
  let toAdd = [...delta.added];
  let toRemove = [...delta.removed];
  if (delta.replaced || delta.removedBy.length > 0) {
    const current = await sourceGroupMembers(q, request.source, groupId);
    if (delta.replaced) {
      const now = new Set(current.map((member) => member.id));
      toAdd = [...delta.replaced].filter((id) => !now.has(id));
      toRemove = [...now].filter((id) => !delta.replaced!.has(id));
    }
    for (const filter of delta.removedBy) {
      toRemove.push(
        ...current
          .filter((member) => matchesValueFilter({ value: member.id, display: member.username, type: 'User' }, filter))
          .map((member) => member.id),
      );
    }
  }
  if (toAdd.length > 0) {
    const visible = await visibleUserIds(q, request.source, toAdd);
    const unknown = toAdd.find((id) => !visible.has(id));
    if (unknown !== undefined) throw badRequest('invalidValue', `member ${unknown} is not a user of this source`);
  }
  const added = await insertMembers(q, groupId, toAdd);
  const removed = await deleteMembers(q, groupId, toRemove);
  if (added.length === 0 && removed.length === 0) return undefined;
  await request.audit(q, 'group.members', groupId);
  return touchGroup(q, groupId);
}

const { render, reload, locked, write, create, replace, get, list } = sourceResources({
  type: 'group',
  resource: GROUP_RESOURCE,
  noun: 'Group',
  related: 'members',
  load: getSourceGroup,
  list: listSourceGroups,
  insert: (q, doc) => insertGroup(q, groupColumns(doc)),
  update: (q, group, doc) => changeGroup(q, group.id, groupColumns(doc, group.attributes)),
  render: (group: DirectoryGroup, version, members: MemberRef[] | undefined, base) =>
    renderGroup(GROUP_RESOURCE, group, version, members, base),
});

/** POST /Groups. */
export function createGroup(request: SourceRequest, body: unknown, projection: Projection): Promise<Rendered> {
  const members = new MemberDelta();
  members.add(memberIds(normalizeResource(GROUP_RESOURCE, body)['members']));
  return create(request, body, projection, async (q, id) => void (await applyMembers(q, request, id, members)));
}

/** GET /Groups/{id}. */
export const getGroup = get;

/** GET /Groups and POST /Groups/.search. */
export const listGroups = list;

/** PUT /Groups/{id}: the body replaces the group's attributes and its members. */
export function replaceGroup(
  request: SourceRequest,
  id: string,
  body: unknown,
  ifMatch: string | undefined,
  projection: Projection,
): Promise<Rendered> {
  const members = new MemberDelta();
  members.replace(memberIds(normalizeResource(GROUP_RESOURCE, body)['members']));
  return replace(
    request,
    id,
    body,
    ifMatch,
    projection,
    async (q) => void (await applyMembers(q, request, id, members)),
  );
}

/** PATCH /Groups/{id}: every operation applies, or none does; the answer has a body only if `attributes` asks. */
export async function patchGroup(
  request: SourceRequest,
  id: string,
  body: unknown,
  ifMatch: string | undefined,
  projection: Projection,
): Promise<Rendered & { wantsBody: boolean }> {
  const { own, members } = splitOperations(parsePatchRequest(body));
  return inTransaction(request.db, async (client) => {
    const current = await locked(client, request, id, ifMatch);
    if (own.length > 0) {
      const doc = storableResource(GROUP_RESOURCE, applyPatch(GROUP_RESOURCE, groupDocument(current.object), own));
      await write(client, request, current, doc);
    }
    const touched = await applyMembers(client, request, id, members);
    const wantsBody = projection.attributes !== undefined || projection.excludedAttributes !== undefined;
    if (!wantsBody) {
      // A member change (what Entra and Okta PATCH most) answers with the version it made, without a read.
      const version = touched ?? (own.length > 0 ? (await reload(client, request, id)).version : current.version);
      return { body: {}, version, wantsBody };
    }
    return { ...render(request, await reload(client, request, id, projection), projection), wantsBody };
  });
}

/** DELETE /Groups/{id}: the group leaves the directory (its memberships announced as removed). */
export async function deleteGroup(request: SourceRequest, id: string, ifMatch: string | undefined): Promise<void> {
  await inTransaction(request.db, async (client) => {
    await locked(client, request, id, ifMatch);
    await removeGroup(client, id);
    await request.audit(client, 'group.delete', id);
  });
}
