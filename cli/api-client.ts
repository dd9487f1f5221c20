/** A small client of the scimflow admin API for the CLI. */

/** One field-level problem reported by the API. */
export interface ApiIssue {
  path: string;
  message: string;
}

/** The API answered with an error, or could not be reached (`ERR_API_UNREACHABLE`). */
export class ApiClientError extends Error {
  readonly code: string;
  readonly status: number;
  readonly issues: readonly ApiIssue[];

  constructor(code: string, message: string, status: number, issues: readonly ApiIssue[] = []) {
    super(message);
    this.name = 'ApiClientError';
    this.code = code;
    this.status = status;
    this.issues = issues;
  }
}

/** The API base URL the CLI talks to: `SCIMFLOW_API_URL`, else the default local API. */
export const DEFAULT_API_URL = 'http://127.0.0.1:7400';

/** Calls on `/api/v1`; every method throws ApiClientError on a non-2xx answer. */
export interface ApiClient {
  readonly baseUrl: string;
  get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  /** Sends `body` as it is read, as `contentType` (a streamed import: `application/x-ndjson`). */
  postStream<T>(path: string, body: ReadableStream<Uint8Array>, contentType: string): Promise<T>;
  patch<T>(path: string, body: unknown): Promise<T>;
  put<T>(path: string, body: unknown): Promise<T>;
  delete(path: string): Promise<void>;
}

function parseErrorBody(text: string): { code: string; message: string; issues: ApiIssue[] } | null {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; issues?: unknown } };
    const error = body.error;
    if (!error || typeof error.code !== 'string' || typeof error.message !== 'string') return null;
    const issues = Array.isArray(error.issues) ? (error.issues as ApiIssue[]) : [];
    return { code: error.code, message: error.message, issues };
  } catch {
    return null;
  }
}

/** What to do when the CLI has no token to send. */
const NO_TOKEN_HINT =
  'set SCIMFLOW_API_TOKEN, or save a token with `scimflow tokens create --name NAME --role ROLE --save`';

/** Builds a client of the API at `baseUrl` (e.g. `http://127.0.0.1:7400`) sending `token` as a bearer token. */
export function createApiClient(baseUrl: string, token?: string): ApiClient {
  const root = baseUrl.replace(/\/+$/, '');
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> =>
    send(method, path, body === undefined ? undefined : { data: JSON.stringify(body), type: 'application/json' });
  const send = async (
    method: string,
    path: string,
    body?: { data: string | ReadableStream<Uint8Array>; type: string },
  ): Promise<unknown> => {
    let response: Response;
    try {
      response = await fetch(`${root}/api/v1${path}`, {
        method,
        headers: {
          accept: 'application/json',
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': body.type }),
        },
        // A stream is sent as it is read (chunked), which fetch allows only in half-duplex.
        ...(body === undefined ? {} : { body: body.data, duplex: 'half' as const }),
      });
    } catch (error) {
      const reason =
        error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
      throw new ApiClientError(
        'ERR_API_UNREACHABLE',
        `cannot reach the scimflow API at ${root} (${reason}); is it running? (SCIMFLOW_API_URL)`,
        0,
      );
    }
    const text = await response.text();
    if (!response.ok) {
      const parsed = parseErrorBody(text);
      if (parsed && response.status === 401 && token === undefined) {
        throw new ApiClientError(parsed.code, `${parsed.message}; ${NO_TOKEN_HINT}`, response.status, parsed.issues);
      }
      if (parsed) throw new ApiClientError(parsed.code, parsed.message, response.status, parsed.issues);
      throw new ApiClientError(
        'ERR_HTTP',
        `${method} ${path} answered ${response.status} ${response.statusText}`,
        response.status,
      );
    }
    return text === '' ? undefined : (JSON.parse(text) as unknown);
  };
  return {
    baseUrl: root,
    async get<T>(path: string, query: Record<string, string | number | undefined> = {}) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
      const search = params.size > 0 ? `?${params.toString()}` : '';
      return (await call('GET', `${path}${search}`)) as T;
    },
    async post<T>(path: string, body?: unknown) {
      return (await call('POST', path, body)) as T;
    },
    async postStream<T>(path: string, body: ReadableStream<Uint8Array>, contentType: string) {
      return (await send('POST', path, { data: body, type: contentType })) as T;
    },
    async patch<T>(path: string, body: unknown) {
      return (await call('PATCH', path, body)) as T;
    },
    async put<T>(path: string, body: unknown) {
      return (await call('PUT', path, body)) as T;
    },
    async delete(path: string) {
      await call('DELETE', path);
    },
  };
}
