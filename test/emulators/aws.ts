/**
 * An AWS IAM Identity Center SCIM emulator: SCIMMY plus the limits AWS documents in its SCIM implementation guide
 * (docs.aws.amazon.com/singlesignon/latest/developerguide: limitations.html, createuser.html, patchuser.html,
 * creategroup.html, patchgroup.html, getgroup.html, listgroups.html).
 *
 * Options: `tenant` (the tenant id in the path, default `tenant-1`), `writesPerSecond` (a throttle answering 429
 * ThrottlingException; AWS publishes no number, default none).
 */
import type { NextFunction, Request, Response } from 'express';
import { memberChanges, rewriteJson, TokenBucket, type VendorEmulator } from './emulator.ts';

/** Attributes CreateUser and PutUser refuse (createuser.html, "Not supported"). */
const UNSUPPORTED_USER_ATTRIBUTES = ['password', 'ims', 'photos', 'x509Certificates', 'entitlements', 'groups'];
/** Attributes PatchGroup accepts (patchgroup.html, "Constraints"). */
const GROUP_PATCH_ATTRIBUTES = new Set(['displayname', 'members', 'externalid']);
/** `attr eq "value"`, joined by `and` (limitations.html: "Only eq with and is supported"). */
const AWS_FILTER = /^\s*[\w.]+ eq "(?:[^"\\]|\\.)*"(?:\s+and\s+[\w.]+ eq "(?:[^"\\]|\\.)*")*\s*$/;

const emulator: VendorEmulator = {
  basePath: (options) => `/${typeof options.tenant === 'string' ? options.tenant : 'tenant-1'}/scim/v2`,

  install({ app, basePath, sendError, relativePath }, options) {
    const invalid = (res: Response, detail: string) =>
      sendError(res, 400, 'invalidValue', `ValidationException: ${detail}`);
    const throttle =
      typeof options.writesPerSecond === 'number'
        ? new TokenBucket(options.writesPerSecond * 60, Math.max(1, options.writesPerSecond))
        : undefined;

    // A wrong tenant id is a 401, as the error tables say ("This error also occurs if the tenant ID is incorrect").
    app.use((req: Request, res: Response, next: NextFunction) => {
      if (/^\/[^/]+\/scim\/v2(\/|$)/.test(req.path) && !req.path.startsWith(basePath)) {
        return sendError(res, 401, undefined, 'UnauthorizedException: unknown tenant');
      }
      next();
    });

    app.use(basePath, (req: Request, res: Response, next: NextFunction) => {
      const path = relativePath(`${basePath}${req.path}`);
      const [, resource, id] = path.split('/');
      res.set('x-amzn-RequestId', crypto.randomUUID());
      if (throttle && req.method !== 'GET' && throttle.take() > 0) {
        return sendError(res, 429, undefined, 'ThrottlingException: Too many requests exceeded the limits');
      }
      if (resource === 'Bulk' || path.endsWith('/.search') || resource === 'Me') {
        return sendError(res, 404, undefined, `${path} is not supported`);
      }
      const listing = req.method === 'GET' && id === undefined && (resource === 'Users' || resource === 'Groups');
      if (listing && typeof req.query.filter === 'string') {
        if (!AWS_FILTER.test(req.query.filter)) return invalid(res, `unsupported filter ${req.query.filter}`);
      }
      if (listing) {
        // ListUsers / ListGroups: count is 1-100.
        const count = Number(req.query.count ?? 100);
        req.query.count = String(Math.min(100, Math.max(1, Number.isFinite(count) ? count : 100)));
      }
      const body = req.body as Record<string, unknown> | undefined;

      if (resource === 'Users' && (req.method === 'POST' || req.method === 'PUT') && body) {
        const name = (body.name ?? {}) as Record<string, unknown>;
        for (const [field, value] of [
          ['userName', body.userName],
          ['displayName', body.displayName],
          ['name.givenName', name.givenName],
          ['name.familyName', name.familyName],
        ] as const) {
          if (typeof value !== 'string' || value === '') return invalid(res, `${field} is required`);
        }
        for (const attribute of UNSUPPORTED_USER_ATTRIBUTES) {
          if (body[attribute] !== undefined) return invalid(res, `${attribute} is not supported`);
        }
        for (const attribute of ['emails', 'phoneNumbers', 'addresses']) {
          const values = body[attribute];
          if (values === undefined) continue;
          if (!Array.isArray(values) || values.length > 1) return invalid(res, `${attribute} takes a single value`);
          const [value] = values as Array<Record<string, unknown>>;
          if (value?.display !== undefined) return invalid(res, `${attribute}.display is not supported`);
          if (attribute === 'emails' && value?.primary !== true) return invalid(res, 'the email must be primary');
        }
      }
      if (resource === 'Users' && req.method === 'PATCH' && body) {
        const operations = (body.Operations ?? []) as Array<{ op?: string; path?: string }>;
        const onIdentity = operations.filter((op) => /^(username|active)$/i.test(op.path ?? ''));
        if (onIdentity.length > 1) return invalid(res, 'one operation on userName or active per request');
        for (const operation of operations) {
          if (operation.op?.toLowerCase() !== 'remove') continue;
          if (operation.path === undefined) return invalid(res, 'remove needs a path');
          if (/^(username|active)$/i.test(operation.path)) return invalid(res, `cannot remove ${operation.path}`);
        }
      }
      if (resource === 'Groups' && req.method === 'PUT') {
        return invalid(res, 'PutGroup is not a supported operation');
      }
      if (resource === 'Groups' && req.method === 'POST' && memberChanges(req) > 100) {
        return invalid(res, 'a maximum of 100 members can be added in a single request');
      }
      if (resource === 'Groups' && req.method === 'PATCH' && body) {
        if (memberChanges(req) > 100) return invalid(res, 'a maximum of 100 membership changes per request');
        const operations = (body.Operations ?? []) as Array<{ op?: string; path?: string; value?: unknown }>;
        for (const operation of operations) {
          const op = operation.op?.toLowerCase();
          const attribute = operation.path?.split(/[[.]/)[0]?.toLowerCase();
          if (attribute !== undefined && !GROUP_PATCH_ATTRIBUTES.has(attribute)) {
            return invalid(res, `${operation.path} cannot be patched`);
          }
          if (op === 'remove' && operation.path === undefined) return invalid(res, 'remove needs a path');
          if (attribute === 'members' && op === 'replace') return invalid(res, 'members cannot be replaced');
          if (op === 'remove' && operation.path === 'members' && operation.value === undefined) {
            return invalid(res, 'cannot remove all group memberships in one request');
          }
        }
      }
      // GetGroup and ListGroups answer with an empty member list (getgroup.html, listgroups.html).
      if (resource === 'Groups' && req.method === 'GET') {
        rewriteJson(res, (out) => {
          if (Array.isArray(out.Resources)) {
            out.Resources = (out.Resources as Array<Record<string, unknown>>).map((group) => ({
              ...group,
              members: [],
            }));
          } else if (out.id !== undefined) {
            out.members = [];
          }
          return out;
        });
      }
      // Responses are application/json, not application/scim+json.
      const type = res.type.bind(res);
      res.type = (value: string) => type(value === 'application/scim+json' ? 'application/json' : value);
      next();
    });
  },
};

export default emulator;
