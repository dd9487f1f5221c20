import type { ObjectType, ProviderForSync, SyncGroupRow, SyncUserRow } from '../db/index.ts';
import type { ScimGroup, ScimUser } from '../scim/index.ts';
import type { MappingGroup, MappingUser } from '../sandbox/index.ts';
import { stableUid } from './payload-hash.ts';

/** The outcome of mapping one object. */
export type MapResult<T> =
  | { status: 'ok'; payload: T }
  | { status: 'skip'; mapping: string }
  | { status: 'error'; error: { code: 'ERR_MAPPING'; mapping: string | null; path?: string; message: string } };

/**
 * A provider's mappings as one read found them: the version of what its payloads are made from, and batch mapping
 * with exactly those mappings, so the input hash a page records is the one its payloads were made with.
 */
export interface MappingSnapshot {
  /**
   * The version of what the provider's payloads are made with besides each object's own row: it changes whenever a
   * mapping is edited, attached or detached. Null when the mappings can give a different payload for the same row
   * (they read the time or the last payload): then every object is mapped every time.
   */
  inputVersion: string | null;
  mapUsers(
    items: ReadonlyArray<{ user: MappingUser; link: Record<string, unknown> | null }>,
  ): Promise<Array<MapResult<ScimUser>>>;
  mapGroups(
    items: ReadonlyArray<{ group: MappingGroup; link: Record<string, unknown> | null }>,
  ): Promise<Array<MapResult<ScimGroup>>>;
}

/** Turns directory objects into the SCIM payloads a provider receives; batched so a sandbox can amortise calls. */
export interface PayloadMapper {
  /** The provider's mappings as they are now: each call reads them again, so an edit is seen by the next one. */
  snapshot(provider: ProviderForSync): Promise<MappingSnapshot>;
  /**
   * Readies what mapping the provider's objects of a type takes (a sandbox's isolate and compiled mappings) ahead of
   * their first batch; resolves once it is ready. A failure is reported by the batches, not here. Absent: nothing to ready.
   */
  prepare?(provider: ProviderForSync, objectType: ObjectType): Promise<void>;
}

/** A user row as mappings see it. */
export function toMappingUser(row: SyncUserRow): MappingUser {
  return {
    id: row.id,
    uid: stableUid(row.id),
    username: row.username,
    displayName: row.display_name,
    email: row.email,
    givenName: row.given_name,
    familyName: row.family_name,
    active: row.active,
    kind: row.kind,
    attributes: row.attributes,
  };
}

/** A group row as mappings see it. */
export function toMappingGroup(row: SyncGroupRow): MappingGroup {
  return { id: row.id, uid: stableUid(row.id), name: row.name, attributes: row.attributes };
}
