import * as z from 'zod';
import {
  addMembers,
  createGroup,
  createUser,
  deleteGroup,
  deleteUser,
  DirectoryImportSchema,
  getGroup,
  getUser,
  GroupInputSchema,
  GroupUpdateSchema,
  importDirectory,
  ImportLineSchema,
  importStream,
  parseImportLine,
  type NumberedImportLine,
  listGroups,
  listMembers,
  listUsers,
  removeMember,
  updateGroup,
  updateUser,
  UserInputSchema,
  UserUpdateSchema,
  type Db,
} from '../db/index.ts';
import { NdjsonBody, type JsonLine } from './ndjson.ts';
import { defineRoute, named, type ApiRoute } from './route.ts';
import {
  GroupViewSchema,
  ImportCountsSchema,
  MembersAddedSchema,
  pageOf,
  StreamImportCountsSchema,
  UserViewSchema,
} from './view-schemas.ts';

/** Keyset paging parameters of every listing. */
export const PageQuerySchema = z.object({
  after: z.uuid().optional().describe('the `next` value of the previous page'),
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('most items in the page'),
});

/** `POST /groups/{id}/members`: users to add; users already in the group are skipped. */
export const AddMembersSchema = z.strictObject({ userIds: z.array(z.uuid()).min(1).max(10_000) });

const User = named('User', UserViewSchema);
const Group = named('Group', GroupViewSchema);

/** Limits of the directory imports. */
export interface ImportLimits {
  /** Largest body of `POST /import` (a whole document). */
  importMaxBodyBytes: number;
  /** Longest line of `POST /import/stream`. */
  importMaxLineBytes: number;
  /** Rows (a user; a group and each member it lists) `POST /import/stream` writes per transaction. */
  importBatchRows: number;
}

async function* checkedLines(lines: AsyncIterable<JsonLine>): AsyncGenerator<NumberedImportLine> {
  for await (const { line, value } of lines) yield { line, entry: parseImportLine(line, value) };
}

