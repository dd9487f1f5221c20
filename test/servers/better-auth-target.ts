/** Starts better-auth SCIM targets (`@better-auth/scim`), each in its own worker thread, and drives them from a test. */
import { startTargetWorker, type ScimTarget } from './target-controller.ts';

/** Starts a better-auth server whose SCIM endpoint accepts `token`; every target has its own in-memory database. */
export function startBetterAuthTarget(options: { token?: string } = {}): Promise<ScimTarget> {
  const token = options.token ?? 'test-token';
  return startTargetWorker(new URL('./better-auth-target-worker.ts', import.meta.url), { token }, token);
}
