/**
 * An HTTP client for one SCIM target: keep-alive connection reuse, SCIM content types, bounded time, and every
 * failure classified into a `ScimRequestError` code the sync layer can decide on.
 */
import { Pool } from 'undici';
import type * as z from 'zod';
import { ScimflowError, ScimRequestError, type ErrorCode } from '../errors/index.ts';
import { Exchange, isDeadlineError, ResponseTooLarge, type Exchanged } from './exchange.ts';
import { bearerCredential, type AuthHeader, type Credential } from './credential.ts';
import { unlimited, type RequestLimiter } from './limiter.ts';
import { redactSecrets } from './redact.ts';
import { ScimErrorSchema } from './schemas.ts';

/** The HTTP methods SCIM uses. */
export type ScimMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One finished request, as reported to `onRequest` (status 0 when no response arrived). */
export interface ScimRequestInfo {
  method: string;
  path: string;
  status: number;
  durationMs: number;
}

/** How to reach and authenticate to a SCIM target. */
export interface ScimClientOptions {
  /** Base URL of the SCIM service, with or without a trailing `/`, e.g. `https://example.com/scim/v2`. */
  baseUrl: string;
  /** Bearer token, or a function that returns a fresh one for each request. */
  token?: string | (() => Promise<string>);
  /** Authenticates each request (takes precedence over `token`); a 401 invalidates it and retries once. */
  credential?: Credential;
  /** Time allowed for one request from its start to the last byte of its response (a total deadline). @default 30000 */
  timeoutMs?: number;
  /** Largest response body accepted; a bigger one is ERR_SCIM_INVALID_RESPONSE. @default 16 MiB */
  maxResponseBytes?: number;
  /** Most sockets kept open to the target, and so most requests in flight (one at a time on each). @default 16 */
  connections?: number;
  /**
   * Lets one request wait on each socket behind the one in flight, written the moment its answer has been read. Else
   * a socket is taken again only once the event loop reaches its check phase (undici makes sure a reused keep-alive
   * socket was not closed meanwhile): on a busy worker that held each request 1-5 ms unsent, a fifth of what a target
   * 20 ms away could take (scale bench). For a caller that keeps about twice `connections` requests going. Requests
   * are never pipelined either way: one is written only once the answer before it is complete. @default false
   */
  queueBehind?: boolean;
  /** `User-Agent` header. @default 'scimflow' */
  userAgent?: string;
  /** Called after every request, successful or not; must not throw (errors are swallowed). */
  onRequest?: (info: ScimRequestInfo) => void;
  /** Paces requests to the target (the shared rate budget). @default unlimited */
  limiter?: RequestLimiter;
  /** Which requests the limiter paces: all, or writes only (a target that limits only those). @default 'all' */
  paced?: 'all' | 'writes';
}

/** Per-request options: query parameters, a JSON body, and a schema the response body must match. */
export interface ScimRequestOptions<T> {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  schema?: z.ZodType<T>;
  /** Abandons the request (waiting for the limiter, sending, or reading) when it aborts; rejects with its reason. */
  signal?: AbortSignal | undefined;
  /**
   * A successful answer's body is read to its end and dropped, not kept nor parsed (`body` is undefined), so the
   * size cap does not apply to it: for a write whose answer nothing reads, such as a member PATCH a target answers
   * with the whole group (5 MB at 100,000 members). A failure's body is read as always.
   */
  discardBody?: boolean;
}

/** A successful response; `body` is undefined for 204 or an empty body. */
export interface ScimResponse<T> {
  status: number;
  body: T | undefined;
  headers: Record<string, string>;
}

/** A SCIM client bound to one base URL. */
export interface ScimClient {
  /** The base URL without a trailing slash. */
  readonly baseUrl: string;
  /** Sends one request; throws `ScimRequestError` for any non-2xx status, network failure or timeout. */
  request<T = unknown>(method: ScimMethod, path: string, options?: ScimRequestOptions<T>): Promise<ScimResponse<T>>;
  /** Closes the connection pool; pending requests finish first. */
  close(): Promise<void>;
}

