import { hash } from 'node:crypto';
import type { Link } from '../db/index.ts';

/**
 * The hash of everything an object's payload is made from: `version` (the provider's mapping set version and config
 * version, see `PayloadMapper.inputVersion`), its directory row as read (column order and jsonb key order are
 * fixed, so equal rows serialise alike) and, for a group, its members' remote ids.
 */
export function inputHash(version: string, row: object, members?: readonly string[]): string {
  const parts = [version, JSON.stringify(row)];
  if (members) parts.push(members.join(','));
  return hash('sha256', parts.join('\n'));
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
