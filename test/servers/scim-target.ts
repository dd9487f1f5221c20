/** Starts SCIMMY-based SCIM 2.0 targets, each in its own worker thread, and drives them from a test. */
import type { ScimTargetOptions } from './scim-target-types.ts';
import { startTargetWorker, type ScimTarget } from './target-controller.ts';

export type { ScimTarget } from './target-controller.ts';

/** Starts a target; each one has its own worker, so several can run at once without sharing state. */
export function startScimTarget(options: ScimTargetOptions = {}): Promise<ScimTarget> {
  const settings: Required<ScimTargetOptions> = {
    token: options.token ?? 'test-token',
    groups: options.groups ?? true,
    patch: options.patch ?? true,
    filter: options.filter ?? true,
    oauth: options.oauth ?? null,
    emulator: options.emulator ?? null,
  };
  return startTargetWorker(new URL('./scim-target-worker.ts', import.meta.url), settings, settings.token);
}
