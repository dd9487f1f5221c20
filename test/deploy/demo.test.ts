import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A copy of the checkout as the production image holds it (.dockerignore leaves out test/, bench/ and every
 * *.test.ts), sharing this checkout's node_modules.
 */
async function productionTree(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'scimflow-production-'));
  const left = new Set(['.git', 'node_modules', 'test', 'bench', '.scimflow', 'coverage']);
  await cp(ROOT, dir, {
    recursive: true,
    filter: (source) => {
      const relative = path.relative(ROOT, source);
      return !left.has(relative.split(path.sep)[0] ?? '') && !relative.endsWith('.test.ts');
    },
  });
  await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

test('`start --demo` in a production install fails at once with ERR_CONFIG saying the demo needs a development checkout', async (t) => {
  const dir = await productionTree();
  t.after(() => rm(dir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--no-node-snapshot', 'cli/main.ts', 'start', '--demo'], {
    cwd: dir,
    // Nothing listens on port 1: had the command started anything before checking, it would fail on PostgreSQL.
    env: { ...process.env, DATABASE_URL: 'postgres://scimflow@127.0.0.1:1/scimflow', TEMPORAL_ADDRESS: undefined },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));

  assert.equal(code, 1, output);
  assert.equal(
    output.trim(),
    'error: ERR_CONFIG: --demo needs a development checkout: its SCIM target is the test server in test/servers ' +
      '(SCIMMY, a devDependency), which a production install leaves out. Run `npm run demo` in a clone of the repository',
  );
});
