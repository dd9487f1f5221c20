import { Option, type Command } from 'commander';
import type { ProviderView } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';
import type { CliContext } from './context.ts';
import { positiveInt } from './directory-commands.ts';
import { formatTable } from './output.ts';

interface CreateOptions {
  slug: string;
  name?: string;
  url: string;
  plugin?: string;
  tokenEnv?: string;
  token: boolean;
  deprovision?: string;
  pageSize?: number;
  concurrency?: number;
  dryRun?: boolean;
  disabled?: boolean;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8').trim();
}

/** The token: from the named environment variable, else from stdin; never from argv, where `ps` would show it. */
async function readToken(ctx: CliContext, tokenEnv: string | undefined): Promise<string> {
  if (tokenEnv !== undefined) {
    const token = process.env[tokenEnv]?.trim();
    if (!token)
      throw new ScimflowError('ERR_CONFIG', `environment variable ${tokenEnv} (--token-env) is not set or empty`);
    return token;
  }
  if (process.stdin.isTTY) ctx.output.err('Paste the bearer token, then press Enter and Ctrl-D:');
  const token = await readStdin();
  if (!token)
    throw new ScimflowError(
      'ERR_CONFIG',
      'no token given: pass --token-env VAR, pipe the token on stdin, or use --no-token',
    );
  return token;
}

/** `providers list|show|create|delete`. */
export function addProviderCommands(program: Command, ctx: CliContext): void {
  const { output } = ctx;
  const providers = program.command('providers').description('downstream SCIM endpoints');
  providers
    .command('list')
    .description('list providers')
    .option('--json', 'print as JSON')
    .action(async (options: { json?: boolean }) => {
      const { items } = await ctx.api().get<{ items: ProviderView[] }>('/providers');
      if (options.json) return output.out(JSON.stringify(items, null, 2));
      const rows = items.map((p) => [
        p.slug,
        p.name,
        p.plugin,
        p.enabled ? 'yes' : 'no',
        p.dryRun ? 'yes' : 'no',
        String(p.configVersion),
        p.baseUrl,
      ]);
      for (const line of formatTable(['SLUG', 'NAME', 'PLUGIN', 'ENABLED', 'DRY RUN', 'VERSION', 'URL'], rows))
        output.out(line);
    });
  providers
    .command('show <provider>')
    .description('show one provider (by id or slug) as JSON')
    .action(async (provider: string) => {
      output.out(
        JSON.stringify(await ctx.api().get<ProviderView>(`/providers/${encodeURIComponent(provider)}`), null, 2),
      );
    });
  providers
    .command('create')
    .description(
      'create a provider; the bearer token is read from --token-env VAR or stdin, never from the command line',
    )
    .requiredOption('--slug <slug>', 'short lower-case name used in URLs and workflow ids')
    .option('--name <name>', 'display name (default: the slug)')
    .requiredOption('--url <url>', 'SCIM base URL, e.g. https://example.com/scim/v2')
    .option('--plugin <id>', 'vendor plugin (default: scim2)')
    .option('--token-env <VAR>', 'read the bearer token from this environment variable')
    .option('--no-token', 'the endpoint needs no authentication')
    .addOption(
      new Option('--deprovision <mode>', 'what happens to users that leave scope').choices([
        'delete',
        'deactivate',
        'leave',
      ]),
    )
    .option('--page-size <n>', 'objects per batch', positiveInt)
    .option('--concurrency <n>', 'batches in flight', positiveInt)
    .option('--dry-run', 'compute changes without sending them')
    .option('--disabled', 'create the provider disabled')
    .action(async (options: CreateOptions) => {
      const auth = options.token ? { mode: 'bearer', token: await readToken(ctx, options.tokenEnv) } : { mode: 'none' };
      const body = {
        slug: options.slug,
        name: options.name ?? options.slug,
        baseUrl: options.url,
        auth,
        ...(options.plugin === undefined ? {} : { plugin: options.plugin }),
        ...(options.deprovision === undefined ? {} : { deprovision: options.deprovision }),
        ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
        ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
        ...(options.dryRun ? { dryRun: true } : {}),
        ...(options.disabled ? { enabled: false } : {}),
      };
      const created = await ctx.api().post<ProviderView>('/providers', body);
      output.out(`created provider ${created.slug} (${created.id})`);
    });
  providers
    .command('delete <provider>')
    .description('delete a provider (by id or slug) with its links and runs; remote objects are left as they are')
    .action(async (provider: string) => {
      await ctx.api().delete(`/providers/${encodeURIComponent(provider)}`);
      output.out(`deleted provider ${provider}`);
    });
}
