/**
 * Mapping benchmark: users through the default mapping set in the isolated-vm sandbox, and through the same
 * functions as plain JavaScript in this process, in the same run. Prints µs/user for both and the difference, in
 * wall time and in process CPU time; the sandbox runs in batches of 1,000 and, in a row of its own, of 100 (a page).
 * Run: `./node_modules/.bin/node --no-node-snapshot bench/mapping.ts [users] [batchSize]`; each variant is measured
 * over several rounds, the variants taking turns, and the median round is reported; before timing, every user's
 * sandbox payload is checked against the plain JavaScript one.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  DEFAULT_USER_MAPPINGS,
  checkMappedPayload,
  createMappingEngine,
  mergeAll,
  type MappingProvider,
  type MappingResult,
  type MappingUser,
} from '../sandbox/index.ts';
import type { ScimUser } from '../scim/index.ts';

/** Options of `runMappingBench`. */
export interface MappingBenchOptions {
  /** Users measured per variant. @default 100000 */
  users?: number;
  /** Users per sandbox call. @default 1000 */
  batchSize?: number;
  /** Users per call of a second sandbox row: what a full sync passes (one page). @default 100 */
  pageSize?: number;
  /** Users run through each variant before measuring. @default 20000 */
  warmupUsers?: number;
  /** Measured rounds per variant; the median round is reported. @default 8 (each variant goes first twice) */
  rounds?: number;
}

/** One measured variant. */
export interface MappingBenchRow {
  variant: string;
  users: number;
  totalMs: number;
  usPerUser: number;
  /** Process CPU time per user in the median round: every thread, so the isolate's too. */
  cpuUsPerUser: number;
}

/** The rows, and the sandbox's overhead over plain JavaScript (µs/user difference and ratio). */
export interface MappingBenchResult {
  rows: MappingBenchRow[];
  /** Sandbox µs/user minus plain JavaScript µs/user. */
  overheadUsPerUser: number;
  /** Sandbox µs/user divided by plain JavaScript µs/user. */
  ratio: number;
  /** Sandbox µs/user minus plain JavaScript with the same host validation: the cost of isolation alone. */
  isolationUsPerUser: number;
  /** Sandbox process CPU µs/user minus plain JavaScript's (median rounds): the overhead a loaded machine pays. */
  cpuOverheadUsPerUser: number;
  /**
   * The sandbox's CPU time per user, mean of the measured rounds: on the main thread, and on every other thread (the
   * isolate's and V8's GC helpers). isolated-vm's own `cpuTime` is not used: the prebuilt binary counts wall time.
   */
  sandboxCpu: { mainUsPerUser: number; otherUsPerUser: number };
}

type EvaluateBatch = (list: MappingUser[]) => Promise<Array<MappingResult<ScimUser>>>;

const PROVIDER: MappingProvider = { id: '00000000-0000-4000-8000-000000000001', slug: 'bench', name: 'Bench' };
const NOW = '2026-01-01T00:00:00.000Z';

