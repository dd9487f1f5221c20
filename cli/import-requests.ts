/**
 * Splits a directory import file into the requests `scimflow users import` sends: users first, then groups, none with
 * more than `max` objects (a user, a group, a listed member each count one), so that a file of any size is sent in
 * requests the API takes (its body limit) and writes in batches. A group whose members alone pass `max` goes in a
 * request of its own: its members are set exactly, so its list cannot be split.
 */
export function importRequests(document: unknown, max: number): unknown[] {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) return [document];
  const { users, groups, ...rest } = document as { users?: unknown; groups?: unknown };
  // Anything the API would refuse as a whole (unknown keys, lists that are not arrays) is sent as it is, for its 400.
  if (Object.keys(rest).length > 0 || !isList(users) || !isList(groups)) return [document];
  const requests: unknown[] = [];
  for (let start = 0; start < (users ?? []).length; start += max) {
    requests.push({ users: users!.slice(start, start + max) });
  }
  let run: unknown[] = [];
  let size = 0;
  for (const group of groups ?? []) {
    const members = (group as { members?: unknown } | null)?.members;
    const weight = 1 + (Array.isArray(members) ? members.length : 0);
    if (run.length > 0 && size + weight > max) {
      requests.push({ groups: run });
      run = [];
      size = 0;
    }
    run.push(group);
    size += weight;
  }
  if (run.length > 0) requests.push({ groups: run });
  return requests.length > 0 ? requests : [document];
}

function isList(value: unknown): value is unknown[] | undefined {
  return value === undefined || Array.isArray(value);
}
