/**
 * The template of a vendor plugin (docs/plugins.md walks through it): copy this folder to `plugins/<vendor>/`,
 * rename, cite the vendor's documentation here, keep the hooks the vendor needs and delete the others, register the
 * factory in `plugins/index.ts`, and add an emulator and a conformance test. It is not registered itself.
 *
 * Sources: (the vendor's documentation pages, one per fact the hooks rely on)
 */
import type * as z from 'zod';
import { ScimflowError } from '../../errors/index.ts';
import { createScimPlugin, vendorOptions, type ScimEngineDeps } from '../engine/index.ts';
import type { VendorHooks } from '../sdk.ts';

/** The plugin's options; `vendorOptions` adds the `capabilities` override every plugin takes. */
export const TemplateOptionsSchema = vendorOptions({});
export type TemplateOptions = z.output<typeof TemplateOptionsSchema>;

/** The hooks: here, a vendor with 20 member changes per PATCH, no group PUT, and a required title. */
export const templateVendor: VendorHooks<TemplateOptions> = {
  id: 'template',
  description: 'Template vendor (20 member changes per PATCH, no group PUT, title required)',
  optionsSchema: TemplateOptionsSchema,
  rateLimits: { requestsPerSecond: 5 },
  capabilities: () => ({ filter: true, groupPut: false, maxMembersPerRequest: 20 }),
  shapeUser: (user) => {
    if (!user.title) {
      throw new ScimflowError('ERR_MAPPING', 'the vendor requires a title on every user', {
        details: { missing: ['title'] },
      });
    }
    return user;
  },
};

/** Creates the plugin. */
export function createTemplatePlugin(deps: ScimEngineDeps = {}) {
  return createScimPlugin(templateVendor, deps);
}
