import { InvalidArgumentError, Option, type Command } from 'commander';
import type { ProviderCheck } from '../auth/check.ts';
import type { ProviderScope, ProviderView, RateLimitConfig } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';
import type { ApiClient } from './api-client.ts';
import type { CliContext } from './context.ts';
import { positiveInt } from './directory-commands.ts';
import { groupIdsByName } from './directory-lookup.ts';
import { formatTable } from './output.ts';
import { addAuthOptions, authFromOptions, type AuthOptions } from './provider-auth-options.ts';

/** The options `addSyncOptions` declares. */
/** The auth mode, and for interactive OAuth whether it is authorised (what an administrator must act on). */
function authSummary(provider: ProviderView): string {
  const state = provider.auth.oauth?.state;
  if (state === undefined) return provider.auth.mode;
  return `${provider.auth.mode} (${state === 'authorised' ? 'authorised' : state === 'not_authorised' ? 'not authorised: run providers authorize' : 'needs re-authorisation: run providers authorize'})`;
}

/** `POST /providers/{id}/oauth/authorize`'s answer. */
interface AuthorisationStart {
  authorizationUrl: string;
  redirectUri: string;
  expiresAt: string;
}

interface SyncOptions extends ScopeOptions {
  pluginOptions?: Record<string, unknown>;
  authEnv?: string;
  deprovision?: string;
  pageSize?: number;
  concurrency?: number;
  fullSyncInterval?: number;
  deletionLimit?: number | 'none';
  rateLimit?: RateLimitConfig | 'none';
  adoptBy?: 'externalIdOrName' | 'externalId';
}

interface CreateOptions extends SyncOptions, AuthOptions {
  slug: string;
  name?: string;
  url: string;
  plugin?: string;
  tokenEnv?: string;
  token: boolean;
  dryRun?: boolean;
  disabled?: boolean;
  allowInsecureHttp?: boolean;
}

interface UpdateOptions extends SyncOptions, AuthOptions {
  name?: string;
  url?: string;
  plugin?: string;
  tokenEnv?: string;
  /** true: read a new token from stdin; false: the endpoint needs no authentication. */
  token?: boolean;
  dryRun?: boolean;
  enabled?: boolean;
  allowInsecureHttp?: boolean;
}

/** The scope options, on both create and update. */
interface ScopeOptions {
  accessGroup?: string[];
  clearAccessGroups?: boolean;
  group?: string[];
  allGroups?: boolean;
  serviceAccounts?: boolean;
  removeGroupsLeavingFilter?: boolean;
  keepGroupsLeavingFilter?: boolean;
}

/** Collects a repeated option into a list. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A JSON object given on the command line. */
function jsonObject(value: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('must be a JSON object, e.g. \'{"groupUpdate":"put"}\'');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new InvalidArgumentError('must be a JSON object');
  return parsed as Record<string, unknown>;
}

/**
 * The scope the scope options ask for, applied over `current` (a provider's scope on update, the defaults on
 * create); undefined when no scope option was given. Group names become ids through the API.
 */
async function scopeFrom(
  api: ApiClient,
  options: ScopeOptions,
  current: () => Promise<ProviderScope>,
): Promise<ProviderScope | undefined> {
  const contradictions: Array<[boolean, string]> = [
    [
      options.accessGroup !== undefined && options.clearAccessGroups === true,
      '--access-group and --clear-access-groups',
    ],
    [options.group !== undefined && options.allGroups === true, '--group and --all-groups'],
    [
      options.removeGroupsLeavingFilter === true && options.keepGroupsLeavingFilter === true,
      '--remove-groups-leaving-filter and --keep-groups-leaving-filter',
    ],
  ];
  for (const [contradicts, flags] of contradictions)
    if (contradicts) throw new ScimflowError('ERR_VALIDATION', `${flags} contradict each other`);
  const given =
    options.accessGroup !== undefined ||
    options.clearAccessGroups === true ||
    options.group !== undefined ||
    options.allGroups === true ||
    options.serviceAccounts !== undefined ||
    options.removeGroupsLeavingFilter === true ||
    options.keepGroupsLeavingFilter === true;
  if (!given) return undefined;
  const scope: ProviderScope = { ...(await current()) };
  if (options.accessGroup !== undefined)
    scope.accessGroups = await groupIdsByName(api, options.accessGroup, '--access-group');
  if (options.clearAccessGroups) scope.accessGroups = [];
  if (options.group !== undefined) scope.groups = await groupIdsByName(api, options.group, '--group');
  if (options.allGroups) delete scope.groups;
  if (options.serviceAccounts !== undefined) scope.includeServiceAccounts = options.serviceAccounts;
  if (options.removeGroupsLeavingFilter) scope.removeGroupsLeavingFilter = true;
  if (options.keepGroupsLeavingFilter) scope.removeGroupsLeavingFilter = false;
  return scope;
}

