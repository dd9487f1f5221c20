import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MIN_PG_VERSION_NUM, postgresVersionProblem } from '../../scripts/lib/postgres-version.mjs';

const MIGRATIONS = fileURLToPath(new URL('../../db/migrations/', import.meta.url));

test('setup refuses PostgreSQL 13 and names the version it needs', () => {
  assert.equal(postgresVersionProblem(130015), 'it is version 13; scimflow needs PostgreSQL 14 or later');
  assert.equal(postgresVersionProblem(0), 'it is of an unknown version; scimflow needs PostgreSQL 14 or later');
});

test('setup accepts PostgreSQL 14 and later', () => {
  for (const version of [140000, 140011, 160004, 170000]) assert.equal(postgresVersionProblem(version), null);
});

test('the minimum covers CREATE OR REPLACE TRIGGER, which a migration uses and PostgreSQL 14 introduced', () => {
  const sql = readdirSync(MIGRATIONS)
    .filter((name) => name.endsWith('.sql'))
    .map((name) => readFileSync(path.join(MIGRATIONS, name), 'utf8'))
    .join('\n');
  assert.match(sql, /CREATE OR REPLACE TRIGGER/i);
  assert.ok(MIN_PG_VERSION_NUM >= 140000);
});
