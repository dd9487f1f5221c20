import { Option, type Command } from 'commander';
import { userInfo } from 'node:os';
import {
  createApiToken,
  inTransaction,
  listApiTokens,
  recordAudit,
  revokeApiToken,
  ROLES,
  tokenAuditEntry,
  TokenInputSchema,
  type Role,
} from '../db/index.ts';
import { parseInput } from '../api/validation.ts';
import type { CliContext } from './context.ts';
import { saveToken } from './credentials.ts';
import { positiveInt } from './directory-commands.ts';
import { cell, formatTable } from './output.ts';

/** Who the audit log names for tokens made or revoked directly against the database. */
export function localActor(): string {
  return `local:${userInfo().username}`;
}

/** `tokens create|list|revoke`: straight against DATABASE_URL, so the first admin token needs no API token. */
export function addTokenCommands(program: Command, ctx: CliContext): void {
  const { output } = ctx;
  const tokens = program
    .command('tokens')
    .description('admin API tokens (works directly against DATABASE_URL, so it needs no API token)');
  tokens
    .command('create')
    .description('create a token and print it once; --save keeps it for this CLI')
    .requiredOption('--name <name>', 'unique name; the audit log shows it')
    .addOption(
      new Option('--role <role>', 'viewer (read), operator (+ syncs, previews), admin (everything)')
        .choices(ROLES)
        .makeOptionMandatory(),
    )
    .option('--expires <days>', 'days until it stops working (default: never)', positiveInt)
    .option('--save', `save it for the API at --api-url in the CLI's credentials file (0600)`)
    .action(async (options: { name: string; role: Role; expires?: number; save?: boolean }) => {
      const input = parseInput(
        TokenInputSchema,
        {
          name: options.name,
          role: options.role,
          ...(options.expires === undefined ? {} : { expiresInDays: options.expires }),
        },
        'token options',
      );
      const { token, view } = await ctx.withDatabase((db) =>
        inTransaction(db, async (client) => {
          const created = await createApiToken(client, input, localActor());
          await recordAudit(client, {
            actor: localActor(),
            remoteAddress: null,
            ...tokenAuditEntry('token.create', created.view),
          });
          return created;
        }),
      );
      output.err(
        `created ${view.role} token ${view.name} (${view.prefix}...)${view.expiresAt ? `, expires ${view.expiresAt}` : ''}`,
      );
      if (options.save) {
        const path = saveToken(ctx.apiUrl(), { token, name: view.name });
        output.err(`saved for ${ctx.apiUrl()} in ${path}; the CLI sends it from now on`);
      } else {
        output.err('this is the only time it is shown; keep it in a secret store (send it as SCIMFLOW_API_TOKEN):');
      }
      output.out(token);
    });
  tokens
    .command('list')
    .description('list tokens (never the tokens themselves)')
    .action(async () => {
      const items = await ctx.withDatabase((db) => listApiTokens(db));
      const status = (t: (typeof items)[number]) =>
        t.revokedAt ? 'revoked' : t.expiresAt && Date.parse(t.expiresAt) <= Date.now() ? 'expired' : 'live';
      const rows = items.map((t) => [
        t.name,
        t.role,
        `${t.prefix}...`,
        status(t),
        t.createdAt,
        cell(t.expiresAt),
        cell(t.lastUsedAt),
      ]);
      for (const line of formatTable(['NAME', 'ROLE', 'PREFIX', 'STATUS', 'CREATED', 'EXPIRES', 'LAST USED'], rows))
        output.out(line);
    });
  tokens
    .command('revoke <name>')
    .description('revoke the live token with this name; it is refused from its next request on')
    .action(async (name: string) => {
      await ctx.withDatabase((db) =>
        inTransaction(db, async (client) => {
          const view = await revokeApiToken(client, name);
          await recordAudit(client, {
            actor: localActor(),
            remoteAddress: null,
            ...tokenAuditEntry('token.revoke', view),
          });
        }),
      );
      output.out(`revoked token ${name}`);
    });
}
