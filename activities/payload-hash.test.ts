import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { defaultGroupPayload, defaultUserPayload } from '../sandbox/index.ts';
import { variedGroups, variedUsers } from '../test/fixtures/directory.ts';
import { canonicalJson, payloadHash, stableUid } from './payload-hash.ts';

/** How payloads have always been hashed: the hashes stored on every link were made this way and must still match. */
function referenceJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) sorted[key] = (v as Record<string, unknown>)[key];
    return sorted;
  });
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('payload hashes', () => {
  test('a payload hashes as the SHA-256 of its JSON with sorted keys, as the hashes stored on links were made', () => {
    const payloads = [
      ...variedUsers(500).map((user) => defaultUserPayload(user)),
      ...variedGroups(100).map((group) => ({
        ...defaultGroupPayload(group),
        members: [{ value: 'r2' }, { value: 'r1' }],
      })),
    ];
    for (const payload of payloads) {
      assert.equal(canonicalJson(payload), referenceJson(payload));
      assert.equal(payloadHash(payload), sha256(referenceJson(payload)));
    }
  });

  test('any value, its keys in any order and of any number, hashes as its JSON with sorted keys always did', () => {
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${(i * 7919) % 40}`, i]));
    const payloads: unknown[] = [
      { b: 1, a: { d: [3, { z: null, y: 'ü' }], c: true }, é: 'x', E: 'y', _: 1, '': 0 },
      { 'urn:x:Z': { b: 2, a: 1 }, 'urn:x:A': [{ b: [], a: {} }], emoji: '😀\u0000"\\', lone: '\ud800' },
      { 10: 'ten', 9: 'nine', b: 'bee', a: 'ay', '01': 'zero-one' },
      { undefinedValue: undefined, fn: () => 1, date: new Date(0), nan: Number.NaN, list: [undefined, -0, 1e21] },
      many,
      Object.fromEntries(Object.entries(many).reverse()),
      { ...many, nested: { ...many } },
      [{ b: 1, a: 2 }, 'text', 3, null, false],
      'plain string',
      42,
      null,
    ];
    for (const payload of payloads) {
      assert.equal(canonicalJson(payload), referenceJson(payload));
      assert.equal(payloadHash(payload), sha256(referenceJson(payload)));
    }
  });

  test('stableUid is the SHA-256 hex of the id', () => {
    assert.equal(stableUid('00000000-0000-4000-8000-000000000001'), sha256('00000000-0000-4000-8000-000000000001'));
  });
});
