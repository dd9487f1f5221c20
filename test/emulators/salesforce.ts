/**
 * A Salesforce SCIM emulator: SCIMMY plus what Salesforce documents (sources in plugins/salesforce/index.ts).
 * ServiceProviderConfigs only (the singular path is 404); a user needs an email-form userName and a known profile
 * entitlement; users cannot be deleted (405) and public groups neither created nor deleted (405); at most 200
 * results per page; emails come back with `"primary": "true"` as a string, as in Salesforce's own example.
 *
 * Options: `profiles` (the profile ids that exist, default `['00e000000000001AAA']`).
 */
import type { NextFunction, Request, Response } from 'express';
import { rewriteJson, type VendorEmulator } from './emulator.ts';

const SPC = {
  schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
  patch: { supported: true },
  bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
  filter: { supported: true, maxResults: 200 },
  changePassword: { supported: true },
  sort: { supported: false },
  etag: { supported: false },
  authenticationSchemes: [{ type: 'oauth2', name: 'OAuth 2.0', description: 'OAuth 2.0 access token' }],
};

/** Emails as Salesforce writes them: `primary` a string. */
function stringPrimary(user: Record<string, unknown>): Record<string, unknown> {
  if (!Array.isArray(user.emails)) return user;
  return {
    ...user,
    emails: (user.emails as Array<Record<string, unknown>>).map((email) =>
      typeof email.primary === 'boolean' ? { ...email, primary: String(email.primary) } : email,
    ),
  };
}

const emulator: VendorEmulator = {
  basePath: () => '/services/scim/v2',

  install({ app, basePath, sendError, relativePath }, options) {
    const profiles = new Set(Array.isArray(options.profiles) ? (options.profiles as string[]) : ['00e000000000001AAA']);
    app.use(basePath, (req: Request, res: Response, next: NextFunction) => {
      const path = relativePath(`${basePath}${req.path}`);
      const [, resource, id] = path.split('/');
      if (path === '/ServiceProviderConfigs' && req.method === 'GET') return res.type('application/json').send(SPC);
      if (path === '/ServiceProviderConfig')
        return sendError(res, 404, undefined, 'The requested resource does not exist');
      if (resource === 'Bulk') return sendError(res, 404, undefined, 'The requested resource does not exist');
      if (
        (resource === 'Users' && req.method === 'DELETE') ||
        (resource === 'Groups' && /^(POST|DELETE)$/.test(req.method))
      ) {
        return sendError(res, 405, undefined, `${req.method} is not supported on ${resource}`);
      }
      if (req.method === 'GET' && id === undefined && (resource === 'Users' || resource === 'Groups')) {
        const count = Number(req.query.count ?? 200);
        req.query.count = String(Math.min(200, Math.max(1, Number.isFinite(count) ? count : 200)));
      }
      const body = req.body as Record<string, unknown> | undefined;
      if (resource === 'Users' && (req.method === 'POST' || req.method === 'PUT') && body) {
        if (typeof body.userName !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(body.userName)) {
          return sendError(res, 400, 'invalidValue', 'userName must be in the form of an email address');
        }
        const entitlements = Array.isArray(body.entitlements) ? (body.entitlements as Array<{ value?: unknown }>) : [];
        if (!entitlements.some((entitlement) => profiles.has(String(entitlement.value)))) {
          return sendError(res, 400, 'invalidValue', 'a Profile entitlement is required');
        }
      }
      if (resource === 'Users') {
        rewriteJson(res, (out) =>
          Array.isArray(out.Resources)
            ? { ...out, Resources: (out.Resources as Array<Record<string, unknown>>).map(stringPrimary) }
            : stringPrimary(out),
        );
      }
      next();
    });
  },
};

export default emulator;
