import type { Link } from '../db/index.ts';
import { canonicalJson } from './payload-hash.ts';

/**
 * Whether `remote`, found for an object scimflow may have created already, is that create: it carries the object's
 * externalId and every attribute of `payload` exactly as sent. `createSent` says this attempt sent a create of
 * `payload` (whose answer may have been lost); `link` is the object's link before it, whose payload, with no remote
 * id, is a create an earlier attempt sent. A different earlier payload, a target that reshaped or does not return
 * an attribute (a password), an externalId not stored: each answers false, and the caller writes the payload.
 */
export function isOwnCreate(
  remote: Record<string, unknown>,
  payload: Record<string, unknown>,
  createSent: boolean,
  link: Pick<Link, 'remoteId' | 'lastPayload'> | undefined,
): boolean {
  const earlier = link && link.remoteId === null ? link.lastPayload : null;
  if (!createSent && earlier === null) return false;
  // An earlier create of other content may be what the target holds: only a write settles that.
  if (earlier !== null && canonicalJson(earlier) !== canonicalJson(payload)) return false;
  if (typeof payload['externalId'] !== 'string' || remote['externalId'] !== payload['externalId']) return false;
  return Object.entries(payload).every(
    ([key, value]) => value === undefined || canonicalJson(remote[key]) === canonicalJson(value),
  );
}
