/** What a bench comparing this checkout with a baseline commit needs: the baseline's tree, medians, changes. */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchRow } from './full-sync.ts';

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
