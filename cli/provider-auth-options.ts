/**
 * The `--auth` options of `providers create|update`: every auth mode from flags, with secrets read from environment
 * variables or files (never from argv, where `ps` shows them).
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ScimflowError } from '../errors/index.ts';

/** The auth options as commander parses them. */
export interface AuthOptions {
  auth?: 'none' | 'bearer' | 'basic' | 'oauth-client-credentials' | 'oauth-interactive';
  headerName?: string;
  username?: string;
  passwordEnv?: string;
  tokenUrl?: string;
  issuer?: string;
  clientId?: string;
  clientSecretEnv?: string;
  clientAuth?: 'basic' | 'post' | 'private-key-jwt' | 'none';
  privateKeyFile?: string;
  privateKeyId?: string;
  scope?: string;
  resource?: string;
  audience?: string;
  tokenParam?: Array<[string, string]>;
  tokenParamEnv?: Array<[string, string]>;
}

/** `name=value`, collected into a list of pairs. */
function pair(value: string, previous: Array<[string, string]> | undefined): Array<[string, string]> {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError('must be name=value');
  return [...(previous ?? []), [value.slice(0, at), value.slice(at + 1)]];
}

/** Adds the auth options to `providers create` or `providers update`. */
export function addAuthOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--auth <mode>', 'how scimflow authenticates to the target (default: bearer)').choices([
        'none',
        'bearer',
        'basic',
        'oauth-client-credentials',
        'oauth-interactive',
      ]),
    )
    .option('--header-name <name>', 'bearer: send the token as-is in this header instead of Authorization: Bearer')
    .option('--username <name>', 'basic: the user name')
    .option('--password-env <VAR>', 'basic: read the password from this environment variable')
    .option('--token-url <url>', 'oauth: the token endpoint (without discovery)')
    .option('--issuer <url>', 'oauth: the issuer, whose discovery document names the endpoints')
    .option('--client-id <id>', 'oauth: the client id')
    .option('--client-secret-env <VAR>', 'oauth: read the client secret from this environment variable')
    .addOption(
      new Option('--client-auth <method>', 'oauth: client authentication (default: basic)').choices([
        'basic',
        'post',
        'private-key-jwt',
        'none',
      ]),
    )
    .option('--private-key-file <file>', 'oauth private-key-jwt: PEM or JWK file of the signing key')
    .option('--private-key-id <kid>', 'oauth private-key-jwt: the key id put in the assertion')
    .option('--scope <scope>', 'oauth: the scope to request')
    .option('--resource <url>', 'oauth: the resource indicator (RFC 8707)')
    .option('--audience <aud>', 'oauth: the audience to request')
    .option('--token-param <name=value>', 'oauth: an extra token request parameter; repeat for several', pair)
    .option('--token-param-env <name=VAR>', 'oauth: an extra token parameter read from an environment variable', pair);
}

function fromEnv(name: string, flag: string): string {
  const value = process.env[name]?.trim();
  if (!value) throw new ScimflowError('ERR_CONFIG', `environment variable ${name} (${flag}) is not set or empty`);
  return value;
}

const CLIENT_AUTH = {
  basic: 'client_secret_basic',
  post: 'client_secret_post',
  'private-key-jwt': 'private_key_jwt',
  none: 'none',
} as const;

/**
 * The request body's `auth` for `--auth` and its options; undefined without `--auth` (the caller keeps its token
 * options). Bearer tokens still come from `readToken` (environment variable or stdin).
 */
export async function authFromOptions(
  options: AuthOptions,
  readToken: () => Promise<string>,
): Promise<Record<string, unknown> | undefined> {
  switch (options.auth) {
    case undefined:
    default:
      return undefined;
    case 'none':
      return { mode: 'none' };
    case 'bearer':
      return {
        mode: 'bearer',
        token: await readToken(),
        ...(options.headerName === undefined ? {} : { headerName: options.headerName }),
      };
    case 'basic':
      if (options.username === undefined || options.passwordEnv === undefined)
        throw new ScimflowError('ERR_VALIDATION', '--auth basic needs --username and --password-env');
      return { mode: 'basic', username: options.username, password: fromEnv(options.passwordEnv, '--password-env') };
    case 'oauth-client-credentials':
    case 'oauth-interactive': {
      const tokenParams: Record<string, string> = Object.fromEntries([
        ...(options.tokenParam ?? []),
        ...(options.tokenParamEnv ?? []).map(([name, variable]): [string, string] => [
          name,
          fromEnv(variable, '--token-param-env'),
        ]),
      ]);
      const clientAuth = CLIENT_AUTH[options.clientAuth ?? 'basic'];
      // Absent values are left out, so the server's validation names what is missing.
      const fields: Record<string, unknown> = {
        mode: options.auth === 'oauth-interactive' ? 'oauth_interactive' : 'oauth_client_credentials',
        issuer: options.issuer,
        tokenUrl: options.tokenUrl,
        clientId: options.clientId,
        clientAuth,
        clientSecret:
          options.clientSecretEnv === undefined ? undefined : fromEnv(options.clientSecretEnv, '--client-secret-env'),
        privateKey: options.privateKeyFile === undefined ? undefined : readFileSync(options.privateKeyFile, 'utf8'),
        privateKeyId: options.privateKeyId,
        scope: options.scope,
        resource: options.resource,
        audience: options.audience,
        tokenParams: Object.keys(tokenParams).length === 0 ? undefined : tokenParams,
      };
      return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
    }
  }
}
