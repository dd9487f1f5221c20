/* eslint-disable @typescript-eslint/no-explicit-any -- SCIM bodies are untyped JSON: the assertions are what check their shape */
/** A running API with inbound SCIM sources on a database of its own, and a SCIM client for the tests. */
import { createApi, startApiServer, type ApiServer, type SourceApiOptions } from '../../api/index.ts';
import {
  createSecretBox,
  createSource,
  generateSecretKey,
  type Db,
  type SourceInput,
  type SourceWithToken,
} from '../../db/index.ts';
import { recordingSyncControl, validatePluginOptions } from '../api/api-harness.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

/** A SCIM response as a test sees it. */
export interface ScimResponse<T = Record<string, any>> {
  status: number;
  headers: Headers;
  body: T;
}

/** One source: its base URL, token and a client bound to both. */
export interface TestSource extends SourceWithToken {
  base: string;
  /** Sends a SCIM request with this source's token unless `token` says otherwise (null: no Authorization). */
  scim<T = Record<string, any>>(
    method: string,
    path: string,
    body?: unknown,
    options?: { token?: string | null; headers?: Record<string, string> },
  ): Promise<ScimResponse<T>>;
}

/** The API server with its database. */
export interface SourceHarness {
  db: Db;
  database: TestDatabase;
  server: ApiServer;
  addSource(input: Partial<SourceInput> & { slug: string }): Promise<TestSource>;
  close(): Promise<void>;
}

/** Starts the API (with the given source settings) on a fresh database. */
export async function startSourceHarness(sources: SourceApiOptions = {}): Promise<SourceHarness> {
  const database = await createTestDatabase();
  const app = createApi({
    db: database.db,
    secrets: createSecretBox(generateSecretKey()),
    sync: recordingSyncControl(),
    validatePluginOptions,
    sources,
    // A 500 is a bug: print its cause so the failing test shows it.
    log: { error: (obj, msg) => console.error(msg, obj), warn: () => undefined, debug: () => undefined },
  });
  const server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
  return {
    db: database.db,
    database,
    server,
    async addSource(input) {
      const created = await createSource(database.db, { deletePolicy: 'delete', claim: false, ...input });
      const base = `${server.url}/source/scim/${input.slug}/v2`;
      return {
        ...created,
        base,
        async scim(method, path, body, options = {}) {
          const token = options.token === undefined ? created.token : options.token;
          const headers: Record<string, string> = { ...options.headers };
          if (token !== null) headers['authorization'] = `Bearer ${token}`;
          if (body !== undefined) headers['content-type'] ??= 'application/scim+json';
          const response = await fetch(`${base}${path}`, {
            method,
            headers,
            ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
          });
          const text = await response.text();
          return {
            status: response.status,
            headers: response.headers,
            body: (text ? JSON.parse(text) : undefined) as never,
          };
        },
      };
    },
    async close() {
      await server.close();
      await database.drop();
    },
  };
}
