import type { Command } from 'commander';
import { loadEnv } from '../config/index.ts';
import { generateSecretKey, rotateSecrets, secretKeyId } from '../db/index.ts';
import { openSecretBox } from '../engine/runtime.ts';
import { ScimflowError } from '../errors/index.ts';
import type { CliContext } from './context.ts';

/** `secrets generate-key|rotate-key`: the key ring that encrypts stored secrets (against DATABASE_URL directly). */
export function addSecretCommands(program: Command, ctx: CliContext): void {
  const { output } = ctx;
  const secrets = program
    .command('secrets')
    .description('the keys that encrypt stored secrets (works directly against DATABASE_URL)');
  secrets
    .command('generate-key')
    .description('print a new random key for SCIMFLOW_SECRET_KEY (stdout) and its key id (stderr)')
    .action(() => {
      const key = generateSecretKey();
      output.out(key);
      output.err(`key id ${secretKeyId(key)}; keep the key in a secret store, apart from database backups`);
    });
  secrets
    .command('rotate-key')
    .description(
      're-encrypt every stored secret under SCIMFLOW_SECRET_KEY, opening each with SCIMFLOW_SECRET_KEY or SCIMFLOW_DECRYPT_KEYS; safe while scimflow runs, and to repeat',
    )
    .action(async () => {
      // Never the development key: a rotation is for keys an operator manages.
      const { secrets: box } = openSecretBox(loadEnv(), { allowDevKey: false });
      const report = await ctx.withDatabase((db) => rotateSecrets(db, box));
      for (const failure of report.failed) output.err(`${failure.where}: ${failure.message}`);
      output.out(
        `re-encrypted ${report.reencrypted} secrets under key ${report.keyId}; ${report.alreadyCurrent} were under it already`,
      );
      if (report.failed.length > 0) {
        throw new ScimflowError(
          'ERR_CONFIG',
          `${report.failed.length} secrets could not be opened with any key given; they are left as they were. Add the key they were sealed with to SCIMFLOW_DECRYPT_KEYS and run again`,
        );
      }
      output.err('every secret is under the new key: the old key can now leave SCIMFLOW_DECRYPT_KEYS');
    });
}
