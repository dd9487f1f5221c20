import { hash } from 'node:crypto';

/** JSON with object keys sorted, so equal payloads always serialise (and hash) the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) sorted[key] = (v as Record<string, unknown>)[key];
    return sorted;
  });
}

/** SHA-256 (hex) of a payload's canonical JSON: what link rows compare to decide whether to write. */
export function payloadHash(value: unknown): string {
  return hash('sha256', canonicalJson(value));
}

/** The stable id a directory object is known by downstream (externalId): SHA-256 hex of its uuid. */
export function stableUid(id: string): string {
  return hash('sha256', id);
}
