import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { InvalidArgumentError, type Command } from 'commander';
import type { DirectoryGroup, DirectoryUser, ImportCounts, StreamImportCounts } from '../db/index.ts';
import { ScimflowError } from '../errors/index.ts';
import type { CliContext } from './context.ts';
import { importRequests } from './import-requests.ts';
import { cell, formatTable } from './output.ts';

interface Page<T> {
  items: T[];
  next: string | null;
}

/** Parses a positive integer option value. */
export function positiveInt(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError('must be a positive integer');
  return number;
}

async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ScimflowError(
      'ERR_VALIDATION',
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`,
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ScimflowError('ERR_VALIDATION', `${file} is not valid JSON: ${(error as Error).message}`);
  }
}

/** Objects (users, groups, listed members) per import request: a file of any size stays under the API's body limit. */
const IMPORT_REQUEST_OBJECTS = 10_000;

/**
 * Whether `file` is NDJSON, one `{"user": ...}` or `{"group": ...}` a line, rather than one JSON document: its first
 * line that is not blank is a whole JSON object with one of those keys (a document's first line is `{` or holds
 * `"users"`). Only the file's start is read.
 */
async function isNdjson(file: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return false; // readJsonFile reports it
  }
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
    const first = buffer
      .subarray(0, bytesRead)
      .toString('utf8')
      .split('\n')
      .find((line) => line.trim() !== '');
    const value = JSON.parse(first ?? '') as unknown;
    return typeof value === 'object' && value !== null && ('user' in value || 'group' in value);
  } catch {
    return false;
  } finally {
    await handle.close();
  }
}

function printCounts(output: CliContext['output'], counts: ImportCounts): void {
  output.out(
    `users:   ${counts.users.created} created, ${counts.users.updated} updated, ${counts.users.unchanged} unchanged`,
  );
  output.out(
    `groups:  ${counts.groups.created} created, ${counts.groups.updated} updated, ${counts.groups.unchanged} unchanged`,
  );
  output.out(`members: ${counts.members.added} added, ${counts.members.removed} removed`);
}

/** `users list|import` and `groups list`. */
export function addDirectoryCommands(program: Command, ctx: CliContext): void {
  const { output } = ctx;
  const users = program.command('users').description('directory users');
  users
    .command('list')
    .description('list users, one page at a time')
    .option('--after <id>', 'start after this user id (the "next" of the previous page)')
    .option('--limit <n>', 'most users to list', positiveInt, 100)
    .option('--json', 'print the page as JSON')
    .action(async (options: { after?: string; limit: number; json?: boolean }) => {
      const page = await ctx.api().get<Page<DirectoryUser>>('/users', { after: options.after, limit: options.limit });
      if (options.json) return output.out(JSON.stringify(page, null, 2));
      const rows = page.items.map((u) => [
        u.id,
        u.username,
        cell(u.displayName),
        cell(u.email),
        u.active ? 'yes' : 'no',
        u.kind,
      ]);
      for (const line of formatTable(['ID', 'USERNAME', 'DISPLAY NAME', 'EMAIL', 'ACTIVE', 'KIND'], rows))
        output.out(line);
      if (page.next) output.out(`more: scimflow users list --after ${page.next}`);
    });
  users
    .command('import <file>')
    .description(
      'upsert users and groups from a file: NDJSON, one {"user": {...}} or {"group": {"name", "members": [usernames]}} a line, streamed to the API and written in batches (a bad line stops it there, the lines before it kept); or one JSON document { "users": [...], "groups": [...] }, checked as a whole and sent at most 10,000 objects a request',
    )
    .action(async (file: string) => {
      if (await isNdjson(file)) {
        const body = Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>;
        const counts = await ctx.api().postStream<StreamImportCounts>('/import/stream', body, 'application/x-ndjson');
        printCounts(output, counts);
        output.out(`lines:   ${counts.lines} in ${counts.batches} batches`);
        return;
      }
      const counts: ImportCounts = {
        users: { created: 0, updated: 0, unchanged: 0 },
        groups: { created: 0, updated: 0, unchanged: 0 },
        members: { added: 0, removed: 0 },
      };
      for (const request of importRequests(await readJsonFile(file), IMPORT_REQUEST_OBJECTS)) {
        const part = await ctx.api().post<ImportCounts>('/import', request);
        for (const kind of ['users', 'groups'] as const)
          for (const key of ['created', 'updated', 'unchanged'] as const) counts[kind][key] += part[kind][key];
        counts.members.added += part.members.added;
        counts.members.removed += part.members.removed;
      }
      printCounts(output, counts);
    });

  const groups = program.command('groups').description('directory groups');
  groups
    .command('list')
    .description('list groups, one page at a time')
    .option('--after <id>', 'start after this group id (the "next" of the previous page)')
    .option('--limit <n>', 'most groups to list', positiveInt, 100)
    .option('--json', 'print the page as JSON')
    .action(async (options: { after?: string; limit: number; json?: boolean }) => {
      const page = await ctx.api().get<Page<DirectoryGroup>>('/groups', { after: options.after, limit: options.limit });
      if (options.json) return output.out(JSON.stringify(page, null, 2));
      const rows = page.items.map((g) => [g.id, g.name, cell(g.parentId)]);
      for (const line of formatTable(['ID', 'NAME', 'PARENT'], rows)) output.out(line);
      if (page.next) output.out(`more: scimflow groups list --after ${page.next}`);
    });
}
