/** The `scimflow` command. Run through cli/bin.mjs, which adds `--no-node-snapshot` (isolated-vm needs it). */
import { runCli } from './program.ts';

process.exitCode = await runCli(process.argv.slice(2));
