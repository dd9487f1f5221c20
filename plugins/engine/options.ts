/** Options every plugin takes, and the helper that adds them to a vendor's own. */
import * as z from 'zod';

/** The largest member count any single request may carry, whatever the target advertises. */
export const MAX_MEMBERS_PER_REQUEST = 1000;

/**
 * What a provider may override of what its target advertises (a target that says it cannot filter but can, one that
 * advertises PATCH and refuses it). Each key given wins over discovery and over the plugin's own knowledge.
 */
export const CapabilityOverridesSchema = z.strictObject({
  patch: z.boolean().optional(),
  groups: z.boolean().optional(),
  filter: z.boolean().optional(),
  filterOr: z.boolean().optional(),
  maxMembersPerRequest: z.number().int().min(1).max(MAX_MEMBERS_PER_REQUEST).optional(),
  userDelete: z.enum(['delete', 'deactivate']).optional(),
  groupPut: z.boolean().optional(),
  memberReadBack: z.boolean().optional(),
  maxPageSize: z.number().int().min(1).max(10_000).optional(),
});

/** A vendor's options schema: its own keys plus `capabilities`; unknown keys are refused. */
export function vendorOptions<Shape extends z.ZodRawShape>(shape: Shape) {
  return z.strictObject({ ...shape, capabilities: CapabilityOverridesSchema.optional() });
}
