/** What a bench comparing this checkout with a baseline commit needs: the baseline's tree, medians, changes. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { createTestDatabase } from '../test/support/db.ts';
import type { BenchRow } from './full-sync.ts';

import type * as DbModule from '../db/index.ts';

/** This checkout's root directory. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The tree of `ref` unpacked under the temp dir (once per commit), sharing this checkout's node_modules. */
export function baselineTree(ref: string): string {
  const commit = execFileSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).trim();
  const dir = path.join(tmpdir(), `scimflow-baseline-${commit}`);
  if (!existsSync(path.join(dir, 'scim'))) {
    mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${commit} | tar -x -C ${dir}`], { cwd: ROOT });
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  }
  return dir;
}

/** The value at quantile `q` of `sorted` (ascending): the one at index ⌊q·n⌋, the last for q = 1; NaN if empty. */
export const quantile = (sorted: readonly number[], q: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** The median of `values` (the upper one of an even count). */
export const median = (values: readonly number[]): number =>
  quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );

/** `value`'s change from `base` in whole percent, signed: "+3 %", "-12 %". */
export function pct(value: number, base: number): string {
  const change = (value / base - 1) * 100;
  return `${change >= 0 ? '+' : ''}${change.toFixed(0)} %`;
}

/**
 * A table row per variant: `describe` of the medians of its `results`, then, after the first (the baseline), each
 * measure's change from the baseline's, named by `labels`.
 */
export function comparedRows<K extends string>(
  names: readonly string[],
  results: ReadonlyArray<Record<K, number[]>>,
  labels: Record<K, string>,
  describe: (medians: Record<K, number>) => string,
): BenchRow[] {
  const keys = Object.keys(labels) as K[];
  const medians = results.map(
    (result) => Object.fromEntries(keys.map((k) => [k, median(result[k])])) as Record<K, number>,
  );
  return names.map((variant, index) => {
    const changes = keys.map((k) => `${pct(medians[index]![k], medians[0]![k])} ${labels[k]}`).join(', ');
    return { variant, value: `${describe(medians[index]!)}${index === 0 ? '' : ` (${changes})`}` };
  });
}

/** The db modules of the baseline commit `BENCH_BASELINE` (default `main`) and of this checkout, named, in that order. */
export async function dbVariants(): Promise<Array<{ name: string; db: typeof DbModule }>> {
  const ref = process.env['BENCH_BASELINE'] ?? 'main';
  const load = async (root: string) =>
    (await import(pathToFileURL(path.join(root, 'db/index.ts')).href)) as typeof DbModule;
  return [
    { name: `baseline (${ref})`, db: await load(baselineTree(ref)) },
    { name: 'this checkout', db: await load(ROOT) },
  ];
}

/** CPU milliseconds the process `pid` (a PostgreSQL backend, say) has run: the kernel's scheduler count, in ns. */
export function processCpuMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

/**
 * A fresh test database on one connection, for benches that time statements there: its backend's `pid` (see
 * {@link processCpuMs}), a provider `providerId`, `one` (a statement's first row), and `close` (drops the database).
 */
export async function benchConnection() {
  const testDb = await createTestDatabase();
  const client = new pg.Client({ connectionString: testDb.url });
  await client.connect();
  const one = async <R extends pg.QueryResultRow>(sql: string, values: unknown[] = []) =>
    (await client.query<R>(sql, values)).rows[0]!;
  const { pid } = await one<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const { id: providerId } = await one<{ id: string }>(
    `INSERT INTO providers (slug, name, base_url) VALUES ('bench', 'bench', 'http://127.0.0.1') RETURNING id`,
  );
  return {
    client,
    /** The connection as the db module's functions take it. */
    q: client as unknown as DbModule.Queryable,
    pid,
    providerId,
    one,
    close: async () => {
      await client.end();
      await testDb.drop();
    },
  };
}