/** A deletion limit: a whole number of objects, or `none` for no limit (commander turns a parsed null into ''). */
function deletionLimit(value: string): number | 'none' {
  if (value === 'none') return value;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0) throw new InvalidArgumentError('must be a whole number or "none"');
  return number;
}

/** A rate limit: requests per second, optionally `:concurrency` and `:writes` (`10`, `2.5:4`, `10:writes`), or `none`. */
function rateLimit(value: string): RateLimitConfig | 'none' {
  if (value === 'none') return value;
  const match = /^(\d+(?:\.\d+)?)(?::(\d+))?(:writes)?$/.exec(value);
  const requestsPerSecond = Number(match?.[1]);
  if (!match || !(requestsPerSecond > 0))
    throw new InvalidArgumentError(
      'must be requests per second, optionally ":concurrency" and ":writes" (e.g. 10, 10:4 or 10:4:writes), or "none"',
    );
  return {
    requestsPerSecond,
    ...(match[2] === undefined ? {} : { concurrency: Number(match[2]) }),
    ...(match[3] === undefined ? {} : { paced: 'writes' as const }),
  };
}

/** Adds the options `providers create` and `providers update` share. */
function addSyncOptions(command: Command): Command {
  return command
    .option('--plugin-options <json>', "the plugin's options as a JSON object (replaces them on update)", jsonObject)
    .option(
      '--auth-env <VAR>',
      'the whole auth object as JSON in this environment variable, for basic, OAuth or a custom token header, e.g. {"mode":"basic","username":"u","password":"p"}',
    )
    .option(
      '--access-group <name>',
      'only members of this directory group are provisioned; repeat for several (replaces the list on update)',
      collect,
    )
    .option(
      '--group <name>',
      'provision only this directory group; repeat for several (replaces the filter on update)',
      collect,
    )
    .option('--service-accounts', 'provision service accounts too')
    .option('--no-service-accounts', 'leave service accounts out (the default)')
    .option(
      '--remove-groups-leaving-filter',
      'delete a group on the target when it leaves the --group filter (default: leave it as last synced)',
    )
    .addOption(
      new Option('--deprovision <mode>', 'what happens to users that leave scope').choices([
        'delete',
        'deactivate',
        'leave',
      ]),
    )
    .option('--page-size <n>', 'objects per batch', positiveInt)
    .option(
      '--concurrency <n>',
      'requests in flight per sync activity: a full sync runs n range activities at once, so up to n² requests; an incremental push n (1 to 64; default 4)',
      positiveInt,
    )
    .option(
      '--full-sync-interval <minutes>',
      'minutes between scheduled full syncs (1 to 10080; default 60)',
      positiveInt,
    )
    .option(
      '--deletion-limit <n>',
      'most objects one sync may delete or deactivate on the target, or "none" (default 500)',
      deletionLimit,
    )
    .option(
      '--rate-limit <rps[:concurrency][:writes]>',
      'requests per second (and in flight) all workers together send the target, e.g. 10 or 10:4, or "none"; ":writes" paces only writes (a target that limits only those)',
      rateLimit,
    )
    .addOption(
      new Option(
        '--adopt-by <match>',
        'what an unlinked object adopts on the target: a remote object matching its externalId or name (default), or its externalId only',
      ).choices(['externalIdOrName', 'externalId']),
    );
}

/** Request body fields for the options both create and update take; absent options are left out. */
function commonFields(options: SyncOptions) {
  return {
    ...(options.pluginOptions === undefined ? {} : { pluginOptions: options.pluginOptions }),
    ...(options.deprovision === undefined ? {} : { deprovision: options.deprovision }),
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.fullSyncInterval === undefined ? {} : { fullSyncIntervalMinutes: options.fullSyncInterval }),
    ...(options.deletionLimit === undefined
      ? {}
      : { deletionLimit: options.deletionLimit === 'none' ? null : options.deletionLimit }),
    ...(options.rateLimit === undefined ? {} : { rateLimit: options.rateLimit === 'none' ? null : options.rateLimit }),
    ...(options.adoptBy === undefined ? {} : { adoptBy: options.adoptBy }),
  };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8').trim();
}

