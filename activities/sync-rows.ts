import {
  memberRemoteIds,
  type Db,
  type Link,
  type ProviderForSync,
  type SyncGroupRow,
  type SyncUserRow,
} from '../db/index.ts';
import type { BatchLookup } from './batch-lookup.ts';
import type { BatchRecorder } from './batch-recorder.ts';
import { toMappingGroup, toMappingUser, type PayloadMapper } from './mapper.ts';
import { GROUPS, groupItem, USERS } from './object-kinds.ts';
import { syncBatch } from './sync-batch.ts';
import type { Target } from './targets.ts';

/** Maps directory rows through the provider's mappings and brings them to the target, users or groups. */
export interface RowSync {
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
export function createRowSync(deps: { db: Db; mapper: PayloadMapper; lookUp: BatchLookup }): RowSync {
  const { db, mapper, lookUp } = deps;
  return {
    async users(rec, provider, target, rows, links) {
      const mapped = await mapper.mapUsers(
        provider,
        rows.map((row) => ({ user: toMappingUser(row), link: links.get(row.id)?.lastPayload ?? null })),
      );
      const items = rows.map((row, i) => ({ localId: row.id, mapped: mapped[i]!, link: links.get(row.id) }));
      await syncBatch(lookUp, rec, provider, target, USERS, items);
      rec.counts.processed += rows.length;
    },

    async groups(rec, provider, target, rows, links) {
      const [linked, members] = await Promise.all([
        links,
        memberRemoteIds(
          db,
          provider.scope,
          provider.id,
          rows.map((row) => row.id),
        ),
      ]);
      const mapped = await mapper.mapGroups(
        provider,
        rows.map((row) => ({ group: toMappingGroup(row), link: linked.get(row.id)?.lastPayload ?? null })),
      );
      const items = rows.map((row, i) => groupItem(row.id, mapped[i]!, members.get(row.id) ?? [], linked.get(row.id)));
      await syncBatch(lookUp, rec, provider, target, GROUPS, items);
      rec.counts.processed += rows.length;
    },
  };
}
