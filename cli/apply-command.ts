/**
 * `scimflow apply FILE`: brings the providers and mappings a file declares to the declared state through the API,
 * writing only what differs, and prints what it created, updated or left unchanged. Objects the file does not
 * declare are left alone; a field a declared provider leaves out takes the API's default.
 */
import { isDeepStrictEqual } from 'node:util';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import type { MappingView, ProviderScope, ProviderView } from '../db/index.ts';
import { ValidationError } from '../errors/index.ts';
import type { ApiClient } from './api-client.ts';
import { loadApplyFile, type ApplyFile, type ApplyProvider } from './apply-file.ts';
import type { CliContext } from './context.ts';
import { findGroupIds, noGroupNamed } from './directory-lookup.ts';
import { upsertMappings, type DeclaredMapping } from './mapping-upsert.ts';
import { formatTable } from './output.ts';

type Action = 'created' | 'updated' | 'unchanged';

/** One line of the summary. */
interface Outcome {
  kind: 'mapping' | 'provider';
  name: string;
  action: Action;
  /** The fields that differ (updates only). */
  fields: string[];
}

type Issue = { path: string; message: string };

/** The provider fields `apply` compares and sends, as the API names them. */
type ProviderFields = Omit<ProviderView, 'id' | 'slug' | 'auth' | 'configVersion' | 'createdAt' | 'updatedAt'>;

/** Everything checked before the first write: tokens, expressions, group and mapping names. */
interface Resolved {
  mappings: DeclaredMapping[];
  tokens: Map<string, string>;
  groups: Map<string, string>;
}

async function resolveInputs(
  api: ApiClient,
  file: ApplyFile,
  baseDir: string,
  existingMappings: readonly MappingView[],
): Promise<Resolved> {
  const issues: Issue[] = [];
  const tokens = new Map<string, string>();
  for (const provider of file.providers) {
    const variable = provider.auth.tokenEnv;
    if (provider.auth.mode !== 'bearer' || variable === undefined) continue;
    const token = process.env[variable]?.trim();
    if (token) tokens.set(provider.slug, token);
    else
      issues.push({
        path: `providers.${provider.slug}.auth.tokenEnv`,
        message: `environment variable ${variable} is not set or empty`,
      });
  }
  const mappings: DeclaredMapping[] = [];
  for (const mapping of file.mappings) {
    let expression = mapping.expression;
    if (mapping.file !== undefined) {
      try {
        expression = await readFile(resolve(baseDir, mapping.file), 'utf8');
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
        issues.push({ path: `mappings.${mapping.name}.file`, message: `cannot read ${mapping.file} (${reason})` });
        continue;
      }
    }
    mappings.push({ name: mapping.name, objectType: mapping.objectType, expression: expression ?? '' });
  }
  const groups = await findGroupIds(
    api,
    file.providers.flatMap((p) => [...p.scope.accessGroups, ...(p.scope.groups ?? [])]),
  );
  for (const provider of file.providers) {
    for (const field of ['accessGroups', 'groups'] as const) {
      const missing = [...new Set(provider.scope[field] ?? [])].filter((name) => !groups.has(name));
      if (missing.length > 0)
        issues.push({ path: `providers.${provider.slug}.scope.${field}`, message: noGroupNamed(missing) });
    }
  }
  const serverMappings = new Map(existingMappings.map((m) => [m.name, m]));
  for (const mapping of file.mappings) {
    const current = serverMappings.get(mapping.name);
    if (current && current.objectType !== mapping.objectType)
      issues.push({
        path: `mappings.${mapping.name}.objectType`,
        message: `the mapping on the server is a ${current.objectType} mapping; a mapping's type cannot change`,
      });
  }
  const declaredNames = new Set(file.mappings.map((m) => m.name));
  for (const provider of file.providers) {
    (provider.mappings ?? []).forEach((name, i) => {
      if (!declaredNames.has(name) && !serverMappings.has(name))
        issues.push({ path: `providers.${provider.slug}.mappings.${i}`, message: `no mapping named ${name}` });
    });
  }
  if (issues.length > 0) throw new ValidationError('the file cannot be applied; nothing was changed', issues);
  return { mappings, tokens, groups };
}

/** The provider fields the file declares, with group names turned into ids. */
function declaredFields(provider: ApplyProvider, groups: Map<string, string>): ProviderFields {
  const ids = (names: readonly string[]) => names.map((name) => groups.get(name)!);
  const { scope } = provider;
  const declaredScope: ProviderScope = {
    includeServiceAccounts: scope.includeServiceAccounts,
    accessGroups: ids(scope.accessGroups),
    ...(scope.groups === undefined ? {} : { groups: ids(scope.groups) }),
    ...(scope.removeGroupsLeavingFilter === undefined
      ? {}
      : { removeGroupsLeavingFilter: scope.removeGroupsLeavingFilter }),
  };
  return {
    name: provider.name ?? provider.slug,
    baseUrl: provider.baseUrl,
    allowInsecureHttp: provider.allowInsecureHttp,
    plugin: provider.plugin,
    pluginOptions: provider.pluginOptions,
    scope: declaredScope,
    deprovision: provider.deprovision,
    pageSize: provider.pageSize,
    concurrency: provider.concurrency,
    fullSyncIntervalMinutes: provider.fullSyncIntervalMinutes,
    deletionLimit: provider.deletionLimit,
    rateLimit: provider.rateLimit,
    adoptBy: provider.adoptBy,
    dryRun: provider.dryRun,
    enabled: provider.enabled,
  };
}

