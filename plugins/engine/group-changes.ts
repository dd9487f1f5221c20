/** Works out what changed on a group and splits the change into PATCH requests no larger than a member limit. */
import { isDeepStrictEqual } from 'node:util';
import { quoteFilterValue, type PatchOperation, type ScimGroup } from '../../scim/index.ts';
import type { MemberReference } from '../sdk.ts';

/** How member values are written in PATCH requests: the reference of each, and how removals are addressed. */
export interface MemberStyle {
  reference: MemberReference;
  /** `filter`: one `members[value eq "id"]` remove each (RFC 7644 §3.5.2.2); `value-list`: `path: members` with values. */
  removal: 'filter' | 'value-list';
}

/** The RFC's style: `{ value }` references, removals by filter path. */
export const RFC_MEMBER_STYLE: MemberStyle = { reference: (value) => ({ value }), removal: 'filter' };

/** Attributes that are never compared or sent as changes: the server owns them, or members are diffed apart. */
const NOT_ATTRIBUTES = new Set(['id', 'meta', 'schemas', 'members']);

/** What differs between the group on the target and the group wanted. */
export interface GroupChanges {
  /** `replace` operations for attributes whose wanted value differs. */
  attributes: PatchOperation[];
  /** Member ids to add. */
  add: string[];
  /** Member ids to remove. */
  remove: string[];
}

/** Member ids of a group, in order, without duplicates. */
export function memberIds(group: Pick<ScimGroup, 'members'>): string[] {
  return [...new Set((group.members ?? []).map((member) => member.value))];
}

/**
 * Compares `wanted` with `current` (what the target holds or was last sent). Only attributes `wanted` sets are
 * compared; when `wanted.members` is absent, membership is left alone.
 */
export function diffGroup(current: ScimGroup, wanted: ScimGroup): GroupChanges {
  const attributes: PatchOperation[] = [];
  for (const [name, value] of Object.entries(wanted)) {
    if (NOT_ATTRIBUTES.has(name) || value === undefined) continue;
    if (!isDeepStrictEqual(value, current[name])) attributes.push({ op: 'replace', path: name, value });
  }
  if (wanted.members === undefined) return { attributes, add: [], remove: [] };
  const before = new Set(memberIds(current));
  const after = memberIds(wanted);
  const afterSet = new Set(after);
  return {
    attributes,
    add: after.filter((id) => !before.has(id)),
    remove: [...before].filter((id) => !afterSet.has(id)),
  };
}

/** True when applying `changes` would send nothing. */
export function isUnchanged(changes: GroupChanges): boolean {
  return changes.attributes.length === 0 && changes.add.length === 0 && changes.remove.length === 0;
}

/**
 * The PATCH operation lists that apply `changes`, one per request: attribute replaces go first, then member adds
 * (one `add` operation per request, its value an array) and removes (`members[value eq "id"]`, one operation each),
 * with no request carrying more than `limit` member values.
 */
export function patchRequests(
  changes: GroupChanges,
  limit: number,
  style: MemberStyle = RFC_MEMBER_STYLE,
): PatchOperation[][] {
  if (!Number.isInteger(limit) || limit < 1)
    throw new TypeError(`member limit must be a positive integer, got ${limit}`);
  const units = [
    ...changes.add.map((id) => ({ op: 'add' as const, id })),
    ...changes.remove.map((id) => ({ op: 'remove' as const, id })),
  ];
  const requests: PatchOperation[][] = [];
  for (let start = 0; start === 0 || start < units.length; start += limit) {
    const chunk = units.slice(start, start + limit);
    const operations: PatchOperation[] = start === 0 ? [...changes.attributes] : [];
    const adds = chunk.filter((unit) => unit.op === 'add').map((unit) => style.reference(unit.id));
    if (adds.length > 0) operations.push({ op: 'add', path: 'members', value: adds });
    const removes = chunk.filter((unit) => unit.op === 'remove').map((unit) => unit.id);
    if (style.removal === 'value-list' && removes.length > 0) {
      operations.push({ op: 'remove', path: 'members', value: removes.map((id) => style.reference(id)) });
    } else {
      for (const id of removes) operations.push({ op: 'remove', path: `members[value eq ${quoteFilterValue(id)}]` });
    }
    if (operations.length > 0) requests.push(operations);
  }
  return requests;
}

/** Splits `items` into consecutive slices of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new TypeError(`chunk size must be a positive integer, got ${size}`);
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}
