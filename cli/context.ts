import type { Db } from '../db/index.ts';
import type { ApiClient } from './api-client.ts';
import type { Output } from './output.ts';

/** What every command gets: the API client (built from the global options on first use) and the output. */
export interface CliContext {
  api(): ApiClient;
  /** The API base URL the commands talk to (--api-url, SCIMFLOW_API_URL or the default). */
  apiUrl(): string;
  /** Runs `fn` on a migrated DATABASE_URL pool, closed afterwards (for the commands that need no API). */
  withDatabase<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  output: Output;
  /** Sets the exit code of the command without throwing (e.g. a sync that finished with failures). */
  fail(code: number): void;
}
