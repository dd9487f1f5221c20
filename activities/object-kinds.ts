import type { AdoptBy, Link, ObjectType } from '../db/index.ts';
import type { BatchLookupResult, MatchKeys, RemoteObject } from '../plugins/index.ts';
import type { ScimGroup, ScimUser } from '../scim/index.ts';
import { withoutMembers, type MemberChunks } from './group-members.ts';
import type { MapResult } from './mapper.ts';
import type { Target } from './targets.ts';

/** The plugin operations of one kind of object: all the per-object sync flow needs to know about users or groups. */
export interface ObjectKind<T extends ScimUser | ScimGroup> {
  type: ObjectType;
  /**
   * What identifies the object on the target when it has no link: externalId, then (unless the provider adopts by
   * externalId only) userName / displayName.
   */
  keys(payload: T, adoptBy: AdoptBy): MatchKeys;
  /** Looks the object up on the target by its match keys. */
  find(target: Target, keys: MatchKeys): Promise<RemoteObject<T> | null>;
  /** Looks many objects up at once by their match keys; undefined when the plugin has no such operation. */
  findMany(target: Target, keys: readonly MatchKeys[]): Promise<Array<BatchLookupResult<T>>> | undefined;
  /** Creates the object; `onCreated` is called before any follow-up request (a group's further members). */
  create(target: Target, payload: T, onCreated: (created: RemoteObject<T>) => Promise<void>): Promise<RemoteObject<T>>;
  update(target: Target, remoteId: string, payload: T, previous: T | null): Promise<void>;
}

/** Users, as the sync flow drives them through a plugin. */
export const USERS: ObjectKind<ScimUser> = {
  type: 'user',
  keys: (user, adoptBy) => ({
    externalId: user.externalId,
    ...(adoptBy === 'externalIdOrName' ? { name: user.userName } : {}),
  }),
  find: ({ plugin, ctx }, keys) => plugin.findUser(ctx, keys),
  findMany: ({ plugin, ctx }, keys) => plugin.findUsers?.(ctx, keys),
  create: ({ plugin, ctx }, user) => plugin.createUser(ctx, user),
  update: ({ plugin, ctx }, remoteId, user, previous) => plugin.updateUser(ctx, remoteId, user, previous),
};

/** Groups, as the sync flow drives them through a plugin. */
export const GROUPS: ObjectKind<ScimGroup> = {
  type: 'group',
  keys: (group, adoptBy) => ({
    externalId: group.externalId,
    ...(adoptBy === 'externalIdOrName' ? { name: group.displayName } : {}),
  }),
  find: ({ plugin, ctx }, keys) => plugin.findGroup(ctx, keys),
  findMany: ({ plugin, ctx }, keys) => plugin.findGroups?.(ctx, keys),
  create: ({ plugin, ctx }, group, onCreated) => plugin.createGroup(ctx, group, onCreated),
  update: ({ plugin, ctx }, remoteId, group, previous) => plugin.updateGroup(ctx, remoteId, group, previous),
};

/** One object of a batch: its mapped payload, its link if any, and extra detail for its provisioning event. */
export interface BatchItem<T> {
  localId: string;
  mapped: MapResult<T>;
  link: Link | undefined;
  detail?: Record<string, unknown>;
  /** The hash of what `mapped` was made from (`input-hash.ts`), stored with the link once pushed; null: unknown. */
  inputHash?: string | null;
  /** A group whose members go a chunk at a time (its payload has none): they are sent after the group itself. */
  members?: MemberChunks;
}

/** A group's batch item: its payload carries `members` (remote user ids). */
export function groupItem(
  localId: string,
  mapped: MapResult<ScimGroup>,
  members: readonly string[],
  link: Link | undefined,
): BatchItem<ScimGroup> {
  return {
    localId,
    mapped:
      mapped.status === 'ok'
        ? { status: 'ok', payload: { ...mapped.payload, members: members.map((value) => ({ value })) } }
        : mapped,
    link,
    detail: { members: members.length },
  };
}

/** A group's batch item whose members go a chunk at a time (`members`), after the group: its payload has none. */
export function chunkedGroupItem(
  localId: string,
  mapped: MapResult<ScimGroup>,
  link: Link | undefined,
  members: MemberChunks,
): BatchItem<ScimGroup> {
  return {
    localId,
    mapped: mapped.status === 'ok' ? { status: 'ok', payload: withoutMembers(mapped.payload) } : mapped,
    link,
    detail: { members: members.wanted.count },
    members,
  };
}
