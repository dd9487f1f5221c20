/**
 * The development default: `scimflow start` on embedded defaults makes sure this user has an admin token for the
 * API it serves, saved in the CLI's credentials file, so the CLI works with no setup. Production roles never call it.
 */
import { createHash } from 'node:crypto';
import {
  authenticateApiToken,
  createApiToken,
  inTransaction,
  recordAudit,
  revokeApiToken,
  tokenAuditEntry,
  type Db,
} from '../db/index.ts';
import { isScimflowError } from '../errors/index.ts';
import { credentialsPath, saveToken, savedToken } from './credentials.ts';
import { localActor } from './token-commands.ts';

/**
 * The name of the token `scimflow start` makes for the credentials file at `path`: `local-admin-` and 8 hex digits of
 * its path. A start with another config folder (another user, another clone, SCIMFLOW_CONFIG_DIR) makes a token of its
 * own on a shared database, instead of revoking the one the first folder's CLI uses.
 */
export function localAdminTokenName(path: string): string {
  return `local-admin-${createHash('sha256').update(path).digest('hex').slice(0, 8)}`;
}

/** Reuses the saved token when it is still a live admin token here; else makes (and saves) a new one. */
export async function ensureLocalAdminToken(
  db: Db,
  apiUrl: string,
): Promise<{ path: string; name: string; created: boolean }> {
  const saved = savedToken(apiUrl);
  if (saved) {
    const checked = await authenticateApiToken(db, saved.token);
    if (checked.ok && checked.token.role === 'admin')
      return { path: credentialsPath(), name: saved.name, created: false };
  }
  const actor = localActor();
  const name = localAdminTokenName(credentialsPath());
  const { token, view } = await inTransaction(db, async (client) => {
    // This folder's token, live but no longer in its credentials file (deleted, or saved for another API URL): replace it.
    try {
      const old = await revokeApiToken(client, name);
      await recordAudit(client, {
        actor,
        remoteAddress: null,
        ...tokenAuditEntry('token.revoke', old, { reason: 'replaced by scimflow start' }),
      });
    } catch (error) {
      if (!isScimflowError(error) || error.code !== 'ERR_NOT_FOUND') throw error;
    }
    const created = await createApiToken(client, { name, role: 'admin' }, actor);
    await recordAudit(client, {
      actor,
      remoteAddress: null,
      ...tokenAuditEntry('token.create', created.view, { reason: 'scimflow start' }),
    });
    return created;
  });
  return { path: saveToken(apiUrl, { token, name: view.name }), name: view.name, created: true };
}
