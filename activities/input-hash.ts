import { hash } from 'node:crypto';
import type { Link } from '../db/index.ts';

/**
 * The hash of everything a group's payload is made from: `version` (the provider's mapping set version and config
 * version, see `MappingSnapshot.inputVersion`), its directory row as read (column order and jsonb key order are
 * fixed, so equal rows serialise alike) and its members' remote ids. A user's is {@link userInputHash}.
 */
export function inputHash(version: string, row: object, members?: readonly string[]): string {
  const parts = [version, JSON.stringify(row)];
  if (members) parts.push(members.join(','));
  return hash('sha256', parts.join('\n'));
}

/**
 * The input hash of a user: `version` as for {@link inputHash} and its row's `digest` (which PostgreSQL computes, so
 * that a full sync compares the hashes of unchanged users without reading them; `userStretch` in db/ has the same
 * formula in SQL).
 */
export function userInputHash(version: string, row: { digest: string }): string {
  return hash('sha256', `${version}\n${row.digest}`);
}

/** Whether `link` says the object was pushed, as it is, from exactly this input: then nothing needs doing. */
export function pushedFrom(link: Link | undefined, input: string | null): boolean {
  return (
    input !== null &&
    link !== undefined &&
    link.status === 'ok' &&
    link.remoteId !== null &&
    link.lastPayloadHash !== null &&
    link.inputHash === input
  );
}
