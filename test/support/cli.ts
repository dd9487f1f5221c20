/** Runs the `scimflow` CLI as a user would, against an admin API over a test database of its own. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createApi, startApiServer } from '../../api/index.ts';
import { createSecretBox, generateSecretKey, type Db, type SecretBox } from '../../db/index.ts';
import { createMappingEngine } from '../../sandbox/index.ts';
import {
  createTestToken,
  recordingSyncControl,
  validatePluginOptions,
  type RecordingSyncControl,
} from '../api/api-harness.ts';
import { createTestDatabase } from './db.ts';

const BIN = fileURLToPath(new URL('../../cli/bin.mjs', import.meta.url));

/** How a `scimflow` run ended. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A running `scimflow` process: its output so far, and how it ended. */
export interface CliProcess {
  child: ChildProcess;
  output(): { stdout: string; stderr: string };
  done: Promise<CliResult & { signal: NodeJS.Signals | null }>;
}

/** Starts `scimflow args` as a user would (bin.mjs adds --no-node-snapshot), with `stdin` as its standard input. */
export function startScimflow(
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; stdin?: string } = {},
): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  child.stdin.end(options.stdin ?? '');
  return { child, output: () => ({ stdout, stderr }), done };
}

/** Runs `scimflow args` to its end. */
export function runScimflow(
  args: readonly string[],
  options: { env?: Record<string, string | undefined>; stdin?: string } = {},
): Promise<CliResult> {
  return startScimflow(args, options).done;
}

/** A real admin API (real plugin validation and mapping sandbox, Temporal replaced by a recorder) on a fresh database. */
export interface AdminApi {
  db: Db;
  secrets: SecretBox;
  sync: RecordingSyncControl;
  /** The environment that points the CLI at this API, with an admin token. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Starts an AdminApi on a free loopback port. */
export async function startAdminApi(): Promise<AdminApi> {
  const database = await createTestDatabase();
  const secrets = createSecretBox(generateSecretKey());
  const sync = recordingSyncControl();
  const engine = createMappingEngine();
  const app = createApi({ db: database.db, secrets, sync, validatePluginOptions, mappingEngine: engine });
  const server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
  return {
    db: database.db,
    secrets,
    sync,
    env: { SCIMFLOW_API_URL: server.url, SCIMFLOW_API_TOKEN: await createTestToken(database.db, 'admin') },
    async close() {
      await server.close();
      await engine.disposeAll();
      await database.drop();
    },
  };
}
