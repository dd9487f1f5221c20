/**
 * A Webex SCIM 2 emulator: SCIMMY plus what Webex documents (sources in plugins/webex/index.ts). Mounted at
 * `/identity/scim/ORG/v2` (another org id: 403); users need `userType` (one of Webex's four) and a userName that is
 * their primary email; every group member must say `type: "user"`; groups come without members unless asked with
 * `includeMembers=true`, and `GET /Groups/ID/Members` pages them (`startIndex`, `count`: at most 500, the default);
 * `meta.location` names identity.webex.com, not the host asked.
 *
 * Options: `orgId` (default `org-1`).
 */
import type { NextFunction, Request, Response } from 'express';
import { rewriteJson, type VendorEmulator } from './emulator.ts';

const USER_TYPES = new Set(['user', 'room', 'external_calling', 'calling_service']);
/** The most members a page of `GET /Groups/ID/Members` holds, and how many when `count` is not given. */
const MEMBER_PAGE = 500;

/** The member objects a group write carries: inline members and PATCH values. */
function writtenMembers(body: Record<string, unknown>): unknown[] {
  const inline: unknown[] = Array.isArray(body.members) ? (body.members as unknown[]) : [];
  const operations = Array.isArray(body.Operations)
    ? (body.Operations as Array<{ path?: string; value?: unknown }>)
    : [];
  const patched = operations.flatMap((operation): unknown[] =>
    operation.path?.toLowerCase() === 'members' && Array.isArray(operation.value) ? (operation.value as unknown[]) : [],
  );
  return [...inline, ...patched];
}

const emulator: VendorEmulator = {
  basePath: (options) => `/identity/scim/${typeof options.orgId === 'string' ? options.orgId : 'org-1'}/v2`,

  install({ app, basePath, groups, sendError, relativePath }) {
    app.use((req: Request, res: Response, next: NextFunction) => {
      if (req.path.startsWith('/identity/scim/') && !req.path.startsWith(`${basePath}/`)) {
        return sendError(res, 403, undefined, 'not authorized for this organization');
      }
      next();
    });
    app.use(basePath, (req: Request, res: Response, next: NextFunction) => {
      const path = relativePath(`${basePath}${req.path}`);
      const [, resource, groupId, sub] = path.split('/');
      if (resource === 'Groups' && sub === 'Members' && groupId !== undefined && req.method === 'GET') {
        const group = groups.get(decodeURIComponent(groupId));
        if (group === undefined) return sendError(res, 404, undefined, 'group not found');
        const all = Array.isArray(group.members) ? (group.members as Array<{ value: string; display?: string }>) : [];
        const startIndex = Math.max(1, Number(req.query.startIndex ?? 1) || 1);
        const count = Math.min(MEMBER_PAGE, Math.max(0, Number(req.query.count ?? MEMBER_PAGE) || 0));
        const page = all.slice(startIndex - 1, startIndex - 1 + count).map((member) => ({ ...member, type: 'user' }));
        return res.type('application/scim+json').send(
          JSON.stringify({
            schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
            displayName: group.displayName,
            totalResults: all.length,
            itemsPerPage: page.length,
            startIndex,
            members: page,
          }),
        );
      }
      const body = req.body as Record<string, unknown> | undefined;
      if (resource === 'Users' && (req.method === 'POST' || req.method === 'PUT') && body) {
        if (typeof body.userType !== 'string' || !USER_TYPES.has(body.userType)) {
          return sendError(
            res,
            400,
            'invalidValue',
            'userType is required: user, room, external_calling or calling_service',
          );
        }
        const emails = Array.isArray(body.emails) ? (body.emails as Array<{ value?: string; primary?: boolean }>) : [];
        const primary = emails.find((email) => email.primary === true) ?? emails[0];
        if (typeof body.userName !== 'string' || primary?.value?.toLowerCase() !== body.userName.toLowerCase()) {
          return sendError(res, 400, 'invalidValue', 'userName must be the primary email');
        }
      }
      if (resource === 'Groups' && body && req.method !== 'GET') {
        const members = writtenMembers(body) as Array<{ type?: unknown }>;
        if (members.some((member) => member.type !== 'user')) {
          return sendError(res, 400, 'invalidValue', 'every member needs type "user"');
        }
        // SCIMMY knows only the RFC's canonical "User"; Webex's lowercase type is restored on the way out.
        for (const member of members) member.type = 'User';
      }
      if (resource === 'Groups') {
        rewriteJson(res, (out) => {
          const groups = Array.isArray(out.Resources) ? (out.Resources as Array<Record<string, unknown>>) : [out];
          for (const group of groups) {
            for (const member of Array.isArray(group.members) ? (group.members as Array<{ type?: unknown }>) : []) {
              if (member.type === 'User') member.type = 'user';
            }
          }
          return out;
        });
      }
      if (resource === 'Groups' && req.method === 'GET' && req.query.includeMembers !== 'true') {
        rewriteJson(res, (out) => {
          if (Array.isArray(out.Resources)) {
            out.Resources = (out.Resources as Array<Record<string, unknown>>).map(({ members: _m, ...group }) => group);
            return out;
          }
          const { members: _members, ...group } = out;
          return group;
        });
      }
      if (resource === 'Users' || resource === 'Groups') {
        rewriteJson(res, (out) => {
          const meta = out.meta as { location?: string } | undefined;
          if (typeof meta?.location === 'string') {
            meta.location = meta.location.replace(/^https?:\/\/[^/]+/, 'https://identity.webex.com');
          }
          return out;
        });
      }
      next();
    });
  },
};

export default emulator;
