import type { Command } from 'commander';
import type { AuditView } from '../db/index.ts';
import type { CliContext } from './context.ts';
import { positiveInt } from './directory-commands.ts';
import { cell, formatTable } from './output.ts';

/** `audit`: the recorded changes, newest first (needs an admin token). */
export function addAuditCommands(program: Command, ctx: CliContext): void {
  program
    .command('audit')
    .description('show who changed what, when and from where, newest first (admin)')
    .option('--limit <n>', 'most entries', positiveInt, 50)
    .option('--actor <name>', 'only changes by this token')
    .option('--type <type>', 'only changes to this kind of object (provider, mapping, token)')
    .option('--json', 'print as JSON')
    .action(async (options: { limit: number; actor?: string; type?: string; json?: boolean }) => {
      const page = await ctx.api().get<{ items: AuditView[] }>('/audit', {
        limit: options.limit,
        actor: options.actor,
        targetType: options.type,
      });
      if (options.json) return ctx.output.out(JSON.stringify(page.items, null, 2));
      const rows = page.items.map((e) => [
        e.at,
        e.actor,
        cell(e.remoteAddress),
        e.action,
        cell(e.targetName ?? e.targetId),
        JSON.stringify(e.details),
      ]);
      for (const line of formatTable(['AT', 'WHO', 'FROM', 'ACTION', 'TARGET', 'DETAILS'], rows)) ctx.output.out(line);
    });
}