const SCIM_CONTENT_TYPE = 'application/scim+json';
const MAX_DETAIL_CHARS = 500;

/** Creates a client with its own connection pool. */
export function createScimClient(options: ScimClientOptions): ScimClient {
  const url = parseBaseUrl(options.baseUrl);
  const basePath = url.pathname.replace(/\/+$/, '');
  const baseUrl = `${url.origin}${basePath}`;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const connections = options.connections ?? 16;
  const maxResponseBytes = options.maxResponseBytes ?? 16 * 1024 * 1024;
  const limiter = options.limiter ?? unlimited;
  const paceReads = (options.paced ?? 'all') === 'all';
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new TypeError('timeoutMs must be a positive integer');
  if (!Number.isInteger(connections) || connections <= 0) throw new TypeError('connections must be a positive integer');
  if (!Number.isInteger(maxResponseBytes) || maxResponseBytes <= 0) {
    throw new TypeError('maxResponseBytes must be a positive integer');
  }

  const pool = new Pool(url.origin, {
    connections,
    // Two on a socket: the one in flight and one waiting behind it (see `queueBehind`).
    ...(options.queueBehind === true ? { pipelining: 2 } : {}),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connectTimeout: Math.min(timeoutMs, 10_000),
  });

  const credential = options.credential ?? (options.token === undefined ? undefined : bearerCredential(options.token));

  async function authorize(): Promise<AuthHeader | undefined> {
    if (credential === undefined) return undefined;
    try {
      return await credential.authorization();
    } catch (error) {
      if (error instanceof ScimflowError) throw error;
      throw new ScimflowError('ERR_AUTH_TOKEN', 'could not obtain a token for the SCIM target', { cause: error });
    }
  }

  function report(info: ScimRequestInfo): void {
    try {
      options.onRequest?.(info);
    } catch {
      // An observer must never turn a finished request into a failure.
    }
  }

  async function request<T = unknown>(
    method: ScimMethod,
    path: string,
    requestOptions: ScimRequestOptions<T> = {},
  ): Promise<ScimResponse<T>> {
    if (!path.startsWith('/')) throw new TypeError(`SCIM path must start with "/": ${path}`);
    const header = await authorize();
    try {
      return await send(method, path, requestOptions, header);
    } catch (error) {
      // An expired or revoked token: the credential fetches a new one once, and this request is retried with it.
      const refused = error instanceof ScimRequestError && error.status === 401;
      if (!refused || header === undefined || !credential!.invalidate(header)) throw error;
      return send(method, path, requestOptions, await authorize());
    }
  }

  async function send<T>(
    method: ScimMethod,
    path: string,
    requestOptions: ScimRequestOptions<T>,
    header: AuthHeader | undefined,
  ): Promise<ScimResponse<T>> {
    const headers: Record<string, string> = {
      accept: `${SCIM_CONTENT_TYPE}, application/json`,
      'user-agent': options.userAgent ?? 'scimflow',
    };
    if (header !== undefined) headers[header.name.toLowerCase()] = header.value;
    let payload: string | undefined;
    if (requestOptions.body !== undefined) {
      payload = JSON.stringify(requestOptions.body);
      headers['content-type'] = SCIM_CONTENT_TYPE;
    }

    const cancel = requestOptions.signal;
    cancel?.throwIfAborted();
    // Without a limiter to pass, no await: each cost a request a promise and a turn of the microtask queue.
    const paced = limiter !== unlimited && (paceReads || method !== 'GET');
    const permit = paced ? await limiter.acquire(cancel) : undefined;
    const started = options.onRequest === undefined ? 0 : performance.now();
    let status = 0;
    let retryAfterMs: number | undefined;
    try {
      let answer: Exchanged;
      // The pool's headersTimeout/bodyTimeout bound each phase; the deadline bounds the whole (a trickling body too).
      const sent = new Exchange(pool, {
        method,
        path: `${basePath}${path}${queryString(requestOptions.query)}`,
        headers,
        body: payload ?? null,
        maxBytes: maxResponseBytes,
        discardBody: requestOptions.discardBody === true,
        timeoutMs,
        // A write once sent is not abandoned on cancellation, only at its deadline: the target may apply it anyway,
        // and its answer (a created object's id) is what lets the caller record it, and so later update or remove it.
        signal: method === 'GET' ? cancel : undefined,
      });
      try {
        answer = await sent.promise;
      } catch (error) {
        status = sent.status;
        if (cancel?.aborted) throw cancel.reason;
        if (error instanceof ResponseTooLarge) {
          throw new ScimRequestError(
            'ERR_SCIM_INVALID_RESPONSE',
            `SCIM ${method} ${path} returned ${status} with a body over ${maxResponseBytes} bytes`,
            { status, method, path },
          );
        }
        throw transportError(error, isDeadlineError(error), method, path, timeoutMs);
      }
      status = answer.status;
      const { text } = answer;
      const responseHeaders = flattenHeaders(answer.headers);
      if (status < 200 || status >= 300) {
        const error = statusError(method, path, status, text, responseHeaders, header?.secrets ?? []);
        retryAfterMs = error.retryAfterMs;
        throw error;
      }
      return {
        status,
        headers: responseHeaders,
        body: parseBody(method, path, status, text, responseHeaders, requestOptions.schema),
      };
    } finally {
      permit?.release({ status, retryAfterMs });
      if (options.onRequest !== undefined) report({ method, path, status, durationMs: performance.now() - started });
    }
  }

  return {
    baseUrl,
    request,
    close: () => pool.close(),
  };
}

