/**
 * How the bearer secrets scimflow issues are kept: admin API tokens, SCIM source tokens and OAuth `state` values are
 * stored only as their SHA-256 (they carry 256 random bits, so no slow hash is needed). Columns made before this
 * helper keep their encodings: `api_tokens.token_hash` is bytea (the digest), the others are text (its hex).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** The SHA-256 digest of `secret` (UTF-8), as stored in bytea columns. */
export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** The SHA-256 of `secret` in lowercase hex, as stored in text columns. */
export function hashSecretHex(secret: string): string {
  return hashSecret(secret).toString('hex');
}

/** True when `secret` hashes to `storedHex`, compared in constant time. */
export function secretMatchesHex(secret: string, storedHex: string): boolean {
  const given = hashSecret(secret);
  const stored = Buffer.from(storedHex, 'hex');
  return given.length === stored.length && timingSafeEqual(given, stored);
}
