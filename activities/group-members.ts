import {
  firstMembersAfresh,
  memberDifference,
  recordCreatedMembers,
  recordPushedMembers,
  replacePushedMembers,
  type CreatedMembers,
  type Db,
  type MemberChunk,
  type MemberDigest,
  type ProviderForSync,
} from '../db/index.ts';
import type { ScimGroup } from '../scim/index.ts';
import { GroupCommit } from './group-commit.ts';
import { beat } from './heartbeat.ts';
import type { Target } from './targets.ts';

/**
 * A group's members as the sync sends them to a target that takes member changes by PATCH: a chunk at a time, each
 * chunk the difference between the members the directory wants and those sent before (provider_group_members), read
 * by PostgreSQL. The group's payload and link carry no members; nothing holds more than a chunk of them.
 */
export interface MemberChunks {
  /** The most member values one request carries (the plugin's `memberChunk`). */
  readonly chunk: number;
  /** How many members the directory wants in the group, and their digest (part of the group's payload hash). */
  readonly wanted: MemberDigest;
  /** Forgets what was sent (the group is about to be created) and returns the first chunk of members to send with it. */
  first(): Promise<string[]>;
  /** Records that the group was just created with `first`: when that was all of its members, `send` sends nothing. */
  created(first: readonly string[]): Promise<void>;
  /** Records that the remote group holds exactly `remoteIds` (adopted with them, or so its link says). */
  holds(remoteIds: readonly string[]): Promise<void>;
  /**
   * Sends the group the members it lacks and removes those it should not have, one request per chunk, recording each
   * chunk once the target took it; returns how many member values were sent.
   */
  send(target: Target, remoteId: string): Promise<number>;
}

/**
 * Records the members each group this worker creates was created with; the groups created meanwhile share one
 * statement (500 groups created at once each sent its own, and waited 100-150 ms for it behind the others).
 */
export class CreatedMembersWriter {
  readonly #commit: GroupCommit<CreatedMembers, void>;

  constructor(db: Db) {
    this.#commit = new GroupCommit((groups) => recordCreatedMembers(db, groups));
  }

  /** Queues the record; resolves once it is committed, rejects with that write's error. */
  record(providerId: string, groupId: string, remoteIds: readonly string[]): Promise<void> {
    return this.#commit.add(`${providerId} ${groupId}`, { providerId, groupId, remoteIds });
  }
}

/**
 * The member chunks of directory group `groupId` on `provider`'s target, `chunk` values a request. `prefetched` is
 * its first chunk, read (and what was sent forgotten) with its page: the first `first()` takes it, a later one reads
 * afresh.
 */
export function memberChunks(
  deps: { db: Db; createdMembers: CreatedMembersWriter },
  provider: ProviderForSync,
  groupId: string,
  chunk: number,
  wanted: MemberDigest,
  prefetched?: () => Promise<string[]>,
): MemberChunks {
  const { db, createdMembers } = deps;
  const { scope, id: providerId } = provider;
  let ahead = prefetched;
  // Set once the group was created with every member it should have: nothing is left to send.
  let complete = false;
  /** The chunk after the keysets `addAfter` and `removeAfter`: members to add, and in the room left, to remove. */
  async function nextChunk(addAfter: string | null, removeAfter: string | null) {
    const add = await memberDifference(db, scope, providerId, groupId, 'add', chunk, addAfter);
    const room = chunk - add.remoteIds.length;
    const remove: MemberChunk | undefined =
      room > 0 ? await memberDifference(db, scope, providerId, groupId, 'remove', room, removeAfter) : undefined;
    return {
      add: add.remoteIds,
      remove: remove?.remoteIds ?? [],
      addAfter: add.next,
      removeAfter: remove?.next ?? removeAfter,
    };
  }
  return {
    chunk,
    wanted,
    async first() {
      const read = ahead;
      ahead = undefined;
      if (read) return read();
      // A create sent again, or a linked group whose remote one vanished: read now.
      return (await firstMembersAfresh(db, scope, providerId, [groupId], chunk)).get(groupId) ?? [];
    },
    async created(first) {
      await createdMembers.record(providerId, groupId, first);
      complete = first.length < chunk;
    },
    async holds(remoteIds) {
      complete = false;
      await replacePushedMembers(db, providerId, groupId, remoteIds);
    },
    async send(target, remoteId) {
      const { plugin, ctx } = target;
      if (plugin.patchGroupMembers === undefined) throw new TypeError(`plugin ${plugin.id} has memberChunk only`);
      if (complete) return 0;
      let sent = 0;
      let next = nextChunk(null, null);
      for (;;) {
        const part = await next;
        if (part.add.length === 0 && part.remove.length === 0) return sent;
        // The next chunk is read while this one is sent and recorded: its keysets start past this one's, so what is
        // recorded of this one cannot change it (a 100,000-member group is a thousand chunks).
        next = nextChunk(part.addAfter, part.removeAfter);
        next.catch(() => undefined);
        await plugin.patchGroupMembers(ctx, remoteId, part.add, part.remove);
        await recordPushedMembers(db, providerId, groupId, part.add, part.remove);
        sent += part.add.length + part.remove.length;
        beat();
      }
    },
  };
}

/** The member ids a group resource lists, or none. */
export function listedMembers(group: Pick<ScimGroup, 'members'> | null | undefined): string[] {
  return (group?.members ?? []).map((member) => member.value);
}

/** A group resource without its members (what a chunked group's link keeps). */
export function withoutMembers<T extends object>(resource: T): T {
  if (!('members' in resource)) return resource;
  const { members: _members, ...rest } = resource as T & { members: unknown };
  return rest as T;
}