/**
 * Parses a `Retry-After` header (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as milliseconds from `now`.
 * Returns undefined for a missing or unreadable value; a date in the past gives 0.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** The error code a non-2xx status maps to. */
export function classifyStatus(status: number): ErrorCode {
  if (status === 400 || status === 422) return 'ERR_SCIM_BAD_REQUEST';
  if (status === 401) return 'ERR_SCIM_UNAUTHORIZED';
  if (status === 403) return 'ERR_SCIM_FORBIDDEN';
  if (status === 404) return 'ERR_SCIM_NOT_FOUND';
  if (status === 409) return 'ERR_SCIM_CONFLICT';
  if (status === 429) return 'ERR_SCIM_RATE_LIMITED';
  // 408: the target gave up waiting for our request; sending it again may succeed.
  if (status >= 500 || status === 408) return 'ERR_SCIM_SERVER';
  // Other 4xx (405, 413, 415, …) mean this request, as shaped, will never succeed.
  return 'ERR_SCIM_BAD_REQUEST';
}

function parseBaseUrl(baseUrl: string): URL {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError(`invalid SCIM base URL: ${baseUrl}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError(`SCIM base URL must be http or https: ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new TypeError('SCIM base URL must not carry credentials, a query or a fragment');
  }
  return url;
}

