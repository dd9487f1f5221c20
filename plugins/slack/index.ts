/**
 * Slack (SCIM 2.0 at https://api.slack.com/scim/v2). Sources: docs.slack.dev "SCIM API reference"
 * (reference/scim-api: DELETE /Users/<id> "Sets a Slack user to deactivated", DELETE /Groups/<id> "Permanently
 * removes a group"; v1 serves /ServiceProviderConfigs, v2 /ServiceProviderConfig), docs.slack.dev "SCIM API rate
 * limits" (reference/scim-api/rate-limits: limits "apply to all SCIM apps in an org"; writes 600/min, and 180/min
 * on each of POST /Users, PUT|PATCH /Users/<id>, DELETE /Users/<id>, POST /Groups, PUT|PATCH /Groups/<id>,
 * DELETE /Groups/<id>; honour Retry-After on 429), slack.dev python-slack-sdk SCIM page ("Must include the
 * user_name argument and at least one email address"), Okta KB "Slack Provisioning Error … username_not_allowed"
 * (a reserved userName) and "… long_username" ("The character limit is 21 characters for the Slack username").
 * authentik's Slack compatibility mode forces filtering on, because Slack's ServiceProviderConfig does not advertise
 * it although filters work.
 */
import * as z from 'zod';
import { ScimflowError, ScimRequestError } from '../../errors/index.ts';
import type { ScimUser } from '../../scim/index.ts';
import { createScimPlugin, vendorOptions, type ScimEngineDeps } from '../engine/index.ts';
import type { VendorHooks } from '../sdk.ts';

/** The `slack` plugin's options. */
export const SlackOptionsSchema = vendorOptions({
  /**
   * Names the Slack org (any label): providers naming the same org share one rate budget, as Slack counts every SCIM
   * app of an org against one limit. @default one budget for every Slack provider of this scimflow
   */
  org: z.string().min(1).max(200).optional(),
});
export type SlackOptions = z.output<typeof SlackOptionsSchema>;

/** Slack's longest username (Okta KB "long_username"). */
const MAX_USERNAME = 21;

/** What Slack's error codes mean, for a person reading a failed object. */
const SLACK_ERRORS: Record<string, string> = {
  username_not_allowed: 'Slack reserves this userName; map another one',
  long_username: `Slack usernames are at most ${MAX_USERNAME} characters; map a shorter one`,
  no_email: 'Slack requires at least one email on every user',
};

/** The hooks of the `slack` plugin. */
export const slackVendor: VendorHooks<SlackOptions> = {
  id: 'slack',
  description: 'Slack SCIM 2.0 (DELETE deactivates users, org-wide write limits, filtering not advertised)',
  optionsSchema: SlackOptionsSchema,
  // 180 requests/min is the limit of each write endpoint; pacing every write at it never exceeds any of Slack's write
  // limits (org-wide 600/min and per endpoint). Reads are not paced: a sync reads about twice per write, well under
  // Slack's 1000 reads/min, and pacing them too left writes at 0.3 of what Slack allows. A burst of 5, a quarter of
  // the smallest Slack documents (20 on POST /Users), keeps the rate whole although each token is asked for through
  // the database a little after it is due (with a bucket of one, writes came 351 ms apart at the median, not 333).
  rateLimits: { requestsPerSecond: 3, burst: 5, paced: 'writes' },
  budgetKey: (options) => `slack:${options.org ?? '*'}`,
  discoveryPaths: () => ['/ServiceProviderConfig', '/ServiceProviderConfigs'],
  capabilities: () => ({
    filter: true,
    filterOr: false,
    userDelete: 'deactivate',
    bulk: { supported: false, maxOperations: 0 },
    maxPageSize: 1000,
  }),
  shapeUser: (user: ScimUser) => {
    const handle = user.userName.split('@')[0] ?? '';
    const problems = [
      ...(user.emails === undefined || user.emails.length === 0 ? ['emails: at least one email is required'] : []),
      ...(handle.length > MAX_USERNAME ? [`userName: at most ${MAX_USERNAME} characters before any @`] : []),
    ];
    if (problems.length > 0) {
      throw new ScimflowError('ERR_MAPPING', `Slack would refuse this user: ${problems.join('; ')}`, {
        details: { plugin: 'slack', problems },
      });
    }
    return user;
  },
  translateError: (error) => {
    const detail = typeof error.details.detail === 'string' ? error.details.detail : error.message;
    const code = Object.keys(SLACK_ERRORS).find((candidate) => detail.includes(candidate));
    if (code === undefined) return undefined;
    return new ScimRequestError(
      error.code,
      `${error.message} (${SLACK_ERRORS[code]})`,
      {
        status: error.status,
        method: String(error.details.method),
        path: String(error.details.path),
        scimType: error.scimType,
        detail,
        retryAfterMs: error.retryAfterMs,
      },
      error,
    );
  },
};

/** Creates the `slack` plugin. */
export function createSlackPlugin(deps: ScimEngineDeps = {}) {
  return createScimPlugin(slackVendor, deps);
}