/** Measures the default user mappings in the sandbox and as plain JavaScript; never part of `npm test`. */
export async function runMappingBench(options: MappingBenchOptions = {}): Promise<MappingBenchResult> {
  const count = options.users ?? 100_000;
  const batchSize = options.batchSize ?? 1000;
  const pageSize = options.pageSize ?? 100;
  const warmup = options.warmupUsers ?? 20_000;
  const rounds = options.rounds ?? 8;
  const users = generateUsers(count);
  const warmupUsers = users.slice(0, Math.min(warmup, count));

  type PlainMapping = (...args: unknown[]) => unknown;
  // The baseline is the very same expression text run as plain JavaScript in this process, which is the point.
  const compilePlain = (body: string): PlainMapping =>
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    new Function('user', 'provider', 'link', 'now', `"use strict";${body}`) as PlainMapping;
  const plain = DEFAULT_USER_MAPPINGS.map((m) => compilePlain(m.expression));
  const plainMap = (user: MappingUser): unknown =>
    mergeAll(plain.map((fn) => fn(user, PROVIDER, null, NOW) ?? undefined));
  const plainRun = (list: MappingUser[]): number => {
    let produced = 0;
    for (const user of list) if (plainMap(user) !== undefined) produced++;
    return produced;
  };
  const validatedRun = (list: MappingUser[]): number => {
    let produced = 0;
    for (const user of list) if (checkMappedPayload('user', plainMap(user)).ok) produced++;
    return produced;
  };

  const engine = createMappingEngine();
  const evaluateBatch: EvaluateBatch = (list) =>
    engine.evaluate({
      key: PROVIDER.id,
      version: 'bench',
      objectType: 'user',
      mappings: DEFAULT_USER_MAPPINGS,
      provider: PROVIDER,
      now: NOW,
      items: list.map((object) => ({ object, link: null })),
    });
  const cpuSplit = { mainMs: 0, processMs: 0 };
  const sandboxRun = async (list: MappingUser[], size = batchSize): Promise<number> => {
    let produced = 0;
    for (let start = 0; start < list.length; start += size) {
      const results = await evaluateBatch(list.slice(start, start + size));
      for (const result of results) if (result.status === 'ok') produced++;
    }
    return produced;
  };

  try {
    plainRun(warmupUsers);
    validatedRun(warmupUsers);
    await sandboxRun(warmupUsers);
    await sandboxRun(warmupUsers, pageSize);
    await assertSameOutput(users, batchSize, plainMap, evaluateBatch);
    const rows = await measure(count, rounds, [
      ['plain JS (same functions + merge)', () => plainRun(users)],
      ['plain JS + host validation', () => validatedRun(users)],
      [
        `sandbox (isolated-vm, batches of ${batchSize})`,
        async () => {
          const mainBefore = process.threadCpuUsage();
          const processBefore = process.cpuUsage();
          const produced = await sandboxRun(users);
          const processUsed = process.cpuUsage(processBefore);
          const mainUsed = process.threadCpuUsage(mainBefore);
          cpuSplit.mainMs += (mainUsed.user + mainUsed.system) / 1000;
          cpuSplit.processMs += (processUsed.user + processUsed.system) / 1000;
          return produced;
        },
      ],
      [`sandbox (batches of ${pageSize}: a sync page)`, () => sandboxRun(users, pageSize)],
    ]);
    const perUser = (ms: number): number => (ms * 1000) / (count * rounds);
    const [base, validated, sandbox] = rows as [MappingBenchRow, MappingBenchRow, MappingBenchRow];
    return {
      rows,
      overheadUsPerUser: sandbox.usPerUser - base.usPerUser,
      ratio: sandbox.usPerUser / base.usPerUser,
      isolationUsPerUser: sandbox.usPerUser - validated.usPerUser,
      cpuOverheadUsPerUser: sandbox.cpuUsPerUser - base.cpuUsPerUser,
      sandboxCpu: {
        mainUsPerUser: perUser(cpuSplit.mainMs),
        otherUsPerUser: perUser(cpuSplit.processMs - cpuSplit.mainMs),
      },
    };
  } finally {
    await engine.disposeAll();
  }
}

/** The sandbox must produce, for every user, the payload the plain functions produce (nulls dropped, as it does). */
async function assertSameOutput(
  users: MappingUser[],
  batchSize: number,
  plainMap: (user: MappingUser) => unknown,
  evaluateBatch: EvaluateBatch,
): Promise<void> {
  for (let start = 0; start < users.length; start += batchSize) {
    const list = users.slice(start, start + batchSize);
    const results = await evaluateBatch(list);
    list.forEach((user, index) => {
      const result = results[index];
      if (result?.status !== 'ok') throw new Error(`sandbox: user ${user.id} gave ${JSON.stringify(result)}`);
      assert.deepStrictEqual(
        result.payload,
        withoutNulls(plainMap(user)),
        `sandbox and plain JS differ for ${user.id}`,
      );
    });
  }
}

function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, item]) => item !== null)
      .map(([key, item]) => [key, withoutNulls(item)]),
  );
}

/**
 * Runs the variants in turn, round after round, each round starting one later (so a change in the machine's load, and
 * the garbage a variant leaves, hit them all alike), and reports
 * each variant's median round; also the process CPU time (all threads, the isolate's included) of that round.
 */
