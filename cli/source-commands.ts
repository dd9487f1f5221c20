import { Option, type Command } from 'commander';
import type { SourceView } from '../db/index.ts';
import type { CliContext } from './context.ts';
import { formatTable } from './output.ts';

/** What `sources create` and `sources rotate-token` receive: the token exists only in this answer. */
interface SourceToken {
  source: SourceView;
  token: string;
  scimPath: string;
}

function printToken(ctx: CliContext, created: SourceToken): void {
  const { output } = ctx;
  output.out(`SCIM base URL: ${ctx.api().baseUrl}${created.scimPath}`);
  output.out(`Bearer token:  ${created.token}`);
  output.out('The token is shown only now; scimflow keeps only its hash. Use `sources rotate-token` for a new one.');
}

/** `sources list|create|rotate-token|delete`: inbound SCIM sources other identity providers push into. */
export function addSourceCommands(program: Command, ctx: CliContext): void {
  const { output } = ctx;
  const sources = program
    .command('sources')
    .description('inbound SCIM sources (Entra, Okta, ... push into the directory)');
  sources
    .command('list')
    .description('list sources')
    .option('--json', 'print as JSON')
    .action(async (options: { json?: boolean }) => {
      const { items } = await ctx.api().get<{ items: SourceView[] }>('/sources');
      if (options.json) return output.out(JSON.stringify(items, null, 2));
      const rows = items.map((s) => [s.slug, s.name, s.deletePolicy, s.claim ? 'yes' : 'no', `${s.tokenPrefix}…`]);
      for (const line of formatTable(['SLUG', 'NAME', 'ON DELETE', 'CLAIM', 'TOKEN'], rows)) output.out(line);
    });
  sources
    .command('create')
    .description('create a source and its service account; prints its SCIM base URL and token (shown once)')
    .requiredOption('--slug <slug>', 'short lower-case name used in the SCIM URL')
    .option('--name <name>', 'display name (default: the slug)')
    .addOption(
      new Option('--on-delete <policy>', 'what a SCIM DELETE of a user does (default: delete)').choices([
        'delete',
        'deactivate',
      ]),
    )
    .option('--claim', 'let the source manage objects no source owns (made through the admin API)')
    .action(async (options: { slug: string; name?: string; onDelete?: string; claim?: boolean }) => {
      const created = await ctx.api().post<SourceToken>('/sources', {
        slug: options.slug,
        ...(options.name === undefined ? {} : { name: options.name }),
        ...(options.onDelete === undefined ? {} : { deletePolicy: options.onDelete }),
        ...(options.claim ? { claim: true } : {}),
      });
      output.out(`created source ${created.source.slug} (service account ${created.source.serviceAccountId})`);
      printToken(ctx, created);
    });
  sources
    .command('rotate-token <slug>')
    .description("replace a source's token; the old one stops working at once")
    .action(async (slug: string) => {
      printToken(ctx, await ctx.api().post<SourceToken>(`/sources/${encodeURIComponent(slug)}/rotate-token`));
    });
  sources
    .command('delete <slug>')
    .description('delete a source and its service account; the users and groups it created stay in the directory')
    .action(async (slug: string) => {
      await ctx.api().delete(`/sources/${encodeURIComponent(slug)}`);
      output.out(`deleted source ${slug}`);
    });
}
