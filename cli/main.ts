/** The `scimflow` command. Run through cli/bin.mjs, which adds `--no-node-snapshot` (isolated-vm needs it). */
import { runCli } from './program.ts';

// A reader that stops early (`scimflow status | head`) closes the pipe: stop writing and end quietly, as other
// command-line tools do, instead of crashing on the write with a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(process.exitCode ?? 0);
});

process.exitCode = await runCli(process.argv.slice(2));