async function measure(
  users: number,
  rounds: number,
  variants: ReadonlyArray<readonly [string, () => number | Promise<number>]>,
): Promise<MappingBenchRow[]> {
  const samples = variants.map(() => [] as Array<{ wallMs: number; cpuMs: number }>);
  for (let round = 0; round < rounds; round++) {
    // Each round starts with the next variant, so the garbage one leaves behind is not always paid for by the same one.
    for (let turn = 0; turn < variants.length; turn++) {
      const index = (round + turn) % variants.length;
      const [variant, run] = variants[index] as (typeof variants)[number];
      const cpuBefore = process.cpuUsage();
      const started = process.hrtime.bigint();
      const produced = await run();
      const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      const cpu = process.cpuUsage(cpuBefore);
      samples[index]?.push({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000 });
      if (produced !== users)
        throw new Error(`${variant}: ${users - produced} of ${users} users produced no valid payload`);
    }
  }
  return variants.map(([variant], index) => {
    const sorted = (samples[index] ?? []).sort((a, b) => a.wallMs - b.wallMs);
    const median = sorted[Math.floor(sorted.length / 2)] as { wallMs: number; cpuMs: number };
    return {
      variant,
      users,
      totalMs: median.wallMs,
      usPerUser: (median.wallMs * 1000) / users,
      cpuUsPerUser: (median.cpuMs * 1000) / users,
    };
  });
}

/** Deterministic, varied users: missing names and emails, unicode, service accounts, inactive users. */
function generateUsers(count: number): MappingUser[] {
  const given = ['Ada', 'Grace', 'Łukasz', 'José', '美咲', 'Zoë', 'Ngozi', 'Søren'];
  const family = ['Lovelace', 'Hopper', 'Müller', 'García', '佐藤', "O'Brien", 'Okafor', 'Kierkegaard'];
  const users: MappingUser[] = [];
  for (let i = 0; i < count; i++) {
    const id = `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
    const g = i % 7 === 0 ? null : (given[i % given.length] ?? null);
    const f = i % 11 === 0 ? null : (family[i % family.length] ?? null);
    users.push({
      id,
      uid: createHash('sha256').update(id).digest('hex'),
      username: `user${i}@example.com`,
      displayName: i % 5 === 0 ? null : [g, f].filter(Boolean).join(' ') || null,
      email: i % 9 === 0 ? null : `user${i}@example.com`,
      givenName: g,
      familyName: f,
      active: i % 13 !== 0,
      kind: i % 17 === 0 ? 'service_account' : 'internal',
      attributes: { department: `dept-${i % 23}`, employeeNumber: String(100000 + i) },
    });
  }
  return users;
}

/** Renders the result as a fixed-width table. */
export function formatMappingBench(result: MappingBenchResult): string {
  const lines = [
    `${'variant'.padEnd(40)} | ${'users'.padStart(7)} | ${'total ms'.padStart(9)} | ${'µs/user'.padStart(8)} | ${'cpu µs/user'.padStart(11)}`,
    `${'-'.repeat(40)}-+-${'-'.repeat(7)}-+-${'-'.repeat(9)}-+-${'-'.repeat(8)}-+-${'-'.repeat(11)}`,
    ...result.rows.map(
      (r) =>
        `${r.variant.padEnd(40)} | ${String(r.users).padStart(7)} | ${r.totalMs.toFixed(1).padStart(9)} | ${r.usPerUser.toFixed(3).padStart(8)} | ${r.cpuUsPerUser.toFixed(3).padStart(11)}`,
    ),
    '',
    `sandbox overhead: ${result.overheadUsPerUser.toFixed(3)} µs/user (${result.ratio.toFixed(1)}× plain JS); goal ≤ 3 µs/user`,
    `of which isolation alone (sandbox minus plain JS with the same validation): ${result.isolationUsPerUser.toFixed(3)} µs/user`,
    `sandbox CPU overhead (process CPU, sandbox minus plain JS): ${result.cpuOverheadUsPerUser.toFixed(3)} µs/user`,
    `sandbox CPU per user (mean of rounds): ${result.sandboxCpu.mainUsPerUser.toFixed(3)} µs on the main thread, ${result.sandboxCpu.otherUsPerUser.toFixed(3)} µs on other threads (isolate, GC helpers)`,
    '(the variants take turns, each round starting with the next; total ms is the median round, cpu its process CPU time)',
  ];
  return lines.join('\n');
}

if (import.meta.main) {
  const users = process.argv[2] === undefined ? undefined : Number(process.argv[2]);
  const batchSize = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
  const result = await runMappingBench({
    ...(users === undefined ? {} : { users }),
    ...(batchSize === undefined ? {} : { batchSize }),
  });
  console.log(formatMappingBench(result));
}
