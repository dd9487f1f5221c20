/** What /proc says of processes: their state, process group and children (Linux only, as the tests that use it). */
import { readdirSync, readFileSync } from 'node:fs';

/** The fields of /proc/<pid>/stat after the command name: [0] the state letter, [1] the parent, [2] the group. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** The state letter of process `pid` (R, S, Z, …), or null once it is gone. */
export function processState(pid: number): string | null {
  return statFields(pid)?.[0] ?? null;
}

/** The process group of `pid`, or null once it is gone. */
export function processGroup(pid: number): number | null {
  const group = statFields(pid)?.[2];
  return group === undefined ? null : Number(group);
}

/** The processes whose parent is `pid`, with their command lines. */
export function childrenOf(pid: number): Array<{ pid: number; command: string }> {
  const children: Array<{ pid: number; command: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (statFields(Number(entry))?.[1] !== String(pid)) continue;
    try {
      children.push({
        pid: Number(entry),
        command: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' '),
      });
    } catch {
      // gone meanwhile
    }
  }
  return children;
}
