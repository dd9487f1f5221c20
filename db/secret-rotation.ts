/**
 * Re-encrypts every secret stored at rest under the current key of the ring: provider credentials (and their
 * fingerprints) and interactive OAuth grants (refresh tokens, PKCE verifiers, callbacks waiting for a worker). Row by
 * row, each under its row lock, so processes keep reading and writing meanwhile: a value is opened with whichever key
 * of the ring sealed it.
 */
import type { SecretBox } from './crypto.ts';
import { GRANT_SEALED_COLUMNS } from './oauth-grants.ts';
import { resealAuth, type AuthColumns } from './provider-auth.ts';
import { inTransaction, type Db } from './pool.ts';
import { describeError } from '../errors/index.ts';

/** What a rotation did. */
export interface RotationReport {
  /** The key everything is sealed under now. */
  keyId: string;
  reencrypted: number;
  /** Values that were under the current key already. */
  alreadyCurrent: number;
  /** Values no key of the ring opens (left as they are), each named without its content. */
  failed: Array<{ where: string; message: string }>;
}

/** Re-encrypts what is not under `box`'s current key yet; safe to run again (it then re-encrypts nothing). */
export async function rotateSecrets(db: Db, box: SecretBox): Promise<RotationReport> {
  const report: RotationReport = { keyId: box.currentKeyId, reencrypted: 0, alreadyCurrent: 0, failed: [] };
  const current = (value: Buffer | null): boolean => value === null || box.keyIdOf(value) === box.currentKeyId;
  const attempt = async (where: string, step: () => Promise<'reencrypted' | 'alreadyCurrent' | 'gone'>) => {
    try {
      const outcome = await step();
      if (outcome !== 'gone') report[outcome] += 1;
    } catch (error) {
      report.failed.push({ where, message: describeError(error) });
    }
  };

  const providers = await db.query<{ id: string; slug: string }>(
    'SELECT id, slug FROM providers WHERE auth_secret IS NOT NULL ORDER BY slug',
  );
  for (const { id, slug } of providers.rows) {
    await attempt(`provider ${slug}: credential`, () =>
      inTransaction(db, async (client) => {
        const { rows } = await client.query<Pick<AuthColumns, 'auth_mode' | 'auth_secret' | 'auth_fingerprint'>>(
          'SELECT auth_mode, auth_secret, auth_fingerprint FROM providers WHERE id = $1 FOR UPDATE',
          [id],
        );
        const row = rows[0];
        if (row?.auth_secret == null) return 'gone';
        if (current(row.auth_secret) && current(row.auth_fingerprint)) return 'alreadyCurrent';
        const sealed = resealAuth(box, id, row);
        await client.query('UPDATE providers SET auth_secret = $2, auth_fingerprint = $3 WHERE id = $1', [
          id,
          sealed.auth_secret,
          sealed.auth_fingerprint,
        ]);
        return 'reencrypted';
      }),
    );
  }

  for (const [column, context] of Object.entries(GRANT_SEALED_COLUMNS)) {
    const grants = await db.query<{ provider_id: string; slug: string }>(
      `SELECT g.provider_id, p.slug FROM provider_oauth_grants g JOIN providers p ON p.id = g.provider_id
        WHERE g.${column} IS NOT NULL ORDER BY p.slug`,
    );
    for (const { provider_id: providerId, slug } of grants.rows) {
      await attempt(`provider ${slug}: OAuth ${column.replace('_', ' ')}`, () =>
        inTransaction(db, async (client) => {
          const { rows } = await client.query<{ value: Buffer | null }>(
            `SELECT ${column} AS value FROM provider_oauth_grants WHERE provider_id = $1 FOR UPDATE`,
            [providerId],
          );
          const value = rows[0]?.value ?? null;
          if (value === null) return 'gone';
          if (current(value)) return 'alreadyCurrent';
          const plaintext = box.open(value, context(providerId));
          await client.query(`UPDATE provider_oauth_grants SET ${column} = $2 WHERE provider_id = $1`, [
            providerId,
            box.seal(plaintext, context(providerId)),
          ]);
          return 'reencrypted';
        }),
      );
    }
  }
  return report;
}
