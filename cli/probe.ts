/**
 * `scimflow probe URL --token-env VAR [--plugin ID] [--write]`: checks a live SCIM endpoint from this machine (no
 * API, no database). Read-only by default: discovery, listing, paging, filters by userName and externalId, `or`
 * filters, the case of response attribute names. With `--write` it creates, changes and deletes a throw-away user
 * and group through the plugin, cleaning up whatever it created. It prints what the target advertises against what
 * it really does, and the plugin that fits.
 */
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { ScimflowError } from '../errors/index.ts';
import { createPluginRegistry, resolvePluginOptions, type PluginContext } from '../plugins/index.ts';
import {
  createScimClient,
  eqFilter,
  SCHEMA_GROUP,
  SCHEMA_USER,
  ServiceProviderConfigSchema,
  type ScimClient,
} from '../scim/index.ts';
import type { CliContext } from './context.ts';

/** One line of the probe's report. */
interface Finding {
  check: string;
  result: string;
}

/** The plugin a target's URL says it needs. */
export function pluginForUrl(url: string): string {
  const host = new URL(url).hostname;
  if (host.endsWith('.amazonaws.com')) return 'aws';
  if (host === 'api.slack.com') return 'slack';
  if (host.endsWith('.salesforce.com')) return 'salesforce';
  if (host.endsWith('webexapis.com') || host.endsWith('.webex.com')) return 'webex';
  return 'scim2';
}

/** Adds `scimflow probe`; a probe of a target that cannot list its users prints its findings and exits 1. */
export function addProbeCommand(program: Command, ctx: CliContext): void {
  program
    .command('probe')
    .description('check a live SCIM endpoint: what it advertises against what it does, and which plugin fits')
    .argument('<url>', 'the SCIM base URL')
    .requiredOption('--token-env <var>', 'environment variable holding the bearer token')
    .option('--plugin <id>', 'plugin to probe with (default: the one the URL suggests)')
    .option('--options <json>', "the plugin's options as JSON", '{}')
    .option('--write', 'also create, change and delete a throw-away user and group (cleaned up)', false)
    .action(async (url: string, opts: { tokenEnv: string; plugin?: string; options: string; write: boolean }) => {
      const token = process.env[opts.tokenEnv]?.trim();
      if (!token) throw new ScimflowError('ERR_VALIDATION', `environment variable ${opts.tokenEnv} is empty`);
      const client = createScimClient({ baseUrl: url, token, timeoutMs: 15_000 });
      try {
        const { findings, unusable } = await probe(
          client,
          url,
          opts.plugin ?? pluginForUrl(url),
          opts.options,
          opts.write,
        );
        const width = Math.max(...findings.map((finding) => finding.check.length));
        for (const finding of findings) ctx.output.out(`${finding.check.padEnd(width)}  ${finding.result}`);
        // What was found is printed; a target that cannot even list its users fails the command (exit code 1).
        if (unusable !== undefined) throw unusable;
      } finally {
        await client.close();
      }
    });
}

async function attempt<T>(
  run: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; why: string; error: Error }> {
  try {
    return { ok: true, value: await run() };
  } catch (thrown) {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    return { ok: false, why: error.message, error };
  }
}

type Listed = { Resources?: Array<Record<string, unknown>>; totalResults?: number } & Record<string, unknown>;

