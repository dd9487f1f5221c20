/** Finds directory users and groups by name through the API, so commands can take names where the API takes ids. */
import { ValidationError } from '../errors/index.ts';
import type { ApiClient } from './api-client.ts';

interface Page<T> {
  items: T[];
  next: string | null;
}

/** Every item of a paged listing, page by page, until `done` says it has what it needs. */
async function scan<T>(api: ApiClient, path: string, visit: (items: T[]) => boolean): Promise<void> {
  let after: string | undefined;
  for (;;) {
    const page = await api.get<Page<T>>(path, { limit: 1000, after });
    if (visit(page.items) || !page.next) return;
    after = page.next;
  }
}

/** The groups found among `names` (each a group's name, or an existing group's id) → their ids, in one pass. */
export async function findGroupIds(api: ApiClient, names: Iterable<string>): Promise<Map<string, string>> {
  const wanted = new Set(names);
  const found = new Map<string, string>();
  if (wanted.size === 0) return found;
  await scan<{ id: string; name: string }>(api, '/groups', (groups) => {
    for (const group of groups) {
      if (wanted.has(group.name)) found.set(group.name, group.id);
      if (wanted.has(group.id)) found.set(group.id, group.id);
    }
    return found.size === wanted.size;
  });
  return found;
}

/** The message for group names that match no group. */
export function noGroupNamed(missing: readonly string[]): string {
  return `no group named ${quoted(missing)}`;
}

function quoted(names: readonly string[]): string {
  return names.map((name) => JSON.stringify(name)).join(', ');
}

/**
 * The ids of the groups named in `names`, in the same order; an id of an existing group is accepted too. Unknown
 * names are one ValidationError on `field` listing them all.
 */
export async function groupIdsByName(api: ApiClient, names: readonly string[], field: string): Promise<string[]> {
  const found = await findGroupIds(api, names);
  const missing = [...new Set(names)].filter((name) => !found.has(name));
  if (missing.length > 0)
    throw new ValidationError(`no directory group named ${quoted(missing)}`, [
      { path: field, message: noGroupNamed(missing) },
    ]);
  return names.map((name) => found.get(name)!);
}

/** The id of the user with this username, paging through the directory. */
export async function userIdByName(api: ApiClient, username: string, field: string): Promise<string> {
  let id: string | undefined;
  await scan<{ id: string; username: string }>(api, '/users', (users) => {
    id = users.find((user) => user.username === username)?.id;
    return id !== undefined;
  });
  if (id === undefined)
    throw new ValidationError(`no user named ${username}`, [{ path: field, message: 'no such user' }]);
  return id;
}
