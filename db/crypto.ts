/**
 * Secrets at rest: AES-256-GCM under a key ring. Every sealed value and fingerprint names the key that made it (a
 * key id derived from the key), so a new key can seal while the previous one still opens what it sealed, until
 * `scimflow secrets rotate-key` has re-encrypted everything. Values from before key ids (format 1) are opened with
 * whichever key of the ring authenticates them.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ScimflowError } from '../errors/index.ts';

const LEGACY_VERSION = 1;
const VERSION = 2;
const KEY_ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HMAC_BYTES = 32;
const HEADER_BYTES = 1 + KEY_ID_BYTES;

/** What the API process may do with provider secrets: seal them and fingerprint them, never read them back. */
export interface SecretSealer {
  seal(plaintext: string, context: string): Buffer;
  /** A keyed HMAC of `plaintext` bound to `context`, under the current key: useless without the key. */
  fingerprint(plaintext: string, context: string): Buffer;
  /** True when `stored` is the fingerprint of `plaintext` under any key of the ring (constant time per key). */
  fingerprintMatches(stored: Buffer, plaintext: string, context: string): boolean;
}

/** Encrypts and decrypts secrets at rest; `open` is for the worker (and the key rotation) only. */
export interface SecretBox extends SecretSealer {
  open(sealed: Buffer, context: string): string;
  /** The id of the key that seals (8 hex characters; not secret). */
  readonly currentKeyId: string;
  /** The id of the key a sealed value or fingerprint names; null for values from before key ids. */
  keyIdOf(sealedOrFingerprint: Buffer): string | null;
}

/** The sealing half of `box`, for processes that must never decrypt (the API). */
export function sealerOf(box: SecretSealer): SecretSealer {
  return {
    seal: (plaintext, context) => box.seal(plaintext, context),
    fingerprint: (plaintext, context) => box.fingerprint(plaintext, context),
    fingerprintMatches: (stored, plaintext, context) => box.fingerprintMatches(stored, plaintext, context),
  };
}

interface RingKey {
  id: Buffer;
  hex: string;
  raw: Buffer;
  fingerprintKey: Buffer;
}

/**
 * Parses one key strictly: exactly 32 bytes written as padded base64 (44 characters, what `openssl rand -base64 32`
 * prints) or as 64 hex digits. Anything else is refused with ERR_CONFIG naming `name`, never quoting the value.
 */
export function parseSecretKey(text: string, name = 'SCIMFLOW_SECRET_KEY'): Buffer {
  let raw: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) raw = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=$/.test(text)) {
    raw = Buffer.from(text, 'base64');
    // The last character carries 2 spare bits: a key that does not round-trip was not written by an encoder.
    if (raw.toString('base64') !== text) raw = undefined;
  }
  if (raw === undefined || raw.length !== 32) {
    throw new ScimflowError(
      'ERR_CONFIG',
      `${name} is not a valid key: it must be 32 bytes written as base64 (44 characters ending in "=", e.g. from ` +
        `\`openssl rand -base64 32\`) or as 64 hex digits; the value given has ${text.length} characters`,
    );
  }
  if (raw.every((byte) => byte === raw[0])) {
    throw new ScimflowError('ERR_CONFIG', `${name} is not a valid key: all its bytes are the same`);
  }
  return raw;
}

function ringKey(raw: Buffer): RingKey {
  const id = createHmac('sha256', raw).update('scimflow key id v1').digest().subarray(0, KEY_ID_BYTES);
  // A separate key for fingerprints, so an HMAC never reuses the encryption key.
  const fingerprintKey = Buffer.from(hkdfSync('sha256', raw, Buffer.alloc(0), 'scimflow secret fingerprint v1', 32));
  return { id, hex: id.toString('hex'), raw, fingerprintKey };
}

/** The id a key is known by in sealed values and messages (8 hex characters, derived from the key; not secret). */
export function secretKeyId(key: string, name?: string): string {
  return ringKey(parseSecretKey(key, name)).hex;
}

/** Keys of a ring, each as given in the environment. */
export interface KeyRingOptions {
  /** Keys that open but never seal: the previous key during a rotation, or the next one while it is rolled out. */
  decryptOnly?: readonly string[];
}

/**
 * Builds a SecretBox sealing with `key` and opening with it and `decryptOnly`. `context` (e.g. the provider id) is
 * bound as associated data, so a ciphertext copied onto another provider's row does not decrypt.
 */
