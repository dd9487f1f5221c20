import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import * as z from 'zod';
import type { MappingView } from '../db/index.ts';
import { ScimflowError, ValidationError } from '../errors/index.ts';
import type { CliContext } from './context.ts';
import { groupIdsByName, userIdByName } from './directory-lookup.ts';
import { upsertMappings } from './mapping-upsert.ts';
import { formatTable } from './output.ts';

/** A mappings config file: mappings declared by name (inline or from a file) and each provider's full set. */
export const MappingConfigSchema = z.strictObject({
  mappings: z.array(
    z.strictObject({
      name: z.string().min(1).max(128),
      objectType: z.enum(['user', 'group']),
      expression: z.string().optional(),
      file: z.string().optional(),
    }),
  ),
  /** Provider id or slug → the names of every mapping it uses. */
  providers: z.record(z.string(), z.array(z.string())).default({}),
});

function enc(value: string): string {
  return encodeURIComponent(value);
}

/** `mappings list|show|create|edit|delete|apply` and `preview`. */
export function addMappingCommands(program: Command, ctx: CliContext): void {
  const { output } = ctx;
  const mappings = program.command('mappings').description('JavaScript mappings run in the sandbox');
  mappings
    .command('list')
    .description('list mappings by name')
    .option('--json', 'print as JSON')
    .action(async (options: { json?: boolean }) => {
      const { items } = await ctx.api().get<{ items: MappingView[] }>('/mappings');
      if (options.json) return output.out(JSON.stringify(items, null, 2));
      const rows = items.map((m) => [m.name, m.objectType, String(m.version), m.builtin ? 'yes' : '', m.id]);
      for (const line of formatTable(['NAME', 'TYPE', 'VERSION', 'BUILTIN', 'ID'], rows)) output.out(line);
    });
  mappings
    .command('show <id>')
    .description('show a mapping (id or name) with its expression')
    .action(async (id: string) => {
      output.out(JSON.stringify(await ctx.api().get<MappingView>(`/mappings/${enc(id)}`), null, 2));
    });
  mappings
    .command('create')
    .description('create a mapping from a file holding its function body')
    .requiredOption('--name <name>', 'unique name (mappings apply in name order)')
    .requiredOption('--type <type>', 'user or group')
    .requiredOption('--file <path>', 'the JavaScript function body')
    .action(async (options: { name: string; type: string; file: string }) => {
      const expression = await readFile(options.file, 'utf8');
      const created = await ctx
        .api()
        .post<MappingView>('/mappings', { name: options.name, objectType: options.type, expression });
      output.out(`created mapping ${created.name} (${created.id})`);
    });
  mappings
    .command('edit <id>')
    .description("replace a mapping's expression from a file")
    .requiredOption('--file <path>', 'the JavaScript function body')
    .action(async (id: string, options: { file: string }) => {
      const expression = await readFile(options.file, 'utf8');
      const updated = await ctx.api().patch<MappingView>(`/mappings/${enc(id)}`, { expression });
      output.out(`mapping ${updated.name} is at version ${updated.version}`);
    });
  mappings
    .command('delete <id>')
    .description('delete a mapping (a built-in one cannot be deleted)')
    .action(async (id: string) => {
      await ctx.api().delete(`/mappings/${enc(id)}`);
      output.out(`deleted mapping ${id}`);
    });
  mappings
    .command('apply <config>')
    .description(
      "create or update the mappings a JSON config declares and set each listed provider's mappings; idempotent",
    )
    .action(async (configPath: string) => {
      const parsed = MappingConfigSchema.safeParse(JSON.parse(await readFile(configPath, 'utf8')) as unknown);
      if (!parsed.success) {
        throw new ValidationError(
          'invalid mappings config',
          parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
        );
      }
      const api = ctx.api();
      const { items: existing } = await api.get<{ items: MappingView[] }>('/mappings');
      const declared = [];
      for (const mapping of parsed.data.mappings) {
        const expression =
          mapping.file !== undefined
            ? await readFile(resolve(dirname(configPath), mapping.file), 'utf8')
            : mapping.expression;
        if (expression === undefined)
          throw new ValidationError('invalid mappings config', [
            { path: `mappings.${mapping.name}`, message: 'needs expression or file' },
          ]);
        declared.push({ name: mapping.name, objectType: mapping.objectType, expression });
      }
      const outcomes = await upsertMappings(api, declared, existing);
      const byName = new Map(existing.map((m) => [m.name, m]));
      for (const outcome of outcomes) byName.set(outcome.name, outcome.mapping);
      const changed = outcomes.filter((outcome) => outcome.action !== 'unchanged').length;
      for (const [provider, names] of Object.entries(parsed.data.providers)) {
        const ids = names.map((name) => {
          const mapping = byName.get(name);
          if (!mapping)
            throw new ValidationError('invalid mappings config', [
              { path: `providers.${provider}`, message: `no mapping named ${name}` },
            ]);
          return mapping.id;
        });
        await api.put(`/providers/${enc(provider)}/mappings`, { mappingIds: ids });
      }
      output.out(
        `${changed} mapping(s) created or changed; ${Object.keys(parsed.data.providers).length} provider set(s) applied`,
      );
    });

  program
    .command('preview <provider>')
    .description("run a provider's mappings on a user or group and print the payload; sends nothing")
    .option('--user <id|username>', 'a directory user')
    .option('--group <id|name>', 'a directory group')
    .action(async (provider: string, options: { user?: string; group?: string }) => {
      const api = ctx.api();
      const uuid = (value: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
      let body: Record<string, string>;
      if (options.group !== undefined) {
        const [groupId] = uuid(options.group) ? [options.group] : await groupIdsByName(api, [options.group], '--group');
        body = { groupId: groupId! };
      } else if (options.user !== undefined) {
        body = { userId: uuid(options.user) ? options.user : await userIdByName(api, options.user, '--user') };
      } else throw new ValidationError('nothing to preview', [{ path: '--user', message: 'give --user or --group' }]);
      const preview = await api.post<{ error: { mapping?: unknown; message?: unknown } | null }>(
        `/providers/${enc(provider)}/preview`,
        body,
      );
      output.out(JSON.stringify(preview, null, 2));
      // What the mappings made is printed either way; a mapping that failed fails the command, as a sync would.
      if (preview.error !== null) {
        const { mapping, message } = preview.error;
        throw new ScimflowError('ERR_MAPPING', typeof message === 'string' ? message : 'the mappings failed', {
          details: { mapping },
        });
      }
    });
}
