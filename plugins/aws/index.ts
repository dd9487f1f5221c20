/**
 * AWS IAM Identity Center. Sources, all in the IAM Identity Center SCIM implementation developer guide
 * (https://docs.aws.amazon.com/singlesignon/latest/developerguide/): limitations.html (filters `eq` with `and`
 * only; no /Bulk, /Me or /Search; one value per multi-valued user attribute; PatchGroup has no remove-all or
 * replace of members), createuser.html (givenName, familyName, userName and displayName required; one email, marked
 * primary; no ims, photos, x509Certificates, entitlements, password, groups or `display` sub-attributes),
 * creategroup.html (at most 100 members in one request), patchgroup.html (only displayName, members and externalId;
 * at most 100 membership changes per request), getgroup.html and listgroups.html (members are not returned),
 * listusers.html (count 1-100). The base URL is `https://scim.REGION.amazonaws.com/TENANT_ID/scim/v2` (a wrong
 * tenant id answers 401). AWS publishes no request rate: throttling is a 429 ThrottlingException, retried with
 * backoff.
 */
import { ScimflowError } from '../../errors/index.ts';
import type { ScimGroup, ScimUser } from '../../scim/index.ts';
import { createScimPlugin, vendorOptions, type ScimEngineDeps } from '../engine/index.ts';
import type { VendorHooks } from '../sdk.ts';
import type * as z from 'zod';

/** The `aws` plugin's options: only the capability override every plugin takes. */
export const AwsOptionsSchema = vendorOptions({});
export type AwsOptions = z.output<typeof AwsOptionsSchema>;

/** User attributes IAM Identity Center refuses on create and replace. */
const UNSUPPORTED = ['password', 'ims', 'photos', 'x509Certificates', 'entitlements', 'groups'] as const;
/** Multi-valued attributes of which it keeps one value. */
const SINGLE_VALUED = ['emails', 'phoneNumbers', 'addresses'] as const;

/** The hooks of the `aws` plugin. */
export const awsVendor: VendorHooks<AwsOptions> = {
  id: 'aws',
  description: 'AWS IAM Identity Center (no member read-back, 100 member changes per PATCH, eq/and filters only)',
  optionsSchema: AwsOptionsSchema,
  capabilities: () => ({
    patch: true,
    filter: true,
    filterOr: false,
    bulk: { supported: false, maxOperations: 0 },
    groupPut: false,
    memberReadBack: false,
    maxMembersPerRequest: 100,
    maxPageSize: 100,
  }),
  shapeUser: (user) => {
    const missing = [
      ['userName', user.userName],
      ['displayName', user.displayName],
      ['name.givenName', user.name?.givenName],
      ['name.familyName', user.name?.familyName],
    ].filter(([, value]) => typeof value !== 'string' || value === '');
    if (missing.length > 0) {
      const fields = missing.map(([field]) => field as string);
      throw new ScimflowError(
        'ERR_MAPPING',
        `IAM Identity Center requires ${fields.join(', ')} on every user; the mappings gave none`,
        { details: { plugin: 'aws', missing: fields } },
      );
    }
    const shaped: Record<string, unknown> = { ...user };
    for (const attribute of UNSUPPORTED) delete shaped[attribute];
    for (const attribute of SINGLE_VALUED) {
      const values = user[attribute] as Array<Record<string, unknown>> | undefined;
      if (!Array.isArray(values)) continue;
      const chosen = values.find((value) => value.primary === true) ?? values[0];
      if (chosen === undefined) {
        delete shaped[attribute];
        continue;
      }
      const { display: _display, ...rest } = chosen;
      shaped[attribute] = [attribute === 'emails' ? { ...rest, primary: true } : rest];
    }
    return shaped as ScimUser;
  },
  shapeGroup: (group) => {
    const { schemas, displayName, externalId, members } = group;
    return {
      schemas,
      displayName,
      ...(externalId === undefined ? {} : { externalId }),
      ...(members === undefined ? {} : { members }),
    } satisfies ScimGroup;
  },
  memberRemoval: 'value-list',
};

/** Creates the `aws` plugin. */
export function createAwsPlugin(deps: ScimEngineDeps = {}) {
  return createScimPlugin(awsVendor, deps);
}