/** Users, groups, memberships and the bulk imports. */
export function directoryRoutes(db: Db, options: ImportLimits): ApiRoute[] {
  return [
    defineRoute({
      method: 'GET',
      path: '/users',
      operationId: 'listUsers',
      summary: 'List users in id order, one page at a time',
      tag: 'directory',
      role: 'viewer',
      status: 200,
      query: PageQuerySchema,
      response: named('UserPage', pageOf(UserViewSchema)),
      handle: ({ query }) => listUsers(db, query),
    }),
    defineRoute({
      method: 'POST',
      path: '/users',
      operationId: 'createUser',
      summary: 'Create a user',
      tag: 'directory',
      role: 'admin',
      status: 201,
      body: named('UserInput', UserInputSchema),
      response: User,
      conflicts: true,
      handle: ({ body }) => createUser(db, body),
    }),
    defineRoute({
      method: 'GET',
      path: '/users/:id',
      operationId: 'getUser',
      summary: 'Get a user',
      tag: 'directory',
      role: 'viewer',
      status: 200,
      response: User,
      handle: ({ params }) => getUser(db, params['id']!),
    }),
    defineRoute({
      method: 'PATCH',
      path: '/users/:id',
      operationId: 'updateUser',
      summary: 'Change the given fields of a user; fields left out stay as they are',
      tag: 'directory',
      role: 'admin',
      status: 200,
      body: named('UserUpdate', UserUpdateSchema),
      response: User,
      conflicts: true,
      handle: ({ params, body }) => updateUser(db, params['id']!, body),
    }),
    defineRoute({
      method: 'DELETE',
      path: '/users/:id',
      operationId: 'deleteUser',
      summary: 'Delete a user (and its memberships)',
      tag: 'directory',
      role: 'admin',
      status: 204,
      handle: ({ params }) => deleteUser(db, params['id']!),
    }),
    defineRoute({
      method: 'GET',
      path: '/groups',
      operationId: 'listGroups',
      summary: 'List groups in id order, one page at a time',
      tag: 'directory',
      role: 'viewer',
      status: 200,
      query: PageQuerySchema,
      response: named('GroupPage', pageOf(GroupViewSchema)),
      handle: ({ query }) => listGroups(db, query),
    }),
    defineRoute({
      method: 'POST',
      path: '/groups',
      operationId: 'createGroup',
      summary: 'Create a group, optionally with initial members (user ids)',
      tag: 'directory',
      role: 'admin',
      status: 201,
      body: named('GroupInput', GroupInputSchema),
      response: Group,
      conflicts: true,
      handle: ({ body }) => createGroup(db, body),
    }),
    defineRoute({
      method: 'GET',
      path: '/groups/:id',
      operationId: 'getGroup',
      summary: 'Get a group',
      tag: 'directory',
      role: 'viewer',
      status: 200,
      response: Group,
      handle: ({ params }) => getGroup(db, params['id']!),
    }),
    defineRoute({
      method: 'PATCH',
      path: '/groups/:id',
      operationId: 'updateGroup',
      summary: 'Change the given fields of a group; fields left out stay as they are',
      tag: 'directory',
      role: 'admin',
      status: 200,
      body: named('GroupUpdate', GroupUpdateSchema),
      response: Group,
      conflicts: true,
      handle: ({ params, body }) => updateGroup(db, params['id']!, body),
    }),
    defineRoute({
      method: 'DELETE',
      path: '/groups/:id',
      operationId: 'deleteGroup',
      summary: "Delete a group; one a provider's scope names is a 409 naming those providers",
      tag: 'directory',
      role: 'admin',
      status: 204,
      conflicts: true,
      handle: ({ params }) => deleteGroup(db, params['id']!),
    }),
    defineRoute({
      method: 'GET',
      path: '/groups/:id/members',
      operationId: 'listMembers',
      summary: 'List the members of a group in user id order, one page at a time',
      tag: 'directory',
      role: 'viewer',
      status: 200,
      query: PageQuerySchema,
      response: named('UserPage', pageOf(UserViewSchema)),
      handle: ({ params, query }) => listMembers(db, params['id']!, query),
    }),
    defineRoute({
      method: 'POST',
      path: '/groups/:id/members',
      operationId: 'addMembers',
      summary: 'Add users to a group; users already in it are skipped',
      tag: 'directory',
      role: 'admin',
      status: 200,
      body: named('AddMembers', AddMembersSchema),
      response: named('MembersAdded', MembersAddedSchema),
      handle: ({ params, body }) => addMembers(db, params['id']!, body.userIds),
    }),
    defineRoute({
      method: 'DELETE',
      path: '/groups/:id/members/:userId',
      operationId: 'removeMember',
      summary: 'Remove a user from a group',
      tag: 'directory',
      role: 'admin',
      status: 204,
      handle: ({ params }) => removeMember(db, params['id']!, params['userId']!),
    }),
    defineRoute({
      method: 'POST',
      path: '/import',
      operationId: 'importDirectory',
      summary:
        'Upsert users by username and groups by name, and set group members (by username): checked as a whole, then written 1,000 objects per transaction',
      tag: 'directory',
      role: 'admin',
      status: 200,
      body: named('DirectoryImport', DirectoryImportSchema),
      maxBodyBytes: options.importMaxBodyBytes,
      response: named('ImportCounts', ImportCountsSchema),
      conflicts: true,
      handle: ({ body }) => importDirectory(db, body),
    }),
    defineRoute({
      method: 'POST',
      path: '/import/stream',
      operationId: 'importDirectoryStream',
      summary:
        'Upsert users and groups from NDJSON lines ({"user": {...}} or {"group": {...}}) read as they arrive and written in batches; a bad line stops the import there, the lines before it written (see `details.committed` of the 400, or of the 409 for a name the directory has in another letter case)',
      tag: 'directory',
      role: 'admin',
      status: 200,
      streamed: { lines: named('ImportLine', ImportLineSchema) },
      response: named('StreamImportCounts', StreamImportCountsSchema),
      conflicts: true,
      handle: async ({ stream }) => {
        const body = new NdjsonBody(stream, options.importMaxLineBytes);
        try {
          return await importStream(db, checkedLines(body.lines()), { batchSize: options.importBatchRows });
        } finally {
          // The client may still be sending after a bad line: it gets the answer once the rest is read.
          await body.drain().catch(() => undefined);
        }
      },
    }),
  ];
}
