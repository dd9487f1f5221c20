/** Resource limits for running one provider's mappings. */
import * as z from 'zod';
import { ValidationError } from '../errors/index.ts';

/** Per-provider sandbox limits; a provider stores a partial set (`providers.mapping_limits`), the rest defaults. */
export const MappingLimitsSchema = z.strictObject({
  /** Heap limit of the provider's isolate, in MiB. @default 64 */
  memoryMb: z.number().int().min(8).max(2048),
  /** CPU budget of one object (all its mappings together), in milliseconds. @default 50 */
  objectTimeoutMs: z.number().int().min(1).max(60_000),
  /** CPU budget of one `evaluate` call (one batch), in milliseconds. @default 5000 */
  batchTimeoutMs: z.number().int().min(10).max(600_000),
  /** Largest output of one object (its mappings' results as JSON), in characters. @default 262144 */
  maxOutputBytes: z
    .number()
    .int()
    .min(1024)
    .max(16 * 1024 * 1024),
});

/** Per-provider sandbox limits. */
export type MappingLimits = z.infer<typeof MappingLimitsSchema>;

/** What a provider's `mapping_limits` may hold: any subset of the limits. */
export const PartialMappingLimitsSchema = MappingLimitsSchema.partial();

/** The limits a provider gets when it sets none. */
export const DEFAULT_MAPPING_LIMITS: Readonly<MappingLimits> = Object.freeze({
  memoryMb: 64,
  objectTimeoutMs: 50,
  batchTimeoutMs: 5000,
  maxOutputBytes: 256 * 1024,
});

/** Fills a partial set of limits from `base`; throws a ValidationError naming each value out of range. */
export function resolveMappingLimits(
  partial: Partial<MappingLimits> | undefined,
  base: Readonly<MappingLimits> = DEFAULT_MAPPING_LIMITS,
): MappingLimits {
  const parsed = MappingLimitsSchema.safeParse({ ...base, ...stripUndefined(partial ?? {}) });
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
  throw new ValidationError('invalid mapping limits', issues);
}

function stripUndefined(value: Partial<MappingLimits>): Partial<MappingLimits> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
}
