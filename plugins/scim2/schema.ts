/** Options of the standard SCIM 2.0 plugin. */
import * as z from 'zod';
import { MAX_MEMBERS_PER_REQUEST, vendorOptions } from '../engine/options.ts';

export { MAX_MEMBERS_PER_REQUEST };

/** Validates and defaults a provider's `pluginOptions` for the `scim2` plugin. Unknown keys are refused. */
export const Scim2OptionsSchema = vendorOptions({
  /** Where the ServiceProviderConfig lives, relative to the base URL. @default '/ServiceProviderConfig' */
  discoveryPath: z
    .string()
    .regex(/^\/[^?#\s]*$/, 'must be a path starting with "/"')
    .default('/ServiceProviderConfig'),
  /** How group changes are sent: PATCH when the target supports it (`auto`), always PATCH, or always PUT. @default 'auto' */
  groupUpdate: z.enum(['auto', 'patch', 'put']).default('auto'),
  /**
   * Most member values one request may carry. @default bulk.maxOperations when the target advertises bulk, else
   * 100, capped at 1000
   */
  maxMembersPerRequest: z.number().int().min(1).max(MAX_MEMBERS_PER_REQUEST).optional(),
});

/** The validated options of the `scim2` plugin. */
export type Scim2Options = z.output<typeof Scim2OptionsSchema>;