/** A whole auth object (basic, OAuth, bearer in a custom header) as JSON in an environment variable; the API validates it. */
function authFromEnv(variable: string): Record<string, unknown> {
  const text = process.env[variable]?.trim();
  if (!text) throw new ScimflowError('ERR_CONFIG', `environment variable ${variable} (--auth-env) is not set or empty`);
  let auth: unknown;
  try {
    auth = JSON.parse(text);
  } catch {
    throw new ScimflowError('ERR_VALIDATION', `environment variable ${variable} (--auth-env) is not a JSON object`);
  }
  if (typeof auth !== 'object' || auth === null || Array.isArray(auth))
    throw new ScimflowError('ERR_VALIDATION', `environment variable ${variable} (--auth-env) is not a JSON object`);
  return auth as Record<string, unknown>;
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

/** `providers list|show|create|update|delete`. */
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
        authSummary(p),
        String(p.configVersion),
        p.baseUrl,
      ]);
      for (const line of formatTable(['SLUG', 'NAME', 'PLUGIN', 'ENABLED', 'DRY RUN', 'AUTH', 'VERSION', 'URL'], rows))
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
  addSyncOptions(
    addAuthOptions(
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
        .option('--no-token', 'the endpoint needs no authentication'),
    ),
  )
    .option('--dry-run', 'compute changes without sending them')
    .option('--disabled', 'create the provider disabled')
    .option(
      '--allow-insecure-http',
      'accept an http:// URL on a host that is not loopback (credentials and data then cross the network in clear)',
    )
    .action(async (options: CreateOptions) => {
      if (options.authEnv !== undefined && (options.tokenEnv !== undefined || !options.token))
        throw new ScimflowError('ERR_VALIDATION', '--auth-env replaces --token-env and --no-token; give one of them');
      const auth =
        options.authEnv !== undefined
          ? authFromEnv(options.authEnv)
          : ((await authFromOptions(options, () => readToken(ctx, options.tokenEnv))) ??
            (options.token ? { mode: 'bearer', token: await readToken(ctx, options.tokenEnv) } : { mode: 'none' }));
      const scope = await scopeFrom(ctx.api(), options, () =>
        Promise.resolve({ includeServiceAccounts: false, accessGroups: [] }),
      );
      const body = {
        slug: options.slug,
        name: options.name ?? options.slug,
        baseUrl: options.url,
        auth,
        ...(options.plugin === undefined ? {} : { plugin: options.plugin }),
        ...(scope === undefined ? {} : { scope }),
        ...commonFields(options),
        ...(options.dryRun ? { dryRun: true } : {}),
        ...(options.disabled ? { enabled: false } : {}),
        ...(options.allowInsecureHttp ? { allowInsecureHttp: true } : {}),
      };
      const created = await ctx.api().post<ProviderView>('/providers', body);
      output.out(`created provider ${created.slug} (${created.id})`);
    });
  addSyncOptions(
    addAuthOptions(
      providers
        .command('update <provider>')
        .description('change a provider (by id or slug); only the options given change, and its schedule follows')
        .option('--name <name>', 'display name')
        .option('--url <url>', 'SCIM base URL')
        .option('--plugin <id>', 'vendor plugin')
        .option('--token-env <VAR>', 'replace the bearer token with the one in this environment variable')
        .option('--token', 'replace the bearer token with one read from stdin')
        .option('--no-token', 'the endpoint needs no authentication (the stored token is deleted)')
        .option('--clear-access-groups', 'provision members of every group again (no access groups)')
        .option('--all-groups', 'provision every group again (removes the --group filter)')
        .option('--keep-groups-leaving-filter', 'leave a group that leaves the filter on the target as last synced'),
    ),
  )
    .option('--dry-run', 'compute changes without sending them')
    .option('--no-dry-run', 'send changes')
    .option('--allow-insecure-http', 'accept an http:// URL on a host that is not loopback')
    .option('--no-allow-insecure-http', 'require https again (loopback hosts excepted)')
    .option('--enable', 'enable the provider (resumes its schedule)')
    .option('--disable', 'disable the provider (pauses its schedule)')
    .action(async (provider: string, options: UpdateOptions & { enable?: boolean; disable?: boolean }) => {
      if (options.enable && options.disable)
        throw new ScimflowError('ERR_VALIDATION', '--enable and --disable contradict each other');
      if (options.token === false && options.tokenEnv !== undefined)
        throw new ScimflowError('ERR_VALIDATION', '--token-env and --no-token contradict each other');
      const path = `/providers/${encodeURIComponent(provider)}`;
      const scope = await scopeFrom(ctx.api(), options, async () => (await ctx.api().get<ProviderView>(path)).scope);
      if (options.authEnv !== undefined && (options.tokenEnv !== undefined || options.token !== undefined))
        throw new ScimflowError(
          'ERR_VALIDATION',
          '--auth-env replaces --token-env, --token and --no-token; give one of them',
        );
      const auth =
        options.authEnv !== undefined
          ? authFromEnv(options.authEnv)
          : ((await authFromOptions(options, () => readToken(ctx, options.tokenEnv))) ??
            (options.token === false
              ? { mode: 'none' }
              : options.tokenEnv !== undefined || options.token === true
                ? { mode: 'bearer', token: await readToken(ctx, options.tokenEnv) }
                : undefined));
      const body = {
        ...(options.name === undefined ? {} : { name: options.name }),
        ...(options.url === undefined ? {} : { baseUrl: options.url }),
        ...(options.plugin === undefined ? {} : { plugin: options.plugin }),
        ...(auth === undefined ? {} : { auth }),
        ...(scope === undefined ? {} : { scope }),
        ...commonFields(options),
        ...(options.dryRun === undefined ? {} : { dryRun: options.dryRun }),
        ...(options.enable ? { enabled: true } : options.disable ? { enabled: false } : {}),
        ...(options.allowInsecureHttp === undefined ? {} : { allowInsecureHttp: options.allowInsecureHttp }),
      };
      if (Object.keys(body).length === 0)
        throw new ScimflowError('ERR_VALIDATION', 'nothing to change: give at least one option');
      const updated = await ctx.api().patch<ProviderView & { credentialCleared?: boolean }>(path, body);
      output.out(`updated provider ${updated.slug} (configuration version ${updated.configVersion})`);
      if (updated.credentialCleared)
        output.err(
          `warning: the URL moved to another origin, so the stored token was cleared; set one with --token-env VAR`,
        );
    });
  providers
    .command('test <provider>')
    .description("fetch a token and read the target's ServiceProviderConfig; exits 1 naming the step that failed")
    .action(async (provider: string) => {
      const check = await ctx.api().post<ProviderCheck>(`/providers/${encodeURIComponent(provider)}/test`, {});
      for (const step of check.steps) {
        const why = step.status === 'failed' ? `: ${step.code ?? ''} ${step.message ?? ''}` : '';
        output.out(`${step.step.padEnd(22)} ${step.status}${why}`);
      }
      if (check.tokenExpiresAt !== null) output.out(`token expires at ${check.tokenExpiresAt}`);
      if (!check.ok) throw new ScimflowError('ERR_CONFIG', `provider ${provider} failed its connection check`);
    });
  providers
    .command('authorize <provider>')
    .description(
      'start (re-)authorising an interactive OAuth provider: prints a single-use URL to open in a browser within 10 minutes',
    )
    .action(async (provider: string) => {
      const started = await ctx
        .api()
        .post<AuthorisationStart>(`/providers/${encodeURIComponent(provider)}/oauth/authorize`, {});
      output.out(started.authorizationUrl);
      output.err(
        `Open the URL above in a browser and sign in; the authorization server sends you back to ${started.redirectUri} ` +
          `(register it for the client). It works once, until ${started.expiresAt}. Then: scimflow providers show ${provider}`,
      );
    });
  providers
    .command('delete <provider>')
    .description('delete a provider (by id or slug) with its links and runs; remote objects are left as they are')
    .action(async (provider: string) => {
      await ctx.api().delete(`/providers/${encodeURIComponent(provider)}`);
      output.out(`deleted provider ${provider}`);
    });
}
