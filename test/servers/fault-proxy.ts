/**
 * A fault-injecting HTTP proxy to put in front of a SCIM target: it answers some requests with 5xx or 429 (with a
 * `Retry-After` in seconds or as an HTTP-date), breaks the connection before forwarding a request or after the
 * target answered it (the write happened, the client never hears), and delays others. Which fault a request gets is
 * drawn from a seeded hash of the request itself (method, path, body, and how many times the same request came
 * before), so a run's faults do not depend on how concurrent requests interleave, and a retry draws afresh.
 */
import { createHash } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the proxy did with one request. */
export type FaultKind =
  'none' | 'server-error' | 'rate-limited' | 'reset-before' | 'reset-after' | 'slow' | 'over-limit' | 'held';

/** Chance (0–1) of each fault per request; they are drawn from one uniform number, so their sum must be ≤ 1. */
export interface FaultRates {
  /** Answer 500, 502 or 503 without forwarding. */
  serverError?: number;
  /** Answer 429 with `Retry-After` without forwarding. */
  rateLimited?: number;
  /** Close the client's connection without forwarding: the target never sees the request. */
  resetBefore?: number;
  /** Forward, let the target answer, then close the client's connection instead of relaying the answer. */
  resetAfter?: number;
  /** Forward, then relay the answer `slowMs` late. */
  slow?: number;
}

/** How to start a proxy. */
export interface FaultProxyOptions {
  /** The target's base URL (e.g. `http://127.0.0.1:PORT/scim/v2`); the proxy serves the same path. */
  target: string;
  /** Seed of the fault draws. @default 1 */
  seed?: number;
  /** Fault chances per request. @default no faults */
  rates?: FaultRates;
  /**
   * `Retry-After` of a 429: whole seconds, sent as delay-seconds or (for every other 429, by the draw) as an
   * HTTP-date that far ahead; `format` picks one form only. @default { seconds: 1, format: 'both' }
   */
  retryAfter?: { seconds: number; format?: 'seconds' | 'date' | 'both' };
  /** Delay of a `slow` answer. @default 200 */
  slowMs?: number;
  /** Latency added to every forwarded request (a remote SaaS rather than loopback). @default 0 */
  latencyMs?: number;
  /**
   * Writes (POST, PUT, PATCH, DELETE) allowed per second, over a one-second window; writes beyond it are answered
   * 429 with `Retry-After: 1` (`over-limit`). @default unlimited
   */
  writesPerSecond?: number;
  /** Milliseconds for the write limit's window. @default performance.now */
  clock?: () => number;
  /** Which requests may get a fault (others are always forwarded); `path` includes the query. @default all */
  applies?: (request: { method: string; path: string; body: string }) => boolean;
  /**
   * The first request this matches is held: never forwarded nor answered, until its client gives up and closes
   * the connection (`held`; its log entry then gets `abandoned`). @default none
   */
  holdFirst?: (request: { method: string; path: string; body: string }) => boolean;
}

/** One request the proxy handled; `path` is relative to the base path, `status` 0 when the connection was cut. */
export interface ProxiedRequest {
  method: string;
  path: string;
  fault: FaultKind;
  status: number;
  /** Order of its arrival among the proxy's events (arrivals, and clients abandoning held requests). */
  arrived: number;
  /** For a held request, the order of the event of its client closing the connection, once it has. */
  abandoned?: number;
}

/** When the proxy received one request and when it answered it (or cut it), in ms since the epoch (`performance.timeOrigin` + `performance.now()`). */
export interface RequestTiming {
  method: string;
  /** Relative to the base path, as in {@link ProxiedRequest}. */
  path: string;
  /** The object the request is about: a create's userName or displayName, else the path (a lookup's with its filter). */
  subject: string;
  fault: FaultKind;
  arrivedMs: number;
  endedMs: number | undefined;
  /** For a 429, how long its Retry-After asked the client to wait, in ms. */
  askedMs?: number;
}

