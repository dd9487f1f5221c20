/**
 * Text PostgreSQL can store. A `text` column refuses U+0000 (SQLSTATE 22021), and `jsonb` refuses it too, in values
 * and in keys, as well as an unpaired UTF-16 surrogate (22P05). An unpaired surrogate in a `text` column is not
 * refused but written as U+FFFD, so it would not come back as it was sent. Inputs are checked with `isStorableText`
 * where they are parsed, so that the error names the field; `isUnstorableTextError` recognises what gets past them.
 */

/** What a field holding such text is told. */
export const UNSTORABLE_TEXT = 'must not contain U+0000 or an unpaired UTF-16 surrogate';

// In a `u` regex a surrogate pair is one code point, so \p{Cs} matches only an unpaired surrogate: one test per string.
const UNSTORABLE = /[\0\p{Cs}]/u;

/** True when PostgreSQL stores `text` as it is: no U+0000 and no unpaired surrogate. */
export function isStorableText(text: string): boolean {
  return !UNSTORABLE.test(text);
}

/** Where a free-form JSON value holds text PostgreSQL cannot store: the path of that string, or of the object with such a key. */
export interface UnstorableText {
  path: Array<string | number>;
  /** The text is a key of the object at `path`, not a value. */
  inKey: boolean;
}

/** The first string or object key in `value` (parsed JSON) that PostgreSQL cannot store, or undefined when there is none. */
export function findUnstorableText(value: unknown): UnstorableText | undefined {
  if (typeof value === 'string') return isStorableText(value) ? undefined : { path: [], inKey: false };
  if (typeof value !== 'object' || value === null) return undefined;
  // The path is built on the way back from a find, so that text that is fine (nearly all of it) allocates none.
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const found = findUnstorableText(value[i]);
      if (found) {
        found.path.unshift(i);
        return found;
      }
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (!isStorableText(key)) return { path: [], inKey: true };
    const found = findUnstorableText((value as Record<string, unknown>)[key]);
    if (found) {
      found.path.unshift(key);
      return found;
    }
  }
  return undefined;
}

/** A PostgreSQL error raised by text it cannot store (22021 in `text`, 22P05 in `jsonb`), which never names the text. */
export function isUnstorableTextError(error: unknown): boolean {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return code === '22021' || code === '22P05';
}

// In JSON.stringify's output, U+0000 and an unpaired surrogate are always escapes (`\u0000`, `\ud800`): the only `\u`
// escapes PostgreSQL refuses in jsonb. A backslash pair is matched first, so an escaped backslash before a `u` is kept.
const UNSTORABLE_ESCAPE = /\\(?:\\|u(?:0000|d[89a-f][0-9a-f]{2}))/gi;

/**
 * JSON text (as JSON.stringify writes it) that `jsonb` accepts: U+0000 and unpaired surrogates, in values and keys,
 * become U+FFFD. For what a target answers (remote objects, error details), which the sync keeps but cannot refuse.
 */
export function storableJson(json: string): string {
  if (!json.includes('\\u')) return json;
  return json.replace(UNSTORABLE_ESCAPE, (escape) => (escape === '\\\\' ? escape : '\\ufffd'));
}
