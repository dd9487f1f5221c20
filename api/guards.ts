/**
 * Guards that make the admin API hard to drive from a web page: a Host allowlist (DNS rebinding), an Origin check
 * (cross-site requests), JSON-only write bodies (no "simple" cross-site POST) and a nesting limit on JSON bodies.
 */
import type { MiddlewareHandler } from 'hono';
import { ScimflowError, ValidationError } from '../errors/index.ts';

/** Host names the API answers to when none are configured: the loopback names. */
export const LOOPBACK_HOSTS: readonly string[] = ['localhost', '127.0.0.1', '[::1]'];
/** Deepest nesting of arrays and objects a JSON body may have. */
export const MAX_JSON_DEPTH = 64;

/** Which requests the API accepts. */
export interface RequestPolicy {
  /** Host names (no port) the API answers to; `*` allows any (only behind a proxy that checks Host itself). */
  allowedHosts: readonly string[];
  /** Origins (`https://console.example.com`) allowed besides the API's own, for browsers calling it. */
  allowedOrigins: readonly string[];
}

const WRITE_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Refuses (403) a request whose Host is not allowed, or whose Origin is present and neither its own nor allowed. */
export function hostAndOriginGuard(policy: RequestPolicy): MiddlewareHandler {
  const hosts = new Set(policy.allowedHosts.map((host) => host.toLowerCase()));
  const origins = new Set(policy.allowedOrigins.map((origin) => origin.toLowerCase().replace(/\/+$/, '')));
  return async (c, next) => {
    const url = new URL(c.req.url);
    if (!hosts.has('*') && !hosts.has(url.hostname.toLowerCase())) {
      throw new ScimflowError(
        'ERR_FORBIDDEN',
        `host "${url.hostname}" is not one this API answers to (SCIMFLOW_API_ALLOWED_HOSTS)`,
        { details: { reason: 'host' } },
      );
    }
    const origin = c.req.header('origin');
    if (
      origin !== undefined &&
      origin.toLowerCase() !== url.origin.toLowerCase() &&
      !origins.has(origin.toLowerCase())
    ) {
      throw new ScimflowError(
        'ERR_FORBIDDEN',
        `cross-origin requests from ${origin} are not allowed (SCIMFLOW_API_ALLOWED_ORIGINS)`,
        { details: { reason: 'origin' } },
      );
    }
    await next();
  };
}

/** Refuses (415) a write whose body, or declared body type, is anything but `mediaType`. */
export function bodyTypeGuard(mediaType: string): MiddlewareHandler {
  return async (c, next) => {
    if (WRITE_METHODS.has(c.req.method)) {
      const type = c.req.header('content-type');
      const length = c.req.header('content-length');
      const hasBody = (length !== undefined && length !== '0') || c.req.header('transfer-encoding') !== undefined;
      const given = type?.split(';')[0]?.trim().toLowerCase();
      if ((type !== undefined || hasBody) && given !== mediaType) {
        throw new ScimflowError(
          'ERR_UNSUPPORTED_MEDIA_TYPE',
          `request bodies must be ${mediaType}, not ${type ?? 'untyped'}`,
          { details: { contentType: type ?? null } },
        );
      }
    }
    await next();
  };
}

/** Refuses (415) a write whose body, or declared body type, is anything but `application/json`. */
export const jsonBodyGuard: MiddlewareHandler = bodyTypeGuard('application/json');

/**
 * Refuses (415) a write whose body is not `application/x-ndjson`, the type of streamed bodies: not one a web page can
 * send cross-site without a preflight, as `application/json` is not.
 */
export const ndjsonBodyGuard: MiddlewareHandler = bodyTypeGuard('application/x-ndjson');

/** Throws ERR_VALIDATION when `value` nests arrays and objects deeper than `maxDepth`; iterative, so any depth is safe. */
export function assertJsonDepth(value: unknown, maxDepth: number = MAX_JSON_DEPTH): void {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > maxDepth) {
      throw new ValidationError(`request body nests deeper than ${maxDepth} levels`, [
        { path: '', message: `nests deeper than ${maxDepth} levels` },
      ]);
    }
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
}
