/** Reads a group's members page by page from a member endpoint (Webex: `/Groups/{id}/Members`). */
import * as z from 'zod';
import { canonicalKeys, ScimGroupMemberSchema, type ScimClient, type ScimGroupMember } from '../../scim/index.ts';

/** Where a vendor serves a group's members, and the most it returns a page. */
export interface MemberPages {
  path: (groupId: string) => string;
  pageSize: number;
}

/** The most pages read for one group, so a target that never says it is done cannot loop a read forever. */
const MAX_PAGES = 1000;

const Count = z.coerce.number().int().min(0).optional();

/** One page: Webex's ListResponse with `members` where RFC lists have `Resources`; older answers say `memberSize`. */
const MemberPageSchema = z.preprocess(
  canonicalKeys(['totalResults', 'memberSize', 'startIndex', 'itemsPerPage', 'members']),
  z.looseObject({
    totalResults: Count,
    memberSize: Count,
    members: z
      .array(z.preprocess(canonicalKeys(['value', 'display', 'type', '$ref']), ScimGroupMemberSchema))
      .default([]),
  }),
);

/** Every member of `groupId`, one request per page, until a page is empty or the total is reached. */
export async function readMemberPages(
  client: ScimClient,
  pages: MemberPages,
  groupId: string,
): Promise<ScimGroupMember[]> {
  const members: ScimGroupMember[] = [];
  const path = pages.path(groupId);
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const query = { startIndex: String(members.length + 1), count: String(pages.pageSize) };
    const { body } = await client.request('GET', path, { query, schema: MemberPageSchema });
    const found = body?.members ?? [];
    members.push(...found);
    const total = body?.totalResults ?? body?.memberSize;
    if (found.length === 0 || (total !== undefined ? members.length >= total : found.length < pages.pageSize)) break;
  }
  return members;
}
