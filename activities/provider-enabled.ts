import { providerEnabled, type Db, type ProviderForSync } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';

/** A full sync stops once its provider is disabled: nothing more is sent to a target someone turned off. */
function providerDisabled(provider: Pick<ProviderForSync, 'slug'>): ScimflowError {
  return new ScimflowError(
    'ERR_PROVIDER_DISABLED',
    `provider ${provider.slug} was disabled; its full sync stopped (enabling it again starts a new one)`,
    { details: { provider: provider.slug } },
  );
}

/** `load`, throwing ERR_PROVIDER_DISABLED for a disabled provider: what every full-sync activity loads it with. */
export function enabledOnly(load: (id: string) => Promise<ProviderForSync>): (id: string) => Promise<ProviderForSync> {
  return async (id) => {
    const provider = await load(id);
    if (!provider.enabled) throw providerDisabled(provider);
    return provider;
  };
}

/** Throws ERR_PROVIDER_DISABLED once `provider` has been disabled since it was loaded (read afresh). */
export async function ensureStillEnabled(db: Db, provider: ProviderForSync): Promise<void> {
  if (!(await providerEnabled(db, provider.id))) throw providerDisabled(provider);
}
