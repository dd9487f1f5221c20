/** `scimflow <role>` started as a user would start it, for the tests of the roles and of `start`. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../cli/bin.mjs', import.meta.url));

/** How a started role ended, with everything it printed. */
export interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Starts `scimflow <role>` as a user would (bin.mjs adds --no-node-snapshot); stdout and stderr interleaved. */
export function startRole(args: string[], env: Record<string, string | undefined>) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const done = new Promise<Ended>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, output }));
  });
  return { child, done, output: () => output };
}

/**
 * How the role ended, or null if it is still running `ms` later. Its timer is cleared once the role ends: left
 * running, it held the test file's process open for the rest of the `ms` after its last test.
 */
export async function endedWithin(role: ReturnType<typeof startRole>, ms: number): Promise<Ended | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(resolve, ms, null)));
  try {
    return await Promise.race([role.done, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits, in bounded steps, until the role has printed `pattern`; fails with its output if it ends or never does. */
export async function waitForOutput(
  role: ReturnType<typeof startRole>,
  pattern: RegExp,
  timeoutMs = 60_000,
): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(role.output());
    if (match) return match;
    if (role.child.exitCode !== null || role.child.signalCode !== null || Date.now() > deadline) {
      assert.fail(`never printed ${pattern}:\n${role.output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