/** The object a request is about (see {@link RequestTiming.subject}). */
function subjectOf(method: string, path: string, body: string): string {
  if (method === 'POST') {
    try {
      const parsed = JSON.parse(body) as { userName?: unknown; displayName?: unknown };
      const name = parsed.userName ?? parsed.displayName;
      if (typeof name === 'string') return name;
    } catch {
      // Not JSON: the path says what it is about.
    }
  }
  return path;
}

/** A running proxy. */
export interface FaultProxy {
  /** The proxy's base URL: the target's base path on the proxy's port. */
  readonly url: string;
  /** Every request handled since start (or the last `resetLog`), in arrival order. */
  requests(): ProxiedRequest[];
  /** How many requests got each fault. */
  counts(): Record<FaultKind, number>;
  /** When each request arrived and was answered or cut (ms since the epoch, to the microsecond), in arrival order. */
  timings(): RequestTiming[];
  /** Changes the fault chances for the requests from now on (e.g. no faults for a final check). */
  setRates(rates: FaultRates): void;
  /** Forgets the request log. */
  resetLog(): void;
  /** Stops accepting, cuts open connections, and closes. */
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te']);
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** A uniform number in [0, 1) from the seed and a request's identity. */
function draw(seed: number, identity: string): number {
  const digest = createHash('sha256').update(`${seed}\n${identity}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

function pick(rates: FaultRates, u: number): FaultKind {
  let edge = 0;
  for (const [kind, rate] of [
    ['server-error', rates.serverError],
    ['rate-limited', rates.rateLimited],
    ['reset-before', rates.resetBefore],
    ['reset-after', rates.resetAfter],
    ['slow', rates.slow],
  ] as const) {
    edge += rate ?? 0;
    if (u < edge) return kind;
  }
  return 'none';
}

function checkRates(rates: FaultRates): FaultRates {
  const values = Object.values(rates) as number[];
  if (values.some((v) => !(v >= 0 && v <= 1)) || values.reduce((a, b) => a + b, 0) > 1 + 1e-9) {
    throw new RangeError('fault rates must each be within 0..1 and sum to at most 1');
  }
  return { ...rates };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function scimError(status: number, detail: string): string {
  return JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: String(status), detail });
}

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a proxy on a free loopback port in front of `options.target`. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const basePath = target.pathname.replace(/\/+$/, '');
  const seed = options.seed ?? 1;
  const retryAfter = { seconds: 1, format: 'both' as const, ...options.retryAfter };
  const slowMs = options.slowMs ?? 200;
  const latencyMs = options.latencyMs ?? 0;
  let rates = checkRates(options.rates ?? {});
  let log: ProxiedRequest[] = [];
  let timings: RequestTiming[] = [];
  const seen = new Map<string, number>();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const clock = options.clock ?? (() => performance.now());
  let window = { start: -Infinity, writes: 0 };
  let events = 0;
  let holding = options.holdFirst;

  function overLimit(method: string): boolean {
    if (options.writesPerSecond === undefined || !WRITES.has(method)) return false;
    const now = clock();
    if (now - window.start >= 1000) window = { start: now, writes: 0 };
    if (window.writes >= options.writesPerSecond) return true;
    window.writes += 1;
    return false;
  }

  function forward(
    req: IncomingMessage,
    path: string,
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value === undefined || HOP_BY_HOP.has(name) || name === 'host' || name === 'content-length') continue;
        headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      headers['content-length'] = String(body.length);
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: `${basePath}${path}`, headers, agent },
        (res) => {
          readBody(res).then((data) => {
            const out: Record<string, string> = {};
            for (const [name, value] of Object.entries(res.headers)) {
              if (value === undefined || HOP_BY_HOP.has(name) || name === 'content-length') continue;
              out[name] = Array.isArray(value) ? value.join(', ') : value;
            }
            resolve({ status: res.statusCode ?? 502, headers: out, body: data });
          }, reject);
        },
      );
      upstream.on('error', reject);
      upstream.end(body);
    });
  }

  function answer(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer | string): void {
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { ...headers, 'content-length': String(data.length) });
    res.end(data);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrivedMs = performance.timeOrigin + performance.now();
    const method = (req.method ?? 'GET').toUpperCase();
    const url = req.url ?? '/';
    const path = url.startsWith(basePath) ? url.slice(basePath.length) || '/' : url;
    const body = await readBody(req);
    const text = body.toString('utf8');
    const identity = `${method} ${path}\n${text}`;
    const occurrence = (seen.get(identity) ?? 0) + 1;
    seen.set(identity, occurrence);
    const u = draw(seed, `${identity}\n${occurrence}`);
    const applies = options.applies?.({ method, path, body: text }) ?? true;
    let fault: FaultKind = applies ? pick(rates, u) : 'none';
    if (holding?.({ method, path, body: text })) {
      holding = undefined;
      fault = 'held';
    }
    if (fault === 'none' && overLimit(method)) fault = 'over-limit';
    const entry: ProxiedRequest = { method, path, fault, status: 0, arrived: (events += 1) };
    log.push(entry);
    const timing: RequestTiming = {
      method,
      path,
      subject: subjectOf(method, path, text),
      fault,
      arrivedMs,
      endedMs: undefined,
    };
    timings.push(timing);
    res.on('close', () => {
      timing.endedMs = performance.timeOrigin + performance.now();
    });
    if (fault === 'held') {
      res.on('close', () => {
        entry.abandoned = events += 1;
      });
      return;
    }
    const cut = (): void => {
      req.socket.destroy();
    };
    switch (fault) {
      case 'server-error': {
        entry.status = [500, 502, 503][Math.floor(u * 1e6) % 3]!;
        return answer(
          res,
          entry.status,
          { 'content-type': 'application/scim+json' },
          scimError(entry.status, 'injected fault'),
        );
      }
      case 'rate-limited':
      case 'over-limit': {
        const seconds = fault === 'over-limit' ? 1 : retryAfter.seconds;
        const asDate =
          fault === 'rate-limited' &&
          (retryAfter.format === 'date' || (retryAfter.format === 'both' && Math.floor(u * 1e6) % 2 === 1));
        // An HTTP-date has whole seconds: one second more, so the wait is never shorter than asked.
        const until = Date.now() + (seconds + 1) * 1000;
        const value = asDate ? new Date(until).toUTCString() : String(seconds);
        timing.askedMs = asDate ? Math.floor(until / 1000) * 1000 - Date.now() : seconds * 1000;
        entry.status = 429;
        return answer(
          res,
          429,
          { 'content-type': 'application/scim+json', 'retry-after': value },
          scimError(429, 'injected throttling'),
        );
      }
      case 'reset-before':
        return cut();
      default:
        break;
    }
    if (latencyMs > 0) await wait(latencyMs);
    let upstream;
    try {
      upstream = await forward(req, path, body);
    } catch {
      entry.status = 502;
      return answer(res, 502, { 'content-type': 'application/scim+json' }, scimError(502, 'target unreachable'));
    }
    if (fault === 'reset-after') return cut();
    if (fault === 'slow') await wait(slowMs);
    entry.status = upstream.status;
    answer(res, upstream.status, upstream.headers, upstream.body);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy());
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}${basePath}`,
    requests: () => [...log],
    timings: () => [...timings],
    counts() {
      const counts: Record<FaultKind, number> = {
        none: 0,
        'server-error': 0,
        'rate-limited': 0,
        'reset-before': 0,
        'reset-after': 0,
        slow: 0,
        'over-limit': 0,
        held: 0,
      };
      for (const entry of log) counts[entry.fault] += 1;
      return counts;
    },
    setRates(next) {
      rates = checkRates(next);
    },
    resetLog() {
      log = [];
      timings = [];
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      });
      return closed;
    },
  };
}
