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
  type ProviderScope,
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
 * Prepares and records the members of the groups this worker creates: the groups created meanwhile share one
 * statement for each step. 500 groups created at once each sent their own, and waited behind the others: for the
 * record 100-150 ms; for the first chunk, read as the group's lookup answered, 0.1-0.3 s, with the pool's eight
 * connections taken and hundreds of queries queued for them (scale bench, target 20 ms late).
 */
export class CreatedMembersWriter {
  readonly #commit: GroupCommit<CreatedMembers, void>;
  readonly #first: GroupCommit<FirstMembers, Map<string, string[]>>;

  constructor(db: Db) {
    this.#commit = new GroupCommit((groups) => recordCreatedMembers(db, groups));
    this.#first = new GroupCommit(async (groups) => {
      const found = new Map<string, string[]>();
      // A worker's groups created at once are nearly always one provider's; those read alike are read together (a
      // provider's scope may change between two of its activities).
      const alike = (group: FirstMembers): string =>
        `${group.providerId} ${group.limit} ${JSON.stringify(group.scope)}`;
      for (const [, same] of Map.groupBy(groups, alike)) {
        const { scope, providerId, limit } = same[0]!;
        const ids = same.map((group) => group.groupId);
        for (const [groupId, remoteIds] of await firstMembersAfresh(db, scope, providerId, ids, limit))
          found.set(`${providerId} ${groupId}`, remoteIds);
      }
      return found;
    });
  }

  /**
   * Forgets what was sent to the group (it is about to be created) and returns the first `limit` remote ids of the
   * members it should have.
   */
  async firstAfresh(scope: ProviderScope, providerId: string, groupId: string, limit: number): Promise<string[]> {
    const key = `${providerId} ${groupId}`;
    return (await this.#first.add(key, { scope, providerId, groupId, limit })).get(key) ?? [];
  }

  /** Queues the record; resolves once it is committed, rejects with that write's error. */
  record(providerId: string, groupId: string, remoteIds: readonly string[]): Promise<void> {
    return this.#commit.add(`${providerId} ${groupId}`, { providerId, groupId, remoteIds });
  }
}

/** A group about to be created, whose first chunk of members `CreatedMembersWriter.firstAfresh` reads. */
interface FirstMembers {
  scope: ProviderScope;
  providerId: string;
  groupId: string;
  limit: number;
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
    first() {
      const read = ahead ?? (() => createdMembers.firstAfresh(scope, providerId, groupId, chunk));
      ahead = undefined;
      return read();
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
