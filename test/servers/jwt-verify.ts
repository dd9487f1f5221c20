/** Verifies a JWT access token the way a resource server does: signature by a known key, issuer, audience, expiry. */
import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';

/** What a token must satisfy. */
export interface JwtRules {
  issuer: string;
  audience: string;
  /** The authorization server's public signing keys (ES256). */
  keys: JsonWebKey[];
}

/** True when `token` is a JWT signed with one of `rules.keys` for this issuer and audience, and not expired. */
export function verifyAccessToken(token: string, rules: JwtRules, nowSeconds = Date.now() / 1000): boolean {
  const parts = token.split('.');
  if (parts.length !== 3) return false;
  const [header64, payload64, signature64] = parts as [string, string, string];
  try {
    const header = JSON.parse(Buffer.from(header64, 'base64url').toString('utf8')) as { alg?: string; kid?: string };
    if (header.alg !== 'ES256') return false;
    const jwk = rules.keys.find((key) => header.kid === undefined || (key as { kid?: string }).kid === header.kid);
    if (jwk === undefined) return false;
    const signed = Buffer.from(`${header64}.${payload64}`, 'ascii');
    const signature = Buffer.from(signature64, 'base64url');
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    if (!verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, signature)) return false;
    const claims = JSON.parse(Buffer.from(payload64, 'base64url').toString('utf8')) as {
      iss?: string;
      aud?: string | string[];
      exp?: number;
    };
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    return (
      claims.iss === rules.issuer &&
      audiences.includes(rules.audience) &&
      typeof claims.exp === 'number' &&
      claims.exp > nowSeconds
    );
  } catch {
    return false;
  }
}
