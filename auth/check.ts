/** The result of checking a provider's connection step by step, as the API and CLI report it. */
import * as z from 'zod';

/** One step of a connection check. */
export const CheckStepSchema = z.object({
  step: z.enum(['load', 'token', 'serviceProviderConfig']),
  /** `skipped` when an earlier step failed, or the auth mode has no token to fetch. */
  status: z.enum(['ok', 'failed', 'skipped']),
  code: z.string().optional(),
  message: z.string().optional(),
});
export type CheckStep = z.infer<typeof CheckStepSchema>;

/** Whether scimflow can authenticate to a provider and read its ServiceProviderConfig. */
export const ProviderCheckSchema = z.object({
  ok: z.boolean(),
  steps: z.array(CheckStepSchema),
  /** When the token fetched by the check expires, if the server said. */
  tokenExpiresAt: z.string().nullable(),
});
export type ProviderCheck = z.infer<typeof ProviderCheckSchema>;
