import { createHash } from 'node:crypto';
import {
  loadMappingLimits,
  loadProviderMappings,
  type Db,
  type ProviderForSync,
  type ProviderMapping,
} from '../db/index.ts';
import type { ScimGroup } from '../scim/index.ts';
import type { MappingEngine, MappingLimits } from '../sandbox/index.ts';
import type { MapResult, PayloadMapper } from './mapper.ts';

/** The version of a provider's mapping set: changes when a mapping is edited, attached, detached, or limits change. */
export function mappingSetVersion(
  sets: { user: readonly ProviderMapping[]; group: readonly ProviderMapping[] },
  limits: Record<string, unknown>,
): string {
  const ids = [...sets.user, ...sets.group].map((m) => `${m.id}:${m.version}`).sort();
  return createHash('sha256')
    .update(JSON.stringify([ids, limits]))
    .digest('hex')
    .slice(0, 32);
}

/**
 * Whether a mapping's body could return a different result for the same object: by reading the clock (`now`,
 * `Date`, also through `globalThis`), its last payload (`link`), or any of them through `arguments` or a unicode
 * escape (any backslash counts). Anything else it can see is its object and the provider, which the input hash covers.
 */
function mayVary(expression: string): boolean {
  return /now|Date|link|arguments|globalThis|\\/.test(expression);
}

type ProviderMappings = Awaited<ReturnType<typeof loadProviderMappings>>;

/** Maps objects with each provider's stored mappings in the isolated-vm engine (one isolate per provider). */
export function createSandboxMapper(deps: { db: Db; engine: MappingEngine }): PayloadMapper {
  const { db, engine } = deps;
  // Each provider's read under way: a call made meanwhile shares it. At a sync's start every range's pages ask for the
  // set at once (a read a page, two queries each), and those queries queued for the pool's connections ahead of
  // the pages' own reads. Nothing is kept once a read answers, so a mapping edit is seen by the next call.
  const reading = new Map<
    string,
    Promise<{ sets: ProviderMappings; limits: Record<string, unknown>; version: string }>
  >();
  const read = (providerId: string) => {
    let under = reading.get(providerId);
    if (under === undefined) {
      under = Promise.all([loadProviderMappings(db, providerId), loadMappingLimits(db, providerId)])
        .then(([sets, limits]) => ({ sets, limits, version: mappingSetVersion(sets, limits) }))
        .finally(() => reading.delete(providerId));
      reading.set(providerId, under);
    }
    return under;
  };
  const load = async (provider: ProviderForSync) => {
    const { sets, limits, version } = await read(provider.id);
    return {
      sets,
      base: {
        key: provider.id,
        version,
        provider: { id: provider.id, slug: provider.slug, name: provider.name },
        now: new Date().toISOString(),
        limits: limits as Partial<MappingLimits>,
      },
    };
  };
  return {
    async snapshot(provider) {
      const { sets, base } = await load(provider);
      return {
        inputVersion: [...sets.user, ...sets.group].some((m) => mayVary(m.expression)) ? null : base.version,
        mapUsers: (items) =>
          engine.evaluate({
            ...base,
            objectType: 'user',
            mappings: sets.user,
            items: items.map(({ user, link }) => ({ object: user, link })),
          }),
        async mapGroups(items) {
          const results = await engine.evaluate({
            ...base,
            objectType: 'group',
            mappings: sets.group,
            items: items.map(({ group, link }) => ({ object: group, link })),
          });
          // The sync sends memberships itself, from its links; whatever a mapping put there is dropped.
          return results.map((result): MapResult<ScimGroup> => {
            if (result.status !== 'ok') return result;
            const { members: _members, ...payload } = result.payload;
            return { status: 'ok', payload };
          });
        },
      };
    },
    async prepare(provider, objectType) {
      const { sets, base } = await load(provider);
      await engine.prepare({ ...base, objectType, mappings: sets[objectType] });
    },
  };
}
