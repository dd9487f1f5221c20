/**
 * The seam between the SCIMMY test server and a vendor emulator: an emulator mounts the server where the vendor
 * does and adds the vendor's documented quirks as Express middleware in front of SCIMMY (refusals with the vendor's
 * error bodies, rate limits, responses trimmed as the vendor trims them). It runs inside the server's worker.
 */
import type { Express, Request, Response } from 'express';

/** A stored resource of the SCIMMY server's in-memory store. */
export type Stored = Record<string, unknown> & { id: string; meta: { created: string; lastModified: string } };

/** What the server hands an emulator to build on. */
export interface EmulatorHost {
  /** The server's Express app; middleware added now runs after request logging and faults, before SCIMMY. */
  app: Express;
  /** Where SCIM is mounted (`basePath()` of the emulator). */
  basePath: string;
  users: Map<string, Stored>;
  groups: Map<string, Stored>;
  /** Answers with an RFC 7644 error body. */
  sendError: (res: Response, status: number, scimType: string | undefined, detail: string) => void;
  /** The request path relative to the SCIM base (`/Users/abc`). */
  relativePath: (path: string) => string;
  /** Sets what SCIMMY advertises in its ServiceProviderConfig. */
  configure: (config: Record<string, unknown>) => void;
}

/** A vendor emulator module's default export. */
export interface VendorEmulator {
  /** Where the vendor serves SCIM, e.g. `/TENANT/scim/v2`. */
  basePath(options: Record<string, unknown>): string;
  /** Adds the vendor's quirks. */
  install(host: EmulatorHost, options: Record<string, unknown>): void;
}

/** Lets `edit` change each JSON body this response sends (SCIMMY's answers, once it has written them). */
export function rewriteJson(res: Response, edit: (body: Record<string, unknown>) => Record<string, unknown>): void {
  const send = res.send.bind(res);
  res.send = (body?: unknown) => {
    if (typeof body !== 'string' || !body.startsWith('{')) return send(body);
    return send(JSON.stringify(edit(JSON.parse(body) as Record<string, unknown>)));
  };
}

/** A token bucket: `perMinute` refill, `burst` capacity; `take` says how long to wait when it is empty. */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();
  private readonly perMinute: number;
  private readonly burst: number;
  constructor(perMinute: number, burst: number) {
    this.perMinute = perMinute;
    this.burst = burst;
    this.tokens = burst;
  }

  /** Takes a token and returns 0, or returns the milliseconds until one is there (taking nothing). */
  take(): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perMinute) / 60_000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute);
  }
}

/** The request's members of a group body or PATCH operations, counted as membership changes. */
export function memberChanges(req: Request): number {
  const body = req.body as { members?: unknown[]; Operations?: Array<{ path?: string; value?: unknown }> } | undefined;
  if (body?.Operations === undefined) return body?.members?.length ?? 0;
  return body.Operations.reduce((count, operation) => {
    const path = operation.path?.toLowerCase() ?? '';
    if (!path.startsWith('members')) return count;
    if (Array.isArray(operation.value)) return count + operation.value.length;
    return count + 1;
  }, 0);
}
