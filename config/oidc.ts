/**
 * OIDC bearer tokens for the admin API: besides its own API tokens, the API can accept JWTs the organisation's
 * identity provider signs, checked against the issuer's published keys and given a role by one of their claims.
 */
import * as z from 'zod';
import { isLoopbackHost } from '../auth/schemas.ts';
import { ROLES, type Role } from '../db/index.ts';

// Empty is unset: docker compose passes `${VAR:-}` through as an empty string.
const unsetWhenEmpty = (value: unknown) => (value === '' ? undefined : value);

/** The OIDC variables, merged into the process environment schema. */
export const OidcEnvShape = {
  /** The identity provider's issuer URL; set, the API also accepts its JWTs. */
  SCIMFLOW_OIDC_ISSUER: z.preprocess(unsetWhenEmpty, z.url({ protocol: /^https?$/ }).optional()),
  /** The `aud` a token must carry (the API's identifier at the identity provider); required with the issuer. */
  SCIMFLOW_OIDC_AUDIENCE: z.preprocess(unsetWhenEmpty, z.string().min(1).optional()),
  /** The claim holding the caller's roles or groups; a dotted path reaches into objects (`realm_access.roles`). */
  SCIMFLOW_OIDC_ROLE_CLAIM: z.string().min(1).default('roles'),
  /** Comma-separated `VALUE=ROLE` pairs; empty, the claim's values are role names themselves. */
  SCIMFLOW_OIDC_ROLES: z.string().default(''),
  /** The claim that names the caller in the audit log (as `oidc:<value>`). */
  SCIMFLOW_OIDC_NAME_CLAIM: z.string().min(1).default('sub'),
};

/** The parsed OIDC variables. */
export interface OidcEnv {
  SCIMFLOW_OIDC_ISSUER?: string | undefined;
  SCIMFLOW_OIDC_AUDIENCE?: string | undefined;
  SCIMFLOW_OIDC_ROLE_CLAIM: string;
  SCIMFLOW_OIDC_ROLES: string;
  SCIMFLOW_OIDC_NAME_CLAIM: string;
}

/** How the API checks OIDC bearer tokens. */
export interface OidcSettings {
  issuer: string;
  audience: string;
  /** Path of the claim holding role values (`['realm_access', 'roles']`). */
  roleClaim: string[];
  /** Claim value to role; null when the values are role names themselves. */
  roles: ReadonlyMap<string, Role> | null;
  nameClaim: string;
}

const RoleSchema = z.enum(ROLES);

/** `VALUE=ROLE,...` as a map, or the first malformed pair. */
function parseRoleMap(text: string): { ok: true; roles: Map<string, Role> } | { ok: false; pair: string } {
  const roles = new Map<string, Role>();
  for (const pair of text.split(',').map((item) => item.trim())) {
    if (pair === '') continue;
    const at = pair.lastIndexOf('=');
    const role = RoleSchema.safeParse(pair.slice(at + 1).trim());
    if (at <= 0 || !role.success) return { ok: false, pair };
    roles.set(pair.slice(0, at).trim(), role.data);
  }
  return { ok: true, roles };
}

/** Rules across the OIDC variables, reported as issues on the variable at fault. */
export function checkOidcEnv(env: OidcEnv, ctx: z.RefinementCtx): void {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (env.SCIMFLOW_OIDC_ISSUER === undefined) {
    if (env.SCIMFLOW_OIDC_AUDIENCE !== undefined)
      issue('SCIMFLOW_OIDC_AUDIENCE', 'is set without SCIMFLOW_OIDC_ISSUER');
    if (env.SCIMFLOW_OIDC_ROLES !== '') issue('SCIMFLOW_OIDC_ROLES', 'is set without SCIMFLOW_OIDC_ISSUER');
    return;
  }
  const issuer = new URL(env.SCIMFLOW_OIDC_ISSUER);
  if (issuer.protocol === 'http:' && !isLoopbackHost(issuer.hostname)) {
    issue('SCIMFLOW_OIDC_ISSUER', 'must be https (http only on loopback): its keys decide who is an admin');
  }
  if (env.SCIMFLOW_OIDC_AUDIENCE === undefined) {
    issue(
      'SCIMFLOW_OIDC_AUDIENCE',
      'must be set with SCIMFLOW_OIDC_ISSUER: tokens issued for other applications are refused',
    );
  }
  const parsed = parseRoleMap(env.SCIMFLOW_OIDC_ROLES);
  if (!parsed.ok)
    issue('SCIMFLOW_OIDC_ROLES', `"${parsed.pair}" is not VALUE=ROLE with ROLE one of ${ROLES.join(', ')}`);
}

/** The OIDC settings of a checked environment, or null when OIDC bearer tokens are off. */
export function oidcSettings(env: OidcEnv): OidcSettings | null {
  if (env.SCIMFLOW_OIDC_ISSUER === undefined || env.SCIMFLOW_OIDC_AUDIENCE === undefined) return null;
  const parsed = parseRoleMap(env.SCIMFLOW_OIDC_ROLES);
  const roles = parsed.ok && parsed.roles.size > 0 ? parsed.roles : null;
  return {
    issuer: env.SCIMFLOW_OIDC_ISSUER,
    audience: env.SCIMFLOW_OIDC_AUDIENCE,
    roleClaim: env.SCIMFLOW_OIDC_ROLE_CLAIM.split('.'),
    roles,
    nameClaim: env.SCIMFLOW_OIDC_NAME_CLAIM,
  };
}
