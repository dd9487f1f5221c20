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

  test('stableUid is the SHA-256 hex of the id', () => {
    assert.equal(stableUid('00000000-0000-4000-8000-000000000001'), sha256('00000000-0000-4000-8000-000000000001'));
  });
});
