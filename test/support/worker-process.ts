/** `scimflow worker` in a process of its own, as an operator runs it, with everything it prints captured. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { eventually } from '../incremental/harness.ts';

// cli/main.ts itself, as cli/bin.mjs runs it: through bin.mjs, a SIGKILL at cleanup would leave bin.mjs's child
// holding the output pipes, and `kill()` waiting for them to close until the test timed out.
const MAIN = fileURLToPath(new URL('../../cli/main.ts', import.meta.url));

/** A running worker process. */
export interface WorkerProcess {
  /** Its process id (a run's `workers` names it `<pid>@<host>`). */
  readonly pid: number;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** Sends SIGTERM and resolves with the exit code once it has stopped. */
  stop(): Promise<number | null>;
  /** Kills it if it still runs (for `t.after`). */
  kill(): Promise<void>;
}

/** Starts the worker role with `env` over the test runner's environment; resolves once it says it runs. */
export async function startWorkerProcess(env: Record<string, string | undefined>): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--no-node-snapshot', MAIN, 'worker'], {
    env: { ...process.env, SCIMFLOW_API_TOKEN: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  try {
    await eventually(
      'the worker running',
      () => {
        if (!running()) throw new Error(`the worker ended:\n${output}`);
        return Promise.resolve(/scimflow worker running/.test(output) ? true : undefined);
      },
      // Bundling the workflow code takes seconds, far longer on a loaded machine with several workers starting.
      180_000,
    );
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${(error as Error).message}; it printed:\n${output}`);
  }
  return {
    pid: child.pid!,
    output: () => output,
    async stop() {
      if (running()) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
  };
}
