import type { ApiClient } from './api-client.ts';
import type { Output } from './output.ts';

/** What every command gets: the API client (built from the global options on first use) and the output. */
export interface CliContext {
  api(): ApiClient;
  output: Output;
  /** Sets the exit code of the command without throwing (e.g. a sync that finished with failures). */
  fail(code: number): void;
}
