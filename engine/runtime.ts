import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Env } from '../config/index.ts';
import { createDb, createSecretBox, generateSecretKey, migrate, type Db, type SecretBox } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';

/** The per-machine folder for development state (the dev secret key, the Temporal CLI). */
export function cacheDir(): string {
  return join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'scimflow');
}

/**
 * The key that encrypts provider secrets. Production must set SCIMFLOW_SECRET_KEY; `scimflow start` on embedded
 * defaults (development) creates a key once per machine in the cache folder, readable only by its owner.
 */
export function resolveSecretKey(
  env: Env,
  options: { allowDevKey: boolean },
): { key: string; source: 'env' | 'dev-file' } {
  if (env.SCIMFLOW_SECRET_KEY) return { key: env.SCIMFLOW_SECRET_KEY, source: 'env' };
  if (!options.allowDevKey) {
    throw new ScimflowError(
      'ERR_CONFIG',
      'SCIMFLOW_SECRET_KEY is not set: generate one with `openssl rand -base64 32`',
    );
  }
  const file = join(cacheDir(), 'dev-secret.key');
  if (!existsSync(file)) {
    mkdirSync(cacheDir(), { recursive: true, mode: 0o700 });
    writeFileSync(file, generateSecretKey(), { mode: 0o600, flag: 'wx' });
  }
  return { key: readFileSync(file, 'utf8').trim(), source: 'dev-file' };
}

/**
 * The key ring: SCIMFLOW_SECRET_KEY (or, for `scimflow start` only, the development key) seals; it and the keys of
 * SCIMFLOW_DECRYPT_KEYS open. Each key is parsed strictly: a malformed one stops the process with ERR_CONFIG.
 */
export function openSecretBox(
  env: Env,
  options: { allowDevKey: boolean },
): { secrets: SecretBox; keySource: 'env' | 'dev-file' } {
  const { key, source } = resolveSecretKey(env, options);
  const decryptOnly = env.SCIMFLOW_DECRYPT_KEYS.split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  return { secrets: createSecretBox(key, { decryptOnly }), keySource: source };
}

/** Opens the database (migrated) and the secret box. */
export async function openStore(
  env: Env,
  options: { allowDevKey: boolean },
): Promise<{ db: Db; secrets: SecretBox; keySource: 'env' | 'dev-file' }> {
  const { secrets, keySource: source } = openSecretBox(env, options);
  const db = createDb(env.DATABASE_URL);
  try {
    await migrate(db);
  } catch (error) {
    await db.end().catch(() => undefined);
    throw new ScimflowError(
      'ERR_CONFIG',
      `cannot prepare the database at ${redactUrl(env.DATABASE_URL)}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  return { db, secrets, keySource: source };
}

/** A connection URL with any password replaced, safe to print. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** Link to a workflow in the Temporal Web UI. */
export function temporalUiLink(uiUrl: string, namespace: string, workflowId: string): string {
  return `${uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}
