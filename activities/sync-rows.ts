import {
  forgetPushedMembers,
  memberHeads,
  memberRemoteIds,
  type Db,
  type Link,
  type ProviderForSync,
  type SyncGroupRow,
  type SyncUserRow,
} from '../db/index.ts';
import type { BatchLookup } from './batch-lookup.ts';
import type { BatchRecorder } from './batch-recorder.ts';
import { inputHash, pushedFrom, userInputHash } from './input-hash.ts';
import { toMappingGroup, toMappingUser, type PayloadMapper } from './mapper.ts';
import { memberChunks, type CreatedMembersWriter } from './group-members.ts';
import { chunkedGroupItem, GROUPS, groupItem, USERS } from './object-kinds.ts';
import { syncBatch } from './sync-batch.ts';
import type { Target } from './targets.ts';

/**
 * Maps directory rows through the provider's mappings and brings them to the target, users or groups. An object
 * whose link says it was pushed from the very same input (`pushedFrom`) is counted and left alone, unmapped.
 */
export interface RowSync {
  /** The version part of input hashes for a provider now (see `MappingSnapshot.inputVersion`); null: none apply. */
  inputVersion(provider: ProviderForSync): Promise<string | null>;
  /** Maps directory users and brings them to the target; `links` holds what was last pushed, by local id. */
  users(
    rec: BatchRecorder,
    provider: ProviderForSync,
    target: Target,
    rows: readonly SyncUserRow[],
    links: ReadonlyMap<string, Link>,
  ): Promise<void>;
  /**
   * Maps directory groups and brings them, with their members, to the target. `links` (what was last pushed, by
   * local id) is awaited alongside the members query.
   */
  groups(
    rec: BatchRecorder,
    provider: ProviderForSync,
    target: Target,
    rows: readonly SyncGroupRow[],
    links: Promise<ReadonlyMap<string, Link>>,
  ): Promise<void>;
}

/** Builds the row sync of a worker from its database, mapper and batch lookup. */
export function createRowSync(deps: {
  db: Db;
  mapper: PayloadMapper;
  lookUp: BatchLookup;
  createdMembers: CreatedMembersWriter;
}): RowSync {
  const { db, mapper, lookUp } = deps;
  // The provider's mappings as a page reads them once: the version its input hashes record, and its mapping.
  const current = async (provider: ProviderForSync) => {
    const mappings = await mapper.snapshot(provider);
    const { inputVersion } = mappings;
    return { mappings, version: inputVersion === null ? null : `${inputVersion} config ${provider.configVersion}` };
  };
  return {
    inputVersion: async (provider) => (await current(provider)).version,

    async users(rec, provider, target, rows, links) {
      const { mappings, version } = await current(provider);
      const pending = rows.flatMap((row) => {
        const input = version === null ? null : userInputHash(version, row);
        return pushedFrom(links.get(row.id), input) ? [] : [{ row, input }];
      });
      rec.counts.processed += rows.length;
      if (pending.length === 0) return;
      const mapped = await mappings.mapUsers(
        pending.map(({ row }) => ({ user: toMappingUser(row), link: links.get(row.id)?.lastPayload ?? null })),
      );
      const items = pending.map(({ row, input }, i) => ({
        localId: row.id,
        mapped: mapped[i]!,
        link: links.get(row.id),
        inputHash: input,
      }));
      await syncBatch(lookUp, rec, provider, target, USERS, items);
    },

    async groups(rec, provider, target, rows, links) {
      const ids = rows.map((row) => row.id);
      // A target that takes member changes by PATCH gets them a chunk at a time: a digest of them is read here, with
      // the first chunk, which a create sends.
      const chunk = await target.plugin.memberChunk?.(target.ctx);
      const [linked, whole, heads, { mappings, version }] = await Promise.all([
        links,
        chunk === undefined ? memberRemoteIds(db, provider.scope, provider.id, ids) : undefined,
        chunk === undefined ? undefined : memberHeads(db, provider.scope, provider.id, ids, chunk),
        current(provider),
      ]);
      const pending = rows.flatMap((row) => {
        const remoteIds = whole?.get(row.id) ?? [];
        const head = heads?.get(row.id);
        const members = head === undefined ? remoteIds : [`in chunks: ${head.count} ${head.digest}`];
        const input = version === null ? null : inputHash(version, row, members);
        return pushedFrom(linked.get(row.id), input) ? [] : [{ row, remoteIds, head, input }];
      });
      rec.counts.processed += rows.length;
      if (pending.length === 0) return;
      // What was sent to the groups that may be created (those with no remote id) is forgotten beside their mapping
      // and lookup, and their creates send the first chunk read with the digest: read as each group's lookup answered,
      // it held its POST 17-85 ms (scale bench, target 20 ms late). A group with a remote id that turns out gone reads
      // its first chunk afresh (and forgets what was sent) when it is created again.
      const creatable = new Set(pending.filter(({ row }) => !linked.get(row.id)?.remoteId).map(({ row }) => row.id));
      const cleared =
        chunk === undefined || creatable.size === 0 || provider.dryRun
          ? undefined
          : forgetPushedMembers(db, provider.id, [...creatable]);
      // A failure is thrown by the first group that takes its chunk; none may take it (all adopted, say).
      cleared?.catch(() => undefined);
      const mapped = await mappings.mapGroups(
        pending.map(({ row }) => ({ group: toMappingGroup(row), link: linked.get(row.id)?.lastPayload ?? null })),
      );
      const items = pending.map(({ row, remoteIds, head, input }, i) => {
        if (head === undefined || chunk === undefined) {
          return { ...groupItem(row.id, mapped[i]!, remoteIds, linked.get(row.id)), inputHash: input };
        }
        const { first } = head;
        const prefetched =
          cleared && creatable.has(row.id) && first !== undefined
            ? async () => {
                await cleared;
                return first;
              }
            : undefined;
        const wanted = { count: head.count, digest: head.digest };
        return {
          ...chunkedGroupItem(
            row.id,
            mapped[i]!,
            linked.get(row.id),
            memberChunks(deps, provider, row.id, chunk, wanted, prefetched),
          ),
          inputHash: input,
        };
      });
      await syncBatch(lookUp, rec, provider, target, GROUPS, items);
    },
  };
}
