/** Host-side checks of a merged mapping result against the SCIM schemas, and which mapping to blame for a fault. */
import * as z from 'zod';
import {
  SCHEMA_ENTERPRISE_USER,
  SCHEMA_GROUP,
  SCHEMA_USER,
  ScimGroupSchema,
  ScimUserSchema,
  type ScimGroup,
  type ScimUser,
} from '../scim/index.ts';
import { isPlainObject } from './merge.ts';
import { compileSchemaCheck, compileShapeCheck, type ShapeCheck } from './schema-check.ts';

/** The enterprise User extension (RFC 7643 §4.3), checked when a mapping sends it. */
export const EnterpriseUserSchema = z.looseObject({
  employeeNumber: z.string().max(256).optional(),
  costCenter: z.string().max(256).optional(),
  organization: z.string().max(1024).optional(),
  division: z.string().max(1024).optional(),
  department: z.string().max(1024).optional(),
  manager: z
    .looseObject({
      value: z.string().max(1024).optional(),
      $ref: z.string().max(2048).optional(),
      displayName: z.string().max(1024).optional(),
    })
    .optional(),
});

const fastUser = compileSchemaCheck(ScimUserSchema);
const fastGroup = compileSchemaCheck(ScimGroupSchema);
const fastEnterprise = compileSchemaCheck(EnterpriseUserSchema);

/** Which kind of directory object a mapping set maps. */
export type MappingObjectType = 'user' | 'group';

/** The outcome of checking a merged result: the payload, or the first fault with its path (`emails.0.value`). */
export type PayloadCheck =
  { ok: true; payload: ScimUser | ScimGroup } | { ok: false; path: Array<string | number>; message: string };

/**
 * The core schema's compiled check for the objects of one shape (a shapes.ts descriptor), worked out once per shape;
 * null when it cannot vouch for them (each is then checked whole).
 */
export function shapeCheckFor(objectType: MappingObjectType, descriptor: string): ShapeCheck | null {
  try {
    return compileShapeCheck(objectType === 'user' ? ScimUserSchema : ScimGroupSchema, JSON.parse(descriptor));
  } catch {
    return null;
  }
}

/**
 * Checks a merged mapping result: the core schema of its type (groups need no members: the engine adds them),
 * the core URN in `schemas`, every extension URN key listed in `schemas`, and the enterprise extension's shape.
 * `vouched`: its shape's check (shapeCheckFor) already passed for it, so the core schema needs no check of its own.
 */
export function checkMappedPayload(objectType: MappingObjectType, merged: unknown, vouched = false): PayloadCheck {
  if (!isPlainObject(merged)) return { ok: false, path: [], message: 'the mappings produced no object' };
  // The compiled check vouches for the common case without copying; zod answers the rest, so every message and
  // path is zod's. A vouched payload is `merged` itself: zod's output would be equal to it (keys in schema order).
  const fast = objectType === 'user' ? fastUser : fastGroup;
  let payload: ScimUser | ScimGroup;
  if (vouched || fast?.(merged) === true) {
    payload = merged as ScimUser | ScimGroup;
  } else {
    const parsed = objectType === 'user' ? ScimUserSchema.safeParse(merged) : ScimGroupSchema.safeParse(merged);
    if (!parsed.success) return firstIssue(parsed.error, []);
    payload = parsed.data;
  }
  const core = objectType === 'user' ? SCHEMA_USER : SCHEMA_GROUP;
  if (!payload.schemas.includes(core)) return { ok: false, path: ['schemas'], message: `schemas must include ${core}` };
  for (const key of Object.keys(payload)) {
    if (!key.startsWith('urn:')) continue;
    if (!payload.schemas.includes(key)) {
      return { ok: false, path: [key], message: `the extension ${key} is sent but not listed in schemas` };
    }
    if (key === SCHEMA_ENTERPRISE_USER && objectType === 'user') {
      if (fastEnterprise?.(payload[key]) === true) continue;
      const extension = EnterpriseUserSchema.safeParse(payload[key]);
      if (!extension.success) return firstIssue(extension.error, [key]);
    }
  }
  return { ok: true, payload };
}

/**
 * The mapping whose contribution put the value at `path` into the merged result (following the merge rules:
 * objects merge, arrays concatenate, a later non-mergeable value replaces), or the one that produced the deepest
 * existing part of the path; null when not even the path's first attribute was sent (a missing required one).
 */
export function blameMapping(
  path: ReadonlyArray<string | number>,
  contributions: ReadonlyArray<{ mapping: string; value: unknown }>,
): string | null {
  let parts = survivors(contributions.filter((c) => c.value !== null && c.value !== undefined));
  let blamed: string | null = null;
  for (const segment of path) {
    if (parts.length === 0) break;
    const first = parts[0]?.value;
    if (Array.isArray(first) && typeof segment === 'number') {
      let offset = 0;
      const owner = parts.find((part) => {
        const length = (part.value as unknown[]).length;
        if (segment < offset + length) return true;
        offset += length;
        return false;
      });
      if (!owner) break;
      parts = [{ mapping: owner.mapping, value: (owner.value as unknown[])[segment - offset] }];
    } else if (isPlainObject(first)) {
      const key = String(segment);
      parts = survivors(
        parts
          .filter(
            (part) => isPlainObject(part.value) && Object.hasOwn(part.value, key) && part.value[key] !== undefined,
          )
          .map((part) => ({ mapping: part.mapping, value: (part.value as Record<string, unknown>)[key] })),
      );
    } else {
      break;
    }
    blamed = parts.at(-1)?.mapping ?? blamed;
  }
  return blamed;
}

/** The contributions that still shape the merged value: from the last one that replaced rather than merged. */
function survivors<T extends { value: unknown }>(parts: readonly T[]): T[] {
  let start = 0;
  parts.forEach((part, index) => {
    const previous = parts[index - 1]?.value;
    const merges =
      index > 0 &&
      ((isPlainObject(previous) && isPlainObject(part.value)) ||
        (Array.isArray(previous) && Array.isArray(part.value)));
    if (!merges) start = index;
  });
  return parts.slice(start);
}

function firstIssue(error: z.ZodError, prefix: Array<string | number>): PayloadCheck {
  const issue = error.issues[0];
  const path = [
    ...prefix,
    ...(issue?.path ?? []).map((segment) => (typeof segment === 'number' ? segment : String(segment))),
  ];
  return { ok: false, path, message: issue?.message ?? 'invalid' };
}
