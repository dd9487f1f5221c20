import { Command, CommanderError } from 'commander';
import packageJson from '../package.json' with { type: 'json' };
import { loadEnv } from '../config/index.ts';
import { createDb, migrate } from '../db/index.ts';
import { isScimflowError } from '../errors/index.ts';
import { addApplyCommand } from './apply-command.ts';
import { ApiClientError, createApiClient, DEFAULT_API_URL, type ApiClient, type ApiIssue } from './api-client.ts';
import type { CliContext } from './context.ts';
import { addAuditCommands } from './audit-commands.ts';
import { savedToken } from './credentials.ts';
import { addDirectoryCommands } from './directory-commands.ts';
import { processOutput, type Output } from './output.ts';
import { addMappingCommands } from './mapping-commands.ts';
import { addProbeCommand } from './probe.ts';
import { addProviderCommands } from './provider-commands.ts';
import { addSourceCommands } from './source-commands.ts';
import { addSyncCommands } from './sync-commands.ts';
import { addSecretCommands } from './secret-commands.ts';
import { addTokenCommands } from './token-commands.ts';

/** The process roles, implemented in cli/start.ts. */
interface StartModule {
  runStart(options: { demo: boolean }): Promise<void>;
  runWorker(): Promise<void>;
  runApi(): Promise<void>;
}

// A variable, not a literal: the roles module pulls in the worker and Temporal, which API-client commands never need.
const START_MODULE = './start.ts';
const loadStart = async (): Promise<StartModule> => (await import(START_MODULE)) as StartModule;
const REPLAY_MODULE = './replay-check.ts';
const loadReplay = async (): Promise<{ runReplayCheck(output: Output): Promise<number> }> =>
  (await import(REPLAY_MODULE)) as { runReplayCheck(output: Output): Promise<number> };

/** Builds the `scimflow` command; `setExitCode` receives the code a command wants to exit with. */
export function buildProgram(output: Output, setExitCode: (code: number) => void): Command {
  const program = new Command('scimflow')
    .description('durable SCIM 2.0 provisioning engine')
    .version(packageJson.version)
    .option(
      '--api-url <url>',
      'admin API base URL (env SCIMFLOW_API_URL)',
      process.env['SCIMFLOW_API_URL'] ?? DEFAULT_API_URL,
    )
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.out(text.trimEnd()),
      writeErr: (text) => output.err(text.trimEnd()),
    });

  let client: ApiClient | undefined;
  const apiUrl = () => program.opts<{ apiUrl: string }>().apiUrl;
  // SCIMFLOW_API_TOKEN wins; else the token saved for this API (by `scimflow start` or `tokens create --save`).
  const apiToken = () => process.env['SCIMFLOW_API_TOKEN'] || savedToken(apiUrl())?.token;
  const ctx: CliContext = {
    api: () => (client ??= createApiClient(apiUrl(), apiToken())),
    apiUrl,
    withDatabase: async (fn) => {
      const db = createDb(loadEnv().DATABASE_URL, { max: 1, applicationName: 'scimflow-cli' });
      try {
        await migrate(db);
        return await fn(db);
      } finally {
        await db.end();
      }
    },
    output,
    fail: setExitCode,
  };

  program
    .command('start')
    .description(
      'run everything in one process tree: migrations, Temporal (embedded unless TEMPORAL_ADDRESS), worker, API',
    )
    .option('--demo', 'seed a demo directory and provision it into a loopback SCIM server')
    .action(async (options: { demo?: boolean }) => {
      await (await loadStart()).runStart({ demo: options.demo === true });
    });
  program
    .command('worker')
    .description('run a Temporal worker only (production role; needs TEMPORAL_ADDRESS)')
    .action(async () => {
      await (await loadStart()).runWorker();
    });
  program
    .command('api')
    .description('run the HTTP admin API only (production role; needs TEMPORAL_ADDRESS)')
    .action(async () => {
      await (await loadStart()).runApi();
    });
  program
    .command('replay-check')
    .description(
      'before an upgrade: replay the workflows running on TEMPORAL_ADDRESS against this version; exits 1 if any cannot',
    )
    .action(async () => {
      setExitCode(await (await loadReplay()).runReplayCheck(output));
    });
  program
    .command('migrate')
    .description('apply pending database migrations to DATABASE_URL')
    .action(async () => {
      const db = createDb(loadEnv().DATABASE_URL, { max: 1, applicationName: 'scimflow-migrate' });
      try {
        const applied = await migrate(db);
        output.out(applied.length === 0 ? 'database is up to date' : `applied ${applied.join(', ')}`);
      } finally {
        await db.end();
      }
    });
  addDirectoryCommands(program, ctx);
  addProviderCommands(program, ctx);
  addMappingCommands(program, ctx);
  addSourceCommands(program, ctx);
  addSyncCommands(program, ctx);
  addTokenCommands(program, ctx);
  addSecretCommands(program, ctx);
  addAuditCommands(program, ctx);
  addApplyCommand(program, ctx);
  addProbeCommand(program, ctx);
  return program;
}

/** Prints an error the way the CLI reports every failure: one line with the code, then the fields at fault. */
function reportError(error: unknown, output: Output): number {
  if (error instanceof CommanderError) return error.exitCode;
  if (error instanceof ApiClientError || isScimflowError(error)) {
    output.err(`error: ${error.code}: ${error.message}`);
    const issues = error instanceof ApiClientError ? error.issues : ((error.details['issues'] ?? []) as ApiIssue[]);
    for (const issue of issues) output.err(`  ${issue.path || '(body)'}: ${issue.message}`);
    return 1;
  }
  output.err(`error: ${error instanceof Error ? error.message : String(error)}`);
  if (process.env['SCIMFLOW_DEBUG'] && error instanceof Error && error.stack) output.err(error.stack);
  return 1;
}

/** Runs the CLI on `args` (without the node and script paths) and resolves to the exit code. */
export async function runCli(args: readonly string[], output: Output = processOutput): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(output, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...args], { from: 'user' });
    return exitCode;
  } catch (error) {
    return reportError(error, output);
  }
}