/** The names of the fields of `declared` that differ from `current` (scope by its parts). */
function differingFields(current: ProviderView, declared: ProviderFields): string[] {
  const json = (value: unknown): unknown => (value === undefined ? undefined : JSON.parse(JSON.stringify(value)));
  const fields: string[] = [];
  for (const key of Object.keys(declared) as Array<keyof ProviderFields>) {
    if (key === 'scope') {
      const keys = new Set([...Object.keys(current.scope), ...Object.keys(declared.scope)]);
      for (const part of [...keys].sort()) {
        const name = part as keyof ProviderScope;
        if (!isDeepStrictEqual(json(current.scope[name]), json(declared.scope[name]))) fields.push(`scope.${part}`);
      }
    } else if (!isDeepStrictEqual(json(current[key]), json(declared[key]))) fields.push(key);
  }
  return fields;
}

/** The ids of a mapping set, in a stable order for comparing. */
function setOf(mappings: readonly { id: string }[]): string[] {
  return mappings.map((m) => m.id).sort();
}

/** Runs `apply`: everything is checked first, then mappings, providers and mapping sets are written. */
async function apply(api: ApiClient, path: string, dryRun: boolean): Promise<Outcome[]> {
  const file = await loadApplyFile(path);
  const [{ items: existingMappings }, { items: existingProviders }] = await Promise.all([
    api.get<{ items: MappingView[] }>('/mappings'),
    api.get<{ items: ProviderView[] }>('/providers'),
  ]);
  const resolved = await resolveInputs(api, file, dirname(path), existingMappings);

  const outcomes: Outcome[] = [];
  const mappingOutcomes = await upsertMappings(api, resolved.mappings, existingMappings, { dryRun });
  const mappingsByName = new Map(existingMappings.map((m) => [m.name, m]));
  for (const outcome of mappingOutcomes) {
    mappingsByName.set(outcome.name, outcome.mapping);
    outcomes.push({ kind: 'mapping', name: outcome.name, action: outcome.action, fields: [] });
  }
  const builtinSet = setOf(existingMappings.filter((m) => m.builtin));

  const providersBySlug = new Map(existingProviders.map((p) => [p.slug, p]));
  for (const provider of file.providers) {
    const fields = declaredFields(provider, resolved.groups);
    const token = resolved.tokens.get(provider.slug);
    const auth = token === undefined ? { mode: 'none' as const } : { mode: 'bearer' as const, token };
    const path = `/providers/${encodeURIComponent(provider.slug)}`;
    const current = providersBySlug.get(provider.slug);
    let action: Action;
    let changed: string[] = [];
    let currentSet: string[];
    let id: string | undefined = current?.id;
    if (!current) {
      action = 'created';
      if (!dryRun) id = (await api.post<ProviderView>('/providers', { slug: provider.slug, ...fields, auth })).id;
      currentSet = builtinSet;
    } else {
      changed = differingFields(current, fields);
      const authChanged = current.auth.mode !== auth.mode || (auth.mode === 'none' && current.auth.secretSet);
      if (authChanged) changed.push('auth');
      // The stored token is never read back, so a bearer token is always sent: the API writes it only when it
      // differs, and the configuration version says whether it did.
      if (!dryRun && (changed.length > 0 || auth.mode === 'bearer')) {
        const body = Object.fromEntries(
          changed.filter((f) => !f.includes('.') && f !== 'auth').map((f) => [f, fields[f as keyof ProviderFields]]),
        );
        if (changed.some((f) => f.startsWith('scope.'))) body['scope'] = fields.scope;
        const updated = await api.patch<ProviderView>(path, { ...body, auth });
        if (changed.length === 0 && updated.configVersion !== current.configVersion) changed.push('auth.token');
      }
      action = changed.length > 0 ? 'updated' : 'unchanged';
      currentSet = setOf((await api.get<{ items: MappingView[] }>(`${path}/mappings`)).items);
    }
    if (provider.mappings !== undefined) {
      const declaredSet = provider.mappings.map((name) => mappingsByName.get(name)!.id);
      if (!isDeepStrictEqual([...declaredSet].sort(), currentSet)) {
        if (!dryRun && id !== undefined) await api.put(`${path}/mappings`, { mappingIds: declaredSet });
        if (action === 'unchanged') action = 'updated';
        if (action === 'updated') changed.push('mappings');
      }
    }
    outcomes.push({ kind: 'provider', name: provider.slug, action, fields: changed });
  }
  return outcomes;
}

/** `apply FILE [--dry-run]`. */
export function addApplyCommand(program: Command, ctx: CliContext): void {
  program
    .command('apply <file>')
    .description(
      'create or update the providers and mappings a YAML or JSON file declares; idempotent; objects not in the file are left alone',
    )
    .option('--dry-run', 'print what would change and change nothing (stored tokens are not compared)')
    .action(async (path: string, options: { dryRun?: boolean }) => {
      const dryRun = options.dryRun === true;
      const outcomes = await apply(ctx.api(), path, dryRun);
      const rows = outcomes.map((o) => [
        o.kind,
        o.name,
        dryRun && o.action !== 'unchanged' ? `would be ${o.action}` : o.action,
        o.fields.join(', '),
      ]);
      if (rows.length > 0)
        for (const line of formatTable(['KIND', 'NAME', 'ACTION', 'FIELDS'], rows)) ctx.output.out(line);
      const count = (action: Action) => outcomes.filter((o) => o.action === action).length;
      const [created, updated, unchanged] = [count('created'), count('updated'), count('unchanged')];
      if (created + updated === 0)
        ctx.output.out(`nothing to change: the ${unchanged} object(s) in ${path} are as declared`);
      else
        ctx.output.out(
          `${dryRun ? 'would apply' : 'applied'}: ${created} created, ${updated} updated, ${unchanged} unchanged; objects not in the file were left alone`,
        );
    });
}
