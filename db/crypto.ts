import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { ScimflowError } from '../errors/index.ts';

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** What the API process may do with provider secrets: seal them and fingerprint them, never read them back. */
export interface SecretSealer {
  seal(plaintext: string, context: string): Buffer;
  /** A keyed HMAC of `plaintext` bound to `context`: equal for the same secret, useless without the key. */
  fingerprint(plaintext: string, context: string): Buffer;
}

/** Encrypts and decrypts provider secrets at rest with AES-256-GCM; `open` is for the worker only. */
export interface SecretBox extends SecretSealer {
  open(sealed: Buffer, context: string): string;
}

/** The sealing half of `box`, for processes that must never decrypt (the API). */
export function sealerOf(box: SecretSealer): SecretSealer {
  return { seal: (plaintext, context) => box.seal(plaintext, context), fingerprint: (p, c) => box.fingerprint(p, c) };
}

/**
 * Builds a SecretBox from a 32-byte key given as base64 or 64 hex characters. `context` (e.g. the provider id)
 * is bound as associated data, so a ciphertext copied onto another provider's row does not decrypt.
 */
export function createSecretBox(key: string): SecretBox {
  const raw = /^[0-9a-fA-F]{64}$/.test(key) ? Buffer.from(key, 'hex') : Buffer.from(key, 'base64');
  if (raw.length !== 32) {
    throw new ScimflowError('ERR_CONFIG', 'SCIMFLOW_SECRET_KEY must be 32 bytes, as base64 or 64 hex characters');
  }
  // A separate key for fingerprints, so an HMAC never reuses the encryption key.
  const fingerprintKey = Buffer.from(hkdfSync('sha256', raw, Buffer.alloc(0), 'scimflow secret fingerprint v1', 32));
  return {
    fingerprint(plaintext, context) {
      return createHmac('sha256', fingerprintKey)
        .update(context, 'utf8')
        .update('\0')
        .update(plaintext, 'utf8')
        .digest();
    },
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', raw, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
    },
    open(sealed, context) {
      if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION) {
        throw new ScimflowError('ERR_CONFIG', 'stored secret has an unknown format');
      }
      const iv = sealed.subarray(1, 1 + IV_BYTES);
      const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', raw, iv);
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(sealed.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
          'utf8',
        );
      } catch (cause) {
        throw new ScimflowError(
          'ERR_CONFIG',
          'stored secret cannot be decrypted: SCIMFLOW_SECRET_KEY differs from the key it was sealed with',
          { cause },
        );
      }
    },
  };
}

/** A fresh random key in the base64 form `createSecretBox` accepts. */
export function generateSecretKey(): string {
  return randomBytes(32).toString('base64');
}
