/**
 * `npm run bench -- import`: a directory import of BENCH_USERS users (100,000) and BENCH_GROUPS groups (10) of 1,000
 * members each, into an empty directory, three ways, each on an API process of its own: the whole JSON document in one
 * `POST /import`; the same document as the CLI sent it before streaming (10,000 objects a request); and NDJSON
 * streamed from a file to `POST /import/stream`. Prints the time, the API process's CPU seconds and its peak RSS
 * (VmHWM) of each; BENCH_ONLY=json|split|stream runs one of them.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createApiClient } from '../cli/api-client.ts';
import { importRequests } from '../cli/import-requests.ts';
import { createTestDatabase } from '../test/support/db.ts';
import { createTestToken } from '../test/api/api-harness.ts';
import { forkListening } from './fork-listening.ts';
import type { BenchRow } from './full-sync.ts';

const USERS = Number(process.env['BENCH_USERS'] ?? 100_000);
const GROUPS = Number(process.env['BENCH_GROUPS'] ?? 10);
const MEMBERS = 1000;

const user = (i: number) => ({
  username: `user${i}@example.test`,
  displayName: `User Number ${i}`,
  email: `user${i}@example.test`,
  givenName: 'User',
  familyName: `Number ${i}`,
  attributes: { department: `dept-${i % 50}`, costCenter: String(1000 + (i % 300)) },
});
const group = (g: number) => ({
  name: `group-${g}`,
  members: Array.from({ length: MEMBERS }, (_, k) => `user${(g * MEMBERS + k) % USERS}@example.test`),
});

/** Peak and current resident memory of a process, in MiB, from /proc. */
async function memoryOf(pid: number): Promise<{ peak: number; now: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { peak: kib('VmHWM') / 1024, now: kib('VmRSS') / 1024 };
}

/** CPU seconds (user + system) a process has used, from /proc. */
async function cpuOf(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 a second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs the bench; each variant on a fresh API process and an emptied directory. */
export async function runImportBench(): Promise<BenchRow[]> {
  const testDb = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'scimflow-import-bench-'));
  const token = await createTestToken(testDb.db, 'admin');
  const document = {
    users: Array.from({ length: USERS }, (_, i) => user(i)),
    groups: Array.from({ length: GROUPS }, (_, g) => group(g)),
  };
  const ndjson = join(dir, 'directory.ndjson');
  await writeFile(
    ndjson,
    [
      ...document.users.map((u) => JSON.stringify({ user: u })),
      ...document.groups.map((g) => JSON.stringify({ group: g })),
    ].join('\n') + '\n',
  );
  const bodyMiB = (Buffer.byteLength(JSON.stringify(document)) / 1024 / 1024).toFixed(1);
  const variants: Array<[string, (api: ReturnType<typeof createApiClient>) => Promise<unknown>]> = [
    ['JSON document, one POST /import', (api) => api.post('/import', document)],
    [
      'JSON document, 10,000 objects a POST /import (the CLI before)',
      async (api) => {
        for (const request of importRequests(document, 10_000)) await api.post('/import', request);
      },
    ],
    [
      'NDJSON streamed to POST /import/stream (the CLI now)',
      (api) =>
        api.postStream(
          '/import/stream',
          Readable.toWeb(createReadStream(ndjson)) as ReadableStream<Uint8Array>,
          'application/x-ndjson',
        ),
    ],
  ];
  const rows: BenchRow[] = [
    { variant: 'input', value: `${USERS} users, ${GROUPS} groups of ${MEMBERS}; JSON ${bodyMiB} MiB` },
  ];
  // BENCH_ONLY=stream (or json, split) runs one variant.
  const only = process.env['BENCH_ONLY'];
  const keys = ['json', 'split', 'stream'];
  try {
    for (const [index, [name, run]] of variants.entries()) {
      if (only !== undefined && only !== keys[index]) continue;
      await testDb.db.query('TRUNCATE users, groups, group_members, outbox CASCADE');
      await testDb.db.query('VACUUM ANALYZE');
      const { port, child } = await forkListening(new URL('./api-process.ts', import.meta.url), [testDb.url]);
      try {
        const idle = await memoryOf(child.pid!);
        const cpuBefore = await cpuOf(child.pid!);
        const started = performance.now();
        await run(createApiClient(`http://127.0.0.1:${port}`, token));
        const seconds = (performance.now() - started) / 1000;
        const memory = await memoryOf(child.pid!);
        const cpu = (await cpuOf(child.pid!)) - cpuBefore;
        const { rows: counted } = await testDb.db.query<{ n: string }>('SELECT count(*) AS n FROM users');
        rows.push({
          variant: name,
          value: `${seconds.toFixed(1)} s (${Math.round(USERS / seconds)} users/s), API CPU ${cpu.toFixed(1)} s, peak RSS ${memory.peak.toFixed(0)} MiB (idle ${idle.now.toFixed(0)}), ${counted[0]!.n} users`,
        });
      } finally {
        child.kill();
        await once(child, 'exit').catch(() => undefined);
      }
    }
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
    await testDb.drop();
  }
}