async function probe(
  client: ScimClient,
  url: string,
  pluginId: string,
  rawOptions: string,
  write: boolean,
): Promise<{ findings: Finding[]; unusable?: Error }> {
  const registry = createPluginRegistry();
  const options = resolvePluginOptions(registry, pluginId, JSON.parse(rawOptions) as unknown);
  const plugin = registry.get(pluginId)!;
  const ctx: PluginContext<unknown> = { providerId: 'probe', configVersion: 0, client, options };
  const findings: Finding[] = [{ check: 'plugin', result: `${pluginId} (suggested by the URL: ${pluginForUrl(url)})` }];
  const urlProblem = plugin.checkBaseUrl?.(url);
  if (urlProblem !== undefined) findings.push({ check: 'base URL', result: `${pluginId} refuses it: ${urlProblem}` });

  for (const path of ['/ServiceProviderConfig', '/ServiceProviderConfigs']) {
    const spc = await attempt(() => client.request('GET', path, { schema: ServiceProviderConfigSchema }));
    findings.push({
      check: `GET ${path}`,
      result: spc.ok
        ? `patch ${spc.value.body?.patch.supported}, filter ${spc.value.body?.filter.supported}, bulk ${spc.value.body?.bulk.supported}`
        : spc.why,
    });
  }
  const capabilities = await attempt(() => plugin.capabilities(ctx));
  findings.push({
    check: 'capabilities (plugin view)',
    result: capabilities.ok ? JSON.stringify(capabilities.value) : capabilities.why,
  });

  const list = await attempt(() => client.request<Listed>('GET', '/Users', { query: { count: 2 } }));
  if (!list.ok) {
    findings.push({ check: 'list users', result: list.why });
    return { findings, unusable: list.error };
  }
  const raw = list.value.body ?? {};
  const nonRfc = Object.keys(raw).filter((key) => /^(resources|totalresults|startindex|itemsperpage)$/i.test(key));
  findings.push({
    check: 'list users',
    result: `ok; attribute names ${nonRfc.every((key) => ['Resources', 'totalResults', 'startIndex', 'itemsPerPage'].includes(key)) ? 'as in the RFC' : `in another case (${nonRfc.join(', ')}): read case-insensitively`}`,
  });
  const resources = (Object.entries(raw).find(([key]) => key.toLowerCase() === 'resources')?.[1] ?? []) as Array<
    Record<string, unknown>
  >;
  const paged = await attempt(() => client.request<Listed>('GET', '/Users', { query: { count: 1, startIndex: 2 } }));
  findings.push({
    check: 'paging (count=1, startIndex=2)',
    result: paged.ok ? `${(paged.value.body?.Resources ?? []).length} returned` : paged.why,
  });
  const [first] = resources;
  if (first !== undefined) {
    for (const attribute of ['userName', 'externalId'] as const) {
      const value = first[attribute];
      if (typeof value !== 'string') continue;
      const found = await attempt(() =>
        client.request<Listed>('GET', '/Users', { query: { filter: eqFilter(attribute, value), count: 2 } }),
      );
      findings.push({
        check: `filter by ${attribute}`,
        result: found.ok ? `${(found.value.body?.Resources ?? []).length} match(es)` : found.why,
      });
    }
    const or = await attempt(() =>
      client.request<Listed>('GET', '/Users', {
        query: { filter: `${eqFilter('userName', String(first.userName))} or userName eq "scimflow-probe-none"` },
      }),
    );
    findings.push({ check: 'filter with or', result: or.ok ? 'accepted' : or.why });
  } else {
    findings.push({ check: 'filters', result: 'not checked: the target has no user to look for' });
  }

  if (write) findings.push(...(await writeChecks(ctx, plugin)));
  return { findings };
}

/** Creates, changes and deletes a throw-away user and group; deletes whatever it created, whatever failed. */
async function writeChecks(
  ctx: PluginContext<unknown>,
  plugin: NonNullable<ReturnType<ReturnType<typeof createPluginRegistry>['get']>>,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  const tag = `scimflow-probe-${randomBytes(4).toString('hex')}`;
  const userName = `${tag}@example.invalid`;
  const user = {
    schemas: [SCHEMA_USER],
    userName,
    externalId: tag,
    displayName: 'scimflow probe',
    name: { givenName: 'scimflow', familyName: 'probe' },
    emails: [{ value: userName, type: 'work', primary: true }],
    active: true,
  };
  const created = await attempt(() => plugin.createUser(ctx, user));
  findings.push({ check: 'create user', result: created.ok ? `ok (${created.value.id})` : created.why });
  if (!created.ok) return findings;
  const userId = created.value.id;
  let groupId: string | undefined;
  try {
    const updated = await attempt(() =>
      plugin.updateUser(ctx, userId, { ...user, displayName: 'scimflow probe 2' }, user),
    );
    findings.push({ check: 'replace user', result: updated.ok ? 'ok' : updated.why });
    const group = await attempt(() =>
      plugin.createGroup(ctx, {
        schemas: [SCHEMA_GROUP],
        displayName: tag,
        externalId: tag,
        members: [{ value: userId }],
      }),
    );
    findings.push({ check: 'create group with a member', result: group.ok ? 'ok' : group.why });
    if (group.ok) {
      groupId = group.value.id;
      const previous = { schemas: [SCHEMA_GROUP], displayName: tag, externalId: tag, members: [{ value: userId }] };
      const removed = await attempt(() =>
        plugin.updateGroup(ctx, group.value.id, { ...previous, members: [] }, previous),
      );
      findings.push({ check: 'remove the member', result: removed.ok ? 'ok' : removed.why });
    }
    const deactivated = await attempt(() => plugin.deactivateUser(ctx, userId, user));
    findings.push({ check: 'deactivate user', result: deactivated.ok ? 'ok' : deactivated.why });
  } finally {
    const createdGroup = groupId;
    if (createdGroup !== undefined) {
      const gone = await attempt(() => plugin.deleteGroup(ctx, createdGroup));
      findings.push({ check: 'delete group (cleanup)', result: gone.ok ? 'ok' : gone.why });
    }
    const gone = await attempt(() => plugin.deleteUser(ctx, userId));
    findings.push({ check: 'delete user (cleanup)', result: gone.ok ? 'ok' : gone.why });
  }
  return findings;
}
