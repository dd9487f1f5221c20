/** The contract between the SCIM client and whatever authenticates its requests (static or OAuth). */

/** One header that authenticates a request, with the secret strings error texts must never show. */
export interface AuthHeader {
  name: string;
  value: string;
  /** Every secret the header carries (the token, the password), for redaction. */
  secrets: readonly string[];
}

/** What the SCIM client asks for a header; implementations own caching and refresh. */
export interface Credential {
  /** The header for the next request; undefined when the target needs no authentication. */
  authorization(): Promise<AuthHeader | undefined>;
  /**
   * The target refused `header` (401): forget it if it is still the current one. Returns true when asking again may
   * give a different header, so the request is worth retrying once.
   */
  invalidate(header: AuthHeader): boolean;
}

/** A credential that sends `Authorization: Bearer <token>`, the token fixed or asked of `token()` on every request. */
export function bearerCredential(token: string | (() => Promise<string>)): Credential {
  return {
    async authorization() {
      const value = typeof token === 'string' ? token : await token();
      return { name: 'authorization', value: `Bearer ${value}`, secrets: [value] };
    },
    invalidate: () => false,
  };
}
