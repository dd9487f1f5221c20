/**
 * A Slack SCIM 2.0 emulator: SCIMMY plus what Slack documents. Sources: docs.slack.dev "SCIM API reference"
 * (reference/scim-api: DELETE /Users/<id> "Sets a Slack user to deactivated", DELETE /Groups/<id> "Permanently
 * removes a group"), docs.slack.dev "SCIM API rate limits" (reference/scim-api/rate-limits: org-wide writes
 * 600/min burst 180, reads 1000/min burst 1000, and per-endpoint limits; 429 with Retry-After), python-slack-sdk
 * SCIM docs (a user needs userName and at least one email), Okta KB articles on Slack's `username_not_allowed` and
 * `long_username` (21 characters) errors, and the 2019 changelog on paging (default 10, at most 1000 per page).
 *
 * Options: `rateScale` multiplies every documented rate (not the bursts) so tests need not wait minutes (default 1);
 * `reserved` lists userNames Slack refuses (default a few of Slack's reserved words).
 */
import type { NextFunction, Request, Response } from 'express';
import { TokenBucket, type VendorEmulator } from './emulator.ts';

/** Slack's documented limits: [method pattern, path pattern, requests per minute, burst]. */
const LIMITS: Array<[RegExp, RegExp, number, number]> = [
  [/^(POST|PUT|PATCH|DELETE)$/, /^\//, 600, 180],
  [/^GET$/, /^\//, 1000, 1000],
  [/^GET$/, /^\/Users\/[^/]+$/, 300, 300],
  [/^POST$/, /^\/Users$/, 180, 20],
  [/^(PUT|PATCH)$/, /^\/Users\/[^/]+$/, 180, 20],
  [/^DELETE$/, /^\/Users\/[^/]+$/, 180, 20],
  [/^GET$/, /^\/Groups\/[^/]+$/, 300, 300],
  [/^POST$/, /^\/Groups$/, 180, 20],
  [/^(PUT|PATCH)$/, /^\/Groups\/[^/]+$/, 180, 80],
  [/^DELETE$/, /^\/Groups\/[^/]+$/, 180, 20],
];

const emulator: VendorEmulator = {
  basePath: () => '/scim/v2',

  install({ app, basePath, users, sendError, relativePath, configure }, options) {
    const scale = typeof options.rateScale === 'number' ? options.rateScale : 1;
    const reserved = new Set(
      (Array.isArray(options.reserved) ? (options.reserved as string[]) : ['admin', 'everyone', 'channel', 'here']).map(
        (name) => name.toLowerCase(),
      ),
    );
    const buckets = LIMITS.map(([method, path, perMinute, burst]) => ({
      method,
      path,
      bucket: new TokenBucket(perMinute * scale, burst),
    }));
    // Slack's ServiceProviderConfig does not advertise filtering, though filters work (authentik forces it on).
    configure({ filter: { supported: false, maxResults: 1000 }, bulk: { supported: false } });

    app.use(basePath, (req: Request, res: Response, next: NextFunction) => {
      const path = relativePath(`${basePath}${req.path}`);
      // Every bucket the request counts against must have a token; the longest wait is the Retry-After.
      const waits = buckets
        .filter(({ method, path: pattern }) => method.test(req.method) && pattern.test(path))
        .map(({ bucket }) => bucket.take());
      const wait = Math.max(0, ...waits);
      if (wait > 0) {
        res.set('retry-after', String(Math.ceil(wait / 1000)));
        return sendError(res, 429, undefined, 'ratelimited');
      }
      const [, resource, id] = path.split('/');
      if (req.method === 'GET' && id === undefined && (resource === 'Users' || resource === 'Groups')) {
        const count = Number(req.query.count ?? 10);
        req.query.count = String(Math.min(1000, Math.max(1, Number.isFinite(count) ? count : 10)));
      }
      const body = req.body as Record<string, unknown> | undefined;
      if (resource === 'Users' && (req.method === 'POST' || req.method === 'PUT') && body) {
        const userName = typeof body.userName === 'string' ? body.userName : '';
        const emails = Array.isArray(body.emails) ? body.emails : [];
        if (userName === '') return sendError(res, 400, 'invalidValue', 'missing_username');
        if (emails.length === 0) return sendError(res, 400, 'invalidValue', `no_email (user=${userName})`);
        const handle = userName.split('@')[0]!;
        if (reserved.has(handle.toLowerCase())) {
          return sendError(res, 400, 'invalidValue', `username_not_allowed (user=${userName})`);
        }
        if (handle.length > 21) return sendError(res, 400, 'invalidValue', `long_username (user=${userName})`);
      }
      // DELETE /Users/<id> deactivates: the user stays, readable, with active false.
      if (resource === 'Users' && req.method === 'DELETE' && id !== undefined) {
        const user = users.get(decodeURIComponent(id));
        if (user === undefined) return sendError(res, 404, undefined, 'user_not_found');
        user.active = false;
        return res.status(204).end();
      }
      next();
    });
  },
};

export default emulator;