export function createSecretBox(key: string, options: KeyRingOptions = {}): SecretBox {
  const current = ringKey(parseSecretKey(key));
  const ring = new Map<string, RingKey>([[current.hex, current]]);
  for (const [index, extra] of (options.decryptOnly ?? []).entries()) {
    const parsed = ringKey(parseSecretKey(extra, `SCIMFLOW_DECRYPT_KEYS entry ${index + 1}`));
    ring.set(parsed.hex, parsed);
  }
  const ids = (): string => [...ring.keys()].join(', ');

  const hmac = (k: RingKey, plaintext: string, context: string): Buffer =>
    createHmac('sha256', k.fingerprintKey).update(context, 'utf8').update('\0').update(plaintext, 'utf8').digest();

  const decrypt = (k: RingKey, iv: Buffer, tag: Buffer, body: Buffer, aad: Buffer): string | undefined => {
    const decipher = createDecipheriv('aes-256-gcm', k.raw, iv);
    decipher.setAAD(aad);
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  };

  return {
    currentKeyId: current.hex,
    keyIdOf(value) {
      if (value[0] !== VERSION || value.length < HEADER_BYTES) return null;
      return value.subarray(1, HEADER_BYTES).toString('hex');
    },
    fingerprint(plaintext, context) {
      return Buffer.concat([Buffer.from([VERSION]), current.id, hmac(current, plaintext, context)]);
    },
    fingerprintMatches(stored, plaintext, context) {
      const same = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);
      if (stored.length === HEADER_BYTES + HMAC_BYTES && stored[0] === VERSION) {
        const k = ring.get(stored.subarray(1, HEADER_BYTES).toString('hex'));
        return k !== undefined && same(stored.subarray(HEADER_BYTES), hmac(k, plaintext, context));
      }
      // Fingerprints from before key ids are the bare HMAC.
      return [...ring.values()].some((k) => same(stored, hmac(k, plaintext, context)));
    },
    seal(plaintext, context) {
      const header = Buffer.concat([Buffer.from([VERSION]), current.id]);
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current.raw, iv);
      cipher.setAAD(Buffer.concat([header, Buffer.from(context, 'utf8')]));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return Buffer.concat([header, iv, cipher.getAuthTag(), body]);
    },
    open(sealed, context) {
      const contextBytes = Buffer.from(context, 'utf8');
      if (sealed[0] === VERSION && sealed.length >= HEADER_BYTES + IV_BYTES + TAG_BYTES) {
        const header = sealed.subarray(0, HEADER_BYTES);
        const keyId = header.subarray(1).toString('hex');
        const k = ring.get(keyId);
        if (k === undefined) {
          throw new ScimflowError(
            'ERR_CONFIG',
            `stored secret was sealed with key ${keyId}, which is neither SCIMFLOW_SECRET_KEY nor in ` +
              `SCIMFLOW_DECRYPT_KEYS (keys known: ${ids()})`,
          );
        }
        const iv = sealed.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
        const tag = sealed.subarray(HEADER_BYTES + IV_BYTES, HEADER_BYTES + IV_BYTES + TAG_BYTES);
        const text = decrypt(
          k,
          iv,
          tag,
          sealed.subarray(HEADER_BYTES + IV_BYTES + TAG_BYTES),
          Buffer.concat([header, contextBytes]),
        );
        if (text === undefined) {
          throw new ScimflowError(
            'ERR_CONFIG',
            `stored secret does not authenticate under key ${keyId}: it was altered or moved`,
          );
        }
        return text;
      }
      if (sealed[0] === LEGACY_VERSION && sealed.length >= 1 + IV_BYTES + TAG_BYTES) {
        const iv = sealed.subarray(1, 1 + IV_BYTES);
        const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
        const body = sealed.subarray(1 + IV_BYTES + TAG_BYTES);
        for (const k of ring.values()) {
          const text = decrypt(k, iv, tag, body, contextBytes);
          if (text !== undefined) return text;
        }
        throw new ScimflowError(
          'ERR_CONFIG',
          `stored secret cannot be decrypted: no key of the ring (${ids()}) is the one it was sealed with`,
        );
      }
      throw new ScimflowError('ERR_CONFIG', 'stored secret has an unknown format');
    },
  };
}

/** A fresh random key in the base64 form `createSecretBox` accepts. */
export function generateSecretKey(): string {
  return randomBytes(32).toString('base64');
}
