/**
 * Webex (Cisco Identity SCIM 2: `https://webexapis.com/identity/scim/ORG_ID/v2`). Sources: developer.webex.com
 * "SCIM-2 Overview" (docs/scim-2-overview) and "SCIM 2 Users" / "SCIM 2 Groups" (docs/api/v1/scim-2-users,
 * scim-2-groups), from the OpenAPI document webex/webex-openapi-specs public-spec/webex-admin.json: "Create a user"
 * (`userName` must be the user's primary email, unique across Webex; `userType` required, one of user, room,
 * external_calling, calling_service; the core User schema must be present), "Search groups" (`includeMembers`
 * defaults to false), "Get Group Members" (`GET /Groups/{id}/Members`, `startIndex` and `count`, at most 500 a page,
 * the default too), "User bulk API" (at most 100 operations), and the response codes (429 with Retry-After; 423 and
 * 428 ask to try again; 410 Gone). authentik's Webex compatibility mode
 * writes every group member with `"type": "user"`.
 */
import * as z from 'zod';
import { ScimflowError, ScimRequestError } from '../../errors/index.ts';
import { SCHEMA_USER, type ScimUser } from '../../scim/index.ts';
import { createScimPlugin, vendorOptions, type ScimEngineDeps } from '../engine/index.ts';
import type { VendorHooks } from '../sdk.ts';

/** The `webex` plugin's options. */
export const WebexOptionsSchema = vendorOptions({
  /** The userType of users whose mappings set none. @default 'user' */
  userType: z.enum(['user', 'room', 'external_calling', 'calling_service']).default('user'),
});
export type WebexOptions = z.output<typeof WebexOptionsSchema>;

/** The hooks of the `webex` plugin. */
export const webexVendor: VendorHooks<WebexOptions> = {
  id: 'webex',
  description: 'Webex (userName is the primary email, userType required, members typed "user")',
  optionsSchema: WebexOptionsSchema,
  capabilities: (found) => ({
    bulk: { supported: found.bulk.supported, maxOperations: Math.min(found.bulk.maxOperations, 100) },
    maxMembersPerRequest: Math.min(found.maxMembersPerRequest, 100),
  }),
  shapeUser: (user, options) => {
    const emails = user.emails ?? [];
    const primary = emails.find((email) => email.primary === true) ?? emails[0];
    if (primary !== undefined && primary.value.toLowerCase() !== user.userName.toLowerCase()) {
      throw new ScimflowError('ERR_MAPPING', 'Webex requires userName to be the primary email', {
        details: { plugin: 'webex', userName: user.userName, primaryEmail: primary.value },
      });
    }
    if (primary === undefined && !/^[^@\s]+@[^@\s]+$/.test(user.userName)) {
      throw new ScimflowError('ERR_MAPPING', 'Webex requires userName to be an email address', {
        details: { plugin: 'webex', userName: user.userName },
      });
    }
    return {
      ...user,
      schemas: user.schemas.includes(SCHEMA_USER) ? user.schemas : [SCHEMA_USER, ...user.schemas],
      userType: user.userType ?? options.userType,
    } satisfies ScimUser;
  },
  memberReference: (value) => ({ value, type: 'user' }),
  // A group's members are read from its paged member endpoint, not trusted to a group read with includeMembers=true.
  memberPages: { path: (id) => `/Groups/${encodeURIComponent(id)}/Members`, pageSize: 500 },
  // 423 Locked and 428 Precondition Required are Webex's "not now": try the object again later. 410 is gone.
  translateError: (error) => {
    const fields = {
      status: error.status,
      method: String(error.details.method),
      path: String(error.details.path),
      scimType: error.scimType,
    };
    if (error.status === 423 || error.status === 428) {
      return new ScimRequestError('ERR_SCIM_SERVER', `${error.message} (Webex: try again later)`, fields, error);
    }
    if (error.status === 410) return new ScimRequestError('ERR_SCIM_NOT_FOUND', error.message, fields, error);
    return undefined;
  },
};

/** Creates the `webex` plugin. */
export function createWebexPlugin(deps: ScimEngineDeps = {}) {
  return createScimPlugin(webexVendor, deps);
}
