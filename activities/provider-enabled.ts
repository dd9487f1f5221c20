import { providerEnabled, type Db, type ProviderForSync } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';

/** A full sync stops once its provider is disabled: nothing more is sent to a target someone turned off. */
export function providerDisabled(provider: Pick<ProviderForSync, 'slug'>): ScimflowError {
  return new ScimflowError(
    'ERR_PROVIDER_DISABLED',
    `provider ${provider.slug} was disabled; its full sync stopped (enabling it again starts a new one)`,
    { details: { provider: provider.slug } },
  );
}

/** Throws ERR_PROVIDER_DISABLED unless `provider` is enabled; `fresh` reads the flag again from the database. */
export async function ensureEnabled(db: Db, provider: ProviderForSync, fresh = false): Promise<void> {
  const enabled = fresh ? await providerEnabled(db, provider.id) : provider.enabled;
  if (!enabled) throw providerDisabled(provider);
}
