/**
 * The CLI's saved API tokens: `$SCIMFLOW_CONFIG_DIR/credentials.json`, by default
 * `${XDG_CONFIG_HOME:-~/.config}/scimflow/credentials.json`, readable by its owner only (0600, folder 0700). Each
 * token is saved for one API origin and only ever sent there.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as z from 'zod';

type Environment = Record<string, string | undefined>;

const CredentialsFileSchema = z.object({
  apis: z.record(z.string(), z.object({ token: z.string(), name: z.string() })).default({}),
});
type CredentialsFile = z.infer<typeof CredentialsFileSchema>;

/** scimflow's per-user config folder: SCIMFLOW_CONFIG_DIR, else `${XDG_CONFIG_HOME:-~/.config}/scimflow`. */
export function configDir(env: Environment = process.env): string {
  if (env['SCIMFLOW_CONFIG_DIR']) return env['SCIMFLOW_CONFIG_DIR'];
  return join(env['XDG_CONFIG_HOME'] || join(env['HOME'] || homedir(), '.config'), 'scimflow');
}

/** Where saved tokens live. */
export function credentialsPath(env: Environment = process.env): string {
  return join(configDir(env), 'credentials.json');
}

/** The key a token is saved under: the API's origin, with a wildcard listen address read as loopback. */
export function apiKey(apiUrl: string): string {
  const url = new URL(apiUrl);
  if (url.hostname === '0.0.0.0') url.hostname = '127.0.0.1';
  if (url.hostname === '[::]') url.hostname = '[::1]';
  return url.origin;
}

function readFile(env: Environment): CredentialsFile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(credentialsPath(env), 'utf8'));
  } catch {
    return { apis: {} }; // missing or unreadable: nothing saved
  }
  const parsed = CredentialsFileSchema.safeParse(raw);
  return parsed.success ? parsed.data : { apis: {} };
}

/** The token saved for the API at `apiUrl`, if any. */
export function savedToken(apiUrl: string, env: Environment = process.env): { token: string; name: string } | null {
  let key: string;
  try {
    key = apiKey(apiUrl);
  } catch {
    return null; // not a URL: the request fails on its own, with a clearer message
  }
  return readFile(env).apis[key] ?? null;
}

/** Saves `token` for the API at `apiUrl` (replacing the one saved for it); returns the file's path. */
export function saveToken(
  apiUrl: string,
  saved: { token: string; name: string },
  env: Environment = process.env,
): string {
  const dir = configDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = readFile(env);
  file.apis[apiKey(apiUrl)] = saved;
  const path = credentialsPath(env);
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
  return path;
}
