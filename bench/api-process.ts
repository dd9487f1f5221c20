/**
 * The admin API alone in a process of its own over the database at argv[2], for benchmarks that measure its memory
 * (the parent reads its peak RSS from /proc). Prints `LISTENING <port>` when ready.
 */
import { createApi, startApiServer } from '../api/index.ts';
import { createDb, createSecretBox, generateSecretKey } from '../db/index.ts';
import { recordingSyncControl, validatePluginOptions } from '../test/api/api-harness.ts';

const db = createDb(process.argv[2]!, { max: 4, applicationName: 'scimflow-bench-api' });
const app = createApi({
  db,
  secrets: createSecretBox(generateSecretKey()),
  sync: recordingSyncControl(),
  validatePluginOptions,
});
const server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
console.log(`LISTENING ${new URL(server.url).port}`);
