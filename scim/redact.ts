/** Removes secrets from text a remote party sent back (error bodies), whatever encoding echoed them. */

const REDACTED = '[redacted]';
// Shorter strings are too likely to occur by chance and redacting them would garble messages.
const MIN_SECRET_CHARS = 4;

/** The spellings in which a secret may come back: raw, base64, base64url, URL-encoded, JSON-escaped. */
function spellings(secret: string): string[] {
  const utf8 = Buffer.from(secret, 'utf8');
  const base64 = utf8.toString('base64');
  const forms = new Set([
    secret,
    base64,
    base64.replace(/=+$/, ''),
    utf8.toString('base64url'),
    encodeURIComponent(secret),
    new URLSearchParams({ s: secret }).toString().slice(2),
    JSON.stringify(secret).slice(1, -1),
    utf8.toString('hex'),
  ]);
  return [...forms].filter((form) => form.length >= MIN_SECRET_CHARS);
}

/** `text` with every spelling of every secret replaced by `[redacted]`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  const forms = secrets
    .filter((secret) => secret.length >= MIN_SECRET_CHARS)
    .flatMap(spellings)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const form of forms) {
    if (out.includes(form)) out = out.split(form).join(REDACTED);
    // URL encodings may come back with lower-case hex digits.
    const lower = form.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase());
    if (lower !== form && out.includes(lower)) out = out.split(lower).join(REDACTED);
  }
  return out;
}
