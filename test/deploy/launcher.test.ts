import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { childrenOf, processGroup, processState } from '../support/processes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LAUNCHER = path.join(ROOT, 'scripts', 'launch.mjs');
const FIXTURES = 'test/deploy/fixtures';
// A privileged port outside the ephemeral range: no test or OS port allocation can take it, so nothing listens there
// (a port taken free from the OS and released could be handed to another process before the child connects).
const CLOSED_PORT = 1;
const scratch = mkdtempSync(path.join(tmpdir(), 'scimflow-launcher-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the launcher as npm would, without the outer run's Temporal address so it manages its own dev server. */
function startLauncher(args: string[], env: Record<string, string | undefined> = {}, ownGroup = false) {
  const childEnv: Record<string, string | undefined> = { ...process.env, TEMPORAL_ADDRESS: undefined, ...env };
  const child = spawn(process.execPath, [LAUNCHER, ...args], {
    cwd: ROOT,
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: ownGroup,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Run>((resolve) => {
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done, stderr: () => stderr };
}

function launch(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  return startLauncher(args, env).done;
}

function devServerAddress(stderr: string): string {
  const address = /Temporal dev server on (127\.0\.0\.1:\d+)/.exec(stderr)?.[1];
  assert.ok(address, `the launcher did not report a dev server:\n${stderr}`);
  return address;
}

function accepts(address: string): Promise<boolean> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const socket = connect(Number(port), host, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// Every step that does work says so on stderr; a single ready line is the proof that none ran.
test('setup on a prepared machine redoes nothing: one ready line on stderr, nothing on stdout', async () => {
  await launch(['setup']); // the first run may still record its stamp
  const run = await launch(['setup']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, '');
  assert.match(run.stderr, /^scimflow: ready in \d+ ms \(Temporal CLI .+, database postgres:\/\/.+\)\n$/);
});

test('setup exits 1 with one message naming PostgreSQL when the database server is unreachable', async () => {
  const port = CLOSED_PORT;
  const run = await launch(['setup'], { DATABASE_URL: `postgres://scimflow@127.0.0.1:${port}/scimflow` });
  assert.equal(run.code, 1);
  assert.equal(run.stdout, '');
  const lines = run.stderr.trim().split('\n');
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0] ?? '', new RegExp(`PostgreSQL is not reachable at 127\\.0\\.0\\.1:${port}`));
  assert.match(lines[0] ?? '', /PostgreSQL >= 14 running on 127\.0\.0\.1:5432 \(or DATABASE_URL/);
});

test('setup never prints the database password', async () => {
  const port = CLOSED_PORT;
  const run = await launch(['setup'], { DATABASE_URL: `postgres://scimflow:hunter2secret@127.0.0.1:${port}/other` });
  assert.equal(run.code, 1);
  assert.doesNotMatch(run.stderr + run.stdout, /hunter2secret/);
});

test('setup exits 1 naming SCIMFLOW_TEMPORAL_BIN when it is not an executable file', async () => {
  const notExecutable = path.join(scratch, 'temporal');
  writeFileSync(notExecutable, 'not a program');
  const run = await launch(['setup'], { SCIMFLOW_TEMPORAL_BIN: notExecutable });
  assert.equal(run.code, 1);
  assert.equal(
    run.stderr.trim(),
    `scimflow: SCIMFLOW_TEMPORAL_BIN is set to ${notExecutable}, which is not an executable file`,
  );
});

test('an unknown command prints the usage and exits 2', async () => {
  const run = await launch(['frobnicate']);
  assert.equal(run.code, 2);
  assert.match(run.stderr, /^usage: node scripts\/launch\.mjs <command>/);
});

test('test runs only the files given, against a dev server it stops afterwards', async () => {
  const run = await launch(['test', `${FIXTURES}/launcher-env.fixture.ts`]);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /^ℹ pass 1$/m);
  assert.match(run.stdout, /^ℹ tests 1$/m);
  assert.equal(await accepts(devServerAddress(run.stderr)), false, 'the dev server still listens');
});

test('test uses TEMPORAL_ADDRESS instead of starting a dev server when it is set', async () => {
  const port = CLOSED_PORT;
  const run = await launch(['test', `${FIXTURES}/launcher-env.fixture.ts`], { TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
  // Nothing listens there, so the fixture's connection check fails: proof that the address was passed through.
  assert.equal(run.code, 1);
  assert.doesNotMatch(run.stderr, /Temporal dev server on/);
  assert.match(run.stdout, /ECONNREFUSED/);
});

test('test exits with the runner failure code when a test fails', async () => {
  const run = await launch(['test', `${FIXTURES}/failing.fixture.ts`]);
  assert.equal(run.code, 1);
  assert.match(run.stdout, /^ℹ fail 1$/m);
});

test('test passes node options and their separate values through to the runner', async () => {
  const run = await launch(['test', '--test-name-pattern', 'no test has this name', `${FIXTURES}/failing.fixture.ts`]);
  // The pattern filtered the failing test out: the run passes only if the runner received it with its value.
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /^ℹ fail 0$/m);
});

test('SIGINT to the launcher without a terminal stops the test run and its dev server', async () => {
  const marker = path.join(scratch, 'running');
  const run = startLauncher(['test', `${FIXTURES}/wait-for-signal.fixture.ts`], { SCIMFLOW_FIXTURE_MARKER: marker });
  await waitFor(() => existsSync(marker), 60_000, 'the fixture to start');
  const address = devServerAddress(run.stderr());
  run.child.kill('SIGINT');
  const result = await run.done;
  assert.notEqual(result.code, 0);
  assert.equal(await accepts(address), false, 'the dev server still listens');
});

test("the dev server of a test run leads its own process group: a terminal's Ctrl-C reaches the run, which stops it after", async (t) => {
  const marker = path.join(scratch, 'running-group');
  // A process group of its own, led by the launcher, as a terminal's foreground job is.
  const run = startLauncher(
    ['test', `${FIXTURES}/wait-for-signal.fixture.ts`],
    {
      SCIMFLOW_FIXTURE_MARKER: marker,
    },
    true,
  );
  const launcher = run.child.pid!;
  // A failed assertion must not leave the run waiting for a signal, nor its dev server.
  t.after(() => {
    const left = childrenOf(launcher);
    if (run.child.exitCode === null && run.child.signalCode === null) process.kill(-launcher, 'SIGKILL');
    // The runner leads a group of its own (the launcher has no terminal), with the test file's process in it.
    for (const child of left) process.kill(processGroup(child.pid) === child.pid ? -child.pid : child.pid, 'SIGKILL');
  });
  await waitFor(() => existsSync(marker), 60_000, 'the fixture to start');
  const server = childrenOf(launcher).find((child) => child.command.includes('start-dev'));
  assert.ok(server, `no Temporal dev server among the launcher's children: ${JSON.stringify(childrenOf(launcher))}`);
  assert.equal(processGroup(launcher), launcher, 'the launcher leads its group');
  assert.notEqual(processGroup(server.pid), launcher, "the dev server is in the launcher's process group");
  const address = devServerAddress(run.stderr());
  process.kill(-launcher, 'SIGINT');
  const result = await run.done;
  assert.notEqual(result.code, 0);
  assert.equal(await accepts(address), false, 'the dev server still listens');
  await waitFor(() => [null, 'Z'].includes(processState(server.pid)), 10_000, 'the dev server to end');
});
