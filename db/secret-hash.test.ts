import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashSecret, hashSecretHex, secretMatchesHex } from './secret-hash.ts';

// FIPS 180-2's SHA-256 test vector for "abc": what tokens stored before this helper existed were hashed to.
const ABC_SHA256 = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

test('a secret hashes to its SHA-256: raw for bytea columns, hex for text ones, so stored hashes keep matching', () => {
  assert.equal(hashSecret('abc').toString('hex'), ABC_SHA256);
  assert.equal(hashSecretHex('abc'), ABC_SHA256);
  // Non-ASCII is hashed as UTF-8 (the encoding every former helper used): the digest of the bytes c3 a9.
  assert.equal(hashSecretHex('\u00e9'), '4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c');
});

test('a stored hex hash matches its secret only', () => {
  assert.equal(secretMatchesHex('abc', ABC_SHA256), true);
  assert.equal(secretMatchesHex('abd', ABC_SHA256), false);
  assert.equal(secretMatchesHex('abc', ABC_SHA256.toUpperCase()), true, 'hex case does not matter');
  assert.equal(secretMatchesHex('abc', 'not hex'), false);
  assert.equal(secretMatchesHex('abc', ''), false);
});
