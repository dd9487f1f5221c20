/** Creates or updates mappings by name through the API, writing only what differs. */
import type { MappingView } from '../db/index.ts';
import type { ApiClient } from './api-client.ts';

/** A mapping as a config file declares it, its expression already read. */
export interface DeclaredMapping {
  name: string;
  objectType: 'user' | 'group';
  expression: string;
}

/** What happened to one declared mapping. */
export interface MappingOutcome {
  name: string;
  action: 'created' | 'updated' | 'unchanged';
  mapping: MappingView;
}

/**
 * Brings each declared mapping to its declared expression: created when `existing` has none by that name, updated
 * when its expression differs, else left as it is. With `dryRun`, says what it would do and writes nothing.
 */
export async function upsertMappings(
  api: ApiClient,
  declared: readonly DeclaredMapping[],
  existing: readonly MappingView[],
  options: { dryRun?: boolean } = {},
): Promise<MappingOutcome[]> {
  const byName = new Map(existing.map((m) => [m.name, m]));
  const outcomes: MappingOutcome[] = [];
  for (const { name, objectType, expression } of declared) {
    const current = byName.get(name);
    if (!current) {
      const mapping = options.dryRun
        ? planned(name, objectType, expression)
        : await api.post<MappingView>('/mappings', { name, objectType, expression });
      outcomes.push({ name, action: 'created', mapping });
    } else if (current.expression !== expression) {
      const mapping = options.dryRun
        ? { ...current, expression }
        : await api.patch<MappingView>(`/mappings/${encodeURIComponent(current.id)}`, { expression });
      outcomes.push({ name, action: 'updated', mapping });
    } else outcomes.push({ name, action: 'unchanged', mapping: current });
  }
  return outcomes;
}

/** A mapping a dry run would create; its id is a placeholder no provider set is ever written with. */
function planned(name: string, objectType: 'user' | 'group', expression: string): MappingView {
  const now = new Date().toISOString();
  return {
    id: `(new:${name})`,
    name,
    objectType,
    expression,
    version: 1,
    builtin: false,
    createdAt: now,
    updatedAt: now,
  };
}
