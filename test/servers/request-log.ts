/**
 * What every test target's server does in front of its SCIM implementation, whichever that is (SCIMMY, better-auth):
 * it logs each request with the status answered, and answers the next matching requests with canned faults.
 */
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { FaultRule, ReceivedRequest } from './scim-target-types.ts';

const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const SCIM_JSON = 'application/scim+json';

/** Answers with an RFC 7644 §3.12 error body. */
export function sendScimError(res: Response, status: number, scimType: string | undefined, detail: string): void {
  const body = { schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: String(status), scimType, detail };
  res.status(status).type(SCIM_JSON).send(JSON.stringify(body));
}

/**
 * An Express app that logs every request, parses JSON bodies (a malformed one is a 400 invalidSyntax) and answers
 * what a fault rule matches; the SCIM implementation is mounted on it after.
 */
export function createTargetApp(relativePath: (path: string) => string): {
  app: Express;
  requestLog: ReturnType<typeof createRequestLog>;
} {
  const requestLog = createRequestLog(relativePath);
  const app = express();
  app.disable('x-powered-by');
  app.use(requestLog.record);
  app.use(express.json({ type: [SCIM_JSON, 'application/json'], limit: '10mb' }));
  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (error === undefined) return next();
    sendScimError(res, 400, 'invalidSyntax', 'request body is not valid JSON');
  });
  app.use(requestLog.injectFaults());
  return { app, requestLog };
}

/** A request log and fault queue; `relativePath` turns a request path into one relative to the SCIM base. */
export function createRequestLog(relativePath: (path: string) => string) {
  let log: ReceivedRequest[] = [];
  let faults: Array<FaultRule & { remaining: number }> = [];

  function faultFor(req: Request, path: string): (FaultRule & { remaining: number }) | undefined {
    const body = req.body as { userName?: unknown } | undefined;
    return faults.find(
      (rule) =>
        (rule.method === undefined || rule.method.toUpperCase() === req.method) &&
        (rule.pathPrefix === undefined || path.startsWith(rule.pathPrefix)) &&
        (rule.match?.userName === undefined || body?.userName === rule.match.userName),
    );
  }

  return {
    /** Logs the request; mount it first, so the body parsed later and the final status are in the entry. */
    record: (req: Request, res: Response, next: NextFunction): void => {
      const entry: ReceivedRequest = {
        method: req.method,
        path: relativePath(req.path),
        query: structuredClone(req.query),
        body: undefined,
        status: 0,
        at: Date.now(),
        ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
      };
      log.push(entry);
      const hasBody = (req.headers['content-length'] ?? '0') !== '0' || req.headers['transfer-encoding'] !== undefined;
      res.on('finish', () => {
        entry.body = hasBody && req.body !== undefined ? structuredClone(req.body) : undefined;
        entry.status = res.statusCode;
      });
      next();
    },

    /** Answers a request a fault rule matches (mount it after body parsing). */
    injectFaults() {
      return (req: Request, res: Response, next: NextFunction): void => {
        const rule = faultFor(req, relativePath(req.path));
        if (rule === undefined) return next();
        rule.remaining -= 1;
        if (rule.remaining <= 0) faults = faults.filter((candidate) => candidate !== rule);
        res.status(rule.status).set(rule.headers ?? {});
        if (rule.body === undefined)
          return sendScimError(res, rule.status, undefined, `injected failure ${rule.status}`);
        res.type(SCIM_JSON).send(JSON.stringify(rule.body));
      };
    },

    requests: (): ReceivedRequest[] => log,
    writes: (): number => log.filter((entry) => WRITES.has(entry.method)).length,
    resetLog: (): void => {
      log = [];
    },
    failNext: (rule: FaultRule): void => {
      const times = rule.times ?? 1;
      if (!Number.isInteger(times) || times < 1) throw new TypeError('times must be a positive integer');
      faults.push({ ...rule, remaining: times });
    },
  };
}
