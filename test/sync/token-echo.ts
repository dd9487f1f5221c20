/** A target that echoes the bearer token back in its SCIM error bodies, as some real ones do. */
import assert from 'node:assert/strict';
import type { ScimTarget } from '../servers/index.ts';

/** A SCIM error body of `status` that quotes the `Authorization` header, token included. */
export function tokenEcho(token: string, status: number) {
  return {
    schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
    status: String(status),
    detail: `request with Authorization: Bearer ${token} refused`,
  };
}

/** Makes `target` refuse every POST of `userName` for good, with a 400 that echoes the token. */
export function refuseUserEchoingToken(target: ScimTarget, userName: string): Promise<void> {
  return target.failNext({
    method: 'POST',
    pathPrefix: '/Users',
    match: { userName },
    status: 400,
    body: tokenEcho(target.token, 400),
    times: 100,
  });
}

/** Fails naming `what` when any six characters in a row of `token` appear in `text`. */
export function assertNoToken(token: string, text: string, what: string): void {
  for (let i = 0; i + 6 <= token.length; i += 1) {
    const part = token.slice(i, i + 6);
    const at = text.indexOf(part);
    assert.ok(at < 0, `${what} carries part of the token: …${text.slice(Math.max(0, at - 200), at + 200)}…`);
  }
}
