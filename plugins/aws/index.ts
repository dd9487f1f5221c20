/**
 * AWS IAM Identity Center. Sources, all in the IAM Identity Center SCIM implementation developer guide
 * (https://docs.aws.amazon.com/singlesignon/latest/developerguide/): limitations.html (filters `eq` with `and`
 * only; no /Bulk, /Me or /Search; one value per multi-valued user attribute; PatchGroup has no remove-all or
 * replace of members), createuser.html (givenName, familyName, userName and displayName required; one email, marked
 * primary; no ims, photos, x509Certificates, entitlements, password, groups or `display` sub-attributes),
 * creategroup.html (at most 100 members in one request), patchgroup.html (only displayName, members and externalId;
 * at most 100 membership changes per request), getgroup.html and listgroups.html (members are not returned),
 * listusers.html (count 1-100). The base URL is `https://scim.REGION.amazonaws.com/TENANT_ID/scim/v2` (userguide
 * "Enable automatic provisioning", how-to-with-scim.html: the SCIM endpoint is shown once, with the access token; a
 * wrong tenant id answers 401). AWS publishes no request rate: throttling is a 429 ThrottlingException, retried with
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

/** An amazonaws.com host of IAM Identity Center's SCIM endpoint: `scim.REGION.amazonaws.com` (`.com.cn` in China). */
const SCIM_HOST = /^scim\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?$/;
/** Its path: one tenant id, then `/scim/v2`. */
const SCIM_PATH = /^\/[^/]+\/scim\/v2\/?$/;
const EXPECTED =
  'the SCIM endpoint AWS shows when automatic provisioning is enabled: https://scim.REGION.amazonaws.com/TENANT_ID/scim/v2';

/**
 * What is wrong with an IAM Identity Center SCIM endpoint URL. Another host than amazonaws.com (a proxy, an
 * emulator) is taken as it is, but the path must still be `/TENANT_ID/scim/v2`.
 */
export function checkAwsBaseUrl(url: URL): string | undefined {
  const aws = /(^|\.)amazonaws\.com(\.cn)?$/.test(url.hostname);
  if (aws && !SCIM_HOST.test(url.hostname)) {
    return `${url.hostname} is not an IAM Identity Center SCIM host (scim.REGION.amazonaws.com); use ${EXPECTED}`;
  }
  if (!SCIM_PATH.test(url.pathname)) {
    return /^\/scim\/v2\/?$/.test(url.pathname)
      ? `the tenant id is missing from the path; use ${EXPECTED}`
      : `the path ${url.pathname} is not /TENANT_ID/scim/v2; use ${EXPECTED}`;
  }
  return undefined;
}

/** The hooks of the `aws` plugin. */
export const awsVendor: VendorHooks<AwsOptions> = {
  id: 'aws',
  description: 'AWS IAM Identity Center (no member read-back, 100 member changes per PATCH, eq/and filters only)',
  optionsSchema: AwsOptionsSchema,
  checkBaseUrl: checkAwsBaseUrl,
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
