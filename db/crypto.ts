import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ScimflowError } from '../errors/index.ts';

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Encrypts and decrypts provider secrets at rest with AES-256-GCM. */
export interface SecretBox {
  seal(plaintext: string, context: string): Buffer;
  open(sealed: Buffer, context: string): string;
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
  return {
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
