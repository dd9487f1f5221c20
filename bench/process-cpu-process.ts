/**
 * The scale bench's sampler of other processes' CPU time, as a process of its own so that reading /proc every 200 ms
 * is not charged to the worker whose CPU the bench measures. argv: a JSON object of group name → the strings a
 * process's command line must all contain (`{"postgres": ["postgres:", " bench_db "], …}`). IPC: `{ id, call: 'start' }` takes the baseline and starts sampling; `{ id, call: 'stop' }` answers
 * `{ id, result }` with the CPU seconds each group used since the start.
 */
import { readdirSync, readFileSync } from 'node:fs';

const needles = JSON.parse(process.argv[2] ?? '{}') as Record<string, string[]>;
const matches = (group: string, cmdline: string): boolean => needles[group]!.every((part) => cmdline.includes(part));

// Each process's group (null: none), as its command line said when first seen.
const groupOf = new Map<number, string | null>();
// The ticks at the start, and the most seen since: a backend that exits mid-phase keeps what it used until then.
const start = new Map<number, number>();
const last = new Map<number, { group: string; ticks: number }>();
let timer: NodeJS.Timeout | undefined;

function sample(first: boolean): void {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    let group = groupOf.get(pid);
    let stat: string;
    try {
      if (group === undefined) {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
        group = Object.keys(needles).find((name) => matches(name, cmdline)) ?? null;
        groupOf.set(pid, group);
      }
      if (group === null) continue;
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // utime and stime are fields 14 and 15; the command name (field 2) may hold spaces, so count after its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    if (first) start.set(pid, ticks);
    last.set(pid, { group, ticks });
  }
}

process.on('message', (message: { id: number; call: 'start' | 'stop' }) => {
  if (message.call === 'start') {
    start.clear();
    last.clear();
    sample(true);
    clearInterval(timer);
    timer = setInterval(() => sample(false), 200);
    process.send!({ id: message.id, result: null });
    return;
  }
  clearInterval(timer);
  sample(false);
  const cpu: Record<string, number> = Object.fromEntries(Object.keys(needles).map((name) => [name, 0]));
  for (const [pid, { group, ticks }] of last) cpu[group]! += (ticks - (start.get(pid) ?? 0)) / 100;
  process.send!({ id: message.id, result: cpu });
});
process.on('disconnect', () => process.exit(0));
