/** Reading what a scimflow process logged: pino's JSON lines. */

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/** The lines of `output` that are JSON objects, parsed; other lines are skipped. */
export function jsonLines(output: string): Array<Record<string, unknown>> {
  return output.split('\n').flatMap((line) => {
    if (!line.startsWith('{')) return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

/** Whether `output` holds a line logged at `level` with the message `msg`, and, with `text`, whose JSON matches it. */
export function hasLogLine(output: string, level: keyof typeof LEVELS, msg: string, text?: RegExp): boolean {
  return jsonLines(output).some(
    (line) =>
      line['level'] === LEVELS[level] && line['msg'] === msg && (text === undefined || text.test(JSON.stringify(line))),
  );
}
