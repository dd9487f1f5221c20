import type { CredentialService } from '../auth/credentials.ts';
import type { CheckStep, ProviderCheck } from '../auth/check.ts';
import type { ProviderForSync } from '../db/index.ts';
import { describeError, isScimflowError } from '../errors/index.ts';
import { createScimClient } from '../scim/index.ts';

/** What the check activity is built from. */
export interface ProviderCheckDeps {
  loadProvider: (providerId: string) => Promise<ProviderForSync>;
  credentials: CredentialService;
  /** Time allowed for the ServiceProviderConfig request. @default 15000 */
  timeoutMs?: number;
}

/** A failed step: the error's code and secret-free message. */
function failed(step: CheckStep['step'], error: unknown): CheckStep {
  return isScimflowError(error)
    ? { step, status: 'failed', code: error.code, message: error.message }
    : { step, status: 'failed', code: 'ERR_INTERNAL', message: describeError(error) };
}

/** Builds `checkProviderConnection`: load the provider, fetch a token, read ServiceProviderConfig. */
export function createProviderCheckActivities(deps: ProviderCheckDeps) {
  return {
    /** Checks one provider; never throws for a failed step, it reports it. */
    async checkProviderConnection(providerId: string): Promise<ProviderCheck> {
      const steps: CheckStep[] = [];
      const result = (tokenExpiresAt: number | undefined): ProviderCheck => ({
        ok: steps.every((step) => step.status !== 'failed'),
        steps,
        tokenExpiresAt: tokenExpiresAt === undefined ? null : new Date(tokenExpiresAt).toISOString(),
      });
      let provider: ProviderForSync;
      try {
        provider = await deps.loadProvider(providerId);
        steps.push({ step: 'load', status: 'ok' });
      } catch (error) {
        steps.push(failed('load', error), { step: 'token', status: 'skipped' });
        steps.push({ step: 'serviceProviderConfig', status: 'skipped' });
        return result(undefined);
      }
      // A fresh credential, so the check fetches a token now instead of trusting a cached one.
      const credential = deps.credentials.fresh(provider);
      let expiresAt: number | undefined;
      try {
        const token = await credential.check();
        expiresAt = token?.expiresAt;
        steps.push({ step: 'token', status: token === undefined ? 'skipped' : 'ok' });
      } catch (error) {
        steps.push(failed('token', error), { step: 'serviceProviderConfig', status: 'skipped' });
        return result(undefined);
      }
      const client = createScimClient({ baseUrl: provider.baseUrl, credential, timeoutMs: deps.timeoutMs ?? 15_000 });
      try {
        await client.request('GET', '/ServiceProviderConfig');
        steps.push({ step: 'serviceProviderConfig', status: 'ok' });
      } catch (error) {
        steps.push(failed('serviceProviderConfig', error));
      } finally {
        await client.close();
      }
      return result(expiresAt);
    },
  };
}

/** The check activity, as workflows import its type. */
export type ProviderCheckActivities = ReturnType<typeof createProviderCheckActivities>;
