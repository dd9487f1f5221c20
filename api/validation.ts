import type * as z from 'zod';
import { ValidationError } from '../errors/index.ts';

/** One field-level problem, as the API reports it: `path` is dotted (`members.3`), empty for the whole body. */
export interface Issue {
  path: string;
  message: string;
}

/** Flattens zod issues into dotted paths; an unknown key becomes an issue on that key's own path. */
export function toIssues(error: z.ZodError): Issue[] {
  return error.issues.flatMap((issue) => {
    const base = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...base, key].join('.'), message: 'is not a known field' }));
    }
    return [{ path: base.join('.'), message: issue.message }];
  });
}

/** Parses `value` with `schema` or throws a ValidationError naming every bad field of `what`. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = toIssues(result.error);
  const summary = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ');
  throw new ValidationError(`invalid ${what}: ${summary}`, issues);
}

/** Parses a request body text as JSON; an empty body reads as `undefined`, bad JSON is a ValidationError. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    // V8's message quotes the text around the error, which may be a secret the client sent: keep the position only.
    const position = /at position (\d+)/.exec(error instanceof Error ? error.message : '')?.[1];
    throw new ValidationError('request body is not valid JSON', [
      { path: '', message: position === undefined ? 'not valid JSON' : `not valid JSON at position ${position}` },
    ]);
  }
}
