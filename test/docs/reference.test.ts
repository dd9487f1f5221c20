import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EnvSchema } from '../../config/index.ts';
import { ERROR_CODES } from '../../errors/index.ts';
import { CLI_DOC, expectedCliDoc } from '../../scripts/cli-reference.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const PRODUCT_FOLDERS = [
  'activities',
  'api',
  'cli',
  'config',
  'db',
  'engine',
  'plugins',
  'sandbox',
  'scim',
  'scripts',
  'workflows',
];

/** Every product source file (tests excluded). */
function productFiles(dir: string, found: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) productFiles(file, found);
    else if (/\.(ts|mjs)$/.test(name) && !/\.test\.ts$/.test(name)) found.push(file);
  }
  return found;
}

test('docs/cli.md documents every command and option the CLI has (regenerate: scripts/cli-reference.ts --write)', async () => {
  assert.equal(readFileSync(CLI_DOC, 'utf8'), await expectedCliDoc());
});

test('docs/configuration.md documents every setting the processes, the CLI and docker compose read', () => {
  const doc = read('docs/configuration.md');
  const names = new Set(Object.keys(EnvSchema.shape));
  const sources = PRODUCT_FOLDERS.flatMap((folder) => productFiles(path.join(ROOT, folder)));
  for (const file of sources)
    for (const [name] of readFileSync(file, 'utf8').matchAll(/\bSCIMFLOW_[A-Z0-9_]+/g)) names.add(name);
  for (const [, name] of read('docker-compose.yml').matchAll(/\$\{([A-Z0-9_]+)/g)) names.add(name!);
  const missing = [...names].filter((name) => !doc.includes(`\`${name}\``));
  assert.deepEqual(missing, []);
});

test('docs/errors.md gives every error code with the HTTP status the API answers it with, and its sync scope', () => {
  const rows = new Map(
    [...read('docs/errors.md').matchAll(/^\| `(ERR_[A-Z_]+)` +\| (\d{3}) +\| \w+ +\| ([\w-]+) /gm)].map(
      ([, code, status, scope]) => [code, { status: Number(status), scope }],
    ),
  );
  for (const [code, { httpStatus, scope }] of Object.entries(ERROR_CODES)) {
    assert.equal(rows.get(code)?.status, httpStatus, code);
    // API-only codes never arise in a sync: their scope is left out (-).
    if (rows.get(code)?.scope !== '-') assert.equal(rows.get(code)?.scope, scope, code);
  }
});

test('the README shows npm start and npm test for a fresh machine and links every reference document', () => {
  const readme = read('README.md');
  assert.match(readme, /^npm start +#/m);
  assert.match(readme, /^npm test +#/m);
  for (const doc of ['docs/cli.md', 'docs/configuration.md', 'docs/errors.md'])
    assert.ok(readme.includes(`](${doc})`), doc);
});
