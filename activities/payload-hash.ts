import { hash } from 'node:crypto';

/** JSON with object keys sorted, so equal payloads always serialise (and hash) the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const key of sortedKeys(v)) sorted[key] = (v as Record<string, unknown>)[key];
    return sorted;
  });
}

// Up to this many keys an insertion sort, which allocates nothing: Array.prototype.sort allocated 2 KiB per user
// payload in work arrays. Beyond it, the built-in sort; both order by UTF-16 code units, and keys are distinct.
const INSERTION_SORT_MAX = 16;

/** An object's own enumerable keys in the order `Array.prototype.sort()` puts them. */
function sortedKeys(object: object): string[] {
  const keys = Object.keys(object);
  if (keys.length > INSERTION_SORT_MAX) return keys.sort();
  for (let i = 1; i < keys.length; i += 1) {
    const key = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > key; j -= 1) keys[j + 1] = keys[j]!;
    keys[j + 1] = key;
  }
  return keys;
}

/** SHA-256 (hex) of a payload's canonical JSON: what link rows compare to decide whether to write. */
export function payloadHash(value: unknown): string {
  return hash('sha256', canonicalJson(value));
}

/** The stable id a directory object is known by downstream (externalId): SHA-256 hex of its uuid. */
export function stableUid(id: string): string {
  return hash('sha256', id);
}