function queryString(query: Record<string, string | number | undefined> | undefined): string {
  if (query === undefined) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    // encodeURIComponent writes spaces as %20; some targets read a form-style "+" literally.
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(value))}`);
  }
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}

/** Headers with one string each (a repeated header's values joined); undici's own object when it has that already. */
function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  // undici names them in lower case; only a repeated header (an array) or one named __proto__ needs a copy.
  let flatAlready = !Object.hasOwn(headers, '__proto__');
  for (const name in headers) if (typeof headers[name] !== 'string') flatAlready = false;
  if (flatAlready) return headers as Record<string, string>;
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    flat[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

function isJsonContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const mediaType = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return mediaType === 'application/json' || mediaType === SCIM_CONTENT_TYPE || mediaType.endsWith('+json');
}

function parseBody<T>(
  method: string,
  path: string,
  status: number,
  text: string,
  headers: Record<string, string>,
  schema: z.ZodType<T> | undefined,
): T | undefined {
  if (status === 204 || text.trim() === '') return undefined;
  const invalid = (why: string, cause?: unknown): ScimRequestError =>
    new ScimRequestError(
      'ERR_SCIM_INVALID_RESPONSE',
      `SCIM ${method} ${path} returned ${status} with an invalid body: ${why}`,
      { status, method, path },
      cause,
    );
  if (!isJsonContentType(headers['content-type'])) {
    throw invalid(`content type ${headers['content-type']} is not JSON`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw invalid('not JSON', error);
  }
  if (schema === undefined) return json as T;
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
      .join('; ');
    throw invalid(truncate(issues), parsed.error);
  }
  return parsed.data;
}

function statusError(
  method: string,
  path: string,
  status: number,
  text: string,
  headers: Record<string, string>,
  secrets: readonly string[],
): ScimRequestError {
  const code = classifyStatus(status);
  let scimType: string | undefined;
  let detail: string | undefined;
  try {
    const parsed = ScimErrorSchema.safeParse(JSON.parse(text));
    if (parsed.success) {
      scimType = parsed.data.scimType;
      detail = parsed.data.detail;
    }
  } catch {
    // Not JSON: an HTML error page from a proxy, say. Keep a short excerpt as the detail.
  }
  if (detail === undefined && scimType === undefined && text.trim() !== '') detail = text.trim();
  if (detail !== undefined) detail = truncate(redactSecrets(detail, secrets));
  if (scimType !== undefined) scimType = truncate(redactSecrets(scimType, secrets));
  const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(headers['retry-after']) : undefined;
  const reason = [scimType === undefined ? undefined : `(${scimType})`, detail].filter((part) => part !== undefined);
  const message = `SCIM ${method} ${path} failed with ${status}${reason.length > 0 ? `: ${reason.join(' ')}` : ''}`;
  return new ScimRequestError(code, message, { status, method, path, scimType, detail, retryAfterMs });
}

function transportError(
  error: unknown,
  timedOut: boolean,
  method: string,
  path: string,
  timeoutMs: number,
): ScimflowError {
  const undiciCode = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  // A header undici refuses to send (a credential with a control character) fails before anything reaches the target,
  // and fails the same way every time: the provider's configuration, not a network error that would be retried and
  // blamed on the target. Not a ScimRequestError, so the circuit breaker does not count it. undici's message names
  // the header only ("invalid authorization header"), never its value.
  if (undiciCode === 'UND_ERR_INVALID_ARG' && error instanceof Error && /\bheader\b/.test(error.message)) {
    return new ScimflowError(
      'ERR_CONFIG',
      `SCIM ${method} ${path} was not sent: ${truncate(error.message)}; check the provider's auth settings`,
      { details: { method, path }, cause: error },
    );
  }
  const isTimeout =
    timedOut ||
    undiciCode === 'UND_ERR_HEADERS_TIMEOUT' ||
    undiciCode === 'UND_ERR_BODY_TIMEOUT' ||
    undiciCode === 'UND_ERR_CONNECT_TIMEOUT';
  if (isTimeout) {
    return new ScimRequestError(
      'ERR_SCIM_TIMEOUT',
      `SCIM ${method} ${path} timed out after ${timeoutMs} ms`,
      { status: 0, method, path },
      error,
    );
  }
  const why =
    typeof undiciCode === 'string' ? undiciCode : error instanceof Error ? error.message : 'connection failed';
  return new ScimRequestError(
    'ERR_SCIM_NETWORK',
    `SCIM ${method} ${path} could not reach the target: ${truncate(why)}`,
    { status: 0, method, path },
    error,
  );
}

function truncate(text: string): string {
  return text.length <= MAX_DETAIL_CHARS ? text : `${text.slice(0, MAX_DETAIL_CHARS)}…`;
}
